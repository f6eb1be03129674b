#ifndef SLICESYNC_CSYSTEM_H
#define SLICESYNC_CSYSTEM_H
#include <sys/types.h>

/* copy_file_range(2), which glibc declares only under _GNU_SOURCE. Returns bytes copied or -1 with errno. */
ssize_t slicesync_copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t length);

/* fallocate(2), mode 0: reserves the blocks of the first `length` bytes (the file grows to it).
 * Returns 0, or the errno (EOPNOTSUPP on file systems without it, ENOSPC, EDQUOT). */
int slicesync_preallocate(int fd, off_t length);

/* Opens the file behind `fd` again, for writing that bypasses the page cache (O_DIRECT), through
 * /proc/self/fd: the same inode whatever has happened to its name since. -1 with errno where the file
 * system refuses O_DIRECT (or /proc is missing); -1 with EXDEV if what opened is another file. */
int slicesync_reopen_direct(int fd);

/* openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, read-only, close-on-exec, non-blocking:
 * opens `path` relative to `dirfd` only if resolving it (symbolic links included) never leaves the
 * directory. Returns a descriptor, or -1 with errno (EXDEV: it would leave; ENOSYS: kernel before 5.6). */
int slicesync_open_beneath(int dirfd, const char *path);

/* lseek(2) with SEEK_DATA / SEEK_HOLE: the next offset at or after `offset` that holds data / begins a
 * hole. Returns the offset, or -1 with errno (ENXIO: no data after `offset`). */
off_t slicesync_seek_data(int fd, off_t offset);
off_t slicesync_seek_hole(int fd, off_t offset);

/* mallopt(3): at most `arenas` malloc arenas, and blocks of `mmap_threshold` bytes or more always
 * mapped (and so returned to the system when freed). */
void slicesync_tune_allocator(int arenas, int mmap_threshold);

#endif
