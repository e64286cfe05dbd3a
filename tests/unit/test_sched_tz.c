/* test_sched_tz.c - time zones from TZif files and POSIX TZ rules: known offsets and changes,
 * the table/rule boundary, malformed files, and agreement with the C library's localtime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/tz.h"
#include "sched_test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

/* ---- building TZif bytes ------------------------------------------------------------- */

struct tzif_spec {
    char version; /* 0 for version 1, else '2', '3', '4' */
    const int64_t *at;
    const uint8_t *idx;
    size_t n;
    const int32_t *utoff;
    const uint8_t *isdst;
    size_t ntypes;
    const char *footer; /* v2+: the TZ string between the newlines */
};

struct buf {
    uint8_t b[8192];
    size_t len;
};

static void put8(struct buf *b, uint8_t v)
{
    assert_true(b->len < sizeof(b->b));
    b->b[b->len++] = v;
}

static void put32(struct buf *b, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        put8(b, (uint8_t)(v >> (8 * i)));
}

static void put64(struct buf *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

/* Header and data block; with 4-byte times only transitions that fit are written. */
static void put_block(struct buf *b, const struct tzif_spec *s, unsigned tsize)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n; i++)
        n += tsize == 8 || (s->at[i] >= INT32_MIN && s->at[i] <= INT32_MAX);
    memcpy(b->b + b->len, "TZif", 4);
    b->len += 4;
    put8(b, (uint8_t)s->version);
    for (int i = 0; i < 15; i++)
        put8(b, 0);
    put32(b, 0);                   /* isutcnt */
    put32(b, 0);                   /* isstdcnt */
    put32(b, 0);                   /* leapcnt */
    put32(b, (uint32_t)n);         /* timecnt */
    put32(b, (uint32_t)s->ntypes); /* typecnt */
    put32(b, 4);                   /* charcnt */
    for (size_t i = 0; i < s->n; i++) {
        if (tsize == 8)
            put64(b, (uint64_t)s->at[i]);
        else if (s->at[i] >= INT32_MIN && s->at[i] <= INT32_MAX)
            put32(b, (uint32_t)(int32_t)s->at[i]);
    }
    for (size_t i = 0; i < s->n; i++) {
        if (tsize == 8 || (s->at[i] >= INT32_MIN && s->at[i] <= INT32_MAX))
            put8(b, s->idx[i]);
    }
    for (size_t i = 0; i < s->ntypes; i++) {
        put32(b, (uint32_t)s->utoff[i]);
        put8(b, s->isdst ? s->isdst[i] : 0);
        put8(b, 0);
    }
    for (int i = 0; i < 4; i++)
        put8(b, (uint8_t) "ZZZ"[i]); /* one abbreviation and its NUL */
}

static void make_tzif(struct buf *b, const struct tzif_spec *s)
{
    b->len = 0;
    put_block(b, s, 4);
    if (s->version == 0)
        return;
    put_block(b, s, 8);
    put8(b, '\n');
    for (const char *p = s->footer ? s->footer : ""; *p; p++)
        put8(b, (uint8_t)*p);
    put8(b, '\n');
}

static struct sched_tz *load_spec(const struct tzif_spec *s, char *err, size_t errlen)
{
    struct buf b;

    make_tzif(&b, s);
    return sched_tz_load_mem("Test/Zone", b.b, b.len, err, errlen);
}

/* A zone that is only a POSIX TZ rule: a v2 file without transitions. */
static struct sched_tz *rule_zone(const char *rule)
{
    static const int32_t utoff[] = {0};
    struct tzif_spec s = {.version = '2', .utoff = utoff, .ntypes = 1, .footer = rule};
    char err[256] = "";
    struct sched_tz *tz = load_spec(&s, err, sizeof(err));

    if (!tz)
        fail_msg("%s: %s", rule, err);
    return tz;
}

/* ---- the C library's answer, for cross-checks only ----------------------------------- */

/* The offset glibc gives at t with TZ set to `tzval` (a zone name or a POSIX rule). This test
 * is single-threaded, so changing TZ here is safe; the code under test never reads it. */
static char libc_current[512];

static long libc_offset(const char *tzval, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (strcmp(libc_current, tzval) != 0) {
        snprintf(libc_current, sizeof(libc_current), "%s", tzval);
        setenv("TZ", tzval, 1);
        tzset();
    }
    assert_non_null(localtime_r(&tt, &tm));
    return tm.tm_gmtoff;
}

/* Walks every change of tz from 1970 to 2100 and checks glibc sees the same offsets on both
 * sides of it and halfway to the next one. */
static void walk_changes(const struct sched_tz *tz, const char *tzval)
{
    const int64_t end = utc(2100, 1, 1, 0, 0, 0);
    int64_t t = 0;
    int steps = 0;

    while (t < end) {
        int64_t n = sched_tz_next_change(tz, t);
        int32_t off = sched_tz_offset(tz, t);

        assert_true(n > t);
        if (libc_offset(tzval, t + (n < end ? n - t : end - t) / 2) != off)
            fail_msg("%s between %lld and %lld: %d, libc %ld", tzval, (long long)t, (long long)n,
                     off, libc_offset(tzval, t + (n - t) / 2));
        if (n >= end)
            break;
        if (libc_offset(tzval, n - 1) != off || libc_offset(tzval, n) != sched_tz_offset(tz, n))
            fail_msg("%s: change at %lld: %d -> %d, libc %ld -> %ld", tzval, (long long)n, off,
                     sched_tz_offset(tz, n), libc_offset(tzval, n - 1), libc_offset(tzval, n));
        assert_int_not_equal(sched_tz_offset(tz, n), off);
        t = n;
        assert_true(++steps < 10000);
    }
}

static void restore_tz(void)
{
    libc_current[0] = '\0';
    unsetenv("TZ");
    tzset();
}

/* ---- tests --------------------------------------------------------------------------- */

static void utc_works_without_any_file(void **state)
{
    const char *names[] = {"UTC", "Etc/UTC"};
    char *saved = getenv("TZDIR") ? strdup(getenv("TZDIR")) : NULL;

    setenv("TZDIR", "no-such-zone-directory", 1);
    for (size_t i = 0; i < 2; i++) {
        char err[256] = "";
        struct sched_tz *tz = sched_tz_load(names[i], err, sizeof(err));

        assert_non_null(tz);
        assert_string_equal(sched_tz_name(tz), names[i]);
        assert_int_equal(sched_tz_offset(tz, 0), 0);
        assert_int_equal(sched_tz_offset(tz, utc(2024, 7, 1, 12, 0, 0)), 0);
        assert_int_equal(sched_tz_offset(tz, INT64_MIN), 0);
        assert_true(sched_tz_next_change(tz, 0) == INT64_MAX);
        assert_true(sched_tz_next_change(tz, INT64_MIN) == INT64_MAX);
        sched_tz_destroy(tz);
    }
    /* Other zones really are looked up in $TZDIR. */
    {
        char err[256] = "";

        assert_null(sched_tz_load("Europe/Berlin", err, sizeof(err)));
        assert_non_null(strstr(err, "unknown time zone 'Europe/Berlin'"));
    }
    if (saved)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
    sched_tz_destroy(NULL);
}

static void bad_names_are_refused_before_any_file_is_opened(void **state)
{
    char longname[400];
    const char *bad[] = {"",
                         "/etc/localtime",
                         "../zoneinfo/UTC",
                         "Europe/../UTC",
                         "Europe/Berlin\n",
                         "Europe Berlin",
                         "Europe/Berlin.bak",
                         "Asia/K*",
                         longname};

    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";

        assert_null(sched_tz_load(bad[i], err, sizeof(err)));
        assert_non_null(strstr(err, "not a zone name"));
    }
    {
        char err[256] = "";

        assert_null(sched_tz_load(NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "not a zone name"));
    }
}

static void missing_zones_and_directories_are_unknown(void **state)
{
    char err[256] = "";

    assert_null(sched_tz_load("Mars/Olympus_Mons", err, sizeof(err)));
    assert_non_null(strstr(err, "unknown time zone 'Mars/Olympus_Mons'"));
    if (have_zone("Europe")) {
        assert_null(sched_tz_load("Europe", err, sizeof(err)));
        assert_non_null(strstr(err, "unknown time zone 'Europe'"));
    }
}

static void tzdir_is_honoured(void **state)
{
    static const int32_t utoff[] = {3600};
    struct tzif_spec s = {.version = '2', .utoff = utoff, .ntypes = 1, .footer = "<+01>-1"};
    const char *base = getenv("SY_BUILD_DIR");
    char dir[1024], sub[1100], path[1200], err[256] = "";
    char *saved = getenv("TZDIR") ? strdup(getenv("TZDIR")) : NULL;
    struct sched_tz *tz;
    struct buf b;
    FILE *f;

    if (!base)
        base = getenv("TMPDIR");
    if (!base)
        skip();
    snprintf(dir, sizeof(dir), "%s/tzdir-XXXXXX", base);
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/Test", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/Plus_One", sub);
    make_tzif(&b, &s);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.b, 1, b.len, f), b.len);
    fclose(f);

    setenv("TZDIR", dir, 1);
    tz = sched_tz_load("Test/Plus_One", err, sizeof(err));
    assert_non_null(tz);
    assert_int_equal(sched_tz_offset(tz, utc(2030, 1, 1, 0, 0, 0)), 3600);
    sched_tz_destroy(tz);

    /* A file over the size limit is refused by size, not read. */
    f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 300; i++) {
        static const char kib[1024];
        assert_int_equal(fwrite(kib, 1, sizeof(kib), f), sizeof(kib));
    }
    fclose(f);
    assert_null(sched_tz_load("Test/Plus_One", err, sizeof(err)));
    assert_non_null(strstr(err, "larger than 256 KiB"));

    if (saved)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

static void new_york_offsets_flip_at_the_documented_instants(void **state)
{
    struct sched_tz *tz;

    if (!have_zone("America/New_York"))
        skip();
    tz = load_zone("America/New_York");
    assert_string_equal(sched_tz_name(tz), "America/New_York");
    assert_int_equal(sched_tz_offset(tz, utc(2024, 3, 10, 7, 0, 0)), -4 * 3600);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 3, 10, 6, 59, 59)), -5 * 3600);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 11, 3, 5, 59, 59)), -4 * 3600);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 11, 3, 6, 0, 0)), -5 * 3600);
    assert_true(sched_tz_next_change(tz, utc(2024, 1, 1, 0, 0, 0)) == utc(2024, 3, 10, 7, 0, 0));
    assert_true(sched_tz_next_change(tz, utc(2024, 3, 10, 6, 59, 59)) == utc(2024, 3, 10, 7, 0, 0));
    assert_true(sched_tz_next_change(tz, utc(2024, 3, 10, 7, 0, 0)) == utc(2024, 11, 3, 6, 0, 0));
    sched_tz_destroy(tz);
}

static void fixed_zones_report_their_offset_and_no_more_changes(void **state)
{
    struct sched_tz *tz;

    if (!have_zone("Asia/Kolkata") || !have_zone("America/Sao_Paulo"))
        skip();
    tz = load_zone("Asia/Kolkata");
    assert_int_equal(sched_tz_offset(tz, utc(2024, 6, 1, 0, 0, 0)), 19800);
    assert_int_equal(sched_tz_offset(tz, utc(2090, 1, 1, 0, 0, 0)), 19800);
    assert_true(sched_tz_next_change(tz, utc(2000, 1, 1, 0, 0, 0)) == INT64_MAX);
    sched_tz_destroy(tz);

    /* Brazil dropped DST in 2019: -02 in the summer of 2018, -03 ever after. */
    tz = load_zone("America/Sao_Paulo");
    assert_int_equal(sched_tz_offset(tz, utc(2018, 1, 15, 12, 0, 0)), -2 * 3600);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 1, 15, 12, 0, 0)), -3 * 3600);
    assert_true(sched_tz_next_change(tz, utc(2019, 6, 1, 0, 0, 0)) == INT64_MAX);
    sched_tz_destroy(tz);
}

static void lord_howe_moves_by_half_an_hour(void **state)
{
    struct sched_tz *tz;

    if (!have_zone("Australia/Lord_Howe"))
        skip();
    tz = load_zone("Australia/Lord_Howe");
    assert_int_equal(sched_tz_offset(tz, utc(2024, 10, 5, 15, 29, 59)), 37800);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 10, 5, 15, 30, 0)), 39600);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 4, 6, 14, 59, 59)), 39600);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 4, 6, 15, 0, 0)), 37800);
    assert_true(sched_tz_next_change(tz, utc(2024, 5, 1, 0, 0, 0)) == utc(2024, 10, 5, 15, 30, 0));
    sched_tz_destroy(tz);
}

/* Debian's files list transitions to 2037 and leave the rest to the footer rule: the change
 * after the last listed one comes from the rule, and so do offsets decades later. */
static void berlin_continues_past_its_table_through_the_footer_rule(void **state)
{
    struct sched_tz *tz;
    int64_t t;

    if (!have_zone("Europe/Berlin"))
        skip();
    tz = load_zone("Europe/Berlin");
    t = sched_tz_next_change(tz, utc(2037, 6, 1, 0, 0, 0));
    assert_true(t == utc(2037, 10, 25, 1, 0, 0));
    t = sched_tz_next_change(tz, t);
    assert_true(t == utc(2038, 3, 28, 1, 0, 0));
    assert_int_equal(sched_tz_offset(tz, t - 1), 3600);
    assert_int_equal(sched_tz_offset(tz, t), 7200);
    assert_int_equal(sched_tz_offset(tz, utc(2040, 3, 25, 0, 59, 59)), 3600);
    assert_int_equal(sched_tz_offset(tz, utc(2040, 3, 25, 1, 0, 0)), 7200);
    assert_int_equal(sched_tz_offset(tz, utc(2040, 10, 28, 0, 59, 59)), 7200);
    assert_int_equal(sched_tz_offset(tz, utc(2040, 10, 28, 1, 0, 0)), 3600);
    assert_true(sched_tz_next_change(tz, utc(2040, 1, 1, 0, 0, 0)) == utc(2040, 3, 25, 1, 0, 0));
    /* Far out, the rule still holds (the calendar repeats every 400 years). */
    assert_int_equal(sched_tz_offset(tz, utc(2424, 7, 1, 0, 0, 0)), 7200);
    assert_int_equal(sched_tz_offset(tz, utc(2424, 1, 1, 0, 0, 0)), 3600);
    t = sched_tz_next_change(tz, INT64_MAX - 1000);
    assert_true(t == INT64_MAX);
    sched_tz_destroy(tz);
}

/* A slim-style file: the table ends in 2007 and the rule carries on. Offsets and changes on
 * both sides of the boundary, and a boundary where the rule's offset differs from the table's
 * last one. */
static void table_and_rule_meet_without_a_seam(void **state)
{
    static const int32_t utoff[] = {-18000, -14400};
    static const uint8_t isdst[] = {0, 1};
    int64_t at[] = {utc(2006, 4, 2, 7, 0, 0), utc(2006, 10, 29, 6, 0, 0),
                    utc(2007, 3, 11, 7, 0, 0)};
    static const uint8_t idx[] = {1, 0, 1};
    struct tzif_spec s = {.version = '2',
                          .at = at,
                          .idx = idx,
                          .n = 3,
                          .utoff = utoff,
                          .isdst = isdst,
                          .ntypes = 2,
                          .footer = "EST5EDT,M3.2.0,M11.1.0"};
    char err[256] = "";
    struct sched_tz *tz = load_spec(&s, err, sizeof(err));

    assert_non_null(tz);
    assert_int_equal(sched_tz_offset(tz, utc(2006, 1, 1, 0, 0, 0)), -18000);
    assert_int_equal(sched_tz_offset(tz, utc(2006, 7, 1, 0, 0, 0)), -14400);
    assert_true(sched_tz_next_change(tz, utc(2006, 11, 1, 0, 0, 0)) == at[2]);
    assert_true(sched_tz_next_change(tz, at[2] - 1) == at[2]);
    assert_true(sched_tz_next_change(tz, at[2]) == utc(2007, 11, 4, 6, 0, 0));
    assert_int_equal(sched_tz_offset(tz, utc(2007, 11, 4, 5, 59, 59)), -14400);
    assert_int_equal(sched_tz_offset(tz, utc(2007, 11, 4, 6, 0, 0)), -18000);
    assert_int_equal(sched_tz_offset(tz, utc(2030, 7, 1, 0, 0, 0)), -14400);
    sched_tz_destroy(tz);

    /* The last transition is to standard time but the rule says DST then: from the last
     * transition on, the rule decides, and the change is reported at the boundary. */
    {
        static const uint8_t idx2[] = {1, 0, 0};
        int64_t at2[] = {at[0], at[1], utc(2007, 6, 1, 0, 0, 0)};

        s.at = at2;
        s.idx = idx2;
        tz = load_spec(&s, err, sizeof(err));
        assert_non_null(tz);
        assert_int_equal(sched_tz_offset(tz, at2[2] - 1), -18000);
        assert_int_equal(sched_tz_offset(tz, at2[2]), -14400);
        assert_true(sched_tz_next_change(tz, at[1]) == at2[2]);
        sched_tz_destroy(tz);
    }
}

static void version_1_files_use_their_32_bit_data_and_keep_the_last_type(void **state)
{
    static const int32_t utoff[] = {3600, 7200, 10800};
    int64_t at[] = {utc(1990, 1, 1, 0, 0, 0), utc(2000, 1, 1, 0, 0, 0)};
    static const uint8_t idx[] = {1, 2};
    struct tzif_spec s = {.version = 0, .at = at, .idx = idx, .n = 2, .utoff = utoff, .ntypes = 3};
    char err[256] = "";
    struct sched_tz *tz = load_spec(&s, err, sizeof(err));

    assert_non_null(tz);
    assert_int_equal(sched_tz_offset(tz, utc(1980, 1, 1, 0, 0, 0)), 3600);
    assert_int_equal(sched_tz_offset(tz, utc(1995, 1, 1, 0, 0, 0)), 7200);
    assert_int_equal(sched_tz_offset(tz, utc(2100, 1, 1, 0, 0, 0)), 10800);
    assert_true(sched_tz_next_change(tz, at[1]) == INT64_MAX);
    sched_tz_destroy(tz);
}

/* A v2 reader must take the 64-bit block: this transition in 1850 does not fit the v1 one. */
static void version_2_files_use_their_64_bit_data(void **state)
{
    static const int32_t utoff[] = {3208, 3600};
    int64_t at[] = {utc(1850, 4, 1, 0, 0, 0)};
    static const uint8_t idx[] = {1};
    const char versions[] = {'2', '3', '4'};

    for (size_t i = 0; i < sizeof(versions); i++) {
        struct tzif_spec s = {.version = versions[i],
                              .at = at,
                              .idx = idx,
                              .n = 1,
                              .utoff = utoff,
                              .ntypes = 2,
                              .footer = "CET-1"};
        char err[256] = "";
        struct sched_tz *tz = load_spec(&s, err, sizeof(err));

        assert_non_null(tz);
        assert_int_equal(sched_tz_offset(tz, utc(1850, 3, 31, 0, 0, 0)), 3208);
        assert_int_equal(sched_tz_offset(tz, utc(1851, 1, 1, 0, 0, 0)), 3600);
        assert_true(sched_tz_next_change(tz, INT64_MIN) == at[0]);
        assert_true(sched_tz_next_change(tz, at[0]) == INT64_MAX);
        sched_tz_destroy(tz);
    }
}

/* Transitions that change only the abbreviation or the DST flag are not changes of offset. */
static void transitions_that_keep_the_offset_are_not_changes(void **state)
{
    static const int32_t utoff[] = {3600, 3600, 7200};
    static const uint8_t isdst[] = {0, 1, 1};
    int64_t at[] = {utc(2001, 1, 1, 0, 0, 0), utc(2002, 1, 1, 0, 0, 0)};
    static const uint8_t idx[] = {1, 2};
    struct tzif_spec s = {.version = '2',
                          .at = at,
                          .idx = idx,
                          .n = 2,
                          .utoff = utoff,
                          .isdst = isdst,
                          .ntypes = 3,
                          .footer = "<+02>-2"};
    char err[256] = "";
    struct sched_tz *tz = load_spec(&s, err, sizeof(err));

    assert_non_null(tz);
    assert_true(sched_tz_next_change(tz, utc(2000, 1, 1, 0, 0, 0)) == at[1]);
    assert_true(sched_tz_next_change(tz, at[1]) == INT64_MAX);
    sched_tz_destroy(tz);
}

/* Footer rules in every form the RFC allows, against glibc reading the same rule from TZ.
 * Each rule stands alone (a file with no transitions), so the rule decides everywhere. */
static void posix_rules_agree_with_the_c_library(void **state)
{
    static const char *const rules[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "EST5EDT,M3.2.0,M11.1.0",
        "<+0530>-5:30",
        "<-03>3",
        "IST-5:30",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        "NZST-12NZDT,M9.5.0,M4.1.0/3",
        "AAA3BBB,J60/2,J300/2",
        "AAA3BBB,59/2,299/2",
        "AAA-2BBB-3,J2/0,J364/23:59:59",
        "<-01>1<+00>,M3.5.0/0,M10.5.0/1",
        "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
        "XXX+3:15:30YYY+2,M4.1.0/-1,M10.5.0/26",
        "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
        "AAA-1BBB,M3.5.0/167,M10.1.0/-167",
    };

    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        struct sched_tz *tz = rule_zone(rules[r]);

        for (int i = 0; i < 600; i++) {
            int64_t t = (int64_t)(rnd() % (uint64_t)utc(2100, 1, 1, 0, 0, 0));

            if (sched_tz_offset(tz, t) != libc_offset(rules[r], t))
                fail_msg("%s at %lld: %d, libc %ld", rules[r], (long long)t, sched_tz_offset(tz, t),
                         libc_offset(rules[r], t));
        }
        walk_changes(tz, rules[r]);
        sched_tz_destroy(tz);
    }
    restore_tz();
}

/* DST without a rule follows the US rule, as tzcode and glibc assume. */
static void dst_without_a_rule_follows_the_us_rule(void **state)
{
    struct sched_tz *tz = rule_zone("EST5EDT");

    assert_int_equal(sched_tz_offset(tz, utc(2024, 3, 10, 6, 59, 59)), -18000);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 3, 10, 7, 0, 0)), -14400);
    assert_true(sched_tz_next_change(tz, utc(2024, 3, 10, 7, 0, 0)) == utc(2024, 11, 3, 6, 0, 0));
    sched_tz_destroy(tz);
}

/* DST all year (RFC 8536 3.3.1's example) is one offset with no changes at all. */
static void dst_all_year_never_changes(void **state)
{
    struct sched_tz *tz = rule_zone("EST5EDT,0/0,J365/25");

    assert_int_equal(sched_tz_offset(tz, utc(2024, 1, 1, 4, 0, 0)), -14400);
    assert_int_equal(sched_tz_offset(tz, utc(2024, 12, 31, 23, 0, 0)), -14400);
    assert_int_equal(sched_tz_offset(tz, utc(2025, 1, 1, 5, 0, 0)), -14400);
    assert_int_equal(sched_tz_offset(tz, utc(2025, 7, 1, 0, 0, 0)), -14400);
    assert_true(sched_tz_next_change(tz, utc(2024, 6, 1, 0, 0, 0)) == INT64_MAX);
    sched_tz_destroy(tz);
}

/* A change belongs to the instant it happens at, even when that falls in another UTC year
 * than the rule's year (glibc and Python look at one UTC year only and miss it; tzcode and
 * RFC 8536's "DST all year" example need it). Here 1971's DST starts on 1970-12-31 at 22:00
 * UTC, an hour after 1970's ended. */
static void changes_near_new_year_happen_where_they_fall(void **state)
{
    struct sched_tz *tz = rule_zone("AAA-2BBB-3,J1/0,J365/23:59:59");

    assert_int_equal(sched_tz_offset(tz, utc(1970, 12, 31, 20, 59, 58)), 10800);
    assert_int_equal(sched_tz_offset(tz, utc(1970, 12, 31, 20, 59, 59)), 7200);
    assert_int_equal(sched_tz_offset(tz, utc(1970, 12, 31, 21, 30, 0)), 7200);
    assert_int_equal(sched_tz_offset(tz, utc(1970, 12, 31, 22, 0, 0)), 10800);
    assert_true(sched_tz_next_change(tz, utc(1970, 12, 31, 20, 59, 59)) ==
                utc(1970, 12, 31, 22, 0, 0));
    sched_tz_destroy(tz);
}

/* The southern hemisphere's DST spans the new year; changes keep their order. */
static void southern_rules_change_in_order(void **state)
{
    struct sched_tz *tz = rule_zone("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
    int64_t t = utc(2030, 1, 1, 0, 0, 0), prev = t;

    for (int i = 0; i < 20; i++) {
        int64_t n = sched_tz_next_change(tz, t);

        assert_true(n > prev);
        assert_true(n - prev < 366 * 86400);
        assert_int_not_equal(sched_tz_offset(tz, n), sched_tz_offset(tz, n - 1));
        assert_int_equal(sched_tz_offset(tz, n - 1), sched_tz_offset(tz, t));
        prev = t = n;
    }
    sched_tz_destroy(tz);
}

static void expect_refused(const uint8_t *data, size_t len, const char *why)
{
    char err[256] = "";

    if (sched_tz_load_mem("Test/Zone", data, len, err, sizeof(err)))
        fail_msg("accepted, expected '%s'", why);
    if (!strstr(err, why))
        fail_msg("error '%s' lacks '%s'", err, why);
}

/* Offsets of fields in the second (64-bit) header of a file built by make_tzif. */
static size_t second_header(const struct buf *b)
{
    for (size_t i = 4; i + 4 <= b->len; i++) {
        if (memcmp(b->b + i, "TZif", 4) == 0)
            return i;
    }
    fail_msg("no second header");
    return 0;
}

static void set32(struct buf *b, size_t off, uint32_t v)
{
    b->b[off] = (uint8_t)(v >> 24);
    b->b[off + 1] = (uint8_t)(v >> 16);
    b->b[off + 2] = (uint8_t)(v >> 8);
    b->b[off + 3] = (uint8_t)v;
}

static void malformed_files_are_refused_with_a_reason(void **state)
{
    static const int32_t utoff[] = {0, 3600};
    int64_t at[] = {utc(2000, 1, 1, 0, 0, 0), utc(2001, 1, 1, 0, 0, 0)};
    static const uint8_t idx[] = {1, 0};
    struct tzif_spec s = {.version = '2',
                          .at = at,
                          .idx = idx,
                          .n = 2,
                          .utoff = utoff,
                          .ntypes = 2,
                          .footer = "UTC0"};
    struct buf good, b;
    size_t h2;

    make_tzif(&good, &s);
    h2 = second_header(&good);

    /* Every truncation fails cleanly (the sanitizers watch the reads). */
    for (size_t len = 0; len < good.len; len++) {
        char err[256] = "";
        uint8_t *copy = malloc(len ? len : 1);

        memcpy(copy, good.b, len);
        assert_null(sched_tz_load_mem("Test/Zone", copy, len, err, sizeof(err)));
        assert_non_null(strstr(err, "malformed"));
        free(copy);
    }

    b = good;
    b.b[0] = 'X';
    expect_refused(b.b, b.len, "not a TZif file");

    b = good;
    b.b[4] = b.b[h2 + 4] = '5';
    expect_refused(b.b, b.len, "unsupported TZif version");

    /* Counts far beyond the file: refused before anything is allocated from them. */
    b = good;
    set32(&b, 32, 0xffffffffu);
    expect_refused(b.b, b.len, "truncated");
    b = good;
    set32(&b, h2 + 32, 0xffffffffu);
    expect_refused(b.b, b.len, "truncated");
    b = good;
    set32(&b, h2 + 40, 0x7fffffffu);
    expect_refused(b.b, b.len, "truncated");
    b = good;
    set32(&b, h2 + 28, 0x10000000u);
    expect_refused(b.b, b.len, "truncated");

    b = good;
    set32(&b, h2 + 36, 0);
    expect_refused(b.b, b.len, "time type count");

    b = good;
    set32(&b, h2 + 24, 1);
    expect_refused(b.b, b.len, "indicator counts");

    /* Transition pointing at type 2 of 2. */
    b = good;
    b.b[h2 + 44 + 16] = 2;
    expect_refused(b.b, b.len, "missing time type");

    /* Times out of order. */
    b = good;
    memcpy(b.b + h2 + 44 + 8, b.b + h2 + 44, 8);
    expect_refused(b.b, b.len, "not ascending");

    /* An offset past 26 hours. */
    b = good;
    set32(&b, h2 + 44 + 18 + 6, 100000);
    expect_refused(b.b, b.len, "bad time type");

    /* Bytes after the footer, a footer without newlines, a footer that is not a rule. */
    b = good;
    b.b[b.len++] = 'x';
    expect_refused(b.b, b.len, "bad footer");
    b = good;
    b.b[b.len - 1] = 'x';
    expect_refused(b.b, b.len, "bad footer");
    {
        const char *bad_rules[] = {"U",
                                   "UTC",
                                   "UTC+",
                                   "UTC0X",
                                   "<U>0",
                                   "<UTC0",
                                   "EST5EDT,M3.2.0",
                                   "EST5EDT,M13.2.0,M11.1.0",
                                   "EST5EDT,M3.6.0,M11.1.0",
                                   "EST5EDT,M3.2.7,M11.1.0",
                                   "EST5EDT,J0,J100",
                                   "EST5EDT,J366,J100",
                                   "EST5EDT,366,100",
                                   "EST5EDT,M3.2.0/168,M11.1.0",
                                   "EST25",
                                   "EST5:60",
                                   "EST5EDT,M3.2.0,M11.1.0,",
                                   "EST5EDT,M3.2.0/2:00:60,M11.1.0"};

        for (size_t i = 0; i < sizeof(bad_rules) / sizeof(bad_rules[0]); i++) {
            struct tzif_spec r = s;

            r.footer = bad_rules[i];
            make_tzif(&b, &r);
            expect_refused(b.b, b.len, "not a valid POSIX TZ string");
        }
    }

    /* Leap-second zones count TAI-like seconds, not Unix time. */
    b = good;
    set32(&b, h2 + 28, 1);
    {
        /* Make room for one 12-byte leap record right after the abbreviations. */
        size_t at_leap = h2 + 44 + 2 * 9 + 2 * 6 + 4;

        memmove(b.b + at_leap + 12, b.b + at_leap, b.len - at_leap);
        memset(b.b + at_leap, 0, 12);
        b.len += 12;
    }
    expect_refused(b.b, b.len, "leap-second");

    /* Too big. */
    {
        uint8_t *big = calloc(1, 300 * 1024);

        memcpy(big, good.b, good.len);
        expect_refused(big, 300 * 1024, "larger than 256 KiB");
        free(big);
    }
}

/* The promise cron relies on: no zone changes its offset more than 16 times in four days, of
 * which the table may hold eleven. */
static void zones_changing_too_often_are_refused(void **state)
{
    static const int32_t utoff[] = {0, 60};
    int64_t at[40];
    uint8_t idx[40];
    struct tzif_spec s = {
        .version = '2', .at = at, .idx = idx, .utoff = utoff, .ntypes = 2, .footer = ""};
    struct buf b;
    char err[256] = "";
    struct sched_tz *tz;

    for (size_t i = 0; i < 40; i++) {
        at[i] = utc(2020, 1, 1, 0, 0, 0) + (int64_t)i * 5 * 3600;
        idx[i] = (uint8_t)((i + 1) % 2);
    }
    s.n = 11; /* 11 changes within four days: allowed (the rule may add up to five) */
    tz = load_spec(&s, err, sizeof(err));
    assert_non_null(tz);
    sched_tz_destroy(tz);
    s.n = 12;
    make_tzif(&b, &s);
    expect_refused(b.b, b.len, "changes too often");
}

/* The answer depends on the zone asked for, never on the process's TZ. */
static void process_tz_does_not_leak_in(void **state)
{
    struct sched_tz *tz;
    int64_t t = utc(2024, 7, 1, 12, 0, 0);

    if (!have_zone("Europe/Berlin"))
        skip();
    setenv("TZ", "America/New_York", 1);
    tzset();
    tz = load_zone("Europe/Berlin");
    assert_int_equal(sched_tz_offset(tz, t), 7200);
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    assert_int_equal(sched_tz_offset(tz, t), 7200);
    sched_tz_destroy(tz);
    restore_tz();
}

/* Thousands of random instants 1970..2100 against glibc's localtime_r; every change found by
 * sched_tz_next_change really is one, with no change in between (sampled); and every change
 * from 1970 to 2100, across the table/rule boundary, happens at the instant glibc sees it. */
static void offsets_and_changes_agree_with_the_c_library(void **state)
{
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Asia/Kolkata",
                                        "Australia/Lord_Howe", "America/Sao_Paulo"};
    const int64_t end = utc(2100, 1, 1, 0, 0, 0);
    int tested = 0;

    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        struct sched_tz *tz;

        if (!have_zone(zones[z]))
            continue;
        tz = load_zone(zones[z]);
        tested++;
        for (int i = 0; i < 3000; i++) {
            int64_t t = (int64_t)(rnd() % (uint64_t)end), n;
            int32_t off = sched_tz_offset(tz, t);

            if (off != libc_offset(zones[z], t))
                fail_msg("%s at %lld: %d, libc %ld", zones[z], (long long)t, off,
                         libc_offset(zones[z], t));
            n = sched_tz_next_change(tz, t);
            assert_true(n > t);
            if (n >= end)
                continue;
            assert_int_equal(sched_tz_offset(tz, n - 1), off);
            assert_int_not_equal(sched_tz_offset(tz, n), off);
            assert_int_equal(libc_offset(zones[z], n - 1), off);
            assert_int_equal(libc_offset(zones[z], n), sched_tz_offset(tz, n));
            for (int k = 1; k < 8; k++)
                assert_int_equal(libc_offset(zones[z], t + (n - t) * k / 8), off);
        }
        walk_changes(tz, zones[z]);
        sched_tz_destroy(tz);
    }
    restore_tz();
    if (tested == 0)
        skip();
}

/* Loads every TZif file under dir/prefix (recursing, skipping the "posix" copies and the
 * "right" leap-second zones) and compares a few instants with glibc; returns how many. */
static int load_tree(const char *prefix, int depth)
{
    char path[1024];
    struct dirent *de;
    DIR *dir;
    int loaded = 0;

    snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), prefix);
    dir = opendir(path);
    if (!dir)
        return 0;
    while ((de = readdir(dir)) != NULL) {
        char name[512], file[1600], magic[4], err[256] = "";
        struct sched_tz *tz;
        struct stat st;
        FILE *f;
        bool tzif;

        if (de->d_name[0] == '.' || strchr(de->d_name, '.'))
            continue;
        snprintf(name, sizeof(name), "%s%s", prefix, de->d_name);
        snprintf(file, sizeof(file), "%s/%s", zoneinfo_dir(), name);
        if (stat(file, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 3 && strcmp(name, "posix") != 0 && strcmp(name, "right") != 0) {
                strcat(name, "/");
                loaded += load_tree(name, depth + 1);
            }
            continue;
        }
        f = S_ISREG(st.st_mode) ? fopen(file, "rb") : NULL;
        if (!f)
            continue;
        tzif = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
        fclose(f);
        if (!tzif)
            continue;
        tz = sched_tz_load(name, err, sizeof(err));
        if (!tz)
            fail_msg("%s: %s", name, err);
        for (int i = 0; i < 20; i++) {
            int64_t t = (int64_t)(rnd() % (uint64_t)utc(2100, 1, 1, 0, 0, 0));

            if (sched_tz_offset(tz, t) != libc_offset(name, t))
                fail_msg("%s at %lld: %d, libc %ld", name, (long long)t, sched_tz_offset(tz, t),
                         libc_offset(name, t));
        }
        sched_tz_destroy(tz);
        loaded++;
    }
    closedir(dir);
    return loaded;
}

/* Every zone the system ships loads (none is refused as malformed or too dense) and agrees
 * with glibc at a few instants; leap-second zones are refused. */
static void every_system_zone_loads_and_agrees(void **state)
{
    int loaded = load_tree("", 0);

    restore_tz();
    if (loaded == 0)
        skip();
    assert_true(loaded > 300);
    if (have_zone("right/UTC")) {
        char err[256] = "";

        assert_null(sched_tz_load("right/UTC", err, sizeof(err)));
        assert_non_null(strstr(err, "leap-second"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utc_works_without_any_file),
        cmocka_unit_test(bad_names_are_refused_before_any_file_is_opened),
        cmocka_unit_test(missing_zones_and_directories_are_unknown),
        cmocka_unit_test(tzdir_is_honoured),
        cmocka_unit_test(new_york_offsets_flip_at_the_documented_instants),
        cmocka_unit_test(fixed_zones_report_their_offset_and_no_more_changes),
        cmocka_unit_test(lord_howe_moves_by_half_an_hour),
        cmocka_unit_test(berlin_continues_past_its_table_through_the_footer_rule),
        cmocka_unit_test(table_and_rule_meet_without_a_seam),
        cmocka_unit_test(version_1_files_use_their_32_bit_data_and_keep_the_last_type),
        cmocka_unit_test(version_2_files_use_their_64_bit_data),
        cmocka_unit_test(transitions_that_keep_the_offset_are_not_changes),
        cmocka_unit_test(posix_rules_agree_with_the_c_library),
        cmocka_unit_test(dst_without_a_rule_follows_the_us_rule),
        cmocka_unit_test(dst_all_year_never_changes),
        cmocka_unit_test(changes_near_new_year_happen_where_they_fall),
        cmocka_unit_test(southern_rules_change_in_order),
        cmocka_unit_test(malformed_files_are_refused_with_a_reason),
        cmocka_unit_test(zones_changing_too_often_are_refused),
        cmocka_unit_test(process_tz_does_not_leak_in),
        cmocka_unit_test(offsets_and_changes_agree_with_the_c_library),
        cmocka_unit_test(every_system_zone_loads_and_agrees),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
