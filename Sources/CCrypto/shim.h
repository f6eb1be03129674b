#ifndef SLICESYNC_CCRYPTO_SHIM_H
#define SLICESYNC_CCRYPTO_SHIM_H
#include <stddef.h>
#include <openssl/sha.h>
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

/* The whole-file digests of one signing pass: SHA-1 (format 1, zsync control files) and SHA-256 (format
 * 2's plain digest), either or both. Each is one chain of dependent rounds, so with both they go 64-byte
 * block by block alternately and the processor overlaps the two chains: 256 MiB took 0.21 s here, against
 * 0.29 s one after the other. */
typedef struct {
    SHA_CTX sha1;
    SHA256_CTX sha256;
    int has_sha1;
    int has_sha256;
} slicesync_whole_digests;

static inline void slicesync_whole_init(slicesync_whole_digests *digests, int sha1, int sha256) {
    digests->has_sha1 = sha1;
    digests->has_sha256 = sha256;
    SHA1_Init(&digests->sha1);
    SHA256_Init(&digests->sha256);
}

static inline void slicesync_whole_update(slicesync_whole_digests *digests, const void *data, size_t length) {
    const unsigned char *bytes = (const unsigned char *)data;
    if (digests->has_sha1 && digests->has_sha256) {
        for (size_t offset = 0; offset < length; offset += 64) {
            size_t take = length - offset < 64 ? length - offset : 64;
            SHA1_Update(&digests->sha1, bytes + offset, take);
            SHA256_Update(&digests->sha256, bytes + offset, take);
        }
    } else if (digests->has_sha1) {
        SHA1_Update(&digests->sha1, bytes, length);
    } else if (digests->has_sha256) {
        SHA256_Update(&digests->sha256, bytes, length);
    }
}

/* A streaming digest of one algorithm through the direct routines. The first EVP digest a process makes
 * initialises OpenSSL 3's providers and reads openssl.cnf: 1.25 ms here (0.7 ms without the file), a
 * seventh of signing a small file; the direct routines need no initialisation (0.01 ms). */
enum { SLICESYNC_DIGEST_SHA256 = 0, SLICESYNC_DIGEST_SHA1 = 1, SLICESYNC_DIGEST_MD5 = 2 };
typedef struct {
    union {
        SHA256_CTX sha256;
        SHA_CTX sha1;
        MD5_CTX md5;
    } context;
    int algorithm;
} slicesync_digest;

static inline void slicesync_digest_init(slicesync_digest *digest, int algorithm) {
    digest->algorithm = algorithm;
    switch (algorithm) {
    case SLICESYNC_DIGEST_SHA1: SHA1_Init(&digest->context.sha1); break;
    case SLICESYNC_DIGEST_MD5: MD5_Init(&digest->context.md5); break;
    default: SHA256_Init(&digest->context.sha256); break;
    }
}

static inline void slicesync_digest_update(slicesync_digest *digest, const void *data, size_t length) {
    switch (digest->algorithm) {
    case SLICESYNC_DIGEST_SHA1: SHA1_Update(&digest->context.sha1, data, length); break;
    case SLICESYNC_DIGEST_MD5: MD5_Update(&digest->context.md5, data, length); break;
    default: SHA256_Update(&digest->context.sha256, data, length); break;
    }
}

/* Writes the digest (32, 20 or 16 bytes) and starts over. */
static inline void slicesync_digest_final(slicesync_digest *digest, unsigned char *output) {
    switch (digest->algorithm) {
    case SLICESYNC_DIGEST_SHA1: SHA1_Final(output, &digest->context.sha1); break;
    case SLICESYNC_DIGEST_MD5: MD5_Final(output, &digest->context.md5); break;
    default: SHA256_Final(output, &digest->context.sha256); break;
    }
    slicesync_digest_init(digest, digest->algorithm);
}

/* Writes 20 bytes to `sha1` and 32 to `sha256`, for the digests that were asked for. */
static inline void slicesync_whole_final(slicesync_whole_digests *digests, unsigned char *sha1, unsigned char *sha256) {
    if (digests->has_sha1) SHA1_Final(sha1, &digests->sha1);
    if (digests->has_sha256) SHA256_Final(sha256, &digests->sha256);
}
#pragma GCC diagnostic pop

#endif
