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
static inline void slicesync_sha256(const void *data, size_t length, unsigned char *output) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, length);
    SHA256_Final(output, &context);
}

/* One-shot digests of one buffer for the strong hashes of zsync control files (MD4, MD5 or SHA-224
 * of each block). MD4 has no fetchable implementation in OpenSSL 3's default provider (only in the
 * legacy one, which may not be installed), but its direct routines are still part of libcrypto. */
static inline void slicesync_md4(const void *data, size_t length, unsigned char *output) {
    MD4_CTX context;
    MD4_Init(&context);
    MD4_Update(&context, data, length);
    MD4_Final(output, &context);
}

static inline void slicesync_md5(const void *data, size_t length, unsigned char *output) {
    MD5_CTX context;
    MD5_Init(&context);
    MD5_Update(&context, data, length);
    MD5_Final(output, &context);
}

static inline void slicesync_sha224(const void *data, size_t length, unsigned char *output) {
    SHA256_CTX context;
    SHA224_Init(&context);
    SHA224_Update(&context, data, length);
    SHA224_Final(output, &context);
}
#pragma GCC diagnostic pop

#endif
