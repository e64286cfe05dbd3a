/* cron.h - five-field cron expressions (minute hour day-of-month month day-of-week) and the
 * instants they fire at in a time zone, daylight-saving changes included. */
#ifndef SCHED_CRON_H
#define SCHED_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sched_tz;

/* A parsed expression: one bit per allowed value. */
struct sched_cron {
    uint64_t minutes; /* bits 0..59 */
    uint32_t hours;   /* bits 0..23 */
    uint32_t mdays;   /* bits 1..31 */
    uint16_t months;  /* bits 1..12 */
    uint8_t wdays;    /* bits 0..6, 0 = Sunday */
    bool mday_any;    /* day-of-month field started with '*' */
    bool wday_any;    /* day-of-week field started with '*' */
    bool hour_any;    /* hour field is '*': runs in every hour, repeated ones included */
};

/* Parses "m h dom mon dow": each field a comma list of '*', N, N-M, with an optional /step
 * ('*' and N-M take a step; N/step means N through the field's end). Months also JAN..DEC and
 * days SUN..SAT (any case); day-of-week 7 is Sunday. Also @hourly, @daily (= @midnight),
 * @weekly, @monthly, @yearly (= @annually). When both day fields are restricted a day
 * matches either (classic cron). 0, or -SY_EINVAL with the field at fault in err
 * ("hour: 24 is out of range 0-23"). An expression that can never fire ("0 0 31 2 *") is
 * refused too.
 *
 * Fields are separated by spaces or tabs; the whole is at most 256 characters. Day-of-week's
 * '*' and N/step run Sunday (0) to Saturday (6); 7 means Sunday where written. A step may not
 * exceed the field's span (60, 24, 31, 12, 7). Ranges do not wrap ("FRI-MON" is refused).
 * Quartz forms (L, W, ?, #) and six-field (seconds) expressions are refused. `out` is written
 * only on success. */
int sched_cron_parse(const char *expr, struct sched_cron *out, char *err, size_t errlen);

/* The first instant strictly after `after` (Unix seconds) at which c fires in tz; -1 if none
 * within five years. Every result is a whole minute of local time, except in a DST gap:
 * a local time that does not exist (clocks jumped over it) fires once, at the instant the
 * jump happened, so a daily 02:30 job still runs on that day. A local time that occurs twice
 * (clocks went back) fires at its first occurrence only, unless the hour field is '*', in
 * which case both occurrences fire (an hourly job keeps its rhythm). Times from different
 * local minutes that map to the same instant count once. "Five years" is 1827 days; `after`
 * outside years 1..9999 also gives -1. Thread-safe; costs at most a few thousand cheap steps
 * (whole months and days that cannot match are skipped). */
int64_t sched_cron_next(const struct sched_cron *c, const struct sched_tz *tz, int64_t after);

#endif
