/* What writing a file durably costs on this disk, with no hashing and no network: copies SOURCE to
 * OUTPUT in 512 KiB pieces into a reserved file, then fsyncs, in one of three ways:
 *   buffered   pread/pwrite, writeback started every 32 MiB (as slicesync's assembly does)
 *   direct N   O_DIRECT writes from N threads at once
 *   early N    buffered, plus fdatasync from a second thread each time N MiB more have been written
 * Prints the copy's time, the final fsync's and their sum. Used by bench/disk-floor.sh. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIECE (512 << 10)

static int source, output, direct;
static size_t length, next_offset, every;
static volatile size_t progress;
static volatile int copied;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

static void *direct_writer(void *unused) {
    (void)unused;
    void *buffer;
    if (posix_memalign(&buffer, 4096, PIECE) != 0) fail("posix_memalign");
    for (;;) {
        pthread_mutex_lock(&lock);
        size_t offset = next_offset;
        next_offset += PIECE;
        pthread_mutex_unlock(&lock);
        if (offset >= length) break;
        size_t count = length - offset < PIECE ? length - offset : PIECE;
        if (pread(source, buffer, count, (off_t)offset) != (ssize_t)count) fail("pread");
        /* O_DIRECT wants whole 4 KiB blocks: the last piece is padded, the file cut back after. */
        size_t padded = (count + 4095) / 4096 * 4096;
        if (pwrite(direct, buffer, padded, (off_t)offset) != (ssize_t)padded) fail("pwrite (O_DIRECT)");
    }
    free(buffer);
    return NULL;
}

static void *early_syncer(void *unused) {
    (void)unused;
    size_t synced = 0;
    while (!copied) {
        if (progress - synced >= every) {
            synced = progress;
            fdatasync(output);
        } else {
            usleep(1000);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: diskfloor SOURCE OUTPUT buffered|direct N|early MIB\n");
        return 2;
    }
    const char *mode = argv[3];
    int n = argc > 4 ? atoi(argv[4]) : 4;
    if ((source = open(argv[1], O_RDONLY)) < 0) fail(argv[1]);
    length = (size_t)lseek(source, 0, SEEK_END);
    double start = now();
    if ((output = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) fail(argv[2]);
    if (fallocate(output, 0, 0, (off_t)length) != 0) fail("fallocate");
    if (strcmp(mode, "direct") == 0) {
        if ((direct = open(argv[2], O_WRONLY | O_DIRECT)) < 0) fail("open (O_DIRECT)");
        pthread_t threads[64];
        if (n < 1 || n > 64) n = 4;
        for (int i = 0; i < n; i++) pthread_create(&threads[i], NULL, direct_writer, NULL);
        for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
        close(direct);
        if (ftruncate(output, (off_t)length) != 0) fail("ftruncate");
    } else {
        pthread_t syncer;
        int early = strcmp(mode, "early") == 0;
        every = (size_t)n << 20;
        if (early) pthread_create(&syncer, NULL, early_syncer, NULL);
        void *buffer;
        if (posix_memalign(&buffer, 4096, PIECE) != 0) fail("posix_memalign");
        size_t started = 0;
        for (size_t offset = 0; offset < length; offset += PIECE) {
            size_t count = length - offset < PIECE ? length - offset : PIECE;
            if (pread(source, buffer, count, (off_t)offset) != (ssize_t)count) fail("pread");
            if (pwrite(output, buffer, count, (off_t)offset) != (ssize_t)count) fail("pwrite");
            progress = offset + count;
            if (progress - started >= 32 << 20) {
                sync_file_range(output, (off_t)started, (off_t)(progress - started), SYNC_FILE_RANGE_WRITE);
                started = progress;
            }
        }
        copied = 1;
        if (early) pthread_join(syncer, NULL);
        free(buffer);
    }
    double written = now();
    if (fsync(output) != 0) fail("fsync");
    double done = now();
    printf("%s %d: copy %.3f s, fsync %.3f s, total %.3f s\n", mode, n, written - start, done - written,
           done - start);
    return 0;
}
