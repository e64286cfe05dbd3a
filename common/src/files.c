/* files.c - the content-addressed file store: names from SHA-256, bytes written to a temporary
 * file, fsynced, renamed into place, and the directory fsynced, so a final name only ever holds
 * whole, durable bytes. */
#include "sy/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "sy/crypto.h"
#include "sy/err.h"

#define FILES_DIR_MODE  0750
#define FILES_FILE_MODE 0640
/* Base64 text decoded at a time: a multiple of 4, so every chunk is whole groups. */
#define FILES_B64_CHUNK ((size_t)65536)
/* Where put_base64 writes before it knows the name; inside the root, so on its filesystem. */
#define FILES_INCOMING     ".incoming"
#define FILES_TMP_PREFIX   ".tmp."
#define FILES_TMP_ATTEMPTS 8

static bool valid_root(const char *root)
{
    return root && root[0] != '\0';
}

static bool valid_hex(const char *hex)
{
    if (!hex)
        return false;
    for (size_t i = 0; i < SY_FILES_HEX_LEN; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return hex[SY_FILES_HEX_LEN] == '\0';
}

/* Fills err with what failed, on which path, and errno's text; returns -SY_EIO. */
static int io_failed(char *err, size_t errlen, const char *what, const char *path, int e)
{
    sy_errf(err, errlen, "files: %s %s: %s", what, path, strerror(e));
    return -SY_EIO;
}

static int dir_ready(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* mkdir -p: creates path and whichever of its parents are missing. A directory that exists
 * already, or that another process creates meanwhile, is fine. 0 or -1 with errno. path is
 * cut and restored in place. */
static int make_dirs(char *path)
{
    if (mkdir(path, FILES_DIR_MODE) == 0)
        return chmod(path, FILES_DIR_MODE); /* the mode promised, whatever the umask */
    if (errno == EEXIST)
        return dir_ready(path);
    if (errno != ENOENT)
        return -1;
    char *slash = strrchr(path, '/');
    if (!slash || slash == path) {
        errno = ENOENT;
        return -1;
    }
    *slash = '\0';
    int rc = make_dirs(path);
    *slash = '/';
    if (rc < 0)
        return -1;
    if (mkdir(path, FILES_DIR_MODE) == 0)
        return chmod(path, FILES_DIR_MODE);
    return errno == EEXIST ? dir_ready(path) : -1;
}

static int make_dirs_err(const char *dir, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof buf) {
        sy_errf(err, errlen, "files: path too long");
        return -SY_EINVAL;
    }
    memcpy(buf, dir, n + 1);
    if (make_dirs(buf) < 0)
        return io_failed(err, errlen, "cannot create directory", dir, errno);
    return 0;
}

/* final gets <root>/<aa>/<bb>/<hex>, dir the same without "/<hex>". */
static int locate(const char *root, const char *hex, char final[PATH_MAX], char dir[PATH_MAX],
                  char *err, size_t errlen)
{
    if (sy_files_path(root, hex, final, PATH_MAX) < 0) {
        sy_errf(err, errlen, "files: root path too long");
        return -SY_EINVAL;
    }
    size_t n = strlen(final) - SY_FILES_HEX_LEN - 1;
    memcpy(dir, final, n);
    dir[n] = '\0';
    return 0;
}

/* 1 when path exists, 0 when it does not, or -SY_EIO (a directory we may not search). */
static int exists(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    return io_failed(err, errlen, "cannot stat", path, errno);
}

/* Creates <dir>/.tmp.<random> for writing, refusing to open a file that exists; its name goes
 * to tmp. */
static int open_temp(const char *dir, char tmp[PATH_MAX], int *fd_out, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < FILES_TMP_ATTEMPTS; attempt++) {
        uint8_t rnd[8];
        char rnd_hex[2 * sizeof rnd + 1];
        if (sy_random_bytes(rnd, sizeof rnd) < 0)
            return io_failed(err, errlen, "no random bytes for a temporary file in", dir, errno);
        sy_hex_encode(rnd, sizeof rnd, rnd_hex);
        int n = snprintf(tmp, PATH_MAX, "%s/" FILES_TMP_PREFIX "%s", dir, rnd_hex);
        if (n < 0 || n >= PATH_MAX) {
            sy_errf(err, errlen, "files: path too long");
            return -SY_EINVAL;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILES_FILE_MODE);
        if (fd >= 0) {
            *fd_out = fd;
            return 0;
        }
        if (errno != EEXIST)
            return io_failed(err, errlen, "cannot create", tmp, errno);
    }
    sy_errf(err, errlen, "files: no free temporary name in %s", dir);
    return -SY_EIO;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sets the file's mode, makes its bytes durable and closes it (*fd is -1 afterwards, whatever
 * happened). */
static int seal(int *fd, const char *tmp, char *err, size_t errlen)
{
    int rc = 0;
    if (fchmod(*fd, FILES_FILE_MODE) < 0)
        rc = io_failed(err, errlen, "cannot chmod", tmp, errno);
    else if (fsync(*fd) < 0)
        rc = io_failed(err, errlen, "cannot fsync", tmp, errno);
    /* Linux releases the descriptor even when close reports EINTR; only other errors (a
     * network filesystem's late write failure) mean the bytes may be lost. */
    if (close(*fd) < 0 && errno != EINTR && rc == 0)
        rc = io_failed(err, errlen, "cannot close", tmp, errno);
    *fd = -1;
    return rc;
}

static int sync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_failed(err, errlen, "cannot open directory", dir, errno);
    int rc = 0;
    /* A filesystem that cannot sync a directory says EINVAL: nothing more can be done there. */
    if (fsync(fd) < 0 && errno != EINVAL)
        rc = io_failed(err, errlen, "cannot fsync directory", dir, errno);
    close(fd);
    return rc;
}

/* Moves a sealed temporary file to its final name; once it is there, tmp no longer names
 * anything of ours. A rename over a file another writer put there meanwhile replaces it with
 * the same bytes. */
static int install(const char *tmp, bool *tmp_made, const char *final, const char *dir, char *err,
                   size_t errlen)
{
    if (rename(tmp, final) < 0)
        return io_failed(err, errlen, "cannot rename into", final, errno);
    *tmp_made = false;
    return sync_dir(dir, err, errlen);
}

int sy_files_path(const char *root, const char *hex, char *out, size_t outlen)
{
    if (!valid_root(root) || !valid_hex(hex) || (!out && outlen > 0))
        return -SY_EINVAL;
    int n = snprintf(out, outlen, "%s/%.2s/%.2s/%s", root, hex, hex + 2, hex);
    if (n < 0 || (size_t)n >= outlen)
        return -SY_ETOOBIG;
    return 0;
}

int sy_files_put(const char *root, const void *data, size_t len, char hex_out[SY_FILES_HEX_LEN + 1],
                 char *err, size_t errlen)
{
    if (!valid_root(root) || (!data && len > 0) || !hex_out) {
        sy_errf(err, errlen, "files: invalid argument");
        return -SY_EINVAL;
    }
    uint8_t digest[SY_SHA256_LEN];
    char hex[SY_FILES_HEX_LEN + 1];
    sy_sha256(data, len, digest);
    sy_hex_encode(digest, sizeof digest, hex);

    char final[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
    bool tmp_made = false;
    int fd = -1;
    int rc = locate(root, hex, final, dir, err, errlen);
    if (rc < 0)
        goto out;
    rc = exists(final, err, errlen);
    if (rc != 0)
        goto out; /* there already (1), or cannot tell (< 0) */
    rc = make_dirs_err(dir, err, errlen);
    if (rc < 0)
        goto out;
    rc = open_temp(dir, tmp, &fd, err, errlen);
    if (rc < 0)
        goto out;
    tmp_made = true;
    if (write_all(fd, data, len) < 0) {
        rc = io_failed(err, errlen, "cannot write", tmp, errno);
        goto out;
    }
    rc = seal(&fd, tmp, err, errlen);
    if (rc < 0)
        goto out;
    rc = install(tmp, &tmp_made, final, dir, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    if (rc < 0)
        return rc;
    memcpy(hex_out, hex, sizeof hex);
    return 0;
}

/* Decodes text into an open temporary file, hashing the bytes as they go. 0, -SY_EDECODE or
 * -SY_EIO. */
static int decode_into(int fd, const char *tmp, const char *b64, size_t b64_len, uint8_t *buf,
                       struct sy_sha256_ctx *sha, size_t *total, char *err, size_t errlen)
{
    for (size_t off = 0; off < b64_len;) {
        size_t n = b64_len - off < FILES_B64_CHUNK ? b64_len - off : FILES_B64_CHUNK;
        /* Padding ends the text: a chunk before the last may not end with it, although it
         * would decode on its own. */
        bool last = off + n == b64_len;
        size_t got = 0;
        if ((!last && b64[off + n - 1] == '=') ||
            sy_base64_decode(b64 + off, n, false, buf, &got) < 0) {
            sy_errf(err, errlen, "files: not padded base64 (in characters %zu to %zu)", off,
                    off + n);
            return -SY_EDECODE;
        }
        sy_sha256_update(sha, buf, got);
        if (write_all(fd, buf, got) < 0)
            return io_failed(err, errlen, "cannot write", tmp, errno);
        *total += got;
        off += n;
    }
    return 0;
}

int sy_files_put_base64(const char *root, const char *b64, size_t b64_len,
                        char hex_out[SY_FILES_HEX_LEN + 1], size_t *size_out, char *err,
                        size_t errlen)
{
    if (!valid_root(root) || (!b64 && b64_len > 0) || !hex_out) {
        sy_errf(err, errlen, "files: invalid argument");
        return -SY_EINVAL;
    }
    if (b64_len % 4 != 0) {
        sy_errf(err, errlen, "files: base64 of %zu characters, not a multiple of 4", b64_len);
        return -SY_EDECODE;
    }
    char incoming[PATH_MAX], tmp[PATH_MAX], final[PATH_MAX], dir[PATH_MAX];
    char hex[SY_FILES_HEX_LEN + 1];
    uint8_t digest[SY_SHA256_LEN];
    uint8_t *buf = NULL;
    bool tmp_made = false, hashing = false;
    struct sy_sha256_ctx sha;
    size_t total = 0;
    int fd = -1;
    int rc;

    int n = snprintf(incoming, sizeof incoming, "%s/" FILES_INCOMING, root);
    if (n < 0 || (size_t)n >= sizeof incoming) {
        sy_errf(err, errlen, "files: root path too long");
        rc = -SY_EINVAL;
        goto out;
    }
    buf = malloc(FILES_B64_CHUNK / 4 * 3);
    if (!buf) {
        sy_errf(err, errlen, "files: out of memory");
        rc = -SY_ENOMEM;
        goto out;
    }
    rc = make_dirs_err(incoming, err, errlen);
    if (rc < 0)
        goto out;
    rc = open_temp(incoming, tmp, &fd, err, errlen);
    if (rc < 0)
        goto out;
    tmp_made = true;
    sy_sha256_init(&sha);
    hashing = true;
    rc = decode_into(fd, tmp, b64, b64_len, buf, &sha, &total, err, errlen);
    if (rc < 0)
        goto out;
    sy_sha256_final(&sha, digest);
    hashing = false;
    sy_hex_encode(digest, sizeof digest, hex);
    rc = seal(&fd, tmp, err, errlen);
    if (rc < 0)
        goto out;
    rc = locate(root, hex, final, dir, err, errlen);
    if (rc < 0)
        goto out;
    rc = exists(final, err, errlen);
    if (rc != 0)
        goto out; /* there already: the temporary copy goes */
    rc = make_dirs_err(dir, err, errlen);
    if (rc < 0)
        goto out;
    rc = install(tmp, &tmp_made, final, dir, err, errlen);
out:
    if (hashing) {
        uint8_t unused[SY_SHA256_LEN];
        sy_sha256_final(&sha, unused);
    }
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    free(buf);
    if (rc < 0)
        return rc;
    memcpy(hex_out, hex, sizeof hex);
    if (size_out)
        *size_out = total;
    return 0;
}

int sy_files_get(const char *root, const char *hex, size_t max, void **data_out, size_t *len_out)
{
    if (!data_out || !len_out)
        return -SY_EINVAL;
    *data_out = NULL;
    *len_out = 0;
    char path[PATH_MAX];
    uint8_t want[SY_SHA256_LEN], got[SY_SHA256_LEN];
    int rc = sy_files_path(root, hex, path, sizeof path);
    if (rc < 0)
        return -SY_EINVAL; /* a bad name, or a root too long for any path */
    if (sy_hex_decode(hex, SY_FILES_HEX_LEN, want, sizeof want) < 0)
        return -SY_EINVAL;

    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? -SY_ENOTFOUND : -SY_EIO;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = -SY_EIO;
        goto out;
    }
    if ((uintmax_t)st.st_size > max) {
        rc = -SY_ETOOBIG;
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rc = -SY_ENOMEM;
        goto out;
    }
    size_t have = 0;
    while (have < size) {
        ssize_t n = read(fd, buf + have, size - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -SY_EIO;
            goto out;
        }
        if (n == 0)
            break; /* shorter than it was: the digest below tells */
        have += (size_t)n;
    }
    sy_sha256(buf, have, got);
    if (memcmp(got, want, sizeof got) != 0) {
        rc = -SY_EDECODE;
        goto out;
    }
    *data_out = buf;
    *len_out = have;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}
