/* schedule.c - the schedule file: loading and checking its jobs, when each ticks, the jitter
 * and message id of a tick, and the plan of what is due under a job's missed-tick policy. */
#include "schedule.h"

#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sy/doc.h"
#include "sy/err.h"
#include "sy/msg.h"
#include "sy/schema.h"
#include "sy/topology.h"
#include "tz.h"

#define EVERY_MAX_S       (31 * 86400)
#define GRACE_MAX_S       86400
#define GRACE_DEFAULT_S   30
#define CRON_JITTER_MAX_S 3600
#define VALUE_MAX         256 /* a setting's text after expansion, NUL included */
#define DATA_MAX_DEPTH    8
#define DATA_MAX_BYTES    (64 * 1024)
#define DATA_PATH_MAX     256
#define TIME_LIMIT        (INT64_C(1) << 60)
/* A cron job's ticks are distinct instants on whole minutes (a DST jump aside), so the
 * look-back window holds about one tick a minute at most. The bound only guards the loops;
 * no valid expression reaches it. */
#define CRON_STEPS_MAX  (SCHED_CRON_LOOKBACK_S / 60 * 2 + 1024)
#define TOPIC_WORDS_MAX 128
#define MSG_SOURCE      "scheduler"

static const char *const top_keys[] = {"jobs", NULL};
static const char *const job_keys[] = {"name",  "every",       "offset", "cron",   "tz",
                                       "type",  "data",        "jitter", "missed", "catch_up_max",
                                       "grace", "description", NULL};

struct loader {
    const struct sy_doc *doc;
    const char *path;
    char *err;
    size_t errlen;
    char job[SCHED_JOB_NAME_MAX + 16]; /* "job 'name'", "job #N", or "" outside any job */
};

static void fail(struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every loader error reads "path:line: job 'name': why" ("path:line: why" outside jobs). */
static void fail(struct loader *ld, int line, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    sy_errf(ld->err, ld->errlen, "%s:%d: %s%s%s", ld->path, line > 0 ? line : 1, ld->job,
            ld->job[0] ? ": " : "", why);
}

/* sy_node_check_keys reports "path:line: unknown key ..."; the job's label goes after the line
 * so that the message names the job like every other error. */
static int check_keys(struct loader *ld, const struct sy_node *map, const char *const *allowed)
{
    char why[768];
    size_t plen = strlen(ld->path);
    int line = 0, used = 0;

    if (sy_node_check_keys(ld->doc, map, allowed, why, sizeof why) == 0)
        return 0;
    if (strncmp(why, ld->path, plen) == 0 && sscanf(why + plen, ":%d: %n", &line, &used) == 1 &&
        used > 0)
        fail(ld, line, "%s", why + plen + used);
    else
        sy_errf(ld->err, ld->errlen, "%s", why);
    return -SY_ECONFIG;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p)
        memcpy(p, s, n);
    return p;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool valid_job_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > SCHED_JOB_NAME_MAX)
        return false;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || is_digit(*s) || *s == '.' || *s == '_' || *s == '-'))
            return false;
    }
    return true;
}

/* A message type is a routing key without wildcards: words of [a-z0-9_] joined by dots. */
static bool valid_type(const char *s)
{
    size_t n = strlen(s);
    bool word = false;

    if (n == 0 || n > SY_MSG_TYPE_MAX)
        return false;
    for (; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || is_digit(*s) || *s == '_')
            word = true;
        else if (*s == '.' && word)
            word = false;
        else
            return false;
    }
    return word;
}

/* "5m": a whole number (at most 9 digits) and one of s, m, h, d. */
static bool parse_duration(const char *s, int64_t *out)
{
    int64_t v = 0, unit;
    size_t digits = 0;

    for (; is_digit(*s); s++) {
        if (++digits > 9)
            return false;
        v = v * 10 + (*s - '0');
    }
    if (digits == 0)
        return false;
    switch (*s) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return false;
    }
    if (s[1] != '\0')
        return false;
    *out = v * unit;
    return true;
}

/* A duration for people, in the largest unit that divides it: "90s", "5m", "1h", "2d". */
static void format_duration(int64_t s, char *buf, size_t bufsz)
{
    if (s != 0 && s % 86400 == 0)
        snprintf(buf, bufsz, "%" PRId64 "d", s / 86400);
    else if (s != 0 && s % 3600 == 0)
        snprintf(buf, bufsz, "%" PRId64 "h", s / 3600);
    else if (s != 0 && s % 60 == 0)
        snprintf(buf, bufsz, "%" PRId64 "m", s / 60);
    else
        snprintf(buf, bufsz, "%" PRId64 "s", s);
}

/* A setting as read: the value node, the text as written, and the text after expansion. */
struct setting {
    const struct sy_node *node;
    const char *raw;
    char val[VALUE_MAX];
    char shown[2 * VALUE_MAX + 16]; /* "'val'" or "'val' (from 'raw')" for messages */
};

/* Reads setting `key` of a job into s, expanding ${} when `expand`. 1 when present, 0 when
 * absent, -SY_ECONFIG (reported) when it is not a plain value. */
static int read_setting(struct loader *ld, const struct sy_node *job, const char *key, bool expand,
                        struct setting *s)
{
    char why[256];

    s->node = sy_node_get(job, key);
    if (!s->node)
        return 0;
    s->raw = sy_node_str(s->node);
    if (!s->raw || sy_node_is_null(s->node)) {
        fail(ld, sy_node_line(s->node), "%s: expected a value", key);
        return -SY_ECONFIG;
    }
    if (expand) {
        if (sy_doc_expand_env(s->raw, s->val, sizeof s->val, why, sizeof why) != 0) {
            fail(ld, sy_node_line(s->node), "%s: %s", key, why);
            return -SY_ECONFIG;
        }
    } else if (snprintf(s->val, sizeof s->val, "%s", s->raw) >= (int)sizeof s->val) {
        fail(ld, sy_node_line(s->node), "%s: longer than %zu bytes", key, sizeof s->val - 1);
        return -SY_ECONFIG;
    }
    if (strcmp(s->val, s->raw) == 0)
        snprintf(s->shown, sizeof s->shown, "'%s'", s->val);
    else
        snprintf(s->shown, sizeof s->shown, "'%s' (from '%s')", s->val, s->raw);
    return 1;
}

/* A duration setting within [min, max]; *out keeps its default when the key is absent. */
static int read_duration(struct loader *ld, const struct sy_node *job, const char *key, int64_t min,
                         int64_t max, int64_t *out, const struct sy_node **at)
{
    struct setting s;
    char lo[32], hi[32];
    int rc = read_setting(ld, job, key, true, &s);

    if (at)
        *at = s.node;
    if (rc <= 0)
        return rc;
    if (!parse_duration(s.val, out) || *out < min || *out > max) {
        format_duration(min, lo, sizeof lo);
        format_duration(max, hi, sizeof hi);
        fail(ld, sy_node_line(s.node),
             "%s: %s is not a duration from %s to %s (a whole number with s, m, h or d)", key,
             s.shown, lo, hi);
        return -SY_ECONFIG;
    }
    return 1;
}

/* --- data: YAML to msgpack ------------------------------------------------------------- */

static bool is_bool_text(const char *s, bool *v)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *v = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *v = false;
        return true;
    }
    return false;
}

/* YAML 1.2 core int, decimal only: [-+]?[0-9]+ */
static bool is_decimal_int(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (!is_digit(*s))
        return false;
    while (is_digit(*s))
        s++;
    return *s == '\0';
}

/* YAML 1.2 core float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, [-+]?.inf and .nan
 * (in their three spellings). Sets *v. */
static bool is_core_float(const char *s, double *v)
{
    const char *p = s;
    size_t int_digits = 0, frac_digits = 0;
    bool neg = false;

    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        *v = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (p == s && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
        *v = NAN;
        return true;
    }
    for (; is_digit(*p); p++)
        int_digits++;
    if (*p == '.') {
        for (p++; is_digit(*p); p++)
            frac_digits++;
    }
    if (int_digits == 0 && frac_digits == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        size_t exp_digits = 0;

        p++;
        if (*p == '+' || *p == '-')
            p++;
        for (; is_digit(*p); p++)
            exp_digits++;
        if (exp_digits == 0)
            return false;
    }
    if (*p != '\0')
        return false;
    *v = strtod(s, NULL);
    return true;
}

static int pack_text(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    return msgpack_pack_str(pk, n) == 0 && msgpack_pack_str_body(pk, s, n) == 0 ? 0 : -SY_ENOMEM;
}

/* Appends "<sep><step>" to the path of a data value, for messages; returns the old length. */
static size_t path_push(char *path, const char *sep, const char *step)
{
    size_t len = strlen(path);

    snprintf(path + len, DATA_PATH_MAX - len, "%s%s", sep, step);
    return len;
}

static int pack_node(struct loader *ld, msgpack_packer *pk, const struct sy_node *n, int depth,
                     char *path)
{
    enum sy_node_kind kind = sy_node_kind(n);
    int rc = 0;

    if (kind == SY_NODE_MAP || kind == SY_NODE_SEQ) {
        size_t len = sy_node_len(n);

        if (depth > DATA_MAX_DEPTH) {
            fail(ld, sy_node_line(n), "%s: nested deeper than %d levels", path, DATA_MAX_DEPTH);
            return -SY_ECONFIG;
        }
        /* the document holds at most SY_DOC_MAX_NODES nodes, so len fits */
        if ((kind == SY_NODE_MAP ? msgpack_pack_map(pk, (uint32_t)len)
                                 : msgpack_pack_array(pk, (uint32_t)len)) != 0)
            return -SY_ENOMEM;
        for (size_t i = 0; i < len && rc == 0; i++) {
            const char *key = NULL;
            const struct sy_node *v = sy_node_at(n, i, &key);
            char idx[32];
            size_t back;

            if (kind == SY_NODE_MAP) {
                if ((rc = pack_text(pk, key)) != 0)
                    return rc;
                back = path_push(path, ".", key);
            } else {
                snprintf(idx, sizeof idx, "[%zu]", i);
                back = path_push(path, "", idx);
            }
            rc = pack_node(ld, pk, v, depth + 1, path);
            path[back] = '\0';
        }
        return rc;
    }

    const char *s = sy_node_str(n);
    bool b;
    double d;

    if (!sy_node_plain(n))
        return pack_text(pk, s);
    if (sy_node_is_null(n))
        return msgpack_pack_nil(pk) == 0 ? 0 : -SY_ENOMEM;
    if (is_bool_text(s, &b))
        return (b ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) == 0 ? 0 : -SY_ENOMEM;
    if (is_decimal_int(s)) {
        long long v;
        char why[256];

        if (sy_node_int(n, INT64_MIN, INT64_MAX, &v, why, sizeof why) != 0) {
            fail(ld, sy_node_line(n), "%s: %.64s does not fit a 64-bit integer", path, s);
            return -SY_ECONFIG;
        }
        return msgpack_pack_int64(pk, (int64_t)v) == 0 ? 0 : -SY_ENOMEM;
    }
    if (is_core_float(s, &d))
        return msgpack_pack_double(pk, d) == 0 ? 0 : -SY_ENOMEM;
    return pack_text(pk, s);
}

/* Packs the job's data map (an empty map when there is none) into j->data. */
static int load_data(struct loader *ld, const struct sy_node *n, struct sched_job *j)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char path[DATA_PATH_MAX] = "data";
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (!n || sy_node_is_null(n)) {
        rc = msgpack_pack_map(&pk, 0) == 0 ? 0 : -SY_ENOMEM;
    } else if (sy_node_kind(n) != SY_NODE_MAP) {
        fail(ld, sy_node_line(n), "data: expected a map");
        rc = -SY_ECONFIG;
    } else {
        rc = pack_node(ld, &pk, n, 1, path);
    }
    if (rc != 0)
        goto out;
    if (sb.size > DATA_MAX_BYTES) {
        fail(ld, sy_node_line(n), "data: %zu bytes packed, more than the %d allowed", sb.size,
             DATA_MAX_BYTES);
        rc = -SY_ECONFIG;
        goto out;
    }
    j->data_len = sb.size;
    j->data = msgpack_sbuffer_release(&sb);
out:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* --- message checks -------------------------------------------------------------------- */

struct words {
    const char *w[TOPIC_WORDS_MAX];
    size_t len[TOPIC_WORDS_MAX];
    size_t n;
};

static bool split_words(const char *s, struct words *out)
{
    out->n = 0;
    for (;;) {
        const char *start = s;

        while (*s && *s != '.')
            s++;
        if (out->n == TOPIC_WORDS_MAX)
            return false;
        out->w[out->n] = start;
        out->len[out->n++] = (size_t)(s - start);
        if (!*s)
            return true;
        s++;
    }
}

static bool word_is(const struct words *w, size_t i, const char *lit)
{
    return w->len[i] == strlen(lit) && memcmp(w->w[i], lit, w->len[i]) == 0;
}

/* Whether routing key `key` matches binding key `pattern` by AMQP topic rules: words between
 * dots, '*' stands for exactly one word and '#' for zero or more. Dynamic programming over
 * the words, so no pattern costs more than words(pattern) * words(key) steps. */
static bool topic_match(const char *pattern, const char *key)
{
    struct words p, k;
    bool prev[TOPIC_WORDS_MAX + 1], cur[TOPIC_WORDS_MAX + 1];

    if (!split_words(pattern, &p) || !split_words(key, &k))
        return false;
    /* prev[j]: the pattern words so far match the first j words of the key */
    prev[0] = true;
    for (size_t j = 1; j <= k.n; j++)
        prev[j] = false;
    for (size_t i = 0; i < p.n; i++) {
        bool hash = word_is(&p, i, "#"), star = word_is(&p, i, "*");

        cur[0] = hash && prev[0];
        for (size_t j = 1; j <= k.n; j++) {
            if (hash)
                cur[j] = prev[j] || cur[j - 1];
            else
                cur[j] = prev[j - 1] && (star || (p.len[i] == k.len[j - 1] &&
                                                  memcmp(p.w[i], k.w[j - 1], p.len[i]) == 0));
        }
        memcpy(prev, cur, (k.n + 1) * sizeof prev[0]);
    }
    return prev[k.n];
}

/* The job's message as the scheduler would send it must pass the type's schema. */
static int check_schema(struct loader *ld, const struct sched_job *j,
                        const struct sy_schemas *schemas, int line)
{
    char id[SCHED_TICK_ID_MAX + 1], why[512];
    void *body = NULL;
    size_t len = 0;
    struct sy_msg *msg = NULL;
    int rc;

    if (!sy_schemas_has(schemas, j->type)) {
        fail(ld, j->line, "type: no message schema for '%s'", j->type);
        rc = -SY_ECONFIG;
        goto out;
    }
    sched_tick_id(j->name, 0, 0, id, sizeof id);
    rc = sy_msg_encode(j->type, id, MSG_SOURCE, 0, j->data, j->data_len, &body, &len);
    if (rc == -SY_ENOMEM)
        goto out;
    if (rc != 0) {
        fail(ld, line, "data: cannot be sent as a message (%s)", sy_strerror(rc));
        rc = -SY_ECONFIG;
        goto out;
    }
    rc = sy_msg_decode(body, len, &msg, why, sizeof why);
    if (rc == 0)
        rc = sy_schemas_check(schemas, msg, why, sizeof why);
    if (rc != 0) {
        fail(ld, line, "the message does not fit the schema of '%s': %s", j->type, why);
        rc = -SY_ECONFIG;
    }
out:
    sy_msg_destroy(msg);
    free(body);
    return rc;
}

static int check_route(struct loader *ld, const struct sched_job *j, const struct sy_topology *topo)
{
    for (size_t w = 0; w < topo->nworkers; w++) {
        for (size_t r = 0; r < topo->workers[w].nroutes; r++) {
            if (topic_match(topo->workers[w].routes[r], j->type))
                return 0;
        }
    }
    fail(ld, j->line,
         "type: no worker's route in the topology matches '%s', so nothing would "
         "consume it",
         j->type);
    return -SY_ECONFIG;
}

/* --- one job --------------------------------------------------------------------------- */

static int load_name(struct loader *ld, const struct sy_node *n, struct sched_job *j,
                     const struct sched_job *prev, size_t nprev)
{
    const struct sy_node *v = sy_node_get(n, "name");
    const char *s = sy_node_str(v);

    if (!v) {
        fail(ld, j->line, "name: required");
        return -SY_ECONFIG;
    }
    if (!s || sy_node_is_null(v)) {
        fail(ld, sy_node_line(v), "name: expected a value");
        return -SY_ECONFIG;
    }
    if (!valid_job_name(s)) {
        fail(ld, sy_node_line(v),
             "name: '%.64s' is not a job name ([a-z0-9._-], 1 to %d characters)", s,
             SCHED_JOB_NAME_MAX);
        return -SY_ECONFIG;
    }
    snprintf(ld->job, sizeof ld->job, "job '%s'", s);
    for (size_t i = 0; i < nprev; i++) {
        if (strcmp(prev[i].name, s) == 0) {
            fail(ld, sy_node_line(v), "name: used by another job too (first at line %d)",
                 prev[i].line);
            return -SY_ECONFIG;
        }
    }
    j->name = dup_str(s);
    return j->name ? 0 : -SY_ENOMEM;
}

static int load_type(struct loader *ld, const struct sy_node *n, struct sched_job *j)
{
    const struct sy_node *v = sy_node_get(n, "type");
    const char *s = sy_node_str(v);

    if (!v) {
        fail(ld, j->line, "type: required (the message type to publish)");
        return -SY_ECONFIG;
    }
    if (!s || sy_node_is_null(v) || !valid_type(s)) {
        fail(ld, sy_node_line(v),
             "type: '%.64s' is not a message type (words of a-z, 0-9 and _ joined by dots)",
             s ? s : "(not a value)");
        return -SY_ECONFIG;
    }
    j->type = dup_str(s);
    return j->type ? 0 : -SY_ENOMEM;
}

/* every and offset. */
static int load_interval(struct loader *ld, const struct sy_node *n, struct sched_job *j)
{
    const struct sy_node *at = NULL;
    char a[32], b[32];
    int rc;

    if ((rc = read_duration(ld, n, "every", 1, EVERY_MAX_S, &j->every_s, NULL)) < 0)
        return rc;
    if ((rc = read_duration(ld, n, "offset", 0, EVERY_MAX_S, &j->offset_s, &at)) < 0)
        return rc;
    if (j->offset_s >= j->every_s) {
        format_duration(j->offset_s, a, sizeof a);
        format_duration(j->every_s, b, sizeof b);
        fail(ld, sy_node_line(at), "offset: %s must be less than every (%s)", a, b);
        return -SY_ECONFIG;
    }
    return 0;
}

/* cron and tz; the expression as parsed (after expansion) goes to expr, for `when`. */
static int load_cron(struct loader *ld, const struct sy_node *n, struct sched_job *j,
                     char expr[VALUE_MAX])
{
    struct setting s;
    char why[256];
    int rc;

    if ((rc = read_setting(ld, n, "cron", true, &s)) < 0)
        return rc;
    if (sched_cron_parse(s.val, &j->cron, why, sizeof why) != 0) {
        fail(ld, sy_node_line(s.node), "cron: %s: %s", s.shown, why);
        return -SY_ECONFIG;
    }
    memcpy(expr, s.val, VALUE_MAX);
    if ((rc = read_setting(ld, n, "tz", true, &s)) < 0)
        return rc;
    j->tz = sched_tz_load(rc == 1 ? s.val : "UTC", why, sizeof why);
    if (!j->tz) {
        fail(ld, rc == 1 ? sy_node_line(s.node) : j->line, "tz: %s", why);
        return -SY_ECONFIG;
    }
    return 0;
}

/* missed and catch_up_max. */
static int load_policy(struct loader *ld, const struct sy_node *n, struct sched_job *j)
{
    struct setting s;
    int rc;

    j->missed = SCHED_SKIP;
    if ((rc = read_setting(ld, n, "missed", false, &s)) < 0)
        return rc;
    if (rc == 1) {
        if (strcmp(s.val, "catch_up") == 0) {
            j->missed = SCHED_CATCH_UP;
        } else if (strcmp(s.val, "skip") != 0) {
            fail(ld, sy_node_line(s.node), "missed: '%.64s' is not skip or catch_up", s.val);
            return -SY_ECONFIG;
        }
    }
    j->catch_up_max = 1;
    if ((rc = read_setting(ld, n, "catch_up_max", true, &s)) < 0)
        return rc;
    if (rc == 1) {
        const char *p = s.val;
        unsigned v = 0;

        if (j->missed != SCHED_CATCH_UP) {
            fail(ld, sy_node_line(s.node), "catch_up_max: only with missed: catch_up");
            return -SY_ECONFIG;
        }
        for (; is_digit(*p) && v <= SCHED_CATCH_UP_MAX; p++)
            v = v * 10 + (unsigned)(*p - '0');
        if (p == s.val || *p != '\0' || v < 1 || v > SCHED_CATCH_UP_MAX) {
            fail(ld, sy_node_line(s.node), "catch_up_max: %s is not a whole number from 1 to %d",
                 s.shown, SCHED_CATCH_UP_MAX);
            return -SY_ECONFIG;
        }
        j->catch_up_max = v;
    }
    return 0;
}

static int load_job(struct loader *ld, const struct sy_node *n, size_t idx, struct sched_job *j,
                    const struct sched_job *prev, const struct sy_schemas *schemas,
                    const struct sy_topology *topo)
{
    const struct sy_node *every, *cron, *v, *data;
    char when[VALUE_MAX + 160], expr[VALUE_MAX] = "", a[32], b[32];
    int rc;

    snprintf(ld->job, sizeof ld->job, "job #%zu", idx + 1);
    j->line = sy_node_line(n);
    if (sy_node_kind(n) != SY_NODE_MAP) {
        fail(ld, j->line, "expected a map (name, type, and every or cron)");
        return -SY_ECONFIG;
    }
    if ((rc = load_name(ld, n, j, prev, idx)) != 0 || (rc = check_keys(ld, n, job_keys)) != 0 ||
        (rc = load_type(ld, n, j)) != 0)
        return rc;
    if ((v = sy_node_get(n, "description")) && !sy_node_str(v)) {
        fail(ld, sy_node_line(v), "description: expected text");
        return -SY_ECONFIG;
    }

    every = sy_node_get(n, "every");
    cron = sy_node_get(n, "cron");
    if (!every == !cron) {
        fail(ld, j->line,
             every ? "give either every or cron, not both"
                   : "every or cron: one of them is required");
        return -SY_ECONFIG;
    }
    if (every && (v = sy_node_get(n, "tz"))) {
        fail(ld, sy_node_line(v), "tz: only with cron (an interval does not depend on a zone)");
        return -SY_ECONFIG;
    }
    if (cron && (v = sy_node_get(n, "offset"))) {
        fail(ld, sy_node_line(v), "offset: only with every");
        return -SY_ECONFIG;
    }
    if ((rc = every ? load_interval(ld, n, j) : load_cron(ld, n, j, expr)) != 0)
        return rc;

    if ((rc = read_duration(ld, n, "jitter", 0, EVERY_MAX_S, &j->jitter_s, &v)) < 0)
        return rc;
    if (every && j->jitter_s >= j->every_s) {
        format_duration(j->jitter_s, a, sizeof a);
        format_duration(j->every_s, b, sizeof b);
        fail(ld, sy_node_line(v), "jitter: %s must be less than every (%s)", a, b);
        return -SY_ECONFIG;
    }
    if (cron && j->jitter_s >= CRON_JITTER_MAX_S) {
        format_duration(j->jitter_s, a, sizeof a);
        fail(ld, sy_node_line(v), "jitter: %s must be less than 1h for a cron job", a);
        return -SY_ECONFIG;
    }
    j->grace_s = GRACE_DEFAULT_S;
    if ((rc = read_duration(ld, n, "grace", 1, GRACE_MAX_S, &j->grace_s, NULL)) < 0)
        return rc;
    if ((rc = load_policy(ld, n, j)) != 0)
        return rc;

    data = sy_node_get(n, "data");
    if ((rc = load_data(ld, data, j)) != 0)
        return rc;

    if (every) {
        format_duration(j->every_s, a, sizeof a);
        format_duration(j->offset_s, b, sizeof b);
        if (j->offset_s)
            snprintf(when, sizeof when, "every %s offset %s", a, b);
        else
            snprintf(when, sizeof when, "every %s", a);
    } else {
        snprintf(when, sizeof when, "%s (%s)", expr, sched_tz_name(j->tz));
    }
    j->when = dup_str(when);
    if (!j->when)
        return -SY_ENOMEM;

    if (schemas && (rc = check_schema(ld, j, schemas, data ? sy_node_line(data) : j->line)) != 0)
        return rc;
    if (topo && (rc = check_route(ld, j, topo)) != 0)
        return rc;
    return 0;
}

static int load_root(struct loader *ld, const struct sy_node *root, struct sched_schedule *s,
                     const struct sy_schemas *schemas, const struct sy_topology *topo)
{
    const struct sy_node *jobs;
    size_t count;
    int rc;

    if (!root || sy_node_kind(root) != SY_NODE_MAP) {
        fail(ld, sy_node_line(root), "expected a map with a 'jobs' sequence");
        return -SY_ECONFIG;
    }
    if ((rc = check_keys(ld, root, top_keys)) != 0)
        return rc;
    jobs = sy_node_get(root, "jobs");
    if (!jobs) {
        fail(ld, sy_node_line(root), "jobs: required");
        return -SY_ECONFIG;
    }
    count = sy_node_len(jobs);
    if (sy_node_kind(jobs) != SY_NODE_SEQ || count == 0 || count > SCHED_JOBS_MAX) {
        fail(ld, sy_node_line(jobs), "jobs: expected a sequence of 1 to %d jobs", SCHED_JOBS_MAX);
        return -SY_ECONFIG;
    }
    s->jobs = calloc(count, sizeof *s->jobs);
    if (!s->jobs)
        return -SY_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        s->njobs = i + 1;
        rc = load_job(ld, sy_node_at(jobs, i, NULL), i, &s->jobs[i], s->jobs, schemas, topo);
        if (rc != 0)
            return rc;
    }
    return 0;
}

struct sched_schedule *sched_schedule_load(const char *path, const struct sy_schemas *schemas,
                                           const struct sy_topology *topo, char *err, size_t errlen)
{
    struct sched_schedule *s = NULL;
    struct sy_doc *doc = NULL;
    struct loader ld = {.path = path, .err = err, .errlen = errlen, .job = ""};
    int rc = -SY_ENOMEM;

    if (!path) {
        sy_errf(err, errlen, "schedule: no file given");
        return NULL;
    }
    doc = sy_doc_load_file(path, err, errlen);
    if (!doc) {
        rc = -SY_ECONFIG; /* err says why */
        goto out;
    }
    ld.doc = doc;
    ld.path = sy_doc_name(doc);
    s = calloc(1, sizeof *s);
    if (!s || !(s->path = dup_str(path)))
        goto out;
    rc = load_root(&ld, sy_doc_root(doc), s, schemas, topo);
out:
    if (rc != 0) {
        if (rc == -SY_ENOMEM)
            sy_errf(err, errlen, "%s: %s", path, sy_strerror(rc));
        sched_schedule_destroy(s);
        s = NULL;
    }
    sy_doc_destroy(doc);
    return s;
}

void sched_schedule_destroy(struct sched_schedule *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->njobs; i++) {
        struct sched_job *j = &s->jobs[i];

        free(j->name);
        free(j->type);
        free(j->data);
        free(j->when);
        sched_tz_destroy(j->tz);
    }
    free(s->jobs);
    free(s->path);
    free(s);
}

const struct sched_job *sched_schedule_find(const struct sched_schedule *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->njobs; i++) {
        if (strcmp(s->jobs[i].name, name) == 0)
            return &s->jobs[i];
    }
    return NULL;
}

/* --- ticks ----------------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b != 0 && a < 0)
        q--;
    return q;
}

static int64_t clamp_time(int64_t t)
{
    return t < -TIME_LIMIT ? -TIME_LIMIT : t > TIME_LIMIT ? TIME_LIMIT : t;
}

int64_t sched_job_next(const struct sched_job *j, int64_t after)
{
    if (after < -TIME_LIMIT || after > TIME_LIMIT)
        return -1;
    if (j->every_s > 0)
        return (floor_div(after - j->offset_s, j->every_s) + 1) * j->every_s + j->offset_s;
    return sched_cron_next(&j->cron, j->tz, after);
}

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME  UINT64_C(0x100000001b3)

int64_t sched_job_jitter(const struct sched_job *j, int64_t tick)
{
    uint64_t h = FNV_OFFSET, u = (uint64_t)tick;

    if (j->jitter_s <= 0)
        return 0;
    /* FNV-1a over the name, a NUL, and the tick in little-endian bytes: the same on every
     * machine. */
    for (const unsigned char *p = (const unsigned char *)j->name; *p; p++)
        h = (h ^ *p) * FNV_PRIME;
    h *= FNV_PRIME;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((u >> (8 * i)) & 0xff)) * FNV_PRIME;
    /* FNV leaves ticks that differ in one byte close together in the low bits that the modulo
     * keeps; a final avalanche (MurmurHash3's) spreads them over the range. */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return (int64_t)(h % (uint64_t)j->jitter_s);
}

void sched_tick_id(const char *job, int64_t tick, int manual, char *buf, size_t bufsz)
{
    const char *suffix = manual ? "/manual" : "";
    time_t t = (time_t)tick;
    struct tm tm;

    if (!buf || bufsz == 0)
        return;
    /* Years outside 0000..9999 would not fit the fixed width; they are written as seconds. */
    if ((int64_t)t == tick && gmtime_r(&t, &tm) && tm.tm_year >= -1900 && tm.tm_year <= 9999 - 1900)
        snprintf(buf, bufsz, "%s@%04d-%02d-%02dT%02d:%02d:%02dZ%s", job, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, suffix);
    else
        snprintf(buf, bufsz, "%s@%" PRId64 "%s", job, tick, suffix);
}

/* --- planning -------------------------------------------------------------------------- */

static int64_t due_at(const struct sched_job *j, int64_t tick)
{
    return tick + sched_job_jitter(j, tick);
}

/* Interval ticks are t_k = k * every + offset, and jitter < every keeps their due times in
 * order, so the due ticks and, among them, the missed ones are runs of k found by division:
 * one check at each boundary (a jitter can hold back at most one tick), whatever the gap
 * since the cursor. */
static void plan_interval(const struct sched_job *j, int64_t cursor, int64_t now,
                          struct sched_plan *p)
{
    const int64_t e = j->every_s, o = j->offset_s;
    const int64_t k0 = floor_div(cursor - o, e) + 1; /* first tick after the cursor */
    int64_t kd, km, keep, pf, planned, q;

    kd = floor_div(now - o, e); /* newest tick due, unless its jitter holds it back */
    if (kd >= k0 && due_at(j, kd * e + o) > now)
        kd--;
    km = floor_div(now - j->grace_s - 1 - o, e); /* newest tick missed, likewise */
    if (km >= k0 && due_at(j, km * e + o) >= now - j->grace_s)
        km--;
    if (kd < k0 - 1)
        kd = k0 - 1;
    if (km < k0 - 1)
        km = k0 - 1;

    /* ticks k0..km are missed, km+1..kd on time */
    keep = 0;
    if (j->missed == SCHED_CATCH_UP)
        keep = km - k0 + 1 < (int64_t)j->catch_up_max ? km - k0 + 1 : (int64_t)j->catch_up_max;
    pf = km - keep + 1; /* first planned tick */
    planned = kd - pf + 1;
    p->dropped = (uint64_t)(pf - k0);
    p->dropped_last = pf > k0 ? (pf - 1) * e + o : 0;
    p->n = planned > SCHED_PLAN_MAX ? SCHED_PLAN_MAX : (size_t)planned;
    p->more = planned > SCHED_PLAN_MAX;
    for (size_t i = 0; i < p->n; i++)
        p->ticks[i] = (pf + (int64_t)i) * e + o;
    q = pf + (int64_t)p->n;
    p->next_due = due_at(j, q * e + o);
}

/* Cron ticks are enumerated, and only within the look-back window. A first pass counts the
 * missed ticks among the due ones (the policy needs their number to keep the newest) and
 * remembers the newest few; a second pass sorts ticks into dropped and planned. When every
 * on-time tick is newer than the newest dropped one (always, unless the jitter is wider than
 * the gap between ticks), the second pass starts right after that tick instead of walking the
 * dropped ones again, so a long outage costs one pass, not two. */
static void plan_cron(const struct sched_job *j, int64_t cursor, int64_t now, struct sched_plan *p)
{
    const int64_t window = now - SCHED_CRON_LOOKBACK_S, late = now - j->grace_s;
    /* the newest keep + 1 missed ticks, by missed count modulo ring_len */
    int64_t ring[SCHED_CATCH_UP_MAX + 1];
    const uint64_t kept_max = j->missed == SCHED_CATCH_UP ? j->catch_up_max : 0;
    const uint64_t ring_len = kept_max + 1;
    int64_t from = cursor, t, first_on_time = 0;
    uint64_t missed = 0, keep, drop, seen = 0;
    bool on_time_seen = false, dropped_counted = false;
    long steps;

    if (cursor < window) {
        t = sched_cron_next(&j->cron, j->tz, cursor);
        if (t != -1 && t <= window) {
            p->dropped = 1;
            p->dropped_last = window;
        }
        from = window;
    }
    t = sched_cron_next(&j->cron, j->tz, from);
    for (steps = 0; t != -1 && steps < CRON_STEPS_MAX; steps++) {
        int64_t due = due_at(j, t);

        if (due > now)
            break;
        if (due < late) {
            ring[missed % ring_len] = t;
            missed++;
        } else if (!on_time_seen) {
            on_time_seen = true;
            first_on_time = t;
        }
        t = sched_cron_next(&j->cron, j->tz, t);
    }
    keep = missed < kept_max ? missed : kept_max;
    drop = missed - keep;
    if (drop > 0) {
        /* the newest dropped tick is missed tick number drop - 1, still in the ring */
        int64_t newest_dropped = ring[(drop - 1) % ring_len];

        if (!on_time_seen || first_on_time > newest_dropped) {
            p->dropped += drop;
            p->dropped_last = newest_dropped;
            from = newest_dropped;
            dropped_counted = true;
        }
    }

    t = sched_cron_next(&j->cron, j->tz, from);
    for (steps = 0; t != -1 && steps < CRON_STEPS_MAX; steps++) {
        int64_t due = due_at(j, t);

        if (due > now)
            break;
        if (!dropped_counted && due < late && seen++ < drop) {
            p->dropped++;
            p->dropped_last = t;
        } else if (p->n == SCHED_PLAN_MAX) {
            p->more = 1;
            break;
        } else {
            p->ticks[p->n++] = t;
        }
        t = sched_cron_next(&j->cron, j->tz, t);
    }
    p->next_due = t == -1 ? -1 : due_at(j, t);
}

void sched_job_plan(const struct sched_job *j, int64_t cursor, int64_t now, struct sched_plan *p)
{
    memset(p, 0, sizeof *p);
    p->next_due = -1;
    cursor = clamp_time(cursor);
    now = clamp_time(now);
    if (j->every_s > 0)
        plan_interval(j, cursor, now, p);
    else
        plan_cron(j, cursor, now, p);
}
