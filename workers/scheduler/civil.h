/* civil.h - proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01),
 * for time zones and cron without the C library's time functions, which consult TZ and
 * stop at the range of time_t and int years. */
#ifndef SCHED_CIVIL_H
#define SCHED_CIVIL_H

#include <stdbool.h>
#include <stdint.h>

#define SCHED_DAY_S 86400

/* Days in 400 Gregorian years: the calendar (weekdays included) repeats after this many. */
#define SCHED_CYCLE_DAYS 146097

/* Quotient and remainder rounded towards minus infinity (b > 0). */
static inline int64_t sched_fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b < 0) ? q - 1 : q;
}

static inline int64_t sched_fmod(int64_t a, int64_t b)
{
    int64_t r = a % b;

    return r < 0 ? r + b : r;
}

static inline bool sched_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline int sched_month_len(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return len[m - 1] + (m == 2 && sched_is_leap(y));
}

/* Days of the year before the first of month m (1..12). */
static inline int sched_days_before_month(int64_t y, int m)
{
    static const int cum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

    return cum[m - 1] + (m > 2 && sched_is_leap(y));
}

/* Leap years among the years before y, counted from a fixed origin (differences only). */
static inline int64_t sched_leaps_before(int64_t y)
{
    return sched_fdiv(y - 1, 4) - sched_fdiv(y - 1, 100) + sched_fdiv(y - 1, 400);
}

/* Day number of y-m-d; |y| up to about 2^50 stays exact. */
static inline int64_t sched_days_from_civil(int64_t y, int m, int d)
{
    return 365 * (y - 1970) + sched_leaps_before(y) - sched_leaps_before(1970) +
           sched_days_before_month(y, m) + d - 1;
}

/* The date of day number `days`. */
static inline void sched_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t cycles = sched_fdiv(days, SCHED_CYCLE_DAYS);
    int64_t rest = days - cycles * SCHED_CYCLE_DAYS;
    /* Within a cycle, the mean year length puts the estimate at most a year off. */
    int64_t yy = 1970 + cycles * 400 + rest * 400 / SCHED_CYCLE_DAYS;
    int64_t doy;
    int mm = 1;

    while (sched_days_from_civil(yy, 1, 1) > days)
        yy--;
    while (sched_days_from_civil(yy + 1, 1, 1) <= days)
        yy++;
    doy = days - sched_days_from_civil(yy, 1, 1);
    while (mm < 12 && doy >= sched_days_before_month(yy, mm + 1))
        mm++;
    *y = yy;
    *m = mm;
    *d = (int)(doy - sched_days_before_month(yy, mm)) + 1;
}

/* 0 = Sunday .. 6 = Saturday; day 0 (1970-01-01) was a Thursday. */
static inline int sched_weekday(int64_t days)
{
    return (int)sched_fmod(days + 4, 7);
}

#endif
