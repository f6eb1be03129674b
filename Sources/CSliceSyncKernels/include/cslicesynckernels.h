#ifndef SLICESYNC_CKERNELS_H
#define SLICESYNC_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/* Hashing kernels that Swift cannot express: they use the CPU's vector units, chosen at run time.
 *
 * A level names an instruction set; each kernel has a version per level, and a caller may ask for a
 * lower level than the machine's (the tests check every level the machine runs against the plain C
 * one). */
enum {
    SLICESYNC_LEVEL_PLAIN = 0,  /* portable C */
    SLICESYNC_LEVEL_AVX2 = 1,   /* x86-64 AVX2 */
    SLICESYNC_LEVEL_AVX512 = 2, /* x86-64 AVX-512 F, DQ and BW */
};

/* The highest level this machine and its operating system run, or the lower one SLICESYNC_KERNELS names
   (plain or avx2). */
int slicesync_kernel_level(void);

/* MD4 digests (16 bytes each, in order, to `digests`) of `count` consecutive blocks of `block_size`
 * bytes at `data`. `block_size` must be a positive multiple of 64 and less than 2^27 bytes. Blocks
 * are hashed side by side, one per vector lane. */
void slicesync_md4_blocks(int level, const uint8_t *data, size_t block_size, size_t count, uint8_t *digests);

/* SHA-256 digests (32 bytes each, in order, to `digests`) of the leading blocks among `count` consecutive
 * blocks of `block_size` bytes at `data`, with the same limits as above. Returns how many it hashed: a
 * multiple of 16 at the AVX-512 level then a multiple of 2 with the SHA extensions at the AVX2 level and
 * above, none otherwise; the caller hashes the rest. */
size_t slicesync_sha256_blocks(int level, const uint8_t *data, size_t block_size, size_t count, uint8_t *digests);

/* zsync's rolling sums, packed as a << 16 | b, of `count` consecutive blocks of `block_size` bytes (the
 * same limits as above). */
void slicesync_rsum_blocks(int level, const uint8_t *data, size_t block_size, size_t count, uint32_t *sums);

/* The polynomial hash h = h * multiplier + (byte + 1), from h = 0, over `count` bytes, modulo 2^64. */
uint64_t slicesync_rk64(int level, const uint8_t *data, size_t count, uint64_t multiplier);

/* Rolls the RK64 state of the `window` bytes at `bytes + from` (multiplier 0x9E3779B97F4A7C15,
 * `outgoing_factor` its window-th power) one byte at a time until a position whose weak hash (the state's
 * high half) passes the bit filter, or `end`; the slot of weak w is (w * 0x9E3779B1 ^ w >> 15) >> shift.
 * Returns that position and leaves its state in `*state`. Reads bytes up to end - 1 + window. */
size_t slicesync_rk_scan(int level, const uint8_t *bytes, size_t from, size_t end, size_t window,
                         uint64_t outgoing_factor, const uint64_t *filter, uint32_t shift, uint64_t *state);

/* The same for zsync's rolling sum (a << 16 | b, see slicesync_rsum_blocks) of the `block` bytes at
 * `bytes + from`, or with `pairs` of the two consecutive blocks there (packed first << 32 | second): rolls
 * until a position whose key passes the filter, or `end`. The key is the sum and `mask`; for pairs, the two
 * masked sums side by side when both fit 16 bits, else the high half of their 64-bit concatenation times
 * 0x9E3779B97F4A7C15. Reads bytes up to end - 1 + block (2 * block with pairs). */
size_t slicesync_zsync_scan(int level, const uint8_t *bytes, size_t from, size_t end, size_t block, int pairs,
                            uint32_t mask, const uint64_t *filter, uint32_t shift, uint64_t *state);

/* Whether this machine has the SHA extensions that the paired digests below need. */
int slicesync_has_sha_extensions(void);

/* SHA-1 and SHA-256 of one stream at once, for machines with the SHA extensions (only there). */
typedef struct {
    uint32_t sha1[5];
    uint32_t sha256[8];
    uint8_t buffer[64];
    size_t buffered;
    uint64_t total;
} slicesync_sha_pair;

void slicesync_sha_pair_init(slicesync_sha_pair *pair);
void slicesync_sha_pair_update(slicesync_sha_pair *pair, const void *data, size_t length);
/* Writes the 20-byte SHA-1 and the 32-byte SHA-256 of everything added. */
void slicesync_sha_pair_final(slicesync_sha_pair *pair, uint8_t sha1[20], uint8_t sha256[32]);

#endif
