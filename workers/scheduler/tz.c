/* tz.c - TZif files (RFC 8536) and their POSIX TZ footer rules, evaluated with our own
 * calendar arithmetic: no setenv, tzset or localtime, so a zone's answers never depend on the
 * process's TZ and a loaded zone can be shared by threads without a lock. */
#include "scheduler/tz.h"

#include "scheduler/civil.h"
#include "sy/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_FILE_MAX    (256 * 1024)
#define TZ_NAME_MAX    255
#define TZ_HDR_LEN     44
#define TZ_TYPES_MAX   256
/* RFC 8536 3.2: utoff SHOULD lie in [-89999, 93599]; we require it, which keeps every offset
 * within SCHED_TZ_OFFSET_LIMIT. */
#define TZ_OFF_MIN (-89999)
#define TZ_OFF_MAX 93599
/* A footer's transition time may be -167..167 hours (RFC 8536 3.3.1). */
#define TZ_RULE_HOURS_MAX 167
#define TZ_CYCLE_S        ((int64_t)SCHED_CYCLE_DAYS * SCHED_DAY_S)
#define TZ_4D_S           (4 * (int64_t)SCHED_DAY_S)
/* A rule changes at most twice a year, and no four days see changes of more than two years:
 * with the table/rule boundary that leaves this many for the table in any four days. */
#define TZ_TABLE_CHANGES_4D (SCHED_TZ_MAX_CHANGES_4D - 5)

/* A day of the year in a POSIX TZ rule, and the local time of day the change happens at. */
struct tz_when {
    char kind; /* 'J': day n (1..365) not counting Feb 29; 'D': day n (0..365) counting it;
                * 'M': weekday `wday` of week `week` (5 = last) of month `mon` */
    int n;
    int mon, week, wday;
    int32_t secs;
};

struct tz_rule {
    int32_t std_off; /* seconds east of UTC */
    int32_t dst_off;
    bool has_dst;
    bool fixed;                /* the offset never changes under this rule */
    struct tz_when start, end; /* DST starts in standard time, ends in daylight time */
};

struct sched_tz {
    char *name;
    size_t n;          /* offset changes in the table */
    int64_t *at;       /* when each happens, ascending */
    int32_t *off;      /* the offset from then on */
    int32_t first_off; /* before the first change: the file's first time type */
    bool has_rule;
    int64_t rule_from; /* the rule decides at and after this instant (the last transition) */
    struct tz_rule rule;
};

/* ---- POSIX TZ strings ---------------------------------------------------------------- */

struct cursor {
    const char *p, *end;
};

static bool at_end(const struct cursor *c)
{
    return c->p >= c->end;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* A decimal number of 1..maxdigits digits. */
static bool tzs_num(struct cursor *c, int maxdigits, int *out)
{
    int v = 0, n = 0;

    while (!at_end(c) && is_digit(*c->p) && n < maxdigits) {
        v = v * 10 + (*c->p - '0');
        c->p++;
        n++;
    }
    if (n == 0 || (!at_end(c) && is_digit(*c->p)))
        return false;
    *out = v;
    return true;
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static bool tzs_abbr(struct cursor *c)
{
    const char *s;

    if (!at_end(c) && *c->p == '<') {
        s = ++c->p;
        while (!at_end(c) && (is_alpha(*c->p) || is_digit(*c->p) || *c->p == '+' || *c->p == '-'))
            c->p++;
        if (at_end(c) || *c->p != '>' || c->p - s < 3)
            return false;
        c->p++;
        return true;
    }
    s = c->p;
    while (!at_end(c) && is_alpha(*c->p))
        c->p++;
    return c->p - s >= 3;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh, in seconds. */
static bool tzs_hms(struct cursor *c, int maxh, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;

    if (!at_end(c) && (*c->p == '+' || *c->p == '-')) {
        sign = *c->p == '-' ? -1 : 1;
        c->p++;
    }
    if (!tzs_num(c, 3, &h) || h > maxh)
        return false;
    if (!at_end(c) && *c->p == ':') {
        c->p++;
        if (!tzs_num(c, 2, &m) || m > 59)
            return false;
        if (!at_end(c) && *c->p == ':') {
            c->p++;
            if (!tzs_num(c, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

/* date[/time]: Jn, n or Mm.w.d, the time defaulting to 02:00. */
static bool tzs_when(struct cursor *c, struct tz_when *w)
{
    memset(w, 0, sizeof(*w));
    if (at_end(c))
        return false;
    if (*c->p == 'J') {
        c->p++;
        w->kind = 'J';
        if (!tzs_num(c, 3, &w->n) || w->n < 1 || w->n > 365)
            return false;
    } else if (*c->p == 'M') {
        c->p++;
        w->kind = 'M';
        if (!tzs_num(c, 2, &w->mon) || w->mon < 1 || w->mon > 12 || at_end(c) || *c->p != '.')
            return false;
        c->p++;
        if (!tzs_num(c, 1, &w->week) || w->week < 1 || w->week > 5 || at_end(c) || *c->p != '.')
            return false;
        c->p++;
        if (!tzs_num(c, 1, &w->wday) || w->wday > 6)
            return false;
    } else {
        w->kind = 'D';
        if (!tzs_num(c, 3, &w->n) || w->n > 365)
            return false;
    }
    w->secs = 2 * 3600;
    if (!at_end(c) && *c->p == '/') {
        c->p++;
        if (!tzs_hms(c, TZ_RULE_HOURS_MAX, &w->secs))
            return false;
    }
    return true;
}

/* std offset [dst [offset] [,start[/time],end[/time]]]; without a rule, DST follows the US
 * rule (as tzcode and glibc assume). Offsets in the string count west of UTC. */
static bool tzs_parse(const char *s, size_t len, struct tz_rule *r)
{
    struct cursor c = {s, s + len};
    int32_t v;

    memset(r, 0, sizeof(*r));
    if (!tzs_abbr(&c) || !tzs_hms(&c, 24, &v))
        return false;
    r->std_off = -v;
    r->dst_off = r->std_off;
    if (at_end(&c))
        return true;
    if (!tzs_abbr(&c))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (!at_end(&c) && *c.p != ',') {
        if (!tzs_hms(&c, 24, &v))
            return false;
        r->dst_off = -v;
    }
    if (at_end(&c)) {
        r->start = (struct tz_when){.kind = 'M', .mon = 3, .week = 2, .secs = 7200};
        r->end = (struct tz_when){.kind = 'M', .mon = 11, .week = 1, .secs = 7200};
        return true;
    }
    if (*c.p != ',')
        return false;
    c.p++;
    if (!tzs_when(&c, &r->start) || at_end(&c) || *c.p != ',')
        return false;
    c.p++;
    if (!tzs_when(&c, &r->end))
        return false;
    return at_end(&c);
}

/* ---- evaluating a rule --------------------------------------------------------------- */

/* Day number of `w` in year y. */
static int64_t rule_day(const struct tz_when *w, int64_t y)
{
    int64_t jan1 = sched_days_from_civil(y, 1, 1), first;
    int day, len;

    if (w->kind == 'J')
        return jan1 + w->n - 1 + (sched_is_leap(y) && w->n >= 60);
    if (w->kind == 'D')
        return jan1 + w->n;
    first = sched_days_from_civil(y, w->mon, 1);
    day = (w->wday - sched_weekday(first) + 7) % 7 + 7 * (w->week - 1);
    len = sched_month_len(y, w->mon);
    while (day >= len)
        day -= 7;
    return first + day;
}

static int64_t rule_start(const struct tz_rule *r, int64_t y)
{
    return rule_day(&r->start, y) * SCHED_DAY_S + r->start.secs - r->std_off;
}

static int64_t rule_end(const struct tz_rule *r, int64_t y)
{
    return rule_day(&r->end, y) * SCHED_DAY_S + r->end.secs - r->dst_off;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;

    sched_civil_from_days(sched_fdiv(t, SCHED_DAY_S), &y, &m, &d);
    return y;
}

/* The offset the rule gives at t: the state set by the latest start or end at or before t.
 * Each year's changes lie within ten days of that year, so years y-2..y+1 hold the latest
 * one. An end and a start at the same instant leave DST on (DST all year, as RFC 8536 3.3.1
 * writes it). */
static int32_t rule_offset(const struct tz_rule *r, int64_t t)
{
    int64_t tr, y, best = INT64_MIN;
    bool dst = false;

    if (!r->has_dst)
        return r->std_off;
    /* The Gregorian calendar repeats every 400 years, and so does the rule. */
    tr = sched_fmod(t, TZ_CYCLE_S);
    y = year_of(tr);
    for (int64_t yy = y - 2; yy <= y + 1; yy++) {
        int64_t s = rule_start(r, yy), e = rule_end(r, yy);

        if (e <= tr && e > best) {
            best = e;
            dst = false;
        }
        if (s <= tr && s >= best) {
            best = s;
            dst = true;
        }
    }
    return dst ? r->dst_off : r->std_off;
}

/* The first start or end after tr at which the offset differs from `cur`, looking `years`
 * calendar years ahead; INT64_MIN when there is none. Years are visited as UTC years, each
 * with the changes of its neighbours that fall in it, so candidates come in time order. */
static int64_t rule_scan(const struct tz_rule *r, int64_t tr, int32_t cur, int years)
{
    int64_t y0 = year_of(tr);

    for (int64_t y = y0; y < y0 + years; y++) {
        int64_t lo = sched_days_from_civil(y, 1, 1) * SCHED_DAY_S;
        int64_t hi = sched_days_from_civil(y + 1, 1, 1) * SCHED_DAY_S;
        int64_t ev[6];
        size_t n = 0;

        for (int64_t yy = y - 1; yy <= y + 1; yy++) {
            int64_t both[2] = {rule_start(r, yy), rule_end(r, yy)};

            for (size_t k = 0; k < 2; k++) {
                if (both[k] > tr && both[k] >= lo && both[k] < hi)
                    ev[n++] = both[k];
            }
        }
        for (size_t i = 1; i < n; i++) {
            for (size_t j = i; j > 0 && ev[j - 1] > ev[j]; j--) {
                int64_t tmp = ev[j];
                ev[j] = ev[j - 1];
                ev[j - 1] = tmp;
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (rule_offset(r, ev[i]) != cur)
                return ev[i];
        }
    }
    return INT64_MIN;
}

static int64_t rule_next_change(const struct tz_rule *r, int64_t t)
{
    int64_t tr, c, delta;

    if (r->fixed)
        return INT64_MAX;
    tr = sched_fmod(t, TZ_CYCLE_S);
    /* A rule that changes at all does so within any 400 years. */
    c = rule_scan(r, tr, rule_offset(r, tr), 402);
    if (c == INT64_MIN)
        return INT64_MAX;
    delta = c - tr;
    return t > INT64_MAX - delta ? INT64_MAX : t + delta;
}

/* ---- the table ----------------------------------------------------------------------- */

/* How many table changes happen at or before t. */
static size_t changes_upto(const struct sched_tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int32_t table_offset(const struct sched_tz *tz, int64_t t)
{
    size_t i = changes_upto(tz, t);

    return i ? tz->off[i - 1] : tz->first_off;
}

int32_t sched_tz_offset(const struct sched_tz *tz, int64_t t)
{
    if (tz->has_rule && t >= tz->rule_from)
        return rule_offset(&tz->rule, t);
    return table_offset(tz, t);
}

int64_t sched_tz_next_change(const struct sched_tz *tz, int64_t t)
{
    size_t i;

    if (tz->has_rule && t >= tz->rule_from)
        return rule_next_change(&tz->rule, t);
    i = changes_upto(tz, t);
    if (i < tz->n && (!tz->has_rule || tz->at[i] < tz->rule_from))
        return tz->at[i];
    if (!tz->has_rule)
        return INT64_MAX;
    /* Across the boundary: the rule may take over with another offset, or carry on. */
    if (rule_offset(&tz->rule, tz->rule_from) != table_offset(tz, t))
        return tz->rule_from;
    return rule_next_change(&tz->rule, tz->rule_from);
}

const char *sched_tz_name(const struct sched_tz *tz)
{
    return tz->name;
}

void sched_tz_destroy(struct sched_tz *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->at);
    free(tz->off);
    free(tz);
}

/* ---- reading TZif -------------------------------------------------------------------- */

struct tzif_hdr {
    uint8_t version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_hdr(const uint8_t *p, size_t len, size_t off, struct tzif_hdr *h)
{
    if (off > len || len - off < TZ_HDR_LEN || memcmp(p + off, "TZif", 4) != 0)
        return false;
    p += off;
    h->version = p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return true;
}

/* Bytes of the data block after header h, with tsize-byte times; counts are 32-bit, so
 * this cannot overflow 64 bits. */
static uint64_t block_len(const struct tzif_hdr *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Fills tz's table from the data block at p (already known to lie inside the file). */
static bool parse_block(struct sched_tz *tz, const uint8_t *p, const struct tzif_hdr *h,
                        unsigned tsize, const char **why)
{
    const uint8_t *times = p;
    const uint8_t *idx = times + (size_t)h->timecnt * tsize;
    const uint8_t *types = idx + h->timecnt;
    const uint8_t *isstd = types + (size_t)h->typecnt * 6 + h->charcnt;
    const uint8_t *isut = isstd + h->isstdcnt;
    int32_t prev;

    if (h->typecnt == 0 || h->typecnt > TZ_TYPES_MAX) {
        *why = "time type count out of range";
        return false;
    }
    if (h->charcnt == 0) {
        *why = "no zone abbreviations";
        return false;
    }
    if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt)) {
        *why = "indicator counts differ from the time type count";
        return false;
    }
    if (h->leapcnt != 0) {
        *why = "leap-second records (a right/ zone) are not supported";
        return false;
    }
    for (uint32_t i = 0; i < h->typecnt; i++) {
        const uint8_t *tt = types + (size_t)i * 6;
        int32_t utoff = (int32_t)be32(tt);

        if (utoff < TZ_OFF_MIN || utoff > TZ_OFF_MAX || tt[4] > 1 || tt[5] >= h->charcnt) {
            *why = "bad time type";
            return false;
        }
        if ((h->isstdcnt && isstd[i] > 1) ||
            (h->isutcnt && (isut[i] > 1 || (isut[i] && !isstd[i])))) {
            *why = "bad standard/UT indicator";
            return false;
        }
    }
    tz->at = malloc(h->timecnt ? (size_t)h->timecnt * sizeof(*tz->at) : 1);
    tz->off = malloc(h->timecnt ? (size_t)h->timecnt * sizeof(*tz->off) : 1);
    if (!tz->at || !tz->off) {
        *why = "out of memory";
        return false;
    }
    tz->first_off = (int32_t)be32(types);
    prev = tz->first_off;
    tz->rule_from = INT64_MIN;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        int64_t t = tsize == 8 ? be64(times + (size_t)i * 8)
                               : (int64_t)(int32_t)be32(times + (size_t)i * 4);
        int32_t o;

        if (idx[i] >= h->typecnt) {
            *why = "transition names a missing time type";
            return false;
        }
        if (i > 0 && t <= tz->rule_from) {
            *why = "transition times not ascending";
            return false;
        }
        tz->rule_from = t;
        o = (int32_t)be32(types + (size_t)idx[i] * 6);
        /* Changes of abbreviation or DST flag alone do not move the clock: keep only the
         * transitions that change the offset. */
        if (o != prev) {
            tz->at[tz->n] = t;
            tz->off[tz->n] = o;
            tz->n++;
            prev = o;
        }
    }
    for (size_t i = 0; i + TZ_TABLE_CHANGES_4D < tz->n; i++) {
        if (tz->at[i + TZ_TABLE_CHANGES_4D] - tz->at[i] < TZ_4D_S) {
            *why = "offset changes too often";
            return false;
        }
    }
    return true;
}

/* The footer's rule, which takes over after the last transition. */
static bool parse_footer(struct sched_tz *tz, const uint8_t *p, size_t len, const char **why)
{
    const uint8_t *nl;

    if (len < 2 || p[0] != '\n' || !(nl = memchr(p + 1, '\n', len - 1)) ||
        (size_t)(nl - p) + 1 != len) {
        *why = "bad footer";
        return false;
    }
    if (nl == p + 1)
        return true; /* empty: the last transition's type holds for ever */
    if (!tzs_parse((const char *)p + 1, (size_t)(nl - p) - 1, &tz->rule)) {
        *why = "footer is not a valid POSIX TZ string";
        return false;
    }
    tz->has_rule = true;
    tz->rule.fixed =
        !tz->rule.has_dst || rule_scan(&tz->rule, 0, rule_offset(&tz->rule, 0), 402) == INT64_MIN;
    return true;
}

static bool parse_tzif(struct sched_tz *tz, const uint8_t *p, size_t len, const char **why)
{
    struct tzif_hdr h1, h2;
    uint64_t len1, len2;
    size_t off2, end2;

    if (!read_hdr(p, len, 0, &h1)) {
        *why = "not a TZif file";
        return false;
    }
    len1 = block_len(&h1, 4);
    if (len1 > len - TZ_HDR_LEN) {
        *why = "truncated";
        return false;
    }
    if (h1.version == 0) {
        if (TZ_HDR_LEN + len1 != len) {
            *why = "bytes after the data";
            return false;
        }
        return parse_block(tz, p + TZ_HDR_LEN, &h1, 4, why);
    }
    if (h1.version < '2' || h1.version > '4') {
        *why = "unsupported TZif version";
        return false;
    }
    off2 = TZ_HDR_LEN + (size_t)len1;
    if (!read_hdr(p, len, off2, &h2) || h2.version != h1.version) {
        *why = "missing or mismatched second header";
        return false;
    }
    len2 = block_len(&h2, 8);
    if (len2 > len - off2 - TZ_HDR_LEN) {
        *why = "truncated";
        return false;
    }
    end2 = off2 + TZ_HDR_LEN + (size_t)len2;
    return parse_block(tz, p + off2 + TZ_HDR_LEN, &h2, 8, why) &&
           parse_footer(tz, p + end2, len - end2, why);
}

static struct sched_tz *tz_new(const char *name, char *err, size_t errlen)
{
    struct sched_tz *tz = calloc(1, sizeof(*tz));

    if (!tz || !(tz->name = strdup(name))) {
        free(tz);
        sy_errf(err, errlen, "time zone '%s': out of memory", name);
        return NULL;
    }
    tz->rule_from = INT64_MIN;
    return tz;
}

struct sched_tz *sched_tz_load_mem(const char *name, const void *data, size_t len, char *err,
                                   size_t errlen)
{
    struct sched_tz *tz;
    const char *why = "";

    if (!name || !data) {
        sy_errf(err, errlen, "time zone: no name or data");
        return NULL;
    }
    if (len > TZ_FILE_MAX) {
        sy_errf(err, errlen, "time zone '%s': larger than %d KiB", name, TZ_FILE_MAX / 1024);
        return NULL;
    }
    tz = tz_new(name, err, errlen);
    if (tz && !parse_tzif(tz, data, len, &why)) {
        sy_errf(err, errlen, "time zone '%s': malformed TZif data: %s", name, why);
        sched_tz_destroy(tz);
        tz = NULL;
    }
    return tz;
}

static bool name_ok(const char *name)
{
    size_t len = strnlen(name, TZ_NAME_MAX + 1);

    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/' || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];

        if (!is_alpha(ch) && !is_digit(ch) && ch != '/' && ch != '_' && ch != '+' && ch != '-')
            return false;
    }
    return true;
}

/* Reads a regular file of at most TZ_FILE_MAX bytes. */
static int read_file(const char *path, uint8_t **out, size_t *outlen)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t cap, len = 0;
    int fd, rc;

    /* Non-blocking, so a FIFO planted in the zone directory cannot hang the open. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? -SY_ENOTFOUND : -SY_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = -SY_ENOTFOUND;
        goto out;
    }
    if (st.st_size > TZ_FILE_MAX) {
        rc = -SY_ETOOBIG;
        goto out;
    }
    /* One byte more than allowed, to notice a file that grew past the limit. */
    cap = TZ_FILE_MAX + 1;
    buf = malloc(cap);
    if (!buf) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -SY_EIO;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) {
            rc = -SY_ETOOBIG;
            goto out;
        }
    }
    *out = buf;
    *outlen = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

struct sched_tz *sched_tz_load(const char *name, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    struct sched_tz *tz = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    char path[4096];
    int rc;

    if (!name || !name_ok(name)) {
        sy_errf(err, errlen,
                "time zone '%.64s': not a zone name (letters, digits, '/', '_', '+', '-'; "
                "relative, without '..')",
                name ? name : "");
        return NULL;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
        return tz_new(name, err, errlen);
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        sy_errf(err, errlen, "time zone '%s': path too long", name);
        return NULL;
    }
    rc = read_file(path, &data, &len);
    if (rc == -SY_ENOTFOUND)
        sy_errf(err, errlen, "unknown time zone '%s' (no zone file in %s)", name, dir);
    else if (rc == -SY_ETOOBIG)
        sy_errf(err, errlen, "time zone '%s': file larger than %d KiB", name, TZ_FILE_MAX / 1024);
    else if (rc != 0)
        sy_errf(err, errlen, "time zone '%s': cannot read %s: %s", name, path, sy_strerror(rc));
    else
        tz = sched_tz_load_mem(name, data, len, err, errlen);
    free(data);
    return tz;
}
