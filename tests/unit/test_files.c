/* test_files.c - the content-addressed file store in a fresh temporary directory per test: the
 * layout, names and modes of what is stored, one file for bytes stored twice, base64 decoded in
 * chunks to the same file as the raw bytes, refused base64 leaving nothing behind, reads that
 * notice damage, and writers racing on the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/files.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HELLO_SHA256 "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"

struct fixture {
    char root[PATH_MAX];
};

/* path into out (PATH_MAX bytes), failing the test if it does not fit. */
static void __attribute__((format(printf, 2, 3))) path_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && n < PATH_MAX);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int make_root(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    int n = snprintf(fx->root, sizeof fx->root, "%s/sy-files.XXXXXX", tmpdir);
    if (n < 0 || (size_t)n >= sizeof fx->root || !mkdtemp(fx->root)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int remove_root(void **state)
{
    struct fixture *fx = *state;
    chmod(fx->root, 0700); /* the read-only test may have left it so */
    int rc = nftw(fx->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc;
}

/* What a walk of the root found. */
struct census {
    int files;      /* regular files outside .incoming */
    int temps;      /* entries named .tmp.* anywhere */
    int incoming;   /* entries inside .incoming */
    int other_dirs; /* directories besides the root and .incoming */
};

static struct census census_now;
static const char *census_root;

static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    const char *base = path + ftw->base;
    char incoming[PATH_MAX];
    path_fmt(incoming, "%s/.incoming", census_root);
    if (strncmp(base, ".tmp.", 5) == 0)
        census_now.temps++;
    if (strncmp(path, incoming, strlen(incoming)) == 0 && path[strlen(incoming)] == '/')
        census_now.incoming++;
    else if (S_ISREG(st->st_mode))
        census_now.files++;
    else if (S_ISDIR(st->st_mode) && ftw->level > 0 && strcmp(path, incoming) != 0)
        census_now.other_dirs++;
    return 0;
}

static struct census take_census(const char *root)
{
    memset(&census_now, 0, sizeof census_now);
    census_root = root;
    assert_int_equal(nftw(root, count_entry, 16, FTW_PHYS), 0);
    return census_now;
}

/* Nothing stored, no temporary file, no directory but an empty .incoming. */
static void assert_nothing_left(const char *root)
{
    struct census c = take_census(root);
    assert_int_equal(c.files, 0);
    assert_int_equal(c.temps, 0);
    assert_int_equal(c.incoming, 0);
    assert_int_equal(c.other_dirs, 0);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint8_t *pseudo_random(size_t len, uint64_t seed)
{
    uint8_t *data = malloc(len ? len : 1);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)next(&seed);
    return data;
}

static char *to_base64(const void *data, size_t len, size_t *b64_len)
{
    char *b64 = malloc(sy_base64_encoded_len(len) + 1);
    assert_non_null(b64);
    *b64_len = sy_base64_encode(data, len, false, b64);
    return b64;
}

static void put_stores_bytes_under_their_sha256_in_two_levels_of_directories(void **state)
{
    struct fixture *fx = *state;
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
    assert_int_equal(sy_files_put(fx->root, "hello world", 11, hex, err, sizeof err), 0);
    assert_string_equal(hex, HELLO_SHA256);

    char path[PATH_MAX], want[PATH_MAX];
    assert_int_equal(sy_files_path(fx->root, hex, path, sizeof path), 0);
    path_fmt(want, "%s/b9/4d/%s", fx->root, HELLO_SHA256);
    assert_string_equal(path, want);

    size_t len;
    uint8_t *got = read_whole(path, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(got, "hello world", 11);
    free(got);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    path_fmt(want, "%s/b9/4d", fx->root);
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    path_fmt(want, "%s/b9", fx->root);
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);

    struct census c = take_census(fx->root);
    assert_int_equal(c.files, 1);
    assert_int_equal(c.temps, 0);
}

static void put_of_the_same_bytes_twice_keeps_one_file_and_does_not_rewrite_it(void **state)
{
    struct fixture *fx = *state;
    char hex1[SY_FILES_HEX_LEN + 1], hex2[SY_FILES_HEX_LEN + 1], err[256] = "";
    assert_int_equal(sy_files_put(fx->root, "hello world", 11, hex1, err, sizeof err), 0);
    char path[PATH_MAX];
    assert_int_equal(sy_files_path(fx->root, hex1, path, sizeof path), 0);
    /* An old modification time, so that any rewrite would show whatever the clock's grain. */
    struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);

    assert_int_equal(sy_files_put(fx->root, "hello world", 11, hex2, err, sizeof err), 0);
    assert_string_equal(hex1, hex2);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mtim.tv_sec, 1000000000);
    assert_int_equal(after.st_mtim.tv_nsec, 0);

    /* The base64 path finds it too and leaves it alone. */
    size_t size = 99;
    assert_int_equal(
        sy_files_put_base64(fx->root, "aGVsbG8gd29ybGQ=", 16, hex2, &size, err, sizeof err), 0);
    assert_string_equal(hex1, hex2);
    assert_int_equal(size, 11);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mtim.tv_sec, 1000000000);

    struct census c = take_census(fx->root);
    assert_int_equal(c.files, 1);
    assert_int_equal(c.temps, 0);
    assert_int_equal(c.incoming, 0);
}

static void put_of_no_bytes_stores_the_empty_file(void **state)
{
    struct fixture *fx = *state;
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
    assert_int_equal(sy_files_put(fx->root, NULL, 0, hex, err, sizeof err), 0);
    assert_string_equal(hex, EMPTY_SHA256);
    char path[PATH_MAX];
    assert_int_equal(sy_files_path(fx->root, hex, path, sizeof path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);

    void *data = NULL;
    size_t len = 99;
    assert_int_equal(sy_files_get(fx->root, hex, 0, &data, &len), 0);
    assert_non_null(data);
    assert_int_equal(len, 0);
    free(data);

    size_t size = 99;
    assert_int_equal(sy_files_put_base64(fx->root, "", 0, hex, &size, err, sizeof err), 0);
    assert_string_equal(hex, EMPTY_SHA256);
    assert_int_equal(size, 0);
}

static void put_base64_stores_what_put_stores_for_the_decoded_bytes(void **state)
{
    struct fixture *fx = *state;
    /* 65,536 characters are decoded at a time, 49,152 bytes: sizes either side of one chunk,
     * of the text's 64 KiB, and many chunks with a ragged end. */
    static const size_t sizes[] = {0,     1,     2,     3,     4,     49151,   49152,        49153,
                                   65535, 65536, 65537, 98304, 98305, 1 << 20, (1 << 20) + 1};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t len = sizes[k];
        uint8_t *data = pseudo_random(len, 0x9e3779b97f4a7c15u + k);
        size_t b64_len;
        char *b64 = to_base64(data, len, &b64_len);
        char hex_b64[SY_FILES_HEX_LEN + 1], hex_raw[SY_FILES_HEX_LEN + 1], err[256] = "";
        size_t size = 0;
        assert_int_equal(
            sy_files_put_base64(fx->root, b64, b64_len, hex_b64, &size, err, sizeof err), 0);
        assert_int_equal(size, len);

        uint8_t digest[SY_SHA256_LEN];
        char want[SY_FILES_HEX_LEN + 1];
        sy_sha256(data, len, digest);
        sy_hex_encode(digest, sizeof digest, want);
        assert_string_equal(hex_b64, want);

        char path[PATH_MAX];
        assert_int_equal(sy_files_path(fx->root, hex_b64, path, sizeof path), 0);
        size_t got_len;
        uint8_t *got = read_whole(path, &got_len);
        assert_int_equal(got_len, len);
        if (len)
            assert_memory_equal(got, data, len);
        free(got);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);

        assert_int_equal(sy_files_put(fx->root, data, len, hex_raw, err, sizeof err), 0);
        assert_string_equal(hex_raw, hex_b64);
        free(b64);
        free(data);
    }
    /* A published vector: RFC 4648's "foobar". */
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
    size_t size = 0;
    assert_int_equal(sy_files_put_base64(fx->root, "Zm9vYmFy", 8, hex, &size, err, sizeof err), 0);
    assert_string_equal(hex, "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2");
    assert_int_equal(size, 6);

    struct census c = take_census(fx->root);
    assert_int_equal(c.files, (int)(sizeof sizes / sizeof sizes[0]) + 1);
    assert_int_equal(c.temps, 0);
    assert_int_equal(c.incoming, 0);
}

static void put_base64_refuses_bad_text_and_leaves_nothing_behind(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[] = {
        "Zm9v!mFy",          /* a character outside the alphabet */
        "Zm9vYmF",           /* 7 characters */
        "Zm9vYg=",           /* padded to 7 */
        "Zm9vY===",          /* three '=' */
        "Zm9=YmFy",          /* padding in the middle */
        "Zm9vYh==",          /* non-zero bits after the last byte */
        "Zm9\nYmFy",         /* whitespace */
        "Zm9vYmF ",  "-_-_", /* base64url's alphabet */
        "====",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
        size_t size = 77;
        assert_int_equal(
            sy_files_put_base64(fx->root, bad[k], strlen(bad[k]), hex, &size, err, sizeof err),
            -SY_EDECODE);
        assert_true(err[0] != '\0');
        assert_int_equal(size, 77);
        assert_nothing_left(fx->root);
    }

    /* Faults past the first chunk, after bytes were already written to a temporary file: a bad
     * character far in, and padding that ends the first chunk though more text follows (that
     * chunk alone would decode). */
    size_t len = (size_t)3 * 65536;
    uint8_t *data = pseudo_random(len, 42);
    size_t b64_len;
    char *b64 = to_base64(data, len, &b64_len);
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
    b64[150001] = '*';
    assert_int_equal(sy_files_put_base64(fx->root, b64, b64_len, hex, NULL, err, sizeof err),
                     -SY_EDECODE);
    assert_nothing_left(fx->root);

    free(b64);
    b64 = to_base64(data, len, &b64_len);
    memcpy(b64 + 65536 - 4, "QQ==", 4);
    assert_int_equal(sy_files_put_base64(fx->root, b64, b64_len, hex, NULL, err, sizeof err),
                     -SY_EDECODE);
    assert_nothing_left(fx->root);
    free(b64);
    free(data);
}

static void get_returns_what_put_stored(void **state)
{
    struct fixture *fx = *state;
    size_t len = 300000;
    uint8_t *data = pseudo_random(len, 7);
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
    assert_int_equal(sy_files_put(fx->root, data, len, hex, err, sizeof err), 0);
    void *got = NULL;
    size_t got_len = 0;
    assert_int_equal(sy_files_get(fx->root, hex, len, &got, &got_len), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
    free(data);
}

static void get_of_a_damaged_file_is_refused(void **state)
{
    struct fixture *fx = *state;
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "", path[PATH_MAX];
    assert_int_equal(sy_files_put(fx->root, "hello world", 11, hex, err, sizeof err), 0);
    assert_int_equal(sy_files_path(fx->root, hex, path, sizeof path), 0);

    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "H", 1, 0), 1);
    close(fd);
    void *got = (void *)1;
    size_t got_len = 5;
    assert_int_equal(sy_files_get(fx->root, hex, 1024, &got, &got_len), -SY_EDECODE);
    assert_null(got);
    assert_int_equal(got_len, 0);

    /* Cut short. */
    assert_int_equal(truncate(path, 5), 0);
    assert_int_equal(sy_files_get(fx->root, hex, 1024, &got, &got_len), -SY_EDECODE);
    assert_null(got);
}

static void get_refuses_a_file_larger_than_max(void **state)
{
    struct fixture *fx = *state;
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
    assert_int_equal(sy_files_put(fx->root, "hello world", 11, hex, err, sizeof err), 0);
    void *got = NULL;
    size_t got_len = 0;
    assert_int_equal(sy_files_get(fx->root, hex, 10, &got, &got_len), -SY_ETOOBIG);
    assert_null(got);
    assert_int_equal(sy_files_get(fx->root, hex, 11, &got, &got_len), 0);
    assert_int_equal(got_len, 11);
    free(got);
}

static void get_of_a_name_never_stored_is_not_found(void **state)
{
    struct fixture *fx = *state;
    void *got = NULL;
    size_t got_len = 0;
    assert_int_equal(sy_files_get(fx->root, HELLO_SHA256, 1024, &got, &got_len), -SY_ENOTFOUND);
    assert_null(got);
    char missing[PATH_MAX];
    path_fmt(missing, "%s/absent", fx->root);
    assert_int_equal(sy_files_get(missing, HELLO_SHA256, 1024, &got, &got_len), -SY_ENOTFOUND);
}

static void names_other_than_64_lower_case_hex_digits_are_refused(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[] = {
        "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9",
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde",
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde90",
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcdeg",
        "../../../../../../../../../../../../../../../../../../etc/passwd",
        "",
    };
    char path[PATH_MAX];
    void *got = NULL;
    size_t got_len = 0;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(sy_files_path(fx->root, bad[k], path, sizeof path), -SY_EINVAL);
        assert_int_equal(sy_files_get(fx->root, bad[k], 1024, &got, &got_len), -SY_EINVAL);
    }
    assert_int_equal(sy_files_path(fx->root, NULL, path, sizeof path), -SY_EINVAL);

    /* The path is exactly as long as it says; one byte less is too small. */
    char small[8];
    assert_int_equal(sy_files_path("/r", HELLO_SHA256, small, sizeof small), -SY_ETOOBIG);
    size_t need = strlen("/r/b9/4d/") + SY_FILES_HEX_LEN + 1;
    char *exact = malloc(need);
    assert_non_null(exact);
    assert_int_equal(sy_files_path("/r", HELLO_SHA256, exact, need), 0);
    assert_string_equal(exact, "/r/b9/4d/" HELLO_SHA256);
    assert_int_equal(sy_files_path("/r", HELLO_SHA256, exact, need - 1), -SY_ETOOBIG);
    free(exact);
}

static void a_missing_or_empty_root_is_refused(void **state)
{
    (void)state;
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "", path[PATH_MAX];
    size_t size = 0;
    void *got = NULL;
    size_t got_len = 0;
    static const char *const roots[] = {NULL, ""};
    for (size_t k = 0; k < 2; k++) {
        const char *root = roots[k];
        assert_int_equal(sy_files_put(root, "x", 1, hex, err, sizeof err), -SY_EINVAL);
        assert_int_equal(sy_files_put_base64(root, "eA==", 4, hex, &size, err, sizeof err),
                         -SY_EINVAL);
        assert_int_equal(sy_files_path(root, HELLO_SHA256, path, sizeof path), -SY_EINVAL);
        assert_int_equal(sy_files_get(root, HELLO_SHA256, 1024, &got, &got_len), -SY_EINVAL);
    }
}

static void a_read_only_root_fails_with_io_error_and_its_reason(void **state)
{
    struct fixture *fx = *state;
    if (geteuid() == 0)
        skip(); /* root writes whatever the mode says */
    assert_int_equal(chmod(fx->root, 0500), 0);
    char hex[SY_FILES_HEX_LEN + 1], err[256] = "";
    assert_int_equal(sy_files_put(fx->root, "hello world", 11, hex, err, sizeof err), -SY_EIO);
    assert_non_null(strstr(err, strerror(EACCES)));
    err[0] = '\0';
    size_t size = 0;
    assert_int_equal(
        sy_files_put_base64(fx->root, "aGVsbG8gd29ybGQ=", 16, hex, &size, err, sizeof err),
        -SY_EIO);
    assert_non_null(strstr(err, strerror(EACCES)));
    assert_int_equal(chmod(fx->root, 0700), 0);
    assert_nothing_left(fx->root);
}

#define RACERS 4

struct racer {
    pthread_barrier_t *start;
    const char *root;
    const uint8_t *data;
    size_t len;
    const char *b64; /* store through put_base64 when set */
    size_t b64_len;
    int rc;
    char hex[SY_FILES_HEX_LEN + 1];
    char err[256];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    size_t size = 0;
    if (r->b64)
        r->rc =
            sy_files_put_base64(r->root, r->b64, r->b64_len, r->hex, &size, r->err, sizeof r->err);
    else
        r->rc = sy_files_put(r->root, r->data, r->len, r->hex, r->err, sizeof r->err);
    if (r->b64 && r->rc == 0 && size != r->len)
        r->rc = -SY_EINTERNAL;
    return NULL;
}

static void writers_racing_on_the_same_bytes_all_succeed_with_one_file(void **state)
{
    struct fixture *fx = *state;
    size_t len = 1 << 20;
    uint8_t *data = pseudo_random(len, 1234);
    size_t b64_len;
    char *b64 = to_base64(data, len, &b64_len);
    uint8_t digest[SY_SHA256_LEN];
    char want[SY_FILES_HEX_LEN + 1];
    sy_sha256(data, len, digest);
    sy_hex_encode(digest, sizeof digest, want);

    /* Each round in a root of its own that does not exist yet, so the racers also race to
     * create the directories: raw bytes, then base64. */
    for (int round = 0; round < 2; round++) {
        char root[PATH_MAX];
        path_fmt(root, "%s/round%d", fx->root, round);
        pthread_barrier_t start;
        assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
        struct racer racers[RACERS];
        pthread_t threads[RACERS];
        for (int i = 0; i < RACERS; i++) {
            racers[i] = (struct racer){.start = &start,
                                       .root = root,
                                       .data = data,
                                       .len = len,
                                       .b64 = round ? b64 : NULL,
                                       .b64_len = b64_len};
            assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
        }
        for (int i = 0; i < RACERS; i++)
            assert_int_equal(pthread_join(threads[i], NULL), 0);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < RACERS; i++) {
            if (racers[i].rc != 0)
                fail_msg("racer %d: %d %s", i, racers[i].rc, racers[i].err);
            assert_string_equal(racers[i].hex, want);
        }
        struct census c = take_census(root);
        assert_int_equal(c.files, 1);
        assert_int_equal(c.temps, 0);
        assert_int_equal(c.incoming, 0);

        void *got = NULL;
        size_t got_len = 0;
        assert_int_equal(sy_files_get(root, want, len, &got, &got_len), 0);
        assert_int_equal(got_len, len);
        free(got);
    }
    free(b64);
    free(data);
}

#define T(f) cmocka_unit_test_setup_teardown(f, make_root, remove_root)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(put_stores_bytes_under_their_sha256_in_two_levels_of_directories),
        T(put_of_the_same_bytes_twice_keeps_one_file_and_does_not_rewrite_it),
        T(put_of_no_bytes_stores_the_empty_file),
        T(put_base64_stores_what_put_stores_for_the_decoded_bytes),
        T(put_base64_refuses_bad_text_and_leaves_nothing_behind),
        T(get_returns_what_put_stored),
        T(get_of_a_damaged_file_is_refused),
        T(get_refuses_a_file_larger_than_max),
        T(get_of_a_name_never_stored_is_not_found),
        T(names_other_than_64_lower_case_hex_digits_are_refused),
        T(a_missing_or_empty_root_is_refused),
        T(a_read_only_root_fails_with_io_error_and_its_reason),
        T(writers_racing_on_the_same_bytes_all_succeed_with_one_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
