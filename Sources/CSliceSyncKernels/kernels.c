#include <stdlib.h>
#include <string.h>
#include "cslicesynckernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- MD4 (RFC 1320) --------------------------------------------------------------------------------
 *
 * zsync control files name each block by its MD4. OpenSSL's MD4 hashes one block at a time at about
 * 1.2 GB/s here; signing a 256 MiB file spent 0.21 s of CPU on it, more than everything else a zsync
 * control file needs. The blocks are independent and all of one size, so the vector versions run one
 * block per lane with the same instruction stream: 8 lanes with AVX2, 16 with AVX-512. */

#define MD4_F(x, y, z) (((x) & (y)) | (~(x) & (z)))
#define MD4_G(x, y, z) (((x) & (y)) | ((x) & (z)) | ((y) & (z)))
#define MD4_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD4_ROTATE(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define MD4_STEP(f, a, b, c, d, word, constant, s) (a) = MD4_ROTATE((a) + f((b), (c), (d)) + (word) + (constant), s)

/* The 48 steps on one 64-byte chunk X of words, for any type on which + & | ^ ~ << >> work lane-wise. */
#define MD4_CHUNK(X, a, b, c, d)                                                                          \
    do {                                                                                                  \
        for (int i = 0; i < 16; i += 4) {                                                                 \
            MD4_STEP(MD4_F, a, b, c, d, X[i], 0, 3);                                                      \
            MD4_STEP(MD4_F, d, a, b, c, X[i + 1], 0, 7);                                                  \
            MD4_STEP(MD4_F, c, d, a, b, X[i + 2], 0, 11);                                                 \
            MD4_STEP(MD4_F, b, c, d, a, X[i + 3], 0, 19);                                                 \
        }                                                                                                 \
        for (int i = 0; i < 4; i++) {                                                                     \
            MD4_STEP(MD4_G, a, b, c, d, X[i], 0x5A827999u, 3);                                            \
            MD4_STEP(MD4_G, d, a, b, c, X[i + 4], 0x5A827999u, 5);                                        \
            MD4_STEP(MD4_G, c, d, a, b, X[i + 8], 0x5A827999u, 9);                                        \
            MD4_STEP(MD4_G, b, c, d, a, X[i + 12], 0x5A827999u, 13);                                      \
        }                                                                                                 \
        static const int order[4] = {0, 2, 1, 3};                                                         \
        for (int j = 0; j < 4; j++) {                                                                     \
            int i = order[j];                                                                             \
            MD4_STEP(MD4_H, a, b, c, d, X[i], 0x6ED9EBA1u, 3);                                            \
            MD4_STEP(MD4_H, d, a, b, c, X[i + 8], 0x6ED9EBA1u, 9);                                        \
            MD4_STEP(MD4_H, c, d, a, b, X[i + 4], 0x6ED9EBA1u, 11);                                       \
            MD4_STEP(MD4_H, b, c, d, a, X[i + 12], 0x6ED9EBA1u, 15);                                      \
        }                                                                                                 \
    } while (0)

static void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void md4_store(uint8_t *digest, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    uint32_t state[4] = {a, b, c, d};
    for (int i = 0; i < 16; i++) digest[i] = (uint8_t)(state[i / 4] >> (8 * (i % 4)));
}

/* The last chunk of every block whose size is a multiple of 64: the 0x80 byte, zeros and the length in
 * bits, little-endian. */
static void md4_padding_words(size_t block_size, uint32_t words[16]) {
    uint64_t bits = (uint64_t)block_size * 8;
    memset(words, 0, 16 * sizeof(uint32_t));
    words[0] = 0x80;
    words[14] = (uint32_t)bits;
    words[15] = (uint32_t)(bits >> 32);
}

static void md4_one_block(const uint8_t *data, size_t block_size, uint8_t *digest) {
    uint32_t a = 0x67452301u, b = 0xEFCDAB89u, c = 0x98BADCFEu, d = 0x10325476u;
    uint32_t X[16];
    for (size_t offset = 0; offset <= block_size; offset += 64) {
        if (offset < block_size) {
            for (int w = 0; w < 16; w++) X[w] = load_le32(data + offset + 4 * w);
        } else {
            md4_padding_words(block_size, X);
        }
        uint32_t aa = a, bb = b, cc = c, dd = d;
        MD4_CHUNK(X, a, b, c, d);
        a += aa, b += bb, c += cc, d += dd;
    }
    md4_store(digest, a, b, c, d);
}

static void md4_blocks_plain(const uint8_t *data, size_t block_size, size_t count, uint8_t *digests) {
    for (size_t i = 0; i < count; i++) md4_one_block(data + i * block_size, block_size, digests + 16 * i);
}

#if defined(__x86_64__)
typedef uint32_t u32x8 __attribute__((ext_vector_type(8)));
typedef uint32_t u32x16 __attribute__((ext_vector_type(16)));

/* Rows `row[0..3]` interleaved by word into `out`, then by pairs of words into `b`: in each 128-bit lane k,
 * b[j] holds word 4k + j of the four rows. P is the intrinsics' prefix (_mm256 or _mm512). */
#define INTERLEAVE_FOUR_ROWS(P, row, out, b)                                                              \
    do {                                                                                                  \
        (out)[0] = P##_unpacklo_epi32((row)[0], (row)[1]);                                                \
        (out)[1] = P##_unpackhi_epi32((row)[0], (row)[1]);                                                \
        (out)[2] = P##_unpacklo_epi32((row)[2], (row)[3]);                                                \
        (out)[3] = P##_unpackhi_epi32((row)[2], (row)[3]);                                                \
        (b)[0] = P##_unpacklo_epi64((out)[0], (out)[2]);                                                  \
        (b)[1] = P##_unpackhi_epi64((out)[0], (out)[2]);                                                  \
        (b)[2] = P##_unpacklo_epi64((out)[1], (out)[3]);                                                  \
        (b)[3] = P##_unpackhi_epi64((out)[1], (out)[3]);                                                  \
    } while (0)

/* AVX2: each lane's 64-byte chunk is loaded as two rows of 8 words and the two 8 x 8 blocks transposed, so
 * that X[w] holds word w of every lane. A gather per word did the same at 1.9 GB/s for 4 KiB blocks on a
 * Zen machine without AVX-512, the transposes at 4.2 GB/s. */
__attribute__((target("avx2"))) static inline void transpose8(const uint8_t *chunk, size_t block_size, u32x8 X[16]) {
    for (int half = 0; half < 2; half++) {
        __m256i r[8], a[8], b[8];
        for (int lane = 0; lane < 8; lane++) {
            r[lane] = _mm256_loadu_si256((const __m256i *)(chunk + lane * block_size + 32 * half));
        }
        /* As in `transpose16`: b[4g + j] holds, in 128-bit half k, word 4k + j of rows 4g ... 4g + 3. */
        for (int g = 0; g < 2; g++) INTERLEAVE_FOUR_ROWS(_mm256, r + 4 * g, a + 4 * g, b + 4 * g);
        for (int j = 0; j < 4; j++) {
            X[8 * half + j] = (u32x8)_mm256_permute2x128_si256(b[j], b[4 + j], 0x20);
            X[8 * half + 4 + j] = (u32x8)_mm256_permute2x128_si256(b[j], b[4 + j], 0x31);
        }
    }
}

/* MD4 of LANES consecutive blocks, one per lane of VECTOR, the words of each chunk from WORDS. */
#define MD4_GROUP(NAME, VECTOR, LANES, TARGET, WORDS)                                                     \
    __attribute__((target(TARGET))) static void NAME(const uint8_t *data, size_t block_size,              \
                                                     uint8_t *digests) {                                  \
        VECTOR a = 0x67452301u, b = 0xEFCDAB89u, c = 0x98BADCFEu, d = 0x10325476u;                        \
        VECTOR X[16];                                                                                     \
        uint32_t padding[16];                                                                             \
        md4_padding_words(block_size, padding);                                                           \
        for (size_t offset = 0; offset <= block_size; offset += 64) {                                     \
            if (offset < block_size) {                                                                    \
                WORDS(data + offset, block_size, X);                                                      \
            } else {                                                                                      \
                for (int w = 0; w < 16; w++) X[w] = padding[w];                                           \
            }                                                                                             \
            VECTOR aa = a, bb = b, cc = c, dd = d;                                                        \
            MD4_CHUNK(X, a, b, c, d);                                                                     \
            a += aa, b += bb, c += cc, d += dd;                                                           \
        }                                                                                                 \
        for (int lane = 0; lane < LANES; lane++) md4_store(digests + 16 * lane, a[lane], b[lane], c[lane], d[lane]); \
    }

MD4_GROUP(md4_group_avx2, u32x8, 8, "avx2", transpose8)

/* AVX-512: gathers measured slower than AVX2's here (0.072 s against 0.065 s for 256 MiB for MD4), so
 * each lane's whole 64-byte chunk is loaded at once and the 16 x 16 words transposed: X[w] holds word w
 * of every lane, read little-endian (MD4) or big-endian (SHA-256). */
__attribute__((target("avx512f,avx512bw"))) static void transpose16(const uint8_t *chunk, size_t block_size,
                                                                     int big_endian, u32x16 X[16]) {
    __m512i r[16], a[16], b[16];
    const __m512i swap = _mm512_set4_epi32(0x0C0D0E0F, 0x08090A0B, 0x04050607, 0x00010203);
    for (int lane = 0; lane < 16; lane++) {
        r[lane] = _mm512_loadu_si512(chunk + lane * block_size);
        if (big_endian) r[lane] = _mm512_shuffle_epi8(r[lane], swap);
    }
    /* In each 128-bit quarter k: pairs of rows interleaved by word, then groups of four rows by pairs of
     * words, so that b[4g + j] holds, in quarter k, word 4k + j of rows 4g ... 4g + 3. */
    for (int g = 0; g < 4; g++) INTERLEAVE_FOUR_ROWS(_mm512, r + 4 * g, a + 4 * g, b + 4 * g);
    /* Then quarter k of the four groups' b[.. + j] side by side is word 4k + j of all 16 rows. */
    for (int j = 0; j < 4; j++) {
        __m512i c0 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0x44);
        __m512i c1 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0xEE);
        __m512i c2 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0x44);
        __m512i c3 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0xEE);
        X[j] = (u32x16)_mm512_shuffle_i32x4(c0, c2, 0x88);
        X[4 + j] = (u32x16)_mm512_shuffle_i32x4(c0, c2, 0xDD);
        X[8 + j] = (u32x16)_mm512_shuffle_i32x4(c1, c3, 0x88);
        X[12 + j] = (u32x16)_mm512_shuffle_i32x4(c1, c3, 0xDD);
    }
}

#define LITTLE_ENDIAN_WORDS16(chunk, block_size, X) transpose16(chunk, block_size, 0, X)
MD4_GROUP(md4_group_avx512, u32x16, 16, "avx512f,avx512bw", LITTLE_ENDIAN_WORDS16)
#endif

#if defined(__x86_64__)
/* Hashes groups of `lanes` consecutive blocks with `group` from block `done` on, while whole groups
 * remain; returns the blocks done. */
static size_t hash_groups(void (*group)(const uint8_t *, size_t, uint8_t *), size_t lanes,
                          const uint8_t *data, size_t block_size, size_t count, size_t done, uint8_t *digests,
                          size_t digest_size) {
    for (; done + lanes <= count; done += lanes) {
        group(data + done * block_size, block_size, digests + digest_size * done);
    }
    return done;
}

/* Hashes the last blocks, fewer than `lanes` but at least two, with `group` too: copied into a scratch group
 * whose other lanes hash zeros. The client checks downloaded zsync blocks as the network hands them over,
 * mostly 15 of 4 KiB at a time; one at a time (MD4 at about 1 GB/s) those were 17 ms of the tarball's update,
 * where one copy and one group of 16 cost as much as two blocks. Returns the blocks done. */
static size_t hash_padded_tail(void (*group)(const uint8_t *, size_t, uint8_t *), size_t lanes,
                               const uint8_t *data, size_t block_size, size_t count, size_t done,
                               uint8_t *digests, size_t digest_size) {
    size_t rest = count - done;
    if (rest < 2 || rest >= lanes || block_size > (64 << 10)) return done;
    uint8_t *scratch = calloc(lanes, block_size);
    if (scratch == NULL) return done;
    uint8_t out[16 * 32];
    memcpy(scratch, data + done * block_size, rest * block_size);
    group(scratch, block_size, out);
    memcpy(digests + digest_size * done, out, digest_size * rest);
    free(scratch);
    return count;
}
#endif

void slicesync_md4_blocks(int level, const uint8_t *data, size_t block_size, size_t count, uint8_t *digests) {
    size_t done = 0;
#if defined(__x86_64__)
    if (level >= SLICESYNC_LEVEL_AVX512) {
        done = hash_groups(md4_group_avx512, 16, data, block_size, count, done, digests, 16);
        done = hash_padded_tail(md4_group_avx512, 16, data, block_size, count, done, digests, 16);
    }
    if (level >= SLICESYNC_LEVEL_AVX2) {
        done = hash_groups(md4_group_avx2, 8, data, block_size, count, done, digests, 16);
        done = hash_padded_tail(md4_group_avx2, 8, data, block_size, count, done, digests, 16);
    }
#else
    (void)level;
#endif
    md4_blocks_plain(data + done * block_size, block_size, count - done, digests + 16 * done);
}


/* ---- SHA-256 of many blocks side by side -------------------------------------------------------------
 *
 * Format 2 signatures name every block by its SHA-256. With the SHA extensions OpenSSL hashes one block
 * at a time at about 1.7 GB/s here; 16 blocks side by side in AVX-512 lanes measured 2.7 GB/s (2 KiB
 * and 4 KiB blocks). Without AVX-512, two blocks at a time with the SHA extensions (below). */

#if defined(__x86_64__)
static const uint32_t sha256_constants[64] = {
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
};

/* Rotates right, and three-input logic (0x96: x ^ y ^ z; 0xCA: x ? y : z; 0xE8: majority). */
#define SHA_ROR(x, n) ((u32x16)_mm512_ror_epi32((__m512i)(x), n))
#define SHA_LOGIC(x, y, z, table) ((u32x16)_mm512_ternarylogic_epi32((__m512i)(x), (__m512i)(y), (__m512i)(z), table))

/* The 64 rounds on one chunk of 16 words per lane; W is the message schedule's ring of 16 words. */
__attribute__((target("avx512f,avx512bw"))) static void sha256_chunk16(u32x16 state[8], u32x16 W[16]) {
    u32x16 a = state[0], b = state[1], c = state[2], d = state[3];
    u32x16 e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
        if (t >= 16) {
            u32x16 w15 = W[(t - 15) & 15], w2 = W[(t - 2) & 15];
            u32x16 s0 = SHA_LOGIC(SHA_ROR(w15, 7), SHA_ROR(w15, 18), w15 >> 3, 0x96);
            u32x16 s1 = SHA_LOGIC(SHA_ROR(w2, 17), SHA_ROR(w2, 19), w2 >> 10, 0x96);
            W[t & 15] += s0 + W[(t - 7) & 15] + s1;
        }
        u32x16 t1 = h + SHA_LOGIC(SHA_ROR(e, 6), SHA_ROR(e, 11), SHA_ROR(e, 25), 0x96)
            + SHA_LOGIC(e, f, g, 0xCA) + sha256_constants[t] + W[t & 15];
        u32x16 t2 = SHA_LOGIC(SHA_ROR(a, 2), SHA_ROR(a, 13), SHA_ROR(a, 22), 0x96) + SHA_LOGIC(a, b, c, 0xE8);
        h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
    state[4] += e, state[5] += f, state[6] += g, state[7] += h;
}

/* 16 blocks whose size is a multiple of 64: their chunks, then the same padding chunk for all. */
__attribute__((target("avx512f,avx512bw"))) static void sha256_group16(const uint8_t *data, size_t block_size,
                                                                       uint8_t *digests) {
    static const uint32_t initial[8] = {
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
    };
    u32x16 state[8], W[16];
    for (int i = 0; i < 8; i++) state[i] = initial[i];
    for (size_t offset = 0; offset < block_size; offset += 64) {
        transpose16(data + offset, block_size, 1, W);
        sha256_chunk16(state, W);
    }
    uint64_t bits = (uint64_t)block_size * 8;
    for (int w = 0; w < 16; w++) W[w] = 0;
    W[0] = 0x80000000u;
    W[14] = (uint32_t)(bits >> 32);
    W[15] = (uint32_t)bits;
    sha256_chunk16(state, W);
    for (int lane = 0; lane < 16; lane++) {
        for (int i = 0; i < 32; i++) digests[32 * lane + i] = (uint8_t)(state[i / 4][lane] >> (24 - 8 * (i % 4)));
    }
}
#endif

#if defined(__x86_64__)
static void sha256_pair_shani(const uint8_t *data, size_t block_size, uint8_t *digests);
#endif

size_t slicesync_sha256_blocks(int level, const uint8_t *data, size_t block_size, size_t count, uint8_t *digests) {
    size_t done = 0;
#if defined(__x86_64__)
    if (level >= SLICESYNC_LEVEL_AVX512) {
        done = hash_groups(sha256_group16, 16, data, block_size, count, done, digests, 32);
    }
    if (level >= SLICESYNC_LEVEL_AVX2 && slicesync_has_sha_extensions()) {
        done = hash_groups(sha256_pair_shani, 2, data, block_size, count, done, digests, 32);
    }
#else
    (void)level, (void)data, (void)block_size, (void)count, (void)digests;
#endif
    return done;
}

/* ---- The polynomial rolling hash ------------------------------------------------------------------
 *
 * h = h * M + (byte + 1) is one multiply-add chain per byte. Lane j of L lanes sums the bytes at
 * positions j, j + L, ... with M^L as its multiplier; the lanes then combine as sum of lane_j *
 * M^(L-1-j), which is the same value modulo 2^64. 32 lanes of 64 bits in four vectors keep the
 * multiplier busy without a chain between them. */

static uint64_t rk64_tail(uint64_t h, const uint8_t *data, size_t count, uint64_t multiplier) {
    for (size_t i = 0; i < count; i++) h = h * multiplier + (uint64_t)data[i] + 1;
    return h;
}

#if defined(__x86_64__)
typedef uint64_t u64x8 __attribute__((ext_vector_type(8)));
typedef uint8_t u8x8 __attribute__((ext_vector_type(8)));

#define RK64_LANES(NAME, TARGET)                                                                          \
    __attribute__((target(TARGET))) static uint64_t NAME(const uint8_t *data, size_t count,              \
                                                         uint64_t multiplier) {                           \
        size_t whole = count / 32 * 32;                                                                   \
        if (whole == 0) return rk64_tail(0, data, count, multiplier);                                     \
        uint64_t powers[33];                                                                              \
        powers[0] = 1;                                                                                    \
        for (int i = 1; i <= 32; i++) powers[i] = powers[i - 1] * multiplier;                             \
        u64x8 step = powers[32];                                                                          \
        u64x8 lanes[4] = {0, 0, 0, 0};                                                                    \
        for (size_t i = 0; i < whole; i += 32) {                                                          \
            for (int v = 0; v < 4; v++) {                                                                 \
                u8x8 bytes;                                                                               \
                memcpy(&bytes, data + i + 8 * v, 8);                                                      \
                lanes[v] = lanes[v] * step + __builtin_convertvector(bytes, u64x8) + 1;                   \
            }                                                                                             \
        }                                                                                                 \
        uint64_t h = 0;                                                                                   \
        for (int v = 0; v < 4; v++) {                                                                     \
            for (int j = 0; j < 8; j++) h += lanes[v][j] * powers[31 - (8 * v + j)];                      \
        }                                                                                                 \
        return rk64_tail(h, data + whole, count - whole, multiplier);                                     \
    }

RK64_LANES(rk64_avx2, "avx2")
RK64_LANES(rk64_avx512, "avx512f,avx512dq")
#endif

uint64_t slicesync_rk64(int level, const uint8_t *data, size_t count, uint64_t multiplier) {
#if defined(__x86_64__)
    if (level >= SLICESYNC_LEVEL_AVX512) return rk64_avx512(data, count, multiplier);
    if (level >= SLICESYNC_LEVEL_AVX2) return rk64_avx2(data, count, multiplier);
#else
    (void)level;
#endif
    return rk64_tail(0, data, count, multiplier);
}

/* ---- Rolling RK64 to the next window that may be wanted ---------------------------------------------
 *
 * The scanner rolls a window over every byte offset of the local files and tests each window's weak hash
 * (RK64's high half) against a bit filter of the wanted ones. One byte at a time, the multiply chain
 * from state to state and the filter test cost about 10 cycles a byte here, and the tarball's scans
 * spent 38 % of the run's CPU time in that loop. The AVX-512 version takes 8 offsets per turn: the byte
 * terms d_t = (incoming + 1) - (outgoing + 1) * M^window of the 8 steps, their prefix sums weighted by
 * powers of M in three doubling steps (lane j: sum over t <= j of d_t * M^(j - t)), and the 8 states as
 * h * M^(j + 1) plus lane j. Only h * M^8 + lane 7 is on the chain to the next turn. Measured on 64 MiB
 * of random bytes, 5 runs each: 2.1-2.4 ns a byte plain, 1.7-1.9 with AVX-512. With AVX2, whose 64-bit
 * multiplies take three instructions each, it was no faster than plain, so it has no version. */

#define RK_MULTIPLIER 0x9E3779B97F4A7C15ull

/* Whether the weak table's bit filter has the bit of this weak hash (`WeakTable.passes`). */
static inline int weak_passes(uint32_t weak, const uint64_t *filter, uint32_t shift) {
    uint32_t slot = (weak * 0x9E3779B1u ^ (weak >> 15)) >> shift;
    return (int)((filter[slot >> 6] >> (slot & 63)) & 1);
}

static inline int rk_filter_passes(uint64_t state, const uint64_t *filter, uint32_t shift) {
    return weak_passes((uint32_t)(state >> 32), filter, shift);
}

static size_t rk_scan_plain(const uint8_t *bytes, size_t from, size_t end, size_t window, uint64_t factor,
                            const uint64_t *filter, uint32_t shift, uint64_t *state) {
    uint64_t h = *state;
    size_t i = from;
    while (i < end && !rk_filter_passes(h, filter, shift)) {
        h = h * RK_MULTIPLIER + ((uint64_t)bytes[i + window] + 1) - ((uint64_t)bytes[i] + 1) * factor;
        i++;
    }
    *state = h;
    return i;
}

#if defined(__x86_64__)
typedef uint32_t u32x8 __attribute__((ext_vector_type(8)));

/* Bit k set when the filter has the bit of lane k's slot. The filter's 64-bit words read as 32-bit ones
 * (bit k of word w is bit 32 * w + k on this little-endian machine), so that one gather of 8 words
 * fetches them: 1.5-2.4 ns a byte against 1.9-2.8 with a load per lane (a gather of 64-bit words was
 * slower than the loads). */
__attribute__((target("avx2"))) static inline uint32_t filter_hits8(u32x8 slots, const uint64_t *filter) {
    __m256i words = _mm256_i32gather_epi32((const int *)filter, (__m256i)(slots >> 5), 4);
    __m256i bits = _mm256_slli_epi32(_mm256_srlv_epi32(words, (__m256i)(slots & 31)), 31);
    return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(bits));
}

#define RK_SCAN_LANES(NAME, HITS, TARGET)                                                                 \
    __attribute__((target(TARGET))) static size_t NAME(const uint8_t *bytes, size_t from, size_t end,     \
                                                       size_t window, uint64_t factor,                   \
                                                       const uint64_t *filter, uint32_t shift,           \
                                                       uint64_t *state) {                                \
        uint64_t h = *state;                                                                              \
        size_t i = from;                                                                                  \
        if (i >= end || rk_filter_passes(h, filter, shift)) return i;                                     \
        const uint64_t m1 = RK_MULTIPLIER, m2 = m1 * m1, m4 = m2 * m2, m8 = m4 * m4;                      \
        u64x8 powers;                                                                                     \
        uint64_t power = 1;                                                                               \
        for (int j = 0; j < 8; j++) powers[j] = power *= m1;                                              \
        const u64x8 zero = 0;                                                                             \
        /* Position i was tested; each turn tests i + 1 ... i + 8, which need bytes up to            \
         * i + 7 + window, as rolling to them one at a time would. */                                     \
        while (end - i >= 8) {                                                                            \
            u8x8 outgoing, incoming;                                                                      \
            memcpy(&outgoing, bytes + i, 8);                                                              \
            memcpy(&incoming, bytes + i + window, 8);                                                     \
            u64x8 d = (__builtin_convertvector(incoming, u64x8) + 1) -                                    \
                      (__builtin_convertvector(outgoing, u64x8) + 1) * factor;                            \
            d += __builtin_shufflevector(zero, d, 0, 8, 9, 10, 11, 12, 13, 14) * m1;                      \
            d += __builtin_shufflevector(zero, d, 0, 1, 8, 9, 10, 11, 12, 13) * m2;                       \
            d += __builtin_shufflevector(zero, d, 0, 1, 2, 3, 8, 9, 10, 11) * m4;                         \
            u64x8 states = h * powers + d;                                                                \
            u32x8 weak = __builtin_convertvector(states >> 32, u32x8);                                    \
            u32x8 slots = (weak * 0x9E3779B1u ^ (weak >> 15)) >> shift;                                   \
            uint32_t hits = HITS(slots, filter);                                                          \
            if (hits) {                                                                                   \
                int lane = __builtin_ctz(hits);                                                           \
                *state = states[lane];                                                                    \
                return i + (size_t)lane + 1;                                                              \
            }                                                                                             \
            h = h * m8 + d[7];                                                                            \
            i += 8;                                                                                       \
        }                                                                                                 \
        *state = h;                                                                                       \
        return rk_scan_plain(bytes, i, end, window, factor, filter, shift, state);                        \
    }

RK_SCAN_LANES(rk_scan_avx512, filter_hits8, "avx512f,avx512dq")
#endif

size_t slicesync_rk_scan(int level, const uint8_t *bytes, size_t from, size_t end, size_t window,
                         uint64_t outgoing_factor, const uint64_t *filter, uint32_t shift, uint64_t *state) {
#if defined(__x86_64__)
    if (level >= SLICESYNC_LEVEL_AVX512) {
        return rk_scan_avx512(bytes, from, end, window, outgoing_factor, filter, shift, state);
    }
#else
    (void)level;
#endif
    return rk_scan_plain(bytes, from, end, window, outgoing_factor, filter, shift, state);
}

/* ---- zsync's rolling sum of whole blocks ----------------------------------------------------------
 *
 * For a block x[0..n): a = sum of x[i], b = sum of (n - i) x[i], both kept modulo 2^16 by the format, so
 * 32-bit lanes that wrap lose nothing. A chunk of W bytes adds its byte sum to a and, to b, W times the
 * a before it plus its own bytes weighted W..1. The vector versions sum bytes with SAD, weight them
 * with a multiply-add of bytes by signed 8-bit weights (W <= 64 keeps every pair below 2^15), and
 * defer the "W times the a before" to one multiplication at the end. */

static uint32_t rsum_plain(const uint8_t *data, size_t count) {
    uint32_t a = 0, b = 0;
    for (size_t i = 0; i < count; i++) {
        a += data[i];
        b += a;
    }
    return (a & 0xFFFF) << 16 | (b & 0xFFFF);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint32_t rsum_avx2(const uint8_t *data, size_t count) {
    const __m256i weights = _mm256_setr_epi8(32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                             16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i sums = _mm256_setzero_si256(), earlier = _mm256_setzero_si256(), weighted = _mm256_setzero_si256();
    for (size_t i = 0; i < count; i += 32) {
        __m256i chunk = _mm256_loadu_si256((const __m256i *)(data + i));
        earlier = _mm256_add_epi32(earlier, sums);
        sums = _mm256_add_epi32(sums, _mm256_sad_epu8(chunk, _mm256_setzero_si256()));
        weighted = _mm256_add_epi32(weighted, _mm256_madd_epi16(_mm256_maddubs_epi16(chunk, weights), ones));
    }
    uint32_t lanes[8], before[8], own[8];
    _mm256_storeu_si256((__m256i *)lanes, sums);
    _mm256_storeu_si256((__m256i *)before, earlier);
    _mm256_storeu_si256((__m256i *)own, weighted);
    uint32_t a = 0, b = 0;
    for (int k = 0; k < 8; k++) {
        a += lanes[k];
        b += 32 * before[k] + own[k];
    }
    return (a & 0xFFFF) << 16 | (b & 0xFFFF);
}

__attribute__((target("avx512f,avx512bw"))) static uint32_t rsum_avx512(const uint8_t *data, size_t count) {
    const __m512i weights = _mm512_set_epi8(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
        20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45,
        46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64);
    const __m512i ones = _mm512_set1_epi16(1);
    __m512i sums = _mm512_setzero_si512(), earlier = _mm512_setzero_si512(), weighted = _mm512_setzero_si512();
    for (size_t i = 0; i < count; i += 64) {
        __m512i chunk = _mm512_loadu_si512((const void *)(data + i));
        earlier = _mm512_add_epi32(earlier, sums);
        sums = _mm512_add_epi32(sums, _mm512_sad_epu8(chunk, _mm512_setzero_si512()));
        weighted = _mm512_add_epi32(weighted, _mm512_madd_epi16(_mm512_maddubs_epi16(chunk, weights), ones));
    }
    uint32_t a = (uint32_t)_mm512_reduce_add_epi32(sums);
    uint32_t b = 64 * (uint32_t)_mm512_reduce_add_epi32(earlier) + (uint32_t)_mm512_reduce_add_epi32(weighted);
    return (a & 0xFFFF) << 16 | (b & 0xFFFF);
}
#endif

void slicesync_rsum_blocks(int level, const uint8_t *data, size_t block_size, size_t count, uint32_t *sums) {
    for (size_t k = 0; k < count; k++, data += block_size) {
#if defined(__x86_64__)
        if (level >= SLICESYNC_LEVEL_AVX512) {
            sums[k] = rsum_avx512(data, block_size);
            continue;
        }
        if (level >= SLICESYNC_LEVEL_AVX2) {
            sums[k] = rsum_avx2(data, block_size);
            continue;
        }
#endif
        sums[k] = rsum_plain(data, block_size);
    }
}

/* ---- Rolling zsync's sums to the next window that may be wanted ------------------------------------
 *
 * The same search as above for zsync control files: the window is one block, or two consecutive blocks
 * whose sums form one key when the control file asks for two matches in a row (zsyncmake does for every
 * file longer than a block). Rolling one sum one byte at a time is a = a + in - out, b = b + a - n * out;
 * over 16 steps, lane j gets a + P_j and b + (j + 1) * a + E_j, where P is the prefix sum of in - out
 * and E that of P - n * out, each in four doubling steps. 32-bit lanes keep everything modulo 2^32, and
 * the format keeps 16 bits of each. A 110 MB tarball's update rolls 16 million positions with pairs of
 * 4 KiB blocks: 6.9 ns a position one at a time in Swift, 4.2 in the plain version below, 1.9-2.0 with
 * AVX-512 (64 MiB of random bytes, a filter of 512 KiB). */

/* The key `WeakTable` holds for a window (`ZsyncWindowHasher.weak`): the masked sum, or for a pair the two
 * masked sums side by side when each fits 16 bits, else the high half of a 64-bit mix of both. */
static inline uint32_t zsync_key(uint64_t state, int pairs, uint32_t mask) {
    if (!pairs) return (uint32_t)state & mask;
    uint32_t first = (uint32_t)(state >> 32) & mask, second = (uint32_t)state & mask;
    if (first <= 0xFFFF && second <= 0xFFFF) return first << 16 | second;
    return (uint32_t)((((uint64_t)first << 32 | second) * RK_MULTIPLIER) >> 32);
}

static inline uint32_t zsync_roll(uint32_t packed, uint8_t outgoing, uint8_t incoming, uint32_t window) {
    uint32_t a = (packed >> 16) + incoming - outgoing;
    uint32_t b = (packed & 0xFFFF) + a - window * outgoing;
    return (a & 0xFFFF) << 16 | (b & 0xFFFF);
}

static size_t zsync_scan_plain(const uint8_t *bytes, size_t from, size_t end, size_t block, int pairs,
                               uint32_t mask, const uint64_t *filter, uint32_t shift, uint64_t *state) {
    uint64_t s = *state;
    size_t i = from;
    uint32_t n = (uint32_t)block;
    while (i < end && !weak_passes(zsync_key(s, pairs, mask), filter, shift)) {
        if (pairs) {
            uint32_t first = zsync_roll((uint32_t)(s >> 32), bytes[i], bytes[i + block], n);
            uint32_t second = zsync_roll((uint32_t)s, bytes[i + block], bytes[i + 2 * block], n);
            s = (uint64_t)first << 32 | second;
        } else {
            s = zsync_roll((uint32_t)s, bytes[i], bytes[i + block], n);
        }
        i++;
    }
    *state = s;
    return i;
}

#if defined(__x86_64__)
typedef uint8_t u8x16 __attribute__((ext_vector_type(16)));

/* Lane j: x[0] + ... + x[j]. */
#define PREFIX16(x)                                                                                       \
    do {                                                                                                  \
        const u32x16 zero = 0;                                                                            \
        x += __builtin_shufflevector(zero, x, 0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30); \
        x += __builtin_shufflevector(zero, x, 0, 1, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29); \
        x += __builtin_shufflevector(zero, x, 0, 1, 2, 3, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);   \
        x += __builtin_shufflevector(zero, x, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);       \
    } while (0)

/* The packed sums after 1 ... LANES steps of the window whose sum is `packed` (lane j: after j + 1), in
 * VECTOR, from LANES bytes (BYTES) leaving and entering, with PREFIX; the rest are the steps 1 ... LANES. */
#define ZSYNC_STEPS(NAME, VECTOR, BYTES, LANES, TARGET, PREFIX, ...)                                      \
    __attribute__((target(TARGET))) static inline VECTOR NAME(uint32_t packed, const uint8_t *outgoing,   \
                                                              const uint8_t *incoming, uint32_t window) { \
        static const VECTOR steps = {__VA_ARGS__};                                                        \
        BYTES out8, in8;                                                                                  \
        memcpy(&out8, outgoing, LANES);                                                                   \
        memcpy(&in8, incoming, LANES);                                                                    \
        VECTOR out = __builtin_convertvector(out8, VECTOR), in = __builtin_convertvector(in8, VECTOR);    \
        VECTOR p = in - out;                                                                              \
        PREFIX(p);                                                                                        \
        VECTOR e = p - window * out;                                                                      \
        PREFIX(e);                                                                                        \
        uint32_t a = packed >> 16, b = packed & 0xFFFF;                                                   \
        VECTOR as = a + p, bs = b + steps * a + e;                                                        \
        return (as & 0xFFFF) << 16 | (bs & 0xFFFF);                                                       \
    }

ZSYNC_STEPS(zsync_steps, u32x16, u8x16, 16, "avx512f,avx512bw,avx512dq", PREFIX16,
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)

/* `zsync_key` of 16 pairs of masked sums; `wide` when a masked sum may exceed 16 bits. */
__attribute__((target("avx512f,avx512bw,avx512dq"))) static inline u32x16 zsync_pair_keys(u32x16 f, u32x16 g,
                                                                                         int wide) {
    u32x16 keys = f << 16 | g;
    if (!wide) return keys;
    u64x8 f0 = __builtin_convertvector(__builtin_shufflevector(f, f, 0, 1, 2, 3, 4, 5, 6, 7), u64x8);
    u64x8 f1 = __builtin_convertvector(__builtin_shufflevector(f, f, 8, 9, 10, 11, 12, 13, 14, 15), u64x8);
    u64x8 g0 = __builtin_convertvector(__builtin_shufflevector(g, g, 0, 1, 2, 3, 4, 5, 6, 7), u64x8);
    u64x8 g1 = __builtin_convertvector(__builtin_shufflevector(g, g, 8, 9, 10, 11, 12, 13, 14, 15), u64x8);
    u32x8 m0 = __builtin_convertvector(((f0 << 32 | g0) * RK_MULTIPLIER) >> 32, u32x8);
    u32x8 m1 = __builtin_convertvector(((f1 << 32 | g1) * RK_MULTIPLIER) >> 32, u32x8);
    u32x16 mixed = __builtin_shufflevector(m0, m1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    u32x16 large = (u32x16)((f > 0xFFFF) | (g > 0xFFFF));
    return (keys & ~large) | (mixed & large);
}

/* Bit k set when the filter has the bit of lane k's slot. The filter's bits as 32-bit words, bit k of word w
 * being bit 32 * w + k on this little-endian machine: one gather of the 16 words is faster here than 16
 * loads (1.95 against 3.1 ns a byte). */
__attribute__((target("avx512f,avx512bw,avx512dq"))) static inline uint32_t filter_hits16(u32x16 slots,
                                                                                         const uint64_t *filter) {
    __m512i words = _mm512_i32gather_epi32((__m512i)(slots >> 5), (const void *)filter, 4);
    __m512i bits = _mm512_srlv_epi32(words, (__m512i)(slots & 31));
    return _mm512_test_epi32_mask(bits, _mm512_set1_epi32(1));
}

/* Rolls zsync's sums LANES positions per turn with STEPS, keys pairs with PAIR_KEYS and tests the keys with
 * HITS; position i was tested, each turn tests i + 1 ... i + LANES. */
#define ZSYNC_SCAN_LANES(NAME, VECTOR, LANES, TARGET, STEPS, PAIR_KEYS, HITS)                              \
    __attribute__((target(TARGET))) static size_t NAME(const uint8_t *bytes, size_t from, size_t end,     \
                                                       size_t block, int pairs, uint32_t mask,            \
                                                       const uint64_t *filter, uint32_t shift,            \
                                                       uint64_t *state) {                                 \
        uint64_t s = *state;                                                                              \
        size_t i = from;                                                                                  \
        if (i >= end || weak_passes(zsync_key(s, pairs, mask), filter, shift)) return i;                  \
        uint32_t n = (uint32_t)block;                                                                     \
        while (end - i >= LANES) {                                                                        \
            VECTOR keys, first, second = 0;                                                               \
            if (pairs) {                                                                                  \
                first = STEPS((uint32_t)(s >> 32), bytes + i, bytes + i + block, n);                      \
                second = STEPS((uint32_t)s, bytes + i + block, bytes + i + 2 * block, n);                 \
                keys = PAIR_KEYS(first & mask, second & mask, mask > 0xFFFF);                             \
            } else {                                                                                      \
                first = STEPS((uint32_t)s, bytes + i, bytes + i + block, n);                              \
                keys = first & mask;                                                                      \
            }                                                                                             \
            VECTOR slots = (keys * 0x9E3779B1u ^ (keys >> 15)) >> shift;                                  \
            uint32_t hits = HITS(slots, filter);                                                          \
            if (hits) {                                                                                   \
                int lane = __builtin_ctz(hits);                                                           \
                *state = pairs ? (uint64_t)first[lane] << 32 | second[lane] : first[lane];                \
                return i + (size_t)lane + 1;                                                              \
            }                                                                                             \
            s = pairs ? (uint64_t)first[LANES - 1] << 32 | second[LANES - 1] : first[LANES - 1];          \
            i += LANES;                                                                                   \
        }                                                                                                 \
        *state = s;                                                                                       \
        return zsync_scan_plain(bytes, i, end, block, pairs, mask, filter, shift, state);                 \
    }

ZSYNC_SCAN_LANES(zsync_scan_avx512, u32x16, 16, "avx512f,avx512bw,avx512dq", zsync_steps, zsync_pair_keys,
                 filter_hits16)

/* Lane j: x[0] + ... + x[j], for 8 lanes. */
#define PREFIX8(x)                                                                                        \
    do {                                                                                                  \
        const u32x8 zero = 0;                                                                             \
        x += __builtin_shufflevector(zero, x, 0, 8, 9, 10, 11, 12, 13, 14);                               \
        x += __builtin_shufflevector(zero, x, 0, 1, 8, 9, 10, 11, 12, 13);                                \
        x += __builtin_shufflevector(zero, x, 0, 1, 2, 3, 8, 9, 10, 11);                                  \
    } while (0)

ZSYNC_STEPS(zsync_steps8, u32x8, u8x8, 8, "avx2", PREFIX8, 1, 2, 3, 4, 5, 6, 7, 8)

/* Pairs whose sums fit 16 bits each, side by side: the only pairs the AVX2 version is given. */
__attribute__((target("avx2"))) static inline u32x8 zsync_pair_keys8(u32x8 f, u32x8 g, int wide) {
    (void)wide;
    return f << 16 | g;
}

/* The AVX-512 search in 8 lanes, for machines without AVX-512. Pairs of masked sums wider than 16 bits
 * need 64-bit multiplies for their keys, which AVX2 lacks, so those stay plain; zsyncmake keeps 2 bytes of
 * each sum of a pair for files of 64 MiB or more, the usual case. On a Zen machine without AVX-512, 64 MiB
 * of random bytes, pairs of 4 KiB blocks, a filter of 512 KiB: 4.2-4.9 ns a position against 7.0-8.2 plain
 * (a gather of the filter's words, or 8 loads, measured the same). */
ZSYNC_SCAN_LANES(zsync_scan_avx2, u32x8, 8, "avx2", zsync_steps8, zsync_pair_keys8, filter_hits8)
#endif

size_t slicesync_zsync_scan(int level, const uint8_t *bytes, size_t from, size_t end, size_t block, int pairs,
                            uint32_t mask, const uint64_t *filter, uint32_t shift, uint64_t *state) {
#if defined(__x86_64__)
    if (level >= SLICESYNC_LEVEL_AVX512) {
        return zsync_scan_avx512(bytes, from, end, block, pairs, mask, filter, shift, state);
    }
    if (level >= SLICESYNC_LEVEL_AVX2 && !(pairs && mask > 0xFFFF)) {
        return zsync_scan_avx2(bytes, from, end, block, pairs, mask, filter, shift, state);
    }
#else
    (void)level;
#endif
    return zsync_scan_plain(bytes, from, end, block, pairs, mask, filter, shift, state);
}

/* ---- SHA-1 and SHA-256 of one stream, side by side (FIPS 180-4) -------------------------------------
 *
 * A zsync control file names the whole file by SHA-1 and newer clients by SHA-256, so `shash --zsync`
 * needs both of every byte. Each is one chain of dependent rounds that no thread can split, and together
 * they were the longest sequential part of signing. With the SHA extensions, one loop runs a block of
 * each: the two chains are independent, so the core overlaps them, and the states stay in registers
 * instead of going through two library contexts per 64 bytes. */

#if defined(__x86_64__)
#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))


/* SHA-1: four rounds per instruction on the message group W (four words, the first in the high lane). `e`
 * carries E into the group: the first group adds it, later ones derive it from the state four rounds back. */
#define SHA1_GROUP(g, function)                                                                           \
    do {                                                                                                  \
        if ((g) >= 4) {                                                                                   \
            w1[(g) % 4] = _mm_sha1msg2_epu32(                                                             \
                _mm_xor_si128(_mm_sha1msg1_epu32(w1[(g) % 4], w1[((g) + 1) % 4]), w1[((g) + 2) % 4]),     \
                w1[((g) + 3) % 4]);                                                                       \
        }                                                                                                 \
        __m128i e = (g) == 0 ? _mm_add_epi32(e0, w1[0]) : _mm_sha1nexte_epu32(before, w1[(g) % 4]);       \
        before = abcd;                                                                                    \
        abcd = _mm_sha1rnds4_epu32(abcd, e, function);                                                    \
    } while (0)

/* SHA-256: two instructions of two rounds each per message group (four words, the first in lane 0) of
 * the schedule `w`, on the state (A, B, E, F), (C, D, G, H). */
#define SHA256_GROUP_OF(g, w, abef, cdgh)                                                                 \
    do {                                                                                                  \
        if ((g) >= 4) {                                                                                   \
            w[(g) % 4] = _mm_sha256msg2_epu32(                                                            \
                _mm_add_epi32(_mm_sha256msg1_epu32(w[(g) % 4], w[((g) + 1) % 4]),                         \
                              _mm_alignr_epi8(w[((g) + 3) % 4], w[((g) + 2) % 4], 4)),                    \
                w[((g) + 3) % 4]);                                                                        \
        }                                                                                                 \
        __m128i k = _mm_add_epi32(w[(g) % 4], _mm_loadu_si128((const __m128i *)&sha256_constants[4 * (g)])); \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, k);                                                      \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(k, 0x0E));                             \
    } while (0)
#define SHA256_GROUP(g) SHA256_GROUP_OF(g, w2, abef, cdgh)

SHA_TARGET static void sha1_sha256_blocks_shani(uint32_t h1[5], uint32_t h2[8], const uint8_t *data, size_t blocks) {
    const __m128i reverse_all = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
    const __m128i reverse_words = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    /* SHA-1 keeps A in the high lane; SHA-256 keeps its state as (A, B, E, F) and (C, D, G, H). */
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h1), 0x1B);
    __m128i e0 = _mm_set_epi32((int)h1[4], 0, 0, 0);
    __m128i low = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h2), 0xB1);
    __m128i high = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h2 + 4)), 0x1B);
    __m128i abef = _mm_alignr_epi8(low, high, 8);
    __m128i cdgh = _mm_blend_epi16(high, low, 0xF0);
    for (size_t block = 0; block < blocks; block++, data += 64) {
        __m128i w1[4], w2[4];
        for (int i = 0; i < 4; i++) {
            __m128i chunk = _mm_loadu_si128((const __m128i *)(data + 16 * i));
            w1[i] = _mm_shuffle_epi8(chunk, reverse_all);
            w2[i] = _mm_shuffle_epi8(chunk, reverse_words);
        }
        const __m128i abcd_start = abcd, e_start = e0, abef_start = abef, cdgh_start = cdgh;
        __m128i before = abcd;
        /* The two chains interleaved group by group, so that each has work while the other waits. */
        SHA1_GROUP(0, 0); SHA256_GROUP(0);   SHA1_GROUP(1, 0); SHA256_GROUP(1);
        SHA1_GROUP(2, 0); SHA256_GROUP(2);   SHA1_GROUP(3, 0); SHA256_GROUP(3);
        SHA1_GROUP(4, 0); SHA256_GROUP(4);   SHA1_GROUP(5, 1); SHA256_GROUP(5);
        SHA1_GROUP(6, 1); SHA256_GROUP(6);   SHA1_GROUP(7, 1); SHA256_GROUP(7);
        SHA1_GROUP(8, 1); SHA256_GROUP(8);   SHA1_GROUP(9, 1); SHA256_GROUP(9);
        SHA1_GROUP(10, 2); SHA256_GROUP(10); SHA1_GROUP(11, 2); SHA256_GROUP(11);
        SHA1_GROUP(12, 2); SHA256_GROUP(12); SHA1_GROUP(13, 2); SHA256_GROUP(13);
        SHA1_GROUP(14, 2); SHA256_GROUP(14); SHA1_GROUP(15, 3); SHA256_GROUP(15);
        SHA1_GROUP(16, 3); SHA1_GROUP(17, 3); SHA1_GROUP(18, 3); SHA1_GROUP(19, 3);
        e0 = _mm_sha1nexte_epu32(before, e_start);
        abcd = _mm_add_epi32(abcd, abcd_start);
        abef = _mm_add_epi32(abef, abef_start);
        cdgh = _mm_add_epi32(cdgh, cdgh_start);
    }
    _mm_storeu_si128((__m128i *)h1, _mm_shuffle_epi32(abcd, 0x1B));
    h1[4] = (uint32_t)_mm_extract_epi32(e0, 3);
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)h2, _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)(h2 + 4), _mm_alignr_epi8(dchg, feba, 8));
}
#endif

/* ---- SHA-256 of two blocks side by side with the SHA extensions ------------------------------------
 *
 * Each round instruction waits for the one before it on the same state, so one block at a time leaves
 * the unit idle between them; two independent blocks interleaved group by group fill those gaps. On a
 * Zen machine without AVX-512, 4 KiB blocks: 1.4 GB/s one at a time (OpenSSL), 2.3 GB/s two at a time. */

#if defined(__x86_64__)
/* The state (A, B, E, F), (C, D, G, H) from eight words, and back. */
SHA_TARGET static inline void sha256_state_load(const uint32_t h[8], __m128i *abef, __m128i *cdgh) {
    __m128i low = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);
    __m128i high = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B);
    *abef = _mm_alignr_epi8(low, high, 8);
    *cdgh = _mm_blend_epi16(high, low, 0xF0);
}

SHA_TARGET static inline void sha256_digest_store(__m128i abef, __m128i cdgh, uint8_t digest[32]) {
    const __m128i reverse_words = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)digest, _mm_shuffle_epi8(_mm_blend_epi16(feba, dchg, 0xF0), reverse_words));
    _mm_storeu_si128((__m128i *)(digest + 16), _mm_shuffle_epi8(_mm_alignr_epi8(dchg, feba, 8), reverse_words));
}

/* The 16 groups of one chunk for both states; `wx` and `wy` hold the chunks' first four groups. */
#define SHA256_CHUNK_PAIR()                                                                               \
    do {                                                                                                  \
        const __m128i ax0 = ax, cx0 = cx, ay0 = ay, cy0 = cy;                                             \
        SHA256_GROUP_OF(0, wx, ax, cx); SHA256_GROUP_OF(0, wy, ay, cy);                                    \
        SHA256_GROUP_OF(1, wx, ax, cx); SHA256_GROUP_OF(1, wy, ay, cy);                                    \
        SHA256_GROUP_OF(2, wx, ax, cx); SHA256_GROUP_OF(2, wy, ay, cy);                                    \
        SHA256_GROUP_OF(3, wx, ax, cx); SHA256_GROUP_OF(3, wy, ay, cy);                                    \
        SHA256_GROUP_OF(4, wx, ax, cx); SHA256_GROUP_OF(4, wy, ay, cy);                                    \
        SHA256_GROUP_OF(5, wx, ax, cx); SHA256_GROUP_OF(5, wy, ay, cy);                                    \
        SHA256_GROUP_OF(6, wx, ax, cx); SHA256_GROUP_OF(6, wy, ay, cy);                                    \
        SHA256_GROUP_OF(7, wx, ax, cx); SHA256_GROUP_OF(7, wy, ay, cy);                                    \
        SHA256_GROUP_OF(8, wx, ax, cx); SHA256_GROUP_OF(8, wy, ay, cy);                                    \
        SHA256_GROUP_OF(9, wx, ax, cx); SHA256_GROUP_OF(9, wy, ay, cy);                                    \
        SHA256_GROUP_OF(10, wx, ax, cx); SHA256_GROUP_OF(10, wy, ay, cy);                                  \
        SHA256_GROUP_OF(11, wx, ax, cx); SHA256_GROUP_OF(11, wy, ay, cy);                                  \
        SHA256_GROUP_OF(12, wx, ax, cx); SHA256_GROUP_OF(12, wy, ay, cy);                                  \
        SHA256_GROUP_OF(13, wx, ax, cx); SHA256_GROUP_OF(13, wy, ay, cy);                                  \
        SHA256_GROUP_OF(14, wx, ax, cx); SHA256_GROUP_OF(14, wy, ay, cy);                                  \
        SHA256_GROUP_OF(15, wx, ax, cx); SHA256_GROUP_OF(15, wy, ay, cy);                                  \
        ax = _mm_add_epi32(ax, ax0), cx = _mm_add_epi32(cx, cx0);                                         \
        ay = _mm_add_epi32(ay, ay0), cy = _mm_add_epi32(cy, cy0);                                         \
    } while (0)

/* Two consecutive blocks whose size is a multiple of 64: their chunks, then the same padding chunk. */
SHA_TARGET static void sha256_pair_shani(const uint8_t *data, size_t block_size, uint8_t *digests) {
    static const uint32_t initial[8] = {
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
    };
    const __m128i reverse_words = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i ax, cx, ay, cy;
    sha256_state_load(initial, &ax, &cx);
    ay = ax, cy = cx;
    const uint8_t *x = data, *y = data + block_size;
    for (size_t offset = 0; offset < block_size; offset += 64) {
        __m128i wx[4], wy[4];
        for (int i = 0; i < 4; i++) {
            wx[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(x + offset + 16 * i)), reverse_words);
            wy[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(y + offset + 16 * i)), reverse_words);
        }
        SHA256_CHUNK_PAIR();
    }
    uint64_t bits = (uint64_t)block_size * 8;
    __m128i wx[4], wy[4];
    wx[0] = _mm_set_epi32(0, 0, 0, (int)0x80000000u);
    wx[1] = wx[2] = _mm_setzero_si128();
    wx[3] = _mm_set_epi32((int)(uint32_t)bits, (int)(uint32_t)(bits >> 32), 0, 0);
    for (int i = 0; i < 4; i++) wy[i] = wx[i];
    SHA256_CHUNK_PAIR();
    sha256_digest_store(ax, cx, digests);
    sha256_digest_store(ay, cy, digests + 32);
}
#endif

int slicesync_has_sha_extensions(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
#else
    return 0;
#endif
}

void slicesync_sha_pair_init(slicesync_sha_pair *pair) {
    static const uint32_t sha1_start[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    static const uint32_t sha256_start[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(pair->sha1, sha1_start, sizeof sha1_start);
    memcpy(pair->sha256, sha256_start, sizeof sha256_start);
    pair->buffered = 0;
    pair->total = 0;
}

static void sha_pair_blocks(slicesync_sha_pair *pair, const uint8_t *data, size_t blocks) {
#if defined(__x86_64__)
    sha1_sha256_blocks_shani(pair->sha1, pair->sha256, data, blocks);
#else
    (void)pair; (void)data; (void)blocks;
#endif
}

void slicesync_sha_pair_update(slicesync_sha_pair *pair, const void *bytes, size_t length) {
    const uint8_t *data = (const uint8_t *)bytes;
    pair->total += length;
    if (pair->buffered > 0) {
        size_t take = 64 - pair->buffered < length ? 64 - pair->buffered : length;
        memcpy(pair->buffer + pair->buffered, data, take);
        pair->buffered += take;
        data += take;
        length -= take;
        if (pair->buffered < 64) return;
        sha_pair_blocks(pair, pair->buffer, 1);
        pair->buffered = 0;
    }
    sha_pair_blocks(pair, data, length / 64);
    memcpy(pair->buffer, data + length / 64 * 64, length % 64);
    pair->buffered = length % 64;
}

void slicesync_sha_pair_final(slicesync_sha_pair *pair, uint8_t sha1[20], uint8_t sha256[32]) {
    /* FIPS 180-4 padding, the same for both: 0x80, zeros, and the length in bits, big-endian. */
    uint64_t bits = pair->total * 8;
    uint8_t tail[128] = {0};
    memcpy(tail, pair->buffer, pair->buffered);
    tail[pair->buffered] = 0x80;
    size_t blocks = pair->buffered < 56 ? 1 : 2;
    for (int i = 0; i < 8; i++) tail[64 * blocks - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha_pair_blocks(pair, tail, blocks);
    for (int i = 0; i < 5; i++) store_be32(sha1 + 4 * i, pair->sha1[i]);
    for (int i = 0; i < 8; i++) store_be32(sha256 + 4 * i, pair->sha256[i]);
}

static int machine_kernel_level(void) {
#if defined(__x86_64__)
    /* __builtin_cpu_supports also checks that the operating system saves the wider registers. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")) {
        return SLICESYNC_LEVEL_AVX512;
    }
    if (__builtin_cpu_supports("avx2")) return SLICESYNC_LEVEL_AVX2;
#endif
    return SLICESYNC_LEVEL_PLAIN;
}

int slicesync_kernel_level(void) {
    int level = machine_kernel_level();
    /* SLICESYNC_KERNELS=plain or avx2 keeps to a lower level than the machine's, as OPENSSL_ia32cap does for
       libcrypto: to measure or test what machines without the wider units run, or to step around a fault in
       one kernel. It never raises the level. */
    const char *asked = getenv("SLICESYNC_KERNELS");
    if (asked != NULL) {
        if (strcmp(asked, "plain") == 0 && level > SLICESYNC_LEVEL_PLAIN) level = SLICESYNC_LEVEL_PLAIN;
        if (strcmp(asked, "avx2") == 0 && level > SLICESYNC_LEVEL_AVX2) level = SLICESYNC_LEVEL_AVX2;
    }
    return level;
}
