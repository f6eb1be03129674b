#ifndef SLICESYNC_CCRYPTO_SHIM_H
#define SLICESYNC_CCRYPTO_SHIM_H
#include <stddef.h>
#include <openssl/sha.h>
#include <openssl/evp.h>

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
#pragma GCC diagnostic pop

#endif
