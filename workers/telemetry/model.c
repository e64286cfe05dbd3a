/* model.c - telemetry.yaml and the decoder of one MQTT message into readings (see model.h). */
#include "telemetry/model.h"

#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/doc.h"
#include "sy/err.h"

#define TOPICS_MAX       64
#define TOPIC_LEVELS_MAX 32
#define KINDS_MAX        128
#define METRICS_MAX      256 /* per kind */
#define RULES_MAX        1024
#define SUBS_MAX         16
#define US               1000000LL

enum format { FORMAT_AUTO, FORMAT_JSON, FORMAT_MSGPACK };

struct metric {
    char name[TM_NAME_MAX + 1];
    size_t len;
    bool text, has_min, has_max;
    double min, max;
};

struct kind {
    char name[TM_NAME_MAX + 1];
    size_t len;
    bool vehicle;
    struct metric *metrics; /* sorted by name */
    size_t nmetrics;
};

/* One level of a topic pattern: a literal, or '+' when lit is NULL. */
struct level {
    const char *lit;
    size_t len;
};

struct topic {
    char *text; /* the literals point into it */
    struct level lv[TOPIC_LEVELS_MAX];
    size_t nlv;
    int plant, kind, device, metric; /* level index, or -1 */
    const struct kind *fixed;
    enum format format;
};

struct tm_model {
    char group[TM_NAME_MAX + 1];
    char **subs;
    size_t nsubs;
    long long session_expiry_s, max_future_s, max_age_s;
    size_t max_payload;
    struct topic *topics;
    size_t ntopics;
    struct kind *kinds; /* sorted by name */
    size_t nkinds;
    struct tm_rule *rules;
    size_t nrules;
};

/* --- names ------------------------------------------------------------------------------ */

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
}

/* NULL for a good plant, kind, device, metric or rule name, else what is wrong with it. */
static const char *name_problem(const char *s, size_t len)
{
    if (len == 0)
        return "empty name";
    if (len > TM_NAME_MAX)
        return "name longer than 63 bytes";
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)s[i]))
            return "name with characters outside [A-Za-z0-9_.:-]";
    return NULL;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c ? c : (alen > blen) - (alen < blen);
}

static int kind_order(const void *a, const void *b)
{
    const struct kind *x = a, *y = b;

    return name_cmp(x->name, x->len, y->name, y->len);
}

static int metric_order(const void *a, const void *b)
{
    const struct metric *x = a, *y = b;

    return name_cmp(x->name, x->len, y->name, y->len);
}

static const struct kind *kind_find(const struct tm_model *m, const char *s, size_t len)
{
    size_t lo = 0, hi = m->nkinds;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(s, len, m->kinds[mid].name, m->kinds[mid].len);

        if (c == 0)
            return &m->kinds[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static const struct metric *metric_find(const struct kind *k, const char *s, size_t len)
{
    size_t lo = 0, hi = k->nmetrics;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(s, len, k->metrics[mid].name, k->metrics[mid].len);

        if (c == 0)
            return &k->metrics[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool is_time_key(const char *s, size_t len)
{
    return (len == 2 && memcmp(s, "ts", 2) == 0) || (len == 4 && memcmp(s, "time", 4) == 0) ||
           (len == 9 && memcmp(s, "timestamp", 9) == 0);
}

/* --- loading ----------------------------------------------------------------------------- */

struct loader {
    const struct sy_doc *doc;
    char *err;
    size_t errlen;
    struct tm_model *m;
};

static int fail(struct loader *ld, const struct sy_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "file:line: what" */
static int fail(struct loader *ld, const struct sy_node *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sy_errf(ld->err, ld->errlen, "%s:%d: %s", sy_doc_name(ld->doc), sy_node_line(n), msg);
    return -SY_ECONFIG;
}

/* The typed readers of sy/doc.h say "line N: key: why"; the file goes in front. */
static int fail_typed(struct loader *ld, const char *why)
{
    if (strncmp(why, "line ", 5) == 0)
        sy_errf(ld->err, ld->errlen, "%s:%s", sy_doc_name(ld->doc), why + 5);
    else
        sy_errf(ld->err, ld->errlen, "%s: %s", sy_doc_name(ld->doc), why);
    return -SY_ECONFIG;
}

static int check_keys(struct loader *ld, const struct sy_node *map, const char *path,
                      const char *const *keys)
{
    if (sy_node_kind(map) != SY_NODE_MAP)
        return fail(ld, map, "%s: expected a map", path);
    return sy_node_check_keys(ld->doc, map, keys, ld->err, ld->errlen) ? -SY_ECONFIG : 0;
}

/* Optional integer: *out keeps its default when the key is absent. */
static int opt_int(struct loader *ld, const struct sy_node *map, const char *key, long long min,
                   long long max, long long *out)
{
    const struct sy_node *n = sy_node_get(map, key);
    char why[512];

    if (n && sy_node_int(n, min, max, out, why, sizeof why) != 0)
        return fail_typed(ld, why);
    return 0;
}

static int opt_bool(struct loader *ld, const struct sy_node *map, const char *key, bool *out)
{
    const struct sy_node *n = sy_node_get(map, key);
    char why[512];

    if (n && sy_node_bool(n, out, why, sizeof why) != 0)
        return fail_typed(ld, why);
    return 0;
}

/* Text of a required scalar, or NULL after an error. */
static const char *req_text(struct loader *ld, const struct sy_node *map, const char *key,
                            const char *path)
{
    const struct sy_node *n = sy_node_get(map, key);

    if (!n) {
        fail(ld, map, "%s.%s: missing", path, key);
        return NULL;
    }
    if (sy_node_kind(n) != SY_NODE_SCALAR || sy_node_is_null(n)) {
        fail(ld, n, "%s.%s: expected text", path, key);
        return NULL;
    }
    return sy_node_str(n);
}

static int copy_name(struct loader *ld, const struct sy_node *n, const char *path, const char *s,
                     char *out)
{
    const char *why = name_problem(s, strlen(s));

    if (why)
        return fail(ld, n, "%s: %s", path, why);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* An MQTT filter: '+' and '#' only as whole levels, '#' only last. */
static bool filter_ok(const char *f)
{
    size_t len = strlen(f);

    if (len == 0 || len > TM_TOPIC_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool starts = i == 0 || f[i - 1] == '/', ends = i + 1 == len || f[i + 1] == '/';

        if (f[i] == '+' && !(starts && ends))
            return false;
        if (f[i] == '#' && !(starts && i + 1 == len))
            return false;
    }
    return true;
}

static int load_mqtt(struct loader *ld, const struct sy_node *mq)
{
    static const char *const keys[] = {"group", "subscriptions", "session_expiry_s", NULL};
    const struct sy_node *subs = sy_node_get(mq, "subscriptions");
    const char *group;
    int rc;

    if ((rc = check_keys(ld, mq, "mqtt", keys)) != 0)
        return rc;
    if (!(group = req_text(ld, mq, "group", "mqtt")))
        return -SY_ECONFIG;
    if ((rc = copy_name(ld, sy_node_get(mq, "group"), "mqtt.group", group, ld->m->group)) != 0)
        return rc;
    if ((rc = opt_int(ld, mq, "session_expiry_s", 0, 4294967295LL, &ld->m->session_expiry_s)) != 0)
        return rc;
    if (sy_node_kind(subs) != SY_NODE_SEQ || sy_node_len(subs) == 0 || sy_node_len(subs) > SUBS_MAX)
        return fail(ld, subs ? subs : mq, "mqtt.subscriptions: expected a list of 1 to %d filters",
                    SUBS_MAX);
    if (!(ld->m->subs = calloc(sy_node_len(subs) + 1, sizeof *ld->m->subs)))
        return fail(ld, subs, "out of memory");
    for (size_t i = 0; i < sy_node_len(subs); i++) {
        const struct sy_node *n = sy_node_at(subs, i, NULL);
        const char *f = sy_node_str(n);

        if (!f || sy_node_is_null(n) || !filter_ok(f))
            return fail(ld, n, "mqtt.subscriptions[%zu]: expected an MQTT topic filter", i);
        if (!(ld->m->subs[i] = strdup(f)))
            return fail(ld, n, "out of memory");
        ld->m->nsubs++;
    }
    return 0;
}

static int load_limits(struct loader *ld, const struct sy_node *l)
{
    static const char *const keys[] = {"max_payload", "max_future_s", "max_age_s", NULL};
    long long payload = (long long)ld->m->max_payload;
    int rc;

    if (!l)
        return 0;
    if ((rc = check_keys(ld, l, "limits", keys)) != 0 ||
        (rc = opt_int(ld, l, "max_payload", 16, 16LL << 20, &payload)) != 0 ||
        (rc = opt_int(ld, l, "max_future_s", 0, 366LL * 86400, &ld->m->max_future_s)) != 0 ||
        (rc = opt_int(ld, l, "max_age_s", 1, 3660LL * 86400, &ld->m->max_age_s)) != 0)
        return rc;
    ld->m->max_payload = (size_t)payload;
    return 0;
}

static int load_metric(struct loader *ld, const struct sy_node *n, const char *path,
                       struct metric *mt)
{
    static const char *const keys[] = {"min", "max", "text", NULL};
    const struct sy_node *lo = sy_node_get(n, "min"), *hi = sy_node_get(n, "max");
    char why[512];
    int rc;

    if (sy_node_is_null(n))
        return 0; /* `rate:` alone: numeric, unbounded */
    if ((rc = check_keys(ld, n, path, keys)) != 0 || (rc = opt_bool(ld, n, "text", &mt->text)))
        return rc;
    if (mt->text && (lo || hi))
        return fail(ld, lo ? lo : hi, "%s: a text metric has no min or max", path);
    if (lo && sy_node_double(lo, &mt->min, why, sizeof why) != 0)
        return fail_typed(ld, why);
    if (hi && sy_node_double(hi, &mt->max, why, sizeof why) != 0)
        return fail_typed(ld, why);
    mt->has_min = lo != NULL;
    mt->has_max = hi != NULL;
    if (lo && hi && mt->min > mt->max)
        return fail(ld, lo, "%s: min %g is above max %g", path, mt->min, mt->max);
    return 0;
}

static int load_kinds(struct loader *ld, const struct sy_node *kinds)
{
    static const char *const keys[] = {"vehicle", "metrics", NULL};
    struct tm_model *m = ld->m;
    char path[256];
    int rc;

    if (sy_node_kind(kinds) != SY_NODE_MAP || sy_node_len(kinds) == 0 ||
        sy_node_len(kinds) > KINDS_MAX)
        return fail(ld, kinds ? kinds : sy_doc_root(ld->doc),
                    "kinds: expected a map of 1 to %d kinds", KINDS_MAX);
    if (!(m->kinds = calloc(sy_node_len(kinds), sizeof *m->kinds)))
        return fail(ld, kinds, "out of memory");
    for (size_t i = 0; i < sy_node_len(kinds); i++) {
        const char *name = NULL;
        const struct sy_node *kn = sy_node_at(kinds, i, &name), *metrics;
        struct kind *k = &m->kinds[m->nkinds];

        snprintf(path, sizeof path, "kinds.%s", name);
        if ((rc = copy_name(ld, kn, path, name, k->name)) != 0 ||
            (rc = check_keys(ld, kn, path, keys)) != 0 ||
            (rc = opt_bool(ld, kn, "vehicle", &k->vehicle)) != 0)
            return rc;
        k->len = strlen(k->name);
        m->nkinds++;
        metrics = sy_node_get(kn, "metrics");
        if (sy_node_kind(metrics) != SY_NODE_MAP || sy_node_len(metrics) == 0 ||
            sy_node_len(metrics) > METRICS_MAX)
            return fail(ld, metrics ? metrics : kn, "%s.metrics: expected a map of 1 to %d metrics",
                        path, METRICS_MAX);
        if (!(k->metrics = calloc(sy_node_len(metrics), sizeof *k->metrics)))
            return fail(ld, metrics, "out of memory");
        for (size_t j = 0; j < sy_node_len(metrics); j++) {
            const char *mname = NULL;
            const struct sy_node *mn = sy_node_at(metrics, j, &mname);
            struct metric *mt = &k->metrics[k->nmetrics];
            char mpath[400];

            snprintf(mpath, sizeof mpath, "%s.metrics.%s", path, mname);
            if ((rc = copy_name(ld, mn, mpath, mname, mt->name)) != 0)
                return rc;
            mt->len = strlen(mt->name);
            if (is_time_key(mt->name, mt->len))
                return fail(ld, mn, "%s: '%s' is reserved for the time of a reading", mpath,
                            mt->name);
            if ((rc = load_metric(ld, mn, mpath, mt)) != 0)
                return rc;
            k->nmetrics++;
        }
        qsort(k->metrics, k->nmetrics, sizeof *k->metrics, metric_order);
    }
    qsort(m->kinds, m->nkinds, sizeof *m->kinds, kind_order);
    return 0;
}

static int parse_levels(struct loader *ld, const struct sy_node *n, const char *path, const char *s,
                        struct topic *t)
{
    static const char *const names[] = {"_", "plant", "kind", "device", "metric"};
    int *slot[] = {NULL, &t->plant, &t->kind, &t->device, &t->metric};
    size_t count = 0;

    t->plant = t->kind = t->device = t->metric = -1;
    for (const char *p = s;; count++) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t which = 0;

        while (which < 5 && !(strlen(names[which]) == len && memcmp(names[which], p, len) == 0))
            which++;
        if (which == 5)
            return fail(ld, n,
                        "%s.levels: unknown level name '%.*s' (plant, kind, device, "
                        "metric or _)",
                        path, (int)(len > 64 ? 64 : len), p);
        if (which > 0 && *slot[which] >= 0)
            return fail(ld, n, "%s.levels: '%s' named twice", path, names[which]);
        if (which > 0 && count < TOPIC_LEVELS_MAX)
            *slot[which] = (int)count;
        if (!e)
            break;
        p = e + 1;
    }
    if (count + 1 != t->nlv)
        return fail(ld, n, "%s.levels: %zu levels for a topic of %zu", path, count + 1, t->nlv);
    if (t->device < 0)
        return fail(ld, n, "%s.levels: no device level", path);
    return 0;
}

static int load_topic(struct loader *ld, const struct sy_node *n, const char *path, struct topic *t)
{
    static const char *const keys[] = {"topic", "levels", "kind", "format", NULL};
    const char *text, *levels, *fmt = "auto";
    int rc;

    if ((rc = check_keys(ld, n, path, keys)) != 0)
        return rc;
    if (!(text = req_text(ld, n, "topic", path)) || !(levels = req_text(ld, n, "levels", path)))
        return -SY_ECONFIG;
    if (!(t->text = strdup(text)))
        return fail(ld, n, "out of memory");
    for (char *p = t->text;;) {
        char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);

        if (t->nlv == TOPIC_LEVELS_MAX || strlen(text) > TM_TOPIC_MAX)
            return fail(ld, sy_node_get(n, "topic"), "%s.topic: more than %d levels or %d bytes",
                        path, TOPIC_LEVELS_MAX, TM_TOPIC_MAX);
        if (memchr(p, '#', len))
            return fail(ld, sy_node_get(n, "topic"),
                        "%s.topic: '#' is not supported, give every level ('+' for any)", path);
        if (memchr(p, '+', len) && len != 1)
            return fail(ld, sy_node_get(n, "topic"), "%s.topic: '+' must be a whole level", path);
        t->lv[t->nlv].lit = len == 1 && *p == '+' ? NULL : p;
        t->lv[t->nlv++].len = len;
        if (!e)
            break;
        p = e + 1;
    }
    if ((rc = parse_levels(ld, sy_node_get(n, "levels"), path, levels, t)) != 0)
        return rc;
    if (sy_node_get(n, "kind")) {
        const char *k = req_text(ld, n, "kind", path);

        if (!k)
            return -SY_ECONFIG;
        if (t->kind >= 0)
            return fail(ld, sy_node_get(n, "kind"), "%s.kind: the levels name the kind already",
                        path);
        if (!(t->fixed = kind_find(ld->m, k, strlen(k))))
            return fail(ld, sy_node_get(n, "kind"), "%s.kind: unknown kind '%.64s'", path, k);
    } else if (t->kind < 0) {
        return fail(ld, n, "%s: no kind level and no fixed kind", path);
    }
    if (sy_node_get(n, "format") && !(fmt = req_text(ld, n, "format", path)))
        return -SY_ECONFIG;
    if (strcmp(fmt, "auto") == 0)
        t->format = FORMAT_AUTO;
    else if (strcmp(fmt, "json") == 0)
        t->format = FORMAT_JSON;
    else if (strcmp(fmt, "msgpack") == 0)
        t->format = FORMAT_MSGPACK;
    else
        return fail(ld, sy_node_get(n, "format"),
                    "%s.format: expected json, msgpack or auto, got '%.64s'", path, fmt);
    return 0;
}

static int load_topics(struct loader *ld, const struct sy_node *topics)
{
    struct tm_model *m = ld->m;

    if (sy_node_kind(topics) != SY_NODE_SEQ || sy_node_len(topics) == 0 ||
        sy_node_len(topics) > TOPICS_MAX)
        return fail(ld, topics ? topics : sy_doc_root(ld->doc),
                    "topics: expected a list of 1 to %d topics", TOPICS_MAX);
    if (!(m->topics = calloc(sy_node_len(topics), sizeof *m->topics)))
        return fail(ld, topics, "out of memory");
    for (size_t i = 0; i < sy_node_len(topics); i++) {
        char path[32];
        int rc;

        snprintf(path, sizeof path, "topics[%zu]", i);
        m->ntopics++;
        if ((rc = load_topic(ld, sy_node_at(topics, i, NULL), path, &m->topics[i])) != 0)
            return rc;
    }
    return 0;
}

/* The metric a rule watches must be numeric: in its kind, or in some kind when it names none. */
static int rule_metric(struct loader *ld, const struct sy_node *n, const char *path,
                       const struct tm_rule *r)
{
    size_t len = strlen(r->metric);

    if (r->kind[0]) {
        const struct kind *k = kind_find(ld->m, r->kind, strlen(r->kind));
        const struct metric *mt = k ? metric_find(k, r->metric, len) : NULL;

        if (!k)
            return fail(ld, sy_node_get(n, "kind"), "%s.kind: unknown kind '%s'", path, r->kind);
        if (!mt)
            return fail(ld, sy_node_get(n, "metric"), "%s.metric: unknown metric '%s' of kind '%s'",
                        path, r->metric, r->kind);
        if (mt->text)
            return fail(ld, sy_node_get(n, "metric"), "%s.metric: '%s' is a text metric", path,
                        r->metric);
        return 0;
    }
    for (size_t i = 0; i < ld->m->nkinds; i++) {
        const struct metric *mt = metric_find(&ld->m->kinds[i], r->metric, len);

        if (mt && !mt->text)
            return 0;
    }
    return fail(ld, sy_node_get(n, "metric"), "%s.metric: no kind has a numeric metric '%s'", path,
                r->metric);
}

static int load_rule(struct loader *ld, const struct sy_node *n, const char *path,
                     struct tm_rule *r)
{
    static const char *const keys[] = {"name",  "kind",  "metric", "device",   "above",
                                       "below", "clear", "count",  "severity", NULL};
    const struct sy_node *above = sy_node_get(n, "above"), *below = sy_node_get(n, "below");
    const struct sy_node *clear = sy_node_get(n, "clear");
    const char *s;
    char why[512], sub[300];
    long long count = 1;
    int rc;

    if ((rc = check_keys(ld, n, path, keys)) != 0)
        return rc;
    snprintf(sub, sizeof sub, "%s.name", path);
    if (!(s = req_text(ld, n, "name", path)) ||
        (rc = copy_name(ld, sy_node_get(n, "name"), sub, s, r->name)) != 0)
        return -SY_ECONFIG;
    snprintf(sub, sizeof sub, "%s.metric", path);
    if (!(s = req_text(ld, n, "metric", path)) ||
        (rc = copy_name(ld, sy_node_get(n, "metric"), sub, s, r->metric)) != 0)
        return -SY_ECONFIG;
    if (sy_node_get(n, "kind")) {
        snprintf(sub, sizeof sub, "%s.kind", path);
        if (!(s = req_text(ld, n, "kind", path)) ||
            (rc = copy_name(ld, sy_node_get(n, "kind"), sub, s, r->kind)) != 0)
            return -SY_ECONFIG;
    }
    if ((rc = rule_metric(ld, n, path, r)) != 0)
        return rc;
    if (sy_node_get(n, "device")) {
        if (!(s = req_text(ld, n, "device", path)))
            return -SY_ECONFIG;
        if (strlen(s) == 0 || strlen(s) > TM_NAME_MAX)
            return fail(ld, sy_node_get(n, "device"), "%s.device: a glob of 1 to %d bytes", path,
                        TM_NAME_MAX);
        memcpy(r->device, s, strlen(s) + 1);
    }
    if (above && below)
        return fail(ld, below, "%s: both above and below", path);
    if (!above && !below)
        return fail(ld, n, "%s: neither above nor below", path);
    r->above = above != NULL;
    if (sy_node_double(above ? above : below, &r->raise, why, sizeof why) != 0)
        return fail_typed(ld, why);
    r->clear = r->raise;
    if (clear && sy_node_double(clear, &r->clear, why, sizeof why) != 0)
        return fail_typed(ld, why);
    if (r->above && r->clear > r->raise)
        return fail(ld, clear, "%s.clear: %g is above the raise level %g", path, r->clear,
                    r->raise);
    if (!r->above && r->clear < r->raise)
        return fail(ld, clear, "%s.clear: %g is below the raise level %g", path, r->clear,
                    r->raise);
    if ((rc = opt_int(ld, n, "count", 1, 1000000, &count)) != 0)
        return rc;
    r->count = (int)count;
    if (!(s = req_text(ld, n, "severity", path)))
        return -SY_ECONFIG;
    for (size_t i = 0; s[i] || i == 0; i++) {
        if (i >= sizeof r->severity - 1 ||
            !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return fail(ld, sy_node_get(n, "severity"),
                        "%s.severity: expected 1 to 15 of [a-z0-9_], got '%.64s'", path, s);
    }
    memcpy(r->severity, s, strlen(s) + 1);
    return 0;
}

static int load_rules(struct loader *ld, const struct sy_node *alerts)
{
    struct tm_model *m = ld->m;

    if (!alerts || sy_node_is_null(alerts))
        return 0;
    if (sy_node_kind(alerts) != SY_NODE_SEQ || sy_node_len(alerts) > RULES_MAX)
        return fail(ld, alerts, "alerts: expected a list of at most %d rules", RULES_MAX);
    if (sy_node_len(alerts) && !(m->rules = calloc(sy_node_len(alerts), sizeof *m->rules)))
        return fail(ld, alerts, "out of memory");
    for (size_t i = 0; i < sy_node_len(alerts); i++) {
        const struct sy_node *n = sy_node_at(alerts, i, NULL);
        char path[32];
        int rc;

        snprintf(path, sizeof path, "alerts[%zu]", i);
        if ((rc = load_rule(ld, n, path, &m->rules[i])) != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->rules[j].name, m->rules[i].name) == 0)
                return fail(ld, sy_node_get(n, "name"), "%s.name: '%s' is taken by alerts[%zu]",
                            path, m->rules[i].name, j);
        m->nrules++;
    }
    return 0;
}

void tm_model_free(struct tm_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nsubs; i++)
        free(m->subs[i]);
    free(m->subs);
    for (size_t i = 0; i < m->ntopics; i++)
        free(m->topics[i].text);
    free(m->topics);
    for (size_t i = 0; i < m->nkinds; i++)
        free(m->kinds[i].metrics);
    free(m->kinds);
    free(m->rules);
    free(m);
}

static struct tm_model *load(struct sy_doc *doc, char *err, size_t errlen)
{
    static const char *const keys[] = {"mqtt", "limits", "topics", "kinds", "alerts", NULL};
    const struct sy_node *root = sy_doc_root(doc);
    struct loader ld = {doc, err, errlen, NULL};

    if (!root || sy_node_kind(root) != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s: expected a map with mqtt, topics and kinds", sy_doc_name(doc));
        return NULL;
    }
    if (sy_node_check_keys(doc, root, keys, err, errlen) != 0)
        return NULL;
    if (!(ld.m = calloc(1, sizeof *ld.m))) {
        sy_errf(err, errlen, "out of memory");
        return NULL;
    }
    ld.m->session_expiry_s = 604800;
    ld.m->max_payload = 65536;
    ld.m->max_future_s = 300;
    ld.m->max_age_s = 604800;
    if (!sy_node_get(root, "mqtt")) {
        fail(&ld, root, "mqtt: missing");
        goto fail;
    }
    /* Kinds first: topics and rules name them. */
    if (load_mqtt(&ld, sy_node_get(root, "mqtt")) != 0 ||
        load_limits(&ld, sy_node_get(root, "limits")) != 0 ||
        load_kinds(&ld, sy_node_get(root, "kinds")) != 0 ||
        load_topics(&ld, sy_node_get(root, "topics")) != 0 ||
        load_rules(&ld, sy_node_get(root, "alerts")) != 0)
        goto fail;
    return ld.m;
fail:
    tm_model_free(ld.m);
    return NULL;
}

struct tm_model *tm_model_load(const char *path, char *err, size_t errlen)
{
    struct sy_doc *doc = sy_doc_load_file(path, err, errlen);
    struct tm_model *m = doc ? load(doc, err, errlen) : NULL;

    sy_doc_destroy(doc);
    return m;
}

struct tm_model *tm_model_load_mem(const char *name, const char *yaml, char *err, size_t errlen)
{
    struct sy_doc *doc = sy_doc_load_mem(name, yaml, strlen(yaml), err, errlen);
    struct tm_model *m = doc ? load(doc, err, errlen) : NULL;

    sy_doc_destroy(doc);
    return m;
}

const char *tm_model_group(const struct tm_model *m)
{
    return m->group;
}

size_t tm_model_subscriptions(const struct tm_model *m, const char *const **filters)
{
    *filters = (const char *const *)m->subs;
    return m->nsubs;
}

long long tm_model_session_expiry_s(const struct tm_model *m)
{
    return m->session_expiry_s;
}

size_t tm_model_max_payload(const struct tm_model *m)
{
    return m->max_payload;
}

size_t tm_model_rules(const struct tm_model *m, const struct tm_rule **rules)
{
    *rules = m->rules;
    return m->nrules;
}

/* --- values ----------------------------------------------------------------------------- */

/* One decoded value, JSON's or msgpack's; text points into the payload or the JSON tree. */
enum vtype { V_NUM, V_TEXT, V_BOOL, V_NULL, V_NESTED, V_OTHER };

struct val {
    enum vtype t;
    bool is_int;
    int64_t i; /* when is_int */
    double d;  /* numbers (also when is_int), booleans as 1 and 0 */
    const char *s;
    size_t n;
};

/* What is wrong with a text value: invalid UTF-8 (overlong forms, surrogates and code points
 * past U+10FFFF included) or a control character (C0, DEL, C1). */
static const char *text_problem(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], cp, need;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F)
                return "control character in text";
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07;
        else
            return "invalid UTF-8";
        if (n - i <= need)
            return "invalid UTF-8";
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return "invalid UTF-8";
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return "invalid UTF-8";
        if (cp >= 0x80 && cp <= 0x9F)
            return "control character in text";
        i += need + 1;
    }
    return NULL;
}

static int digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int mo, int d)
{
    int64_t era;
    int yoe, doy, doe;

    y -= mo <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (int)(y - era * 400);
    doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 'T' also 't' or a space, 'Z' also 'z'. A
 * leap second :60 reads as the next second; fractions past microseconds are dropped. */
static bool rfc3339(const char *s, size_t n, int64_t *us)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se, off = 0, dim;
    int64_t frac = 0;
    size_t i = 19;

    if (n < 20 || n > 64 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return false;
    y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60)
        return false;
    dim = mdays[mo - 1] + (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
    if (d > dim)
        return false;
    if (s[i] == '.') {
        size_t start = ++i;

        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (i - start < 6)
                frac = frac * 10 + (s[i] - '0');
        if (i == start)
            return false;
        for (size_t k = i - start; k < 6; k++)
            frac *= 10;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);

        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != n)
        return false;
    *us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) - off) * US + frac;
    return true;
}

/* A number's unit goes by its size: seconds below 1e11 (year 5138), milliseconds below 1e14,
 * microseconds below 1e17. */
static bool time_of(const struct val *v, int64_t *us)
{
    if (v->t == V_TEXT)
        return rfc3339(v->s, v->n, us);
    if (v->t != V_NUM)
        return false;
    if (v->is_int) {
        int64_t a = v->i < 0 ? -(v->i + 1) : v->i;

        if (a < 100000000000LL)
            *us = v->i * US;
        else if (a < 100000000000000LL)
            *us = v->i * 1000;
        else if (a < 100000000000000000LL)
            *us = v->i;
        else
            return false;
        return true;
    }
    if (!isfinite(v->d))
        return false;
    if (fabs(v->d) < 1e11)
        *us = llround(v->d * 1e6);
    else if (fabs(v->d) < 1e14)
        *us = llround(v->d * 1e3);
    else if (fabs(v->d) < 1e17)
        *us = llround(v->d);
    else
        return false;
    return true;
}

/* --- decoding ---------------------------------------------------------------------------- */

struct dec {
    const struct tm_model *m;
    const struct kind *kind;
    const char *kind_name, *plant, *device, *metric; /* from the topic, checked */
    size_t kind_len, plant_len, device_len, metric_len;
    const struct metric *mt; /* the topic's metric, when it has a metric level */
    struct tm_reading *out;
    size_t n, lim;
    int64_t now_us;
    struct val ts, value;
    const char *ts_key;
    bool has_ts, has_value, too_many;
    char stray[TM_NAME_MAX + 1]; /* a key besides value and ts, with a metric level */
    uint64_t seen[METRICS_MAX / 64];
};

static void put_name(char *dst, const char *s, size_t len)
{
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* A new entry with the topic's names, the arrival time and no value yet. */
static struct tm_reading *entry_new(struct dec *d)
{
    struct tm_reading *rd = &d->out[d->n++];

    put_name(rd->plant, d->plant, d->plant_len);
    put_name(rd->kind, d->kind_name, d->kind_len);
    put_name(rd->device, d->device, d->device_len);
    put_name(rd->metric, d->metric, d->metric_len);
    rd->ts_us = d->now_us;
    rd->value = 0;
    rd->is_text = false;
    rd->vehicle = d->kind && d->kind->vehicle;
    rd->text[0] = '\0';
    rd->why[0] = '\0';
    return rd;
}

static void why(struct tm_reading *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why(struct tm_reading *rd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rd->why, sizeof rd->why, fmt, ap);
    va_end(ap);
    if (!rd->why[0])
        snprintf(rd->why, sizeof rd->why, "rejected");
}

/* The whole message as one rejected entry. */
static size_t reject(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t reject(struct dec *d, const char *fmt, ...)
{
    struct tm_reading *rd;
    va_list ap;

    d->n = 0;
    rd = entry_new(d);
    va_start(ap, fmt);
    vsnprintf(rd->why, sizeof rd->why, fmt, ap);
    va_end(ap);
    return 1;
}

/* Checks v against metric mt and stores it in rd, or says why not. */
static void take_value(struct tm_reading *rd, const struct metric *mt, const struct val *v)
{
    const char *bad;
    double x;

    if (mt->text) {
        if (v->t != V_TEXT)
            return why(rd, "%s: not text", mt->name);
        if (v->n > TM_TEXT_MAX)
            return why(rd, "%s: text longer than %d bytes", mt->name, TM_TEXT_MAX);
        if ((bad = text_problem((const unsigned char *)v->s, v->n)))
            return why(rd, "%s: %s", mt->name, bad);
        memcpy(rd->text, v->s, v->n);
        rd->text[v->n] = '\0';
        rd->is_text = true;
        return;
    }
    switch (v->t) {
    case V_NUM:
    case V_BOOL:
        x = v->d;
        break;
    case V_TEXT:
        return why(rd, "%s: not a number", mt->name);
    case V_NULL:
        return why(rd, "%s: no value (null)", mt->name);
    case V_NESTED:
        return why(rd, "%s: a map or array is not a value", mt->name);
    default:
        return why(rd, "%s: not a number", mt->name);
    }
    if (!isfinite(x))
        return why(rd, "%s: not a finite number", mt->name);
    rd->value = x;
    if (mt->has_min && x < mt->min)
        return why(rd, "%s %.10g below min %.10g", mt->name, x, mt->min);
    if (mt->has_max && x > mt->max)
        return why(rd, "%s %.10g above max %.10g", mt->name, x, mt->max);
}

/* One key and value of a map payload. */
static void on_pair(struct dec *d, const struct val *key, const struct val *v)
{
    const struct metric *mt;
    struct tm_reading *rd;
    const char *bad;
    size_t idx;

    if (key->t == V_TEXT && is_time_key(key->s, key->n)) {
        if (!d->has_ts) {
            d->ts = *v;
            d->has_ts = true;
            d->ts_key = key->n == 2 ? "ts" : key->n == 4 ? "time" : "timestamp";
        }
        return;
    }
    if (d->mt) { /* {"value": v, "ts": t} */
        if (key->t == V_TEXT && key->n == 5 && memcmp(key->s, "value", 5) == 0) {
            d->value = *v;
            d->has_value = true;
        } else if (!d->stray[0]) {
            if (key->t == V_TEXT && !name_problem(key->s, key->n))
                put_name(d->stray, key->s, key->n);
            else
                strcpy(d->stray, "?");
        }
        return;
    }
    if (d->n >= d->lim) {
        d->too_many = true;
        return;
    }
    rd = entry_new(d);
    if (key->t != V_TEXT)
        return why(rd, "a metric name that is not text");
    if ((bad = name_problem(key->s, key->n)))
        return why(rd, "metric: %s", bad);
    put_name(rd->metric, key->s, key->n);
    if (!(mt = metric_find(d->kind, key->s, key->n)))
        return why(rd, "unknown metric '%s' of kind '%s'", rd->metric, d->kind->name);
    idx = (size_t)(mt - d->kind->metrics);
    if (d->seen[idx / 64] >> (idx % 64) & 1)
        return why(rd, "%s: given twice", mt->name);
    d->seen[idx / 64] |= UINT64_C(1) << (idx % 64);
    take_value(rd, mt, v);
}

/* A payload that is not a map. */
static void on_bare(struct dec *d, const struct val *v)
{
    d->value = *v;
    d->has_value = true;
}

static void dec_reset(struct dec *d)
{
    d->n = 0;
    d->has_ts = d->has_value = d->too_many = false;
    d->stray[0] = '\0';
    memset(d->seen, 0, sizeof d->seen);
}

/* After the payload: the entry of a metric level, and every entry's time. */
static size_t finish(struct dec *d, bool was_map)
{
    int64_t ts = d->now_us, lim_f = d->m->max_future_s * US, lim_a = d->m->max_age_s * US;
    bool ts_ok = !d->has_ts || time_of(&d->ts, &ts);

    if (d->too_many)
        return reject(d, "more than %zu metrics", d->lim);
    if (d->mt) {
        struct tm_reading *rd = entry_new(d);

        if (d->stray[0])
            why(rd, "%s: unexpected key '%s' (value, ts)", d->mt->name, d->stray);
        else if (!d->has_value)
            why(rd, "%s: no value", d->mt->name);
        else
            take_value(rd, d->mt, &d->value);
    } else if (!was_map) {
        return reject(d, "payload: expected a map of metrics");
    } else if (d->n == 0) {
        return reject(d, "payload: no metrics");
    }
    for (size_t i = 0; i < d->n; i++) {
        struct tm_reading *rd = &d->out[i];
        int64_t ahead;

        rd->ts_us = ts;
        if (rd->why[0])
            continue;
        if (!ts_ok) {
            why(rd, "%s: not a time (Unix s, ms, us or RFC 3339)", d->ts_key);
            continue;
        }
        if (__builtin_sub_overflow(ts, d->now_us, &ahead))
            ahead = ts > d->now_us ? INT64_MAX : INT64_MIN;
        if (ahead > lim_f)
            why(rd, "timestamp %lld s in the future", (long long)(ahead / US));
        else if (ahead < -lim_a)
            why(rd, "timestamp older than %lld s", d->m->max_age_s);
    }
    return d->n;
}

/* --- JSON -------------------------------------------------------------------------------- */

static void json_val(const json_t *j, struct val *v)
{
    v->is_int = false;
    switch (json_typeof(j)) {
    case JSON_INTEGER:
        v->t = V_NUM;
        v->is_int = true;
        v->i = json_integer_value(j);
        v->d = (double)v->i;
        break;
    case JSON_REAL:
        v->t = V_NUM;
        v->d = json_real_value(j);
        break;
    case JSON_STRING:
        v->t = V_TEXT;
        v->s = json_string_value(j);
        v->n = json_string_length(j);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v->t = V_BOOL;
        v->d = json_is_true(j) ? 1 : 0;
        break;
    case JSON_NULL:
        v->t = V_NULL;
        break;
    default:
        v->t = V_NESTED;
        break;
    }
}

/* -1 when the payload is not JSON (jerr says why); else the entries. Duplicate keys and
 * trailing text are refused; jansson validates UTF-8 and refuses \u0000. */
static int decode_json(struct dec *d, const void *p, size_t len, json_error_t *jerr, size_t *n)
{
    json_t *j = json_loadb(p, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, jerr);
    struct val v;

    if (!j)
        return -1;
    if (json_is_object(j)) {
        const char *k;
        json_t *jv;

        json_object_foreach(j, k, jv)
        {
            struct val key = {.t = V_TEXT, .s = k, .n = strlen(k)};

            json_val(jv, &v);
            on_pair(d, &key, &v);
        }
    } else {
        json_val(j, &v);
        on_bare(d, &v);
    }
    *n = finish(d, json_is_object(j));
    json_decref(j);
    return 0;
}

/* --- msgpack ----------------------------------------------------------------------------- */

/* A reader of its own rather than msgpack-c's unpacker: that one allocates an array or map's
 * elements from the count in its header before reading them, so five bytes (dd ff ff ff ff)
 * would ask for 100 GB. This one allocates nothing and checks every length against the bytes
 * left. */
struct mp {
    const uint8_t *p, *end;
};

static uint64_t be(const uint8_t *b, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}

static const uint8_t *mp_take(struct mp *r, uint64_t n)
{
    const uint8_t *at = r->p;

    if ((uint64_t)(r->end - r->p) < n)
        return NULL;
    r->p += n;
    return at;
}

static void set_int(struct val *v, int64_t i)
{
    v->t = V_NUM;
    v->is_int = true;
    v->i = i;
    v->d = (double)i;
}

/* Reads one value: a scalar whole; a map or array as V_NESTED with the number of values that
 * follow it in *items (twice the entries for a map). False when the bytes are not msgpack. */
static bool mp_next(struct mp *r, struct val *v, uint64_t *items, bool *map)
{
    const uint8_t *b = mp_take(r, 1);
    uint64_t n = 0;
    int w;

    *items = 0;
    *map = false;
    v->is_int = false;
    if (!b)
        return false;
    if (*b <= 0x7F || *b >= 0xE0) {
        set_int(v, (int8_t)*b);
        if (*b <= 0x7F)
            set_int(v, *b);
        return true;
    }
    if (*b <= 0x8F || (*b >= 0xDE && *b <= 0xDF)) {
        *map = true;
        w = *b == 0xDE ? 2 : 4;
        if (*b <= 0x8F)
            n = *b & 0x0F;
        else if ((b = mp_take(r, (uint64_t)w)))
            n = be(b, w);
        else
            return false;
        n *= 2;
        goto nested;
    }
    if (*b <= 0x9F || (*b >= 0xDC && *b <= 0xDD)) {
        w = *b == 0xDC ? 2 : 4;
        if (*b <= 0x9F)
            n = *b & 0x0F;
        else if ((b = mp_take(r, (uint64_t)w)))
            n = be(b, w);
        else
            return false;
        goto nested;
    }
    if (*b <= 0xBF) {
        n = *b & 0x1F;
        goto text;
    }
    switch (*b) {
    case 0xC0:
        v->t = V_NULL;
        return true;
    case 0xC2:
    case 0xC3:
        v->t = V_BOOL;
        v->d = *b == 0xC3;
        return true;
    case 0xC4: /* bin 8/16/32: taken as text, which must then be UTF-8 */
    case 0xC5:
    case 0xC6:
    case 0xD9: /* str 8/16/32 */
    case 0xDA:
    case 0xDB:
        w = (*b == 0xC4 || *b == 0xD9) ? 1 : (*b == 0xC5 || *b == 0xDA) ? 2 : 4;
        if (!(b = mp_take(r, (uint64_t)w)))
            return false;
        n = be(b, w);
        goto text;
    case 0xC7: /* ext 8/16/32 */
    case 0xC8:
    case 0xC9:
        w = *b == 0xC7 ? 1 : *b == 0xC8 ? 2 : 4;
        if (!(b = mp_take(r, (uint64_t)w)) || !mp_take(r, be(b, w) + 1))
            return false;
        v->t = V_OTHER;
        return true;
    case 0xD4: /* fixext 1/2/4/8/16 */
    case 0xD5:
    case 0xD6:
    case 0xD7:
    case 0xD8:
        if (!mp_take(r, 1 + (1u << (*b - 0xD4))))
            return false;
        v->t = V_OTHER;
        return true;
    case 0xCA: {
        uint32_t u;
        float f;

        if (!(b = mp_take(r, 4)))
            return false;
        u = (uint32_t)be(b, 4);
        memcpy(&f, &u, 4);
        v->t = V_NUM;
        v->d = f;
        return true;
    }
    case 0xCB: {
        uint64_t u;

        if (!(b = mp_take(r, 8)))
            return false;
        u = be(b, 8);
        memcpy(&v->d, &u, 8);
        v->t = V_NUM;
        return true;
    }
    case 0xCC: /* uint 8/16/32/64 */
    case 0xCD:
    case 0xCE:
    case 0xCF: {
        uint64_t u;

        w = 1 << (*b - 0xCC);
        if (!(b = mp_take(r, (uint64_t)w)))
            return false;
        u = be(b, w);
        if (u <= INT64_MAX) {
            set_int(v, (int64_t)u);
        } else {
            v->t = V_NUM;
            v->d = (double)u;
        }
        return true;
    }
    case 0xD0: /* int 8/16/32/64 */
    case 0xD1:
    case 0xD2:
    case 0xD3: {
        uint64_t u;

        w = 1 << (*b - 0xD0);
        if (!(b = mp_take(r, (uint64_t)w)))
            return false;
        u = be(b, w);
        if (w < 8 && (u >> (w * 8 - 1) & 1))
            u |= ~UINT64_C(0) << (w * 8); /* sign extension */
        set_int(v, (int64_t)u);
        return true;
    }
    default: /* 0xC1 is never used */
        return false;
    }
text:
    if (!(b = mp_take(r, n)))
        return false;
    v->t = V_TEXT;
    v->s = (const char *)b;
    v->n = (size_t)n;
    return true;
nested:
    /* Every value takes at least a byte: a count beyond the bytes left is a lie. */
    if (n > (uint64_t)(r->end - r->p))
        return false;
    v->t = V_NESTED;
    *items = n;
    return true;
}

/* Skips `items` values, nested ones with their contents, without recursion. */
static bool mp_skip(struct mp *r, uint64_t items)
{
    while (items > 0) {
        struct val v;
        uint64_t sub;
        bool map;

        if (items > (uint64_t)(r->end - r->p) || !mp_next(r, &v, &sub, &map))
            return false;
        items = items - 1 + sub;
    }
    return true;
}

/* -1 when the payload is not one msgpack value; else the entries. */
static int decode_msgpack(struct dec *d, const void *p, size_t len, size_t *n)
{
    struct mp r = {p, (const uint8_t *)p + len};
    struct val v;
    uint64_t items;
    bool map;

    if (!mp_next(&r, &v, &items, &map))
        return -1;
    if (map) {
        for (uint64_t i = 0; i < items / 2; i++) {
            struct val key;
            uint64_t sub;
            bool submap;

            if (!mp_next(&r, &key, &sub, &submap) || !mp_skip(&r, sub) ||
                !mp_next(&r, &v, &sub, &submap) || !mp_skip(&r, sub))
                return -1;
            on_pair(d, &key, &v);
        }
    } else {
        if (!mp_skip(&r, items))
            return -1;
        on_bare(d, &v);
    }
    if (r.p != r.end)
        return -1;
    *n = finish(d, map);
    return 0;
}

/* --- topics ------------------------------------------------------------------------------ */

/* The first pattern matching the topic's levels (start and length of each). */
static const struct topic *topic_match(const struct tm_model *m, const char *topic,
                                       const uint16_t *start, const uint16_t *len, size_t nlv)
{
    for (size_t i = 0; i < m->ntopics; i++) {
        const struct topic *t = &m->topics[i];
        size_t k = 0;

        if (t->nlv != nlv)
            continue;
        /* MQTT: a wildcard first level does not match a topic starting with '$'. */
        if (!t->lv[0].lit && nlv && len[0] && topic[0] == '$')
            continue;
        while (k < nlv && (!t->lv[k].lit || (t->lv[k].len == len[k] &&
                                             memcmp(t->lv[k].lit, topic + start[k], len[k]) == 0)))
            k++;
        if (k == nlv)
            return t;
    }
    return NULL;
}

static bool json_first(const unsigned char *p)
{
    return *p == '{' || *p == '[' || *p == '"' || *p == '-' || (*p >= '0' && *p <= '9') ||
           *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n';
}

/* jansson quotes the input near an error: only printable ASCII goes into a reason. */
static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E)
            *s = '?';
}

size_t tm_decode(const struct tm_model *m, const char *topic, size_t topic_len, const void *payload,
                 size_t len, int64_t now_us, struct tm_reading *out, size_t max)
{
    uint16_t start[TOPIC_LEVELS_MAX + 1], lens[TOPIC_LEVELS_MAX + 1];
    struct dec d = {.m = m,
                    .out = out,
                    .now_us = now_us,
                    .plant = "",
                    .kind_name = "",
                    .device = "",
                    .metric = "",
                    .ts_key = "ts"};
    const struct topic *t = NULL;
    const char *bad = NULL, *field = "";
    size_t nlv = 0, n = 0;
    json_error_t jerr;
    enum format f;

    if (max == 0)
        return 0;
    d.lim = max < TM_READINGS_MAX ? max : TM_READINGS_MAX;
    if (!topic)
        return reject(&d, "unknown topic");
    if (topic_len > TM_TOPIC_MAX)
        return reject(&d, "topic longer than %d bytes", TM_TOPIC_MAX);
    start[0] = 0;
    for (size_t i = 0; i <= topic_len && nlv <= TOPIC_LEVELS_MAX; i++) {
        if (i == topic_len || topic[i] == '/') {
            lens[nlv] = (uint16_t)(i - start[nlv]);
            if (++nlv <= TOPIC_LEVELS_MAX)
                start[nlv] = (uint16_t)(i + 1);
        }
    }
    if (nlv > TOPIC_LEVELS_MAX || !(t = topic_match(m, topic, start, lens, nlv)))
        return reject(&d, "unknown topic");
    /* The names the topic gives, each checked before it goes anywhere. */
    if (t->plant >= 0) {
        d.plant = topic + start[t->plant], d.plant_len = lens[t->plant];
        if ((bad = name_problem(d.plant, d.plant_len)))
            field = "plant", d.plant = "", d.plant_len = 0;
    }
    if (!bad && t->kind >= 0) {
        d.kind_name = topic + start[t->kind], d.kind_len = lens[t->kind];
        if ((bad = name_problem(d.kind_name, d.kind_len)))
            field = "kind", d.kind_name = "", d.kind_len = 0;
    } else if (!bad) {
        d.kind = t->fixed, d.kind_name = t->fixed->name, d.kind_len = t->fixed->len;
    }
    if (!bad) {
        d.device = topic + start[t->device], d.device_len = lens[t->device];
        if ((bad = name_problem(d.device, d.device_len)))
            field = "device", d.device = "", d.device_len = 0;
    }
    if (!bad && t->metric >= 0) {
        d.metric = topic + start[t->metric], d.metric_len = lens[t->metric];
        if ((bad = name_problem(d.metric, d.metric_len)))
            field = "metric", d.metric = "", d.metric_len = 0;
    }
    if (bad)
        return reject(&d, "%s: %s", field, bad);
    if (!d.kind && !(d.kind = kind_find(m, d.kind_name, d.kind_len)))
        return reject(&d, "unknown kind '%.*s'", (int)d.kind_len, d.kind_name);
    if (t->metric >= 0 && !(d.mt = metric_find(d.kind, d.metric, d.metric_len)))
        return reject(&d, "unknown metric '%.*s' of kind '%s'", (int)d.metric_len, d.metric,
                      d.kind->name);
    if (len > m->max_payload)
        return reject(&d, "payload larger than %zu bytes", m->max_payload);
    if (len == 0 || !payload)
        return reject(&d, "empty payload");
    f = t->format;
    if (f == FORMAT_AUTO)
        f = json_first(payload) ? FORMAT_JSON : FORMAT_MSGPACK;
    if (f == FORMAT_JSON && decode_json(&d, payload, len, &jerr, &n) == 0)
        return n;
    if (t->format == FORMAT_JSON) {
        clean(jerr.text);
        return reject(&d, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
    }
    dec_reset(&d);
    if (decode_msgpack(&d, payload, len, &n) == 0)
        return n;
    if (t->format == FORMAT_MSGPACK)
        return reject(&d, "invalid msgpack");
    /* auto: a guess of msgpack may still be JSON ("true", "null") */
    dec_reset(&d);
    if (f == FORMAT_MSGPACK && decode_json(&d, payload, len, &jerr, &n) == 0)
        return n;
    if (f == FORMAT_JSON) {
        clean(jerr.text);
        return reject(&d, "payload is neither JSON nor msgpack (JSON: %s)", jerr.text);
    }
    return reject(&d, "payload is neither JSON nor msgpack");
}

/* --- alerts ------------------------------------------------------------------------------ */

bool tm_rule_matches(const struct tm_rule *r, const struct tm_reading *rd)
{
    return !rd->why[0] && !rd->is_text && strcmp(r->metric, rd->metric) == 0 &&
           (!r->kind[0] || strcmp(r->kind, rd->kind) == 0) &&
           (!r->device[0] || fnmatch(r->device, rd->device, 0) == 0);
}

enum tm_step tm_rule_step(const struct tm_rule *r, struct tm_alert_state *s, double value,
                          int64_t ts_us)
{
    int count = r->count > 0 ? r->count : 1;
    bool towards;

    if (s->last_ts_us != 0 && ts_us <= s->last_ts_us)
        return TM_STEP_NONE;
    s->last_ts_us = ts_us;
    if (!s->active)
        towards = r->above ? value > r->raise : value < r->raise;
    else
        towards = r->above ? value < r->clear : value > r->clear;
    if (!towards) {
        s->streak = 0;
        return TM_STEP_NONE;
    }
    if (++s->streak < count)
        return TM_STEP_NONE;
    s->streak = 0;
    s->active = !s->active;
    return s->active ? TM_STEP_RAISE : TM_STEP_CLEAR;
}
