/* cron.c - five-field cron expressions: parsed into bit sets, and their next firing instant
 * in a time zone, found a local day at a time with DST gaps and overlaps settled as cron.h
 * promises. */
#include "scheduler/cron.h"

#include "scheduler/civil.h"
#include "scheduler/tz.h"
#include "sy/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define CRON_EXPR_MAX 256
/* How much of an offending number or name an error message repeats. */
#define CRON_SHOWN 16
/* The search gives up five years (of at most 1827 days) after `after`. */
#define CRON_HORIZON_S ((int64_t)1827 * SCHED_DAY_S)
/* `after` must lie in years 1..9999, which keeps all arithmetic far from overflow. */
#define CRON_T_MIN (-62135596800LL)
#define CRON_T_MAX 253402300799LL
/* Pieces of constant offset in the window a day is searched over (shorter than four days). */
#define CRON_SEGS_MAX (SCHED_TZ_MAX_CHANGES_4D + 1)

enum { F_MIN, F_HOUR, F_MDAY, F_MON, F_WDAY, F_COUNT };

struct field {
    const char *name;
    int lo, hi; /* values accepted */
    int last;   /* where '*' and N/step end: day-of-week's 7 is only another name for Sunday */
    const char *const *names; /* names[i] is value lo + i */
    int nnames;
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const wday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct field fields[F_COUNT] = {
    {"minute", 0, 59, 59, NULL, 0},          {"hour", 0, 23, 23, NULL, 0},
    {"day-of-month", 1, 31, 31, NULL, 0},    {"month", 1, 12, 12, month_names, 12},
    {"day-of-week", 0, 7, 6, wday_names, 7},
};

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Names compare without regard to ASCII case, whatever the locale says about case. */
static bool same_name(const char *s, size_t len, const char *name)
{
    size_t i = 0;

    for (; i < len && name[i]; i++) {
        char a = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
        char b = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];

        if (a != b)
            return false;
    }
    return i == len && !name[i];
}

static int shown(const char *s, const char *e)
{
    return e - s > CRON_SHOWN ? CRON_SHOWN : (int)(e - s);
}

/* The error for the character at p of item [s, e) that no rule of the grammar accepts. */
static bool bad_char(const struct field *f, const char *s, const char *p, const char *e, char *err,
                     size_t errlen)
{
    if (p >= e)
        sy_errf(err, errlen, "%s: '%.*s' is incomplete", f->name, shown(s, e), s);
    else if (*p && strchr("?#LlWw", *p))
        sy_errf(err, errlen, "%s: '%c' is not supported", f->name, *p);
    else if (*p > ' ' && *p < 127)
        sy_errf(err, errlen, "%s: unexpected '%c' in '%.*s'", f->name, *p, shown(s, e), s);
    else
        sy_errf(err, errlen, "%s: unexpected byte 0x%02x", f->name, (unsigned char)*p);
    return false;
}

/* A number, or a name where the field has names, at *pp in item [s, e). */
static bool parse_value(const struct field *f, const char *s, const char **pp, const char *e,
                        int *out, char *err, size_t errlen)
{
    const char *p = *pp, *v = p;
    long n = 0;

    if (p < e && is_digit(*p)) {
        while (p < e && is_digit(*p)) {
            if (n <= f->hi)
                n = n * 10 + (*p - '0');
            p++;
        }
        if (n < f->lo || n > f->hi) {
            sy_errf(err, errlen, "%s: %.*s is out of range %d-%d", f->name, shown(v, p), v, f->lo,
                    f->hi);
            return false;
        }
        *out = (int)n;
        *pp = p;
        return true;
    }
    if (p < e && is_alpha(*p)) {
        while (p < e && is_alpha(*p))
            p++;
        for (int i = 0; i < f->nnames; i++) {
            if (same_name(v, (size_t)(p - v), f->names[i])) {
                *out = f->lo + i;
                *pp = p;
                return true;
            }
        }
        if (strchr("LlWw", *v) && (p - v == 1 || (p - v == 2 && strchr("Ww", v[1]))))
            sy_errf(err, errlen, "%s: '%.*s' is not supported", f->name, (int)(p - v), v);
        else if (f->names)
            sy_errf(err, errlen, "%s: unknown name '%.*s'", f->name, shown(v, p), v);
        else
            sy_errf(err, errlen, "%s: unexpected '%.*s' (numbers only)", f->name, shown(v, p), v);
        return false;
    }
    return bad_char(f, s, p, e, err, errlen);
}

/* One list item: '*', N or N-M, each with an optional /step. */
static bool parse_item(const struct field *f, const char *s, const char *e, uint64_t *bits,
                       char *err, size_t errlen)
{
    const char *p = s;
    int lo, hi, step = 1;
    bool single = false;

    if (p == e) {
        sy_errf(err, errlen, "%s: empty list item", f->name);
        return false;
    }
    if (*p == '*') {
        lo = f->lo;
        hi = f->last;
        p++;
    } else {
        if (!parse_value(f, s, &p, e, &lo, err, errlen))
            return false;
        hi = lo;
        single = true;
        if (p < e && *p == '-') {
            p++;
            if (!parse_value(f, s, &p, e, &hi, err, errlen))
                return false;
            single = false;
            if (lo > hi) {
                sy_errf(err, errlen, "%s: range '%.*s' is reversed", f->name, shown(s, p), s);
                return false;
            }
        }
    }
    if (p < e && *p == '/') {
        const char *v = ++p;
        int span = f->last - f->lo + 1;
        long n = 0;

        while (p < e && is_digit(*p)) {
            if (n <= span)
                n = n * 10 + (*p - '0');
            p++;
        }
        if (p == v) {
            if (p < e && !strchr("?#LlWw", *p)) {
                sy_errf(err, errlen, "%s: step in '%.*s' is not a number", f->name, shown(s, e), s);
                return false;
            }
            return bad_char(f, s, p, e, err, errlen);
        }
        if (n == 0) {
            sy_errf(err, errlen, "%s: step 0 never advances", f->name);
            return false;
        }
        if (n > span) {
            sy_errf(err, errlen, "%s: step %.*s is out of range 1-%d", f->name, shown(v, p), v,
                    span);
            return false;
        }
        step = (int)n;
        if (single)
            hi = f->last > lo ? f->last : lo;
    }
    if (p != e)
        return bad_char(f, s, p, e, err, errlen);
    for (int v = lo; v <= hi; v += step)
        *bits |= UINT64_C(1) << v;
    return true;
}

static bool parse_field(const struct field *f, const char *s, const char *e, uint64_t *bits,
                        char *err, size_t errlen)
{
    *bits = 0;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(e - s));
        const char *end = comma ? comma : e;

        if (!parse_item(f, s, end, bits, err, errlen))
            return false;
        if (!comma)
            return true;
        s = comma + 1;
    }
}

/* With one day field '*' a day must match both (the '*' one always does, unless it has a
 * step); can any chosen day of the month then exist in a chosen month? Feb 29 counts. With
 * both restricted, every weekday occurs in every month, so the question does not arise. */
static bool can_fire(const struct sched_cron *c)
{
    if (!c->mday_any && !c->wday_any)
        return true;
    for (int m = 1; m <= 12; m++) {
        int len = m == 2 ? 29 : sched_month_len(2001, m);

        if ((c->months >> m & 1) && (c->mdays & ((UINT64_C(1) << (len + 1)) - 2)))
            return true;
    }
    return false;
}

static int parse_macro(const char *s, const char *e, struct sched_cron *out, char *err,
                       size_t errlen)
{
    const char *w = s;

    while (w < e && !is_blank(*w))
        w++;
    for (const char *p = w; p < e; p++) {
        if (!is_blank(*p)) {
            sy_errf(err, errlen, "'%.*s' takes no fields", shown(s, w), s);
            return -SY_EINVAL;
        }
    }
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        if (same_name(s, (size_t)(w - s), macros[i].name))
            return sched_cron_parse(macros[i].expr, out, err, errlen);
    }
    sy_errf(err, errlen,
            "unknown macro '%.*s' (@hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
            "@annually)",
            shown(s, w), s);
    return -SY_EINVAL;
}

int sched_cron_parse(const char *expr, struct sched_cron *out, char *err, size_t errlen)
{
    struct sched_cron c = {0};
    const char *tok[F_COUNT], *tend[F_COUNT], *p, *e;
    uint64_t bits[F_COUNT];
    size_t len;
    int n = 0;

    if (!expr || !out) {
        sy_errf(err, errlen, "no cron expression");
        return -SY_EINVAL;
    }
    len = strnlen(expr, CRON_EXPR_MAX + 1);
    if (len > CRON_EXPR_MAX) {
        sy_errf(err, errlen, "cron expression longer than %d characters", CRON_EXPR_MAX);
        return -SY_EINVAL;
    }
    p = expr;
    e = expr + len;
    while (p < e && is_blank(*p))
        p++;
    if (p == e) {
        sy_errf(err, errlen, "empty cron expression");
        return -SY_EINVAL;
    }
    if (*p == '@')
        return parse_macro(p, e, out, err, errlen);
    while (p < e) {
        const char *s = p;

        while (p < e && !is_blank(*p))
            p++;
        if (n < F_COUNT) {
            tok[n] = s;
            tend[n] = p;
        }
        n++;
        while (p < e && is_blank(*p))
            p++;
    }
    if (n != F_COUNT) {
        sy_errf(err, errlen,
                "expected 5 fields (minute hour day-of-month month day-of-week), found %d", n);
        return -SY_EINVAL;
    }
    for (int i = 0; i < F_COUNT; i++) {
        if (!parse_field(&fields[i], tok[i], tend[i], &bits[i], err, errlen))
            return -SY_EINVAL;
    }
    c.minutes = bits[F_MIN];
    c.hours = (uint32_t)bits[F_HOUR];
    c.mdays = (uint32_t)bits[F_MDAY];
    c.months = (uint16_t)bits[F_MON];
    c.wdays = (uint8_t)((bits[F_WDAY] | bits[F_WDAY] >> 7) & 0x7f);
    c.mday_any = tok[F_MDAY][0] == '*';
    c.wday_any = tok[F_WDAY][0] == '*';
    c.hour_any = tend[F_HOUR] - tok[F_HOUR] == 1 && tok[F_HOUR][0] == '*';
    if (!can_fire(&c)) {
        sy_errf(err, errlen, "day-of-month: none of the days exists in the months chosen");
        return -SY_EINVAL;
    }
    *out = c;
    return 0;
}

/* ---- the next firing instant --------------------------------------------------------- */

/* An interval of instants [from, to) with one offset. */
struct seg {
    int64_t from, to;
    int32_t off;
};

/* Cuts [w0, w1) where the offset changes; returns how many pieces. */
static size_t segments(const struct sched_tz *tz, int64_t w0, int64_t w1, struct seg *s)
{
    size_t n = 0;

    for (int64_t p = w0; p < w1 && n < CRON_SEGS_MAX; n++) {
        int64_t e = sched_tz_next_change(tz, p);

        s[n].from = p;
        s[n].to = e < w1 ? e : w1;
        s[n].off = sched_tz_offset(tz, p);
        p = e;
    }
    return n;
}

/* The first instant after `after` at which local time L fires, INT64_MAX if none. The
 * segments cover every instant L can map to, in time order, so the first one holding L is its
 * first occurrence; with `every`, later ones fire too. A local time no segment holds was
 * jumped over: it fires at the jump, the start of the first segment whose clock passes L. */
static int64_t fire_at(const struct seg *s, size_t n, int64_t L, int64_t after, bool every)
{
    int64_t best = INT64_MAX;
    bool seen = false;

    for (size_t i = 0; i < n; i++) {
        int64_t t = L - s[i].off;

        if (t < s[i].from || t >= s[i].to)
            continue;
        if (t > after && t < best)
            best = t;
        if (!every)
            return best;
        seen = true;
    }
    if (seen)
        return best;
    for (size_t i = 0; i < n; i++) {
        if (s[i].to - 1 + s[i].off > L)
            return s[i].from > after ? s[i].from : INT64_MAX;
    }
    return INT64_MAX;
}

static bool day_matches(const struct sched_cron *c, int mday, int wday)
{
    bool dm = c->mdays >> mday & 1, wm = c->wdays >> wday & 1;

    if (c->mday_any || c->wday_any)
        return dm && wm;
    return dm || wm;
}

/* The best firing instant after `after` among the local minutes of the day starting at local
 * second `start`, or `best` if none beats it. Every instant local time L fires at lies
 * strictly within SCHED_TZ_OFFSET_LIMIT of L, which bounds what is worth looking at. */
static int64_t scan_day(const struct sched_cron *c, const struct sched_tz *tz, int64_t start,
                        int64_t after, int64_t best)
{
    const int64_t lim = (int64_t)SCHED_TZ_OFFSET_LIMIT;
    struct seg segs[CRON_SEGS_MAX];
    size_t n = segments(tz, start - lim - 60, start + SCHED_DAY_S + lim + 60, segs);

    for (int h = 0; h < 24; h++) {
        int64_t hs = start + (int64_t)h * 3600;

        if (!(c->hours >> h & 1) || hs + 3540 + lim <= after)
            continue;
        for (int m = 0; m < 60; m++) {
            int64_t L = hs + (int64_t)m * 60, f;

            if (!(c->minutes >> m & 1) || L + lim <= after)
                continue;
            if (L - lim >= best)
                return best;
            f = fire_at(segs, n, L, after, c->hour_any);
            if (f < best)
                best = f;
        }
    }
    return best;
}

int64_t sched_cron_next(const struct sched_cron *c, const struct sched_tz *tz, int64_t after)
{
    const int64_t lim = (int64_t)SCHED_TZ_OFFSET_LIMIT;
    int64_t best = INT64_MAX, horizon, day, y;
    int m, d;

    if (!c || !tz || after < CRON_T_MIN || after > CRON_T_MAX)
        return -1;
    horizon = after + CRON_HORIZON_S;
    /* The first local day that can hold a time firing after `after`. */
    day = sched_fdiv(after - lim, SCHED_DAY_S);
    sched_civil_from_days(day, &y, &m, &d);
    for (;;) {
        int64_t start = day * SCHED_DAY_S;

        if (start - lim >= best || start - lim > horizon)
            break;
        if (!(c->months >> m & 1)) {
            day += sched_month_len(y, m) - d + 1;
            d = 1;
        } else {
            /* A day whose last minute cannot fire after `after` is not worth cutting up. */
            if (start + SCHED_DAY_S - 60 + lim > after && day_matches(c, d, sched_weekday(day)))
                best = scan_day(c, tz, start, after, best);
            day++;
            d++;
            if (d <= sched_month_len(y, m))
                continue;
            d = 1;
        }
        if (++m > 12) {
            m = 1;
            y++;
        }
    }
    return best <= horizon ? best : -1;
}
