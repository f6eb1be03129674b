#ifndef SLICESYNC_CCRYPTO_SHIM_H
#define SLICESYNC_CCRYPTO_SHIM_H
#include <stddef.h>
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/md4.h>
#include <openssl/md5.h>

/* SHA-256 of one buffer through the direct routines.
 * OpenSSL 3's one-shot SHA256() goes through an algorithm fetch that takes a lock on every call,
 * which costs several percent when hashing millions of 2 KiB blocks; the direct routines do not.
 * They are deprecated in OpenSSL 3 but remain part of its API. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
/* One buffer through a digest's direct routines: CONTEXT, INIT, UPDATE and FINAL name them. */
#define SLICESYNC_ONE_SHOT(NAME, CONTEXT, INIT, UPDATE, FINAL) \
    static inline void NAME(const void *data, size_t length, unsigned char *output) { \
        CONTEXT context; \
        INIT(&context); \
        UPDATE(&context, data, length); \
        FINAL(output, &context); \
    }

SLICESYNC_ONE_SHOT(slicesync_sha256, SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final)

/* The strong hashes of zsync control files (MD4, MD5 or SHA-224 of each block). MD4 has no fetchable
 * implementation in OpenSSL 3's default provider (only in the legacy one, which may not be installed),
 * but its direct routines are still part of libcrypto. */
SLICESYNC_ONE_SHOT(slicesync_md4, MD4_CTX, MD4_Init, MD4_Update, MD4_Final)
SLICESYNC_ONE_SHOT(slicesync_md5, MD5_CTX, MD5_Init, MD5_Update, MD5_Final)
SLICESYNC_ONE_SHOT(slicesync_sha224, SHA256_CTX, SHA224_Init, SHA224_Update, SHA224_Final)
#pragma GCC diagnostic pop

#endif
