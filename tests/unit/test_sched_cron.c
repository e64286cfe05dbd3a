/* test_sched_cron.c - cron expressions: every syntax form and error, and next ticks across
 * time zones, DST gaps and overlaps, month ends, leap years and years past 2037, checked
 * against known instants and against slow reference searches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/cron.h"
#include "scheduler/tz.h"
#include "sched_test.h"
#include "sy/err.h"

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

static struct sched_cron parse_ok(const char *expr)
{
    struct sched_cron c;
    char err[256] = "";

    if (sched_cron_parse(expr, &c, err, sizeof(err)) != 0)
        fail_msg("'%s': %s", expr, err);
    return c;
}

static void expect_error(const char *expr, const char *msg)
{
    struct sched_cron c, before;
    char err[256] = "";

    memset(&c, 0xa5, sizeof(c));
    before = c;
    if (sched_cron_parse(expr, &c, err, sizeof(err)) != -SY_EINVAL)
        fail_msg("'%s' was accepted, expected '%s'", expr, msg);
    if (strcmp(err, msg) != 0)
        fail_msg("'%s': got '%s', expected '%s'", expr, err, msg);
    assert_memory_equal(&c, &before, sizeof(c));
}

static uint64_t bits(int lo, int hi, int step)
{
    uint64_t b = 0;

    for (int v = lo; v <= hi; v += step)
        b |= UINT64_C(1) << v;
    return b;
}

/* ---- parsing ------------------------------------------------------------------------- */

static void every_field_form_sets_the_right_bits(void **state)
{
    struct sched_cron c = parse_ok("* * * * *");

    assert_true(c.minutes == bits(0, 59, 1));
    assert_true(c.hours == bits(0, 23, 1));
    assert_true(c.mdays == bits(1, 31, 1));
    assert_true(c.months == bits(1, 12, 1));
    assert_true(c.wdays == bits(0, 6, 1));
    assert_true(c.mday_any && c.wday_any && c.hour_any);

    c = parse_ok("5 4 3 2 1");
    assert_true(c.minutes == bits(5, 5, 1));
    assert_true(c.hours == bits(4, 4, 1));
    assert_true(c.mdays == bits(3, 3, 1));
    assert_true(c.months == bits(2, 2, 1));
    assert_true(c.wdays == bits(1, 1, 1));
    assert_false(c.mday_any || c.wday_any || c.hour_any);

    c = parse_ok("*/15 1-5 10-20/5 */4 1-5/2");
    assert_true(c.minutes == (bits(0, 0, 1) | bits(15, 15, 1) | bits(30, 30, 1) | bits(45, 45, 1)));
    assert_true(c.hours == bits(1, 5, 1));
    assert_true(c.mdays == bits(10, 20, 5));
    assert_true(c.months == bits(1, 12, 4));
    assert_true(c.wdays == bits(1, 5, 2));
    assert_true(c.mday_any == false && c.wday_any == false && c.hour_any == false);

    /* N/step runs from N to the field's end. */
    c = parse_ok("7/20 5/6 28/2 11/1 3/2");
    assert_true(c.minutes == bits(7, 59, 20));
    assert_true(c.hours == bits(5, 23, 6));
    assert_true(c.mdays == bits(28, 31, 2));
    assert_true(c.months == bits(11, 12, 1));
    assert_true(c.wdays == bits(3, 6, 2));
}

static void lists_names_and_sunday_seven(void **state)
{
    struct sched_cron c = parse_ok("0,07,30-32,50-59/3  \t 0,12 1,15,20-21 * *  ");

    assert_true(c.minutes == (bits(0, 0, 1) | bits(7, 7, 1) | bits(30, 32, 1) | bits(50, 59, 3)));
    assert_true(c.hours == (bits(0, 0, 1) | bits(12, 12, 1)));
    assert_true(c.mdays == (bits(1, 1, 1) | bits(15, 15, 1) | bits(20, 21, 1)));

    c = parse_ok("0 0 * JAN-MAR,dec mon-FRI");
    assert_true(c.months == (bits(1, 3, 1) | bits(12, 12, 1)));
    assert_true(c.wdays == bits(1, 5, 1));
    c = parse_ok("0 0 * Jul sun,Sat");
    assert_true(c.months == bits(7, 7, 1));
    assert_true(c.wdays == (bits(0, 0, 1) | bits(6, 6, 1)));
    c = parse_ok("0 0 * aug-oct/2 TUE-thu/2");
    assert_true(c.months == (bits(8, 8, 1) | bits(10, 10, 1)));
    assert_true(c.wdays == (bits(2, 2, 1) | bits(4, 4, 1)));

    /* 7 is Sunday, alone, in ranges and with names; '*' is 0-6. */
    assert_true(parse_ok("0 0 * * 7").wdays == bits(0, 0, 1));
    assert_true(parse_ok("0 0 * * 5-7").wdays == (bits(5, 6, 1) | bits(0, 0, 1)));
    assert_true(parse_ok("0 0 * * 0-7").wdays == bits(0, 6, 1));
    assert_true(parse_ok("0 0 * * SAT-7").wdays == (bits(6, 6, 1) | bits(0, 0, 1)));
    assert_true(parse_ok("0 0 * * */2").wdays == (bits(0, 6, 2)));
    assert_true(parse_ok("0 0 * * 7/3").wdays == bits(0, 0, 1));
}

static void macros_expand_to_their_classic_meaning(void **state)
{
    static const struct {
        const char *macro, *expr;
    } cases[] = {
        {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},     {"@midnight", "0 0 * * *"},
        {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"},   {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"}, {"  @DAILY  ", "0 0 * * *"}, {"@Weekly\t", "0 0 * * 0"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sched_cron a = parse_ok(cases[i].macro), b = parse_ok(cases[i].expr);

        assert_memory_equal(&a, &b, sizeof(a));
    }
    expect_error("@reboot", "unknown macro '@reboot' (@hourly, @daily, @midnight, @weekly, "
                            "@monthly, @yearly, @annually)");
    expect_error("@", "unknown macro '@' (@hourly, @daily, @midnight, @weekly, @monthly, "
                      "@yearly, @annually)");
    expect_error("@daily 5", "'@daily' takes no fields");
}

/* Both day fields restricted: either matches. One of them '*' (even with a step): both must. */
static void day_fields_combine_by_or_unless_one_starts_with_a_star(void **state)
{
    struct sched_cron c = parse_ok("0 0 13 * 5");
    struct sched_tz *tz = load_zone("UTC");

    assert_false(c.mday_any || c.wday_any);
    /* 2024-09-06 is a Friday, 2024-09-13 a Friday the 13th, 2024-10-13 a Sunday. */
    assert_true(sched_cron_next(&c, tz, utc(2024, 9, 1, 0, 0, 0)) == utc(2024, 9, 6, 0, 0, 0));
    assert_true(sched_cron_next(&c, tz, utc(2024, 10, 12, 0, 0, 0)) == utc(2024, 10, 13, 0, 0, 0));

    c = parse_ok("0 0 * * 5");
    assert_true(c.mday_any && !c.wday_any);
    assert_true(sched_cron_next(&c, tz, utc(2024, 10, 12, 0, 0, 0)) == utc(2024, 10, 18, 0, 0, 0));

    c = parse_ok("0 0 13 * *");
    assert_true(!c.mday_any && c.wday_any);
    assert_true(sched_cron_next(&c, tz, utc(2024, 9, 1, 0, 0, 0)) == utc(2024, 9, 13, 0, 0, 0));

    /* "*\/2" starts with '*': odd days that are also Fridays (2024-09-06 is day 6: no). */
    c = parse_ok("0 0 */2 * 5");
    assert_true(c.mday_any);
    assert_true(sched_cron_next(&c, tz, utc(2024, 9, 1, 0, 0, 0)) == utc(2024, 9, 13, 0, 0, 0));

    /* OR form fires although the day-of-month alone never could. */
    c = parse_ok("0 0 31 2 MON");
    assert_true(sched_cron_next(&c, tz, utc(2025, 1, 1, 0, 0, 0)) == utc(2025, 2, 3, 0, 0, 0));
    sched_tz_destroy(tz);
}

static void every_error_names_its_field(void **state)
{
    static const struct {
        const char *expr, *msg;
    } cases[] = {
        {"60 * * * *", "minute: 60 is out of range 0-59"},
        {"* 24 * * *", "hour: 24 is out of range 0-23"},
        {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
        {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
        {"* * * 0 *", "month: 0 is out of range 1-12"},
        {"* * * 13 *", "month: 13 is out of range 1-12"},
        {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
        {"99999999999999999999 * * * *", "minute: 9999999999999999 is out of range 0-59"},
        {"1,,2 * * * *", "minute: empty list item"},
        {"* 1, * * *", "hour: empty list item"},
        {"* * ,1 * *", "day-of-month: empty list item"},
        {"*/0 * * * *", "minute: step 0 never advances"},
        {"* 1-5/0 * * *", "hour: step 0 never advances"},
        {"*/61 * * * *", "minute: step 61 is out of range 1-60"},
        {"* * * * */8", "day-of-week: step 8 is out of range 1-7"},
        {"* 5-2 * * *", "hour: range '5-2' is reversed"},
        {"* * * DEC-JAN *", "month: range 'DEC-JAN' is reversed"},
        {"* * * * FRI-MON", "day-of-week: range 'FRI-MON' is reversed"},
        {"5x * * * *", "minute: unexpected 'x' in '5x'"},
        {"* 1-2-3 * * *", "hour: unexpected '-' in '1-2-3'"},
        {"* * * * 1/2/3", "day-of-week: unexpected '/' in '1/2/3'"},
        {"-5 * * * *", "minute: unexpected '-' in '-5'"},
        {"*5 * * * *", "minute: unexpected '5' in '*5'"},
        {"5- * * * *", "minute: '5-' is incomplete"},
        {"*/ * * * *", "minute: '*/' is incomplete"},
        {"*/x * * * *", "minute: step in '*/x' is not a number"},
        {"JAN * * * *", "minute: unexpected 'JAN' (numbers only)"},
        {"* * * FOO *", "month: unknown name 'FOO'"},
        {"* * * * MONDAY", "day-of-week: unknown name 'MONDAY'"},
        {"* * * January *", "month: unknown name 'January'"},
        {"\x01 * * * *", "minute: unexpected byte 0x01"},
        {"* * * * *\n", "day-of-week: unexpected byte 0x0a"},
        /* Quartz forms. */
        {"* * L * *", "day-of-month: 'L' is not supported"},
        {"* * LW * *", "day-of-month: 'LW' is not supported"},
        {"* * 15W * *", "day-of-month: 'W' is not supported"},
        {"* * ? * *", "day-of-month: '?' is not supported"},
        {"* * * * ?", "day-of-week: '?' is not supported"},
        {"* * * * 5L", "day-of-week: 'L' is not supported"},
        {"* * * * L", "day-of-week: 'L' is not supported"},
        {"* * * * 5#3", "day-of-week: '#' is not supported"},
        {"* * * * FRI#3", "day-of-week: '#' is not supported"},
        /* Days that never come. */
        {"0 0 31 2 *", "day-of-month: none of the days exists in the months chosen"},
        {"0 0 30 2 *", "day-of-month: none of the days exists in the months chosen"},
        {"0 0 31 4,6,9,11 *", "day-of-month: none of the days exists in the months chosen"},
        {"0 0 30-31 FEB *", "day-of-month: none of the days exists in the months chosen"},
        /* The shape of the whole. */
        {"", "empty cron expression"},
        {" \t ", "empty cron expression"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4"},
        {"0 * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 6"},
        {"*", "expected 5 fields (minute hour day-of-month month day-of-week), found 1"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].expr, cases[i].msg);
}

static void length_and_null_are_limited(void **state)
{
    char expr[300];
    struct sched_cron c;
    char err[128] = "";

    /* Exactly 256 characters parse; 257 do not. */
    memset(expr, ' ', sizeof(expr));
    memcpy(expr, "0 0 * * *", 9);
    expr[256] = '\0';
    assert_int_equal(sched_cron_parse(expr, &c, err, sizeof(err)), 0);
    expr[256] = ' ';
    expr[257] = '\0';
    expect_error(expr, "cron expression longer than 256 characters");
    assert_int_equal(sched_cron_parse(NULL, &c, err, sizeof(err)), -SY_EINVAL);
    assert_int_equal(sched_cron_parse("* * * * *", NULL, err, sizeof(err)), -SY_EINVAL);
    /* A short error buffer is enough not to crash. */
    assert_int_equal(sched_cron_parse("99 * * * *", &c, err, 4), -SY_EINVAL);
    assert_int_equal(sched_cron_parse("99 * * * *", &c, NULL, 0), -SY_EINVAL);
}

/* ---- next tick ----------------------------------------------------------------------- */

static void expect_ticks(const char *zname, const char *expr, int64_t after, const int64_t *want,
                         size_t n)
{
    struct sched_cron c = parse_ok(expr);
    struct sched_tz *tz = load_zone(zname);
    int64_t t = after;

    for (size_t i = 0; i < n; i++) {
        int64_t got = sched_cron_next(&c, tz, t);

        if (got != want[i])
            fail_msg("%s '%s' after %lld: got %lld, want %lld (tick %zu)", zname, expr,
                     (long long)t, (long long)got, (long long)want[i], i);
        t = got;
    }
    sched_tz_destroy(tz);
}

static void utc_ticks_are_strictly_after(void **state)
{
    const int64_t q[] = {utc(2024, 5, 6, 10, 15, 0), utc(2024, 5, 6, 10, 30, 0),
                         utc(2024, 5, 6, 10, 45, 0), utc(2024, 5, 6, 11, 0, 0)};
    const int64_t every[] = {utc(2024, 5, 6, 10, 8, 0), utc(2024, 5, 6, 10, 9, 0)};

    expect_ticks("UTC", "*/15 * * * *", utc(2024, 5, 6, 10, 7, 30), q, 4);
    expect_ticks("UTC", "*/15 * * * *", utc(2024, 5, 6, 10, 14, 59), q, 1);
    /* Exactly at a tick: the next one. */
    expect_ticks("Etc/UTC", "*/15 * * * *", utc(2024, 5, 6, 10, 0, 0), q, 1);
    expect_ticks("UTC", "* * * * *", utc(2024, 5, 6, 10, 7, 0), every, 2);
}

static void kolkata_runs_at_half_past_the_utc_hour(void **state)
{
    const int64_t want[] = {utc(2024, 5, 31, 20, 30, 0), utc(2024, 6, 1, 20, 30, 0)};
    const int64_t weekly[] = {utc(2024, 6, 1, 20, 30, 0), utc(2024, 6, 8, 20, 30, 0)};

    if (!have_zone("Asia/Kolkata"))
        skip();
    expect_ticks("Asia/Kolkata", "0 2 * * *", utc(2024, 5, 31, 12, 0, 0), want, 2);
    /* Sunday 02:00 in Kolkata is Saturday 20:30 UTC. */
    expect_ticks("Asia/Kolkata", "0 2 * * SUN", utc(2024, 5, 30, 0, 0, 0), weekly, 2);
}

static void berlin_spring_forward_runs_the_missing_time_at_the_jump(void **state)
{
    /* 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC. */
    const int64_t daily[] = {utc(2024, 3, 30, 1, 30, 0), utc(2024, 3, 31, 1, 0, 0),
                             utc(2024, 4, 1, 0, 30, 0)};
    const int64_t minutely[] = {utc(2024, 3, 31, 0, 59, 0), utc(2024, 3, 31, 1, 0, 0),
                                utc(2024, 3, 31, 1, 1, 0)};
    const int64_t hourly[] = {utc(2024, 3, 31, 0, 0, 0), utc(2024, 3, 31, 1, 0, 0),
                              utc(2024, 3, 31, 2, 0, 0)};
    const int64_t three[] = {utc(2024, 3, 31, 1, 0, 0), utc(2024, 4, 1, 1, 0, 0)};

    if (!have_zone("Europe/Berlin"))
        skip();
    expect_ticks("Europe/Berlin", "30 2 * * *", utc(2024, 3, 29, 12, 0, 0), daily, 3);
    /* 01:59 fires, 02:00..02:59 and 03:00 all land on the jump: once. */
    expect_ticks("Europe/Berlin", "* * * * *", utc(2024, 3, 31, 0, 58, 0), minutely, 3);
    expect_ticks("Europe/Berlin", "0 * * * *", utc(2024, 3, 30, 23, 30, 0), hourly, 3);
    /* 02:00 (missing) and 03:00 are the same instant: one tick. */
    expect_ticks("Europe/Berlin", "0 2,3 * * *", utc(2024, 3, 30, 12, 0, 0), three, 1);
    {
        const int64_t t[] = {utc(2024, 3, 31, 1, 0, 0), utc(2024, 4, 1, 0, 0, 0)};

        expect_ticks("Europe/Berlin", "0 2,3 * * *", utc(2024, 3, 31, 0, 0, 0), t, 2);
    }
}

static void berlin_fall_back_runs_a_fixed_hour_once_and_every_hour_twice(void **state)
{
    /* 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:30 happens at 00:30 and
     * 01:30 UTC. */
    const int64_t once[] = {utc(2024, 10, 27, 0, 30, 0), utc(2024, 10, 28, 1, 30, 0)};
    const int64_t twice[] = {utc(2024, 10, 26, 23, 30, 0), utc(2024, 10, 27, 0, 30, 0),
                             utc(2024, 10, 27, 1, 30, 0), utc(2024, 10, 27, 2, 30, 0)};
    const int64_t steps[] = {utc(2024, 10, 27, 0, 0, 0), utc(2024, 10, 27, 0, 30, 0),
                             utc(2024, 10, 28, 1, 0, 0)};
    const int64_t listed[] = {utc(2024, 10, 27, 0, 30, 0), utc(2024, 10, 27, 2, 30, 0)};

    if (!have_zone("Europe/Berlin"))
        skip();
    expect_ticks("Europe/Berlin", "30 2 * * *", utc(2024, 10, 26, 12, 0, 0), once, 2);
    expect_ticks("Europe/Berlin", "30 * * * *", utc(2024, 10, 26, 23, 0, 0), twice, 4);
    expect_ticks("Europe/Berlin", "*/30 2 * * *", utc(2024, 10, 26, 23, 59, 0), steps, 3);
    /* A list of hours is not '*': the repeated 02:30 runs once. */
    expect_ticks("Europe/Berlin", "30 2,3 * * *", utc(2024, 10, 26, 23, 0, 0), listed, 2);
    /* Asking between the two 02:30s: the second one does not fire. */
    {
        const int64_t next[] = {utc(2024, 10, 28, 1, 30, 0)};

        expect_ticks("Europe/Berlin", "30 2 * * *", utc(2024, 10, 27, 0, 30, 0), next, 1);
    }
}

static void new_york_dst_both_ways(void **state)
{
    /* 2024-03-10 02:00 EST -> 03:00 EDT at 07:00 UTC; 2024-11-03 02:00 EDT -> 01:00 EST at
     * 06:00 UTC. */
    const int64_t spring[] = {utc(2024, 3, 10, 7, 0, 0), utc(2024, 3, 11, 6, 30, 0)};
    const int64_t fall[] = {utc(2024, 11, 3, 5, 30, 0), utc(2024, 11, 4, 6, 30, 0)};
    const int64_t hourly[] = {utc(2024, 11, 3, 5, 30, 0), utc(2024, 11, 3, 6, 30, 0),
                              utc(2024, 11, 3, 7, 30, 0)};

    if (!have_zone("America/New_York"))
        skip();
    expect_ticks("America/New_York", "30 2 * * *", utc(2024, 3, 9, 12, 0, 0), spring, 2);
    expect_ticks("America/New_York", "30 1 * * *", utc(2024, 11, 2, 12, 0, 0), fall, 2);
    expect_ticks("America/New_York", "30 * * * *", utc(2024, 11, 3, 5, 0, 0), hourly, 3);
}

static void lord_howe_half_hour_dst(void **state)
{
    /* 2024-10-06 02:00 +1030 -> 02:30 +11 at 15:30 UTC the day before; 2024-04-07 02:00 +11 ->
     * 01:30 +1030 at 15:00 UTC the day before. */
    const int64_t gap[] = {utc(2024, 10, 5, 15, 30, 0), utc(2024, 10, 6, 15, 15, 0)};
    const int64_t after_gap[] = {utc(2024, 10, 5, 15, 45, 0)};
    const int64_t once[] = {utc(2024, 4, 6, 14, 45, 0), utc(2024, 4, 7, 15, 15, 0)};
    const int64_t twice[] = {utc(2024, 4, 6, 14, 45, 0), utc(2024, 4, 6, 15, 15, 0),
                             utc(2024, 4, 6, 16, 15, 0)};

    if (!have_zone("Australia/Lord_Howe"))
        skip();
    expect_ticks("Australia/Lord_Howe", "15 2 * * *", utc(2024, 10, 5, 0, 0, 0), gap, 2);
    expect_ticks("Australia/Lord_Howe", "45 2 * * *", utc(2024, 10, 5, 0, 0, 0), after_gap, 1);
    expect_ticks("Australia/Lord_Howe", "45 1 * * *", utc(2024, 4, 6, 0, 0, 0), once, 2);
    expect_ticks("Australia/Lord_Howe", "45 * * * *", utc(2024, 4, 6, 14, 0, 0), twice, 3);
}

static void month_ends_and_leap_days(void **state)
{
    const int64_t d31[] = {utc(2024, 5, 31, 0, 0, 0),  utc(2024, 7, 31, 0, 0, 0),
                           utc(2024, 8, 31, 0, 0, 0),  utc(2024, 10, 31, 0, 0, 0),
                           utc(2024, 12, 31, 0, 0, 0), utc(2025, 1, 31, 0, 0, 0),
                           utc(2025, 3, 31, 0, 0, 0)};
    const int64_t leap[] = {utc(2028, 2, 29, 0, 0, 0), utc(2032, 2, 29, 0, 0, 0)};
    const int64_t from_leap[] = {utc(2028, 2, 29, 0, 0, 0)};
    const int64_t d30[] = {utc(2025, 1, 30, 0, 0, 0), utc(2025, 3, 30, 0, 0, 0)};

    expect_ticks("UTC", "0 0 31 * *", utc(2024, 4, 1, 0, 0, 0), d31, 7);
    expect_ticks("UTC", "0 0 29 2 *", utc(2025, 1, 1, 0, 0, 0), leap, 2);
    expect_ticks("UTC", "0 0 29 2 *", utc(2024, 2, 29, 0, 0, 0), from_leap, 1);
    expect_ticks("UTC", "0 0 30 * *", utc(2025, 1, 30, 0, 0, 0) - 1, d30, 2);
}

static void years_roll_over(void **state)
{
    const int64_t ny[] = {utc(2025, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0)};
    const int64_t eve[] = {utc(2024, 12, 31, 23, 59, 0), utc(2025, 12, 31, 23, 59, 0)};
    const int64_t monday[] = {utc(2024, 12, 30, 9, 0, 0), utc(2025, 1, 6, 9, 0, 0)};

    expect_ticks("UTC", "0 0 1 1 *", utc(2024, 12, 31, 23, 59, 0), ny, 2);
    expect_ticks("UTC", "@yearly", utc(2024, 12, 31, 23, 59, 59), ny, 2);
    expect_ticks("UTC", "59 23 31 12 *", utc(2024, 12, 31, 23, 58, 0), eve, 2);
    expect_ticks("UTC", "0 9 * * MON", utc(2024, 12, 29, 0, 0, 0), monday, 2);
}

/* Past the end of the zone file's table (2037 in Debian's files) the footer rule decides. */
static void berlin_dst_in_2040_follows_the_rule(void **state)
{
    const int64_t spring[] = {utc(2040, 3, 24, 1, 30, 0), utc(2040, 3, 25, 1, 0, 0),
                              utc(2040, 3, 26, 0, 30, 0)};
    const int64_t fall[] = {utc(2040, 10, 28, 0, 30, 0), utc(2040, 10, 29, 1, 30, 0)};
    const int64_t hourly[] = {utc(2040, 10, 28, 0, 30, 0), utc(2040, 10, 28, 1, 30, 0)};

    if (!have_zone("Europe/Berlin"))
        skip();
    expect_ticks("Europe/Berlin", "30 2 * * *", utc(2040, 3, 23, 12, 0, 0), spring, 3);
    expect_ticks("Europe/Berlin", "30 2 * * *", utc(2040, 10, 27, 12, 0, 0), fall, 2);
    expect_ticks("Europe/Berlin", "30 * * * *", utc(2040, 10, 28, 0, 0, 0), hourly, 2);
}

static void nothing_within_five_years_is_minus_one(void **state)
{
    struct sched_cron c = parse_ok("0 0 29 2 *");
    struct sched_tz *tz = load_zone("UTC");

    /* 2100 is not a leap year: after 2096-02-29 the next is 2104, more than five years on. */
    assert_true(sched_cron_next(&c, tz, utc(2096, 3, 1, 0, 0, 0)) == -1);
    assert_true(sched_cron_next(&c, tz, utc(2099, 3, 1, 0, 0, 0)) == utc(2104, 2, 29, 0, 0, 0));
    /* Out of range instants. */
    c = parse_ok("* * * * *");
    assert_true(sched_cron_next(&c, tz, INT64_MAX) == -1);
    assert_true(sched_cron_next(&c, tz, INT64_MIN) == -1);
    assert_true(sched_cron_next(&c, tz, utc(9999, 12, 31, 23, 58, 0)) ==
                utc(9999, 12, 31, 23, 59, 0));
    assert_true(sched_cron_next(&c, tz, -1) == 0);
    assert_true(sched_cron_next(NULL, tz, 0) == -1);
    assert_true(sched_cron_next(&c, NULL, 0) == -1);
    sched_tz_destroy(tz);
}

/* ---- against slow references ----------------------------------------------------------- */

static bool local_matches(const struct sched_cron *c, int64_t local)
{
    time_t tt = (time_t)local;
    struct tm tm;
    bool dm, wm;

    gmtime_r(&tt, &tm);
    if (tm.tm_sec != 0 || !(c->minutes >> tm.tm_min & 1) || !(c->hours >> tm.tm_hour & 1) ||
        !(c->months >> (tm.tm_mon + 1) & 1))
        return false;
    dm = c->mdays >> tm.tm_mday & 1;
    wm = c->wdays >> tm.tm_wday & 1;
    return (c->mday_any || c->wday_any) ? dm && wm : dm || wm;
}

/* Does local time L happen at some instant before t? (Offsets of the zone are in offs.) */
static bool happened_before(const struct sched_tz *tz, int64_t L, int64_t t, const int32_t *offs,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t u = L - offs[i];

        if (u < t && sched_tz_offset(tz, u) == offs[i])
            return true;
    }
    return false;
}

static bool happens(const struct sched_tz *tz, int64_t L, const int32_t *offs, size_t n)
{
    return happened_before(tz, L, INT64_MAX, offs, n);
}

/* cron.h's rules read literally, one UTC minute at a time: does c fire at instant t? */
static bool fires_at(const struct sched_cron *c, const struct sched_tz *tz, int64_t t,
                     const int32_t *offs, size_t n)
{
    int32_t off = sched_tz_offset(tz, t), prev = sched_tz_offset(tz, t - 1);
    int64_t L = t + off;

    if (local_matches(c, L) && (c->hour_any || !happened_before(tz, L, t, offs, n)))
        return true;
    /* Clocks jumped forward at t: local minutes skipped over fire here. */
    if (off > prev) {
        for (int64_t s = t + prev; s < L; s += 60) {
            if (local_matches(c, s) && !happens(tz, s, offs, n))
                return true;
        }
    }
    return false;
}

static int64_t reference_next(const struct sched_cron *c, const struct sched_tz *tz, int64_t after,
                              int64_t until, const int32_t *offs, size_t n)
{
    for (int64_t t = (after / 60 + 1) * 60; t <= until; t += 60) {
        if (fires_at(c, tz, t, offs, n))
            return t;
    }
    return -1;
}

static void random_field(char *out, size_t cap, int lo, int hi)
{
    switch (rnd() % 5) {
    case 0:
        snprintf(out, cap, "*");
        break;
    case 1:
        snprintf(out, cap, "*/%d", (int)(rnd() % 7) + 2);
        break;
    case 2: {
        int a = lo + (int)(rnd() % (uint64_t)(hi - lo + 1)), b = a + (int)(rnd() % 4);

        snprintf(out, cap, "%d-%d", a, b > hi ? hi : b);
        break;
    }
    default:
        snprintf(out, cap, "%d,%d", lo + (int)(rnd() % (uint64_t)(hi - lo + 1)),
                 lo + (int)(rnd() % (uint64_t)(hi - lo + 1)));
    }
}

/* Random minute and hour fields (hours near the changes favoured) asked at random moments
 * around DST changes in several zones, against the literal minute-by-minute reading. */
static void next_agrees_with_a_minute_by_minute_reference_around_dst(void **state)
{
    static const struct {
        const char *zone;
        int32_t offs[2];
        int64_t change;
    } cases[] = {
        {"Europe/Berlin", {3600, 7200}, 1711846800},         /* 2024-03-31 01:00Z */
        {"Europe/Berlin", {3600, 7200}, 1729990800},         /* 2024-10-27 01:00Z */
        {"Europe/Berlin", {3600, 7200}, 2234998800},         /* 2040-10-28 01:00Z */
        {"America/New_York", {-18000, -14400}, 1710054000},  /* 2024-03-10 07:00Z */
        {"America/New_York", {-18000, -14400}, 1730613600},  /* 2024-11-03 06:00Z */
        {"Australia/Lord_Howe", {37800, 39600}, 1712415600}, /* 2024-04-06 15:00Z */
        {"Australia/Lord_Howe", {37800, 39600}, 1728142200}, /* 2024-10-05 15:30Z */
    };
    int checked = 0;

    for (size_t z = 0; z < sizeof(cases) / sizeof(cases[0]); z++) {
        struct sched_tz *tz;

        if (!have_zone(cases[z].zone))
            continue;
        tz = load_zone(cases[z].zone);
        assert_int_not_equal(sched_tz_offset(tz, cases[z].change),
                             sched_tz_offset(tz, cases[z].change - 1));
        for (int i = 0; i < 60; i++) {
            char m[32], h[32], expr[80], err[128] = "";
            struct sched_cron c;
            int64_t after, want, got;

            random_field(m, sizeof(m), 0, 59);
            if (rnd() % 3 == 0)
                snprintf(h, sizeof(h), "*");
            else
                random_field(h, sizeof(h), 0, 4);
            snprintf(expr, sizeof(expr), "%s %s * * *", m, h);
            if (sched_cron_parse(expr, &c, err, sizeof(err)) != 0)
                fail_msg("%s: %s", expr, err);
            after = cases[z].change - 6 * 3600 + (int64_t)(rnd() % (12 * 3600));
            if (rnd() % 2)
                after -= after % 60;
            want = reference_next(&c, tz, after, after + 2 * 86400, cases[z].offs, 2);
            got = sched_cron_next(&c, tz, after);
            if (want != -1 && got != want)
                fail_msg("%s '%s' after %lld: got %lld, reference %lld", cases[z].zone, expr,
                         (long long)after, (long long)got, (long long)want);
            if (want == -1)
                assert_true(got > after + 2 * 86400);
            checked++;
        }
        sched_tz_destroy(tz);
    }
    if (checked == 0)
        skip();
}

/* In UTC, a reference that tries every day for five years, and every minute of a day whose
 * date matches: random day, month and weekday fields exercise the skipping of days and months
 * and the OR/AND day rule. */
static int64_t reference_utc(const struct sched_cron *c, int64_t after)
{
    const int64_t horizon = after + 1827 * (int64_t)86400;

    for (int64_t day = after - after % 86400; day <= horizon; day += 86400) {
        time_t tt = (time_t)day;
        struct tm tm;
        bool dm, wm;

        gmtime_r(&tt, &tm);
        dm = c->mdays >> tm.tm_mday & 1;
        wm = c->wdays >> tm.tm_wday & 1;
        if (!(c->months >> (tm.tm_mon + 1) & 1) ||
            !((c->mday_any || c->wday_any) ? dm && wm : dm || wm))
            continue;
        for (int h = 0; h < 24; h++) {
            for (int m = 0; m < 60; m++) {
                int64_t t = day + h * 3600 + m * 60;

                if ((c->hours >> h & 1) && (c->minutes >> m & 1) && t > after && t <= horizon)
                    return t;
            }
        }
    }
    return -1;
}

static void next_agrees_with_a_day_by_day_reference_in_utc(void **state)
{
    struct sched_tz *tz = load_zone("UTC");

    for (int i = 0; i < 150; i++) {
        char f[5][32], expr[200], err[256] = "";
        struct sched_cron c;
        int64_t after, want, got;

        random_field(f[0], sizeof(f[0]), 0, 59);
        random_field(f[1], sizeof(f[1]), 0, 23);
        random_field(f[2], sizeof(f[2]), 1, 31);
        random_field(f[3], sizeof(f[3]), 1, 12);
        random_field(f[4], sizeof(f[4]), 0, 6);
        snprintf(expr, sizeof(expr), "%s %s %s %s %s", f[0], f[1], f[2], f[3], f[4]);
        if (sched_cron_parse(expr, &c, err, sizeof(err)) != 0)
            continue; /* e.g. "30-31 2": never fires, refused */
        after = utc(2020, 1, 1, 0, 0, 0) + (int64_t)(rnd() % (uint64_t)(20 * 365 * 86400));
        want = reference_utc(&c, after);
        got = sched_cron_next(&c, tz, after);
        if (got != want)
            fail_msg("'%s' after %lld: got %lld, reference %lld", expr, (long long)after,
                     (long long)got, (long long)want);
    }
    sched_tz_destroy(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_field_form_sets_the_right_bits),
        cmocka_unit_test(lists_names_and_sunday_seven),
        cmocka_unit_test(macros_expand_to_their_classic_meaning),
        cmocka_unit_test(day_fields_combine_by_or_unless_one_starts_with_a_star),
        cmocka_unit_test(every_error_names_its_field),
        cmocka_unit_test(length_and_null_are_limited),
        cmocka_unit_test(utc_ticks_are_strictly_after),
        cmocka_unit_test(kolkata_runs_at_half_past_the_utc_hour),
        cmocka_unit_test(berlin_spring_forward_runs_the_missing_time_at_the_jump),
        cmocka_unit_test(berlin_fall_back_runs_a_fixed_hour_once_and_every_hour_twice),
        cmocka_unit_test(new_york_dst_both_ways),
        cmocka_unit_test(lord_howe_half_hour_dst),
        cmocka_unit_test(month_ends_and_leap_days),
        cmocka_unit_test(years_roll_over),
        cmocka_unit_test(berlin_dst_in_2040_follows_the_rule),
        cmocka_unit_test(nothing_within_five_years_is_minus_one),
        cmocka_unit_test(next_agrees_with_a_minute_by_minute_reference_around_dst),
        cmocka_unit_test(next_agrees_with_a_day_by_day_reference_in_utc),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
