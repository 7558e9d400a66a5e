/* A power cut, as the disk sees it: only what was synced survives.
 *
 * Preloaded (LD_PRELOAD) into a process under test. Every fsync()/fdatasync() of a file under
 * $POWERCUT_DIR whose name ends in one of $POWERCUT_SUFFIXES (comma-separated) first syncs it for
 * real, then copies the file as it now stands to "<file>.synced" (written to a temporary name and
 * renamed, so a kill -9 never leaves half a copy). After the process is killed, replacing each
 * file by its ".synced" copy (or removing it when it was never synced) gives the files a power cut
 * would have left: writes after the last sync lived only in the page cache.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static int watched(const char *path) {
    const char *dir = getenv("POWERCUT_DIR");
    const char *suffixes = getenv("POWERCUT_SUFFIXES");
    if (!dir || !suffixes || strncmp(path, dir, strlen(dir)) != 0) return 0;
    size_t n = strlen(path);
    char list[1024];
    snprintf(list, sizeof list, "%s", suffixes);
    for (char *save = NULL, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        size_t m = strlen(s);
        if (m && n >= m && strcmp(path + n - m, s) == 0) return 1;
    }
    return 0;
}

static void keep_synced_copy(int fd) {
    char link[64], path[PATH_MAX], tmp[PATH_MAX + 16], done[PATH_MAX + 16];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    if (!watched(path)) return;
    snprintf(tmp, sizeof tmp, "%s.synced~", path);
    snprintf(done, sizeof done, "%s.synced", path);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) return;
    char buffer[1 << 16];
    off_t at = 0;
    ssize_t got;
    while ((got = pread(fd, buffer, sizeof buffer, at)) > 0) {
        if (write(out, buffer, (size_t)got) != got) break;
        at += got;
    }
    close(out);
    rename(tmp, done);
}

int fsync(int fd) {
    if (!real_fsync) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real_fsync(fd);
    if (rc == 0) keep_synced_copy(fd);
    return rc;
}

int fdatasync(int fd) {
    if (!real_fdatasync) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real_fdatasync(fd);
    if (rc == 0) keep_synced_copy(fd);
    return rc;
}
