#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include "cslicesyncsystem.h"

ssize_t slicesync_copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t length) {
    return copy_file_range(fd_in, off_in, fd_out, off_out, length, 0);
}

int slicesync_preallocate(int fd, off_t length) {
    int result;
    do {
        result = fallocate(fd, 0, 0, length);
    } while (result != 0 && errno == EINTR);
    return result == 0 ? 0 : errno;
}

int slicesync_reopen_direct(int fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int direct = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (direct < 0) return -1;
    struct stat first, second;
    if (fstat(fd, &first) != 0 || fstat(direct, &second) != 0
        || first.st_dev != second.st_dev || first.st_ino != second.st_ino) {
        close(direct);
        errno = EXDEV;
        return -1;
    }
    return direct;
}

#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
#include <errno.h>

int slicesync_open_beneath(int dirfd, const char *path) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}

off_t slicesync_seek_data(int fd, off_t offset) {
    return lseek(fd, offset, SEEK_DATA);
}

off_t slicesync_seek_hole(int fd, off_t offset) {
    return lseek(fd, offset, SEEK_HOLE);
}

#include <malloc.h>

void slicesync_tune_allocator(int arenas, int mmap_threshold) {
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, arenas);
#endif
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
}
