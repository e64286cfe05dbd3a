/* fuzz_cron.c - libFuzzer target: untrusted text through the cron parser as a schedule file
 * would hand it over, and every accepted expression through the next-tick search in UTC and in
 * a zone with DST, checking what cron.h promises about the result. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/cron.h"
#include "scheduler/tz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer than the parser accepts, so the limit itself is exercised. */
#define FUZZ_INPUT_MAX 300
#define FIVE_YEARS_S   ((int64_t)1827 * 86400)

static struct sched_tz *g_utc, *g_dst;

static void unload(void)
{
    sched_tz_destroy(g_utc);
    sched_tz_destroy(g_dst);
}

/* UTC always; a DST zone when the system has one (the search must still terminate and keep
 * its promises through gaps and overlaps). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    if (g_utc)
        return 0;
    g_utc = sched_tz_load("UTC", err, sizeof(err));
    if (!g_utc) {
        fprintf(stderr, "fuzz_cron: %s\n", err);
        abort();
    }
    g_dst = sched_tz_load("Europe/Berlin", err, sizeof(err));
    atexit(unload);
    return 0;
}

/* In UTC a tick is a whole minute whose fields all match. */
static void check_utc_tick(const struct sched_cron *c, int64_t after, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    bool dm, wm, day;

    if (t == -1)
        return;
    if (t <= after || t - after > FIVE_YEARS_S || t % 60 != 0 || !gmtime_r(&tt, &tm))
        abort();
    dm = c->mdays >> tm.tm_mday & 1;
    wm = c->wdays >> tm.tm_wday & 1;
    day = (c->mday_any || c->wday_any) ? dm && wm : dm || wm;
    if (!(c->minutes >> tm.tm_min & 1) || !(c->hours >> tm.tm_hour & 1) ||
        !(c->months >> (tm.tm_mon + 1) & 1) || !day)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t afters[] = {0, 1711846799, 1729990799, 1735689599, 4102444800};
    char expr[FUZZ_INPUT_MAX + 1], err[512];
    struct sched_cron c;
    size_t n = size < FUZZ_INPUT_MAX ? size : FUZZ_INPUT_MAX;

    LLVMFuzzerInitialize(NULL, NULL);
    /* The parser takes C strings: an embedded NUL ends the expression, as it would in a file. */
    memcpy(expr, data, n);
    expr[n] = '\0';
    err[0] = '\0';
    if (sched_cron_parse(expr, &c, err, sizeof(err)) != 0) {
        if (!err[0])
            abort(); /* every refusal says why */
        return 0;
    }
    if (!c.minutes || !c.hours || !c.mdays || !c.months || !c.wdays || c.minutes >> 60 ||
        c.hours >> 24 || (c.mdays & 1) || (c.months & 1) || c.months >> 13 || c.wdays >> 7)
        abort();
    for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
        int64_t t = sched_cron_next(&c, g_utc, afters[i]);

        check_utc_tick(&c, afters[i], t);
        /* The tick found is the first: nothing in between. */
        if (t != -1 && t - 60 > afters[i] && sched_cron_next(&c, g_utc, t - 60) != t)
            abort();
        if (g_dst) {
            int64_t d = sched_cron_next(&c, g_dst, afters[i]);

            /* Berlin's offsets are whole hours, so its ticks and jumps are whole minutes. */
            if (d != -1 && (d <= afters[i] || d - afters[i] > FIVE_YEARS_S || d % 60 != 0))
                abort();
            if (d != -1 && sched_cron_next(&c, g_dst, d) != -1 &&
                sched_cron_next(&c, g_dst, d) <= d)
                abort();
        }
    }
    return 0;
}
