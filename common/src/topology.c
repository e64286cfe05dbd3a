/* topology.c - loads schemas/topology.yaml into struct sy_topology and names its queues. */
#include "sy/topology.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/config.h"
#include "sy/doc.h"
#include "sy/err.h"

/* AMQP short strings (exchange and queue names, routing keys) hold at most 255 bytes. */
#define NAME_MAX_LEN 255
#define WORKER_MAX   64 /* "sy.<w>.retry.NN" stays far below 255 */
#define MAX_WORKERS  256
#define MAX_ROUTES   64
#define DELAY_MAX_MS (24LL * 24 * 3600 * 1000) /* fits an int32 TTL even after jitter */
#define LIMIT_MAX    1000000
#define ATTEMPTS_MAX 1000

/* What a worker inherits when neither the worker nor `defaults` says otherwise. */
static const long long builtin_delays[] = {1000, 5000, 30000, 120000, 600000, 3600000};

struct settings {
    long long delivery_limit;
    unsigned max_attempts;
    long long delays_ms[SY_TOPO_MAX_DELAYS];
    size_t ndelays;
    double jitter;
};

struct loader {
    const struct sy_doc *doc;
    const char *name;
    char *err;
    size_t errlen;
};

static void fail(struct loader *ld, const struct sy_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct loader *ld, const struct sy_node *at, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->name, at ? sy_node_line(at) : 1, why);
}

/* The doc module reports typed-read errors as "line N: path: why"; give them the file name
 * like every other error of this loader. */
static void fail_doc(struct loader *ld, const char *doc_err)
{
    int line = 0, used = 0;

    if (sscanf(doc_err, "line %d:%n", &line, &used) == 1 && used > 0)
        snprintf(ld->err, ld->errlen, "%s:%d:%s", ld->name, line, doc_err + used);
    else
        snprintf(ld->err, ld->errlen, "%s: %s", ld->name, doc_err);
}

static int check_keys(struct loader *ld, const struct sy_node *map, const char *const *allowed)
{
    return sy_node_check_keys(ld->doc, map, allowed, ld->err, ld->errlen) == 0 ? 0 : -SY_ECONFIG;
}

static int want_kind(struct loader *ld, const struct sy_node *n, enum sy_node_kind kind,
                     const char *what)
{
    if (sy_node_kind(n) == kind && !(kind == SY_NODE_SCALAR && sy_node_is_null(n)))
        return 0;
    fail(ld, n, "%s: expected %s", what,
         kind == SY_NODE_MAP   ? "a map"
         : kind == SY_NODE_SEQ ? "a sequence"
                               : "a value");
    return -SY_ECONFIG;
}

static int read_int(struct loader *ld, const struct sy_node *n, long long min, long long max,
                    long long *out)
{
    char why[256];

    if (sy_node_int(n, min, max, out, why, sizeof why) != 0) {
        fail_doc(ld, why);
        return -SY_ECONFIG;
    }
    return 0;
}

static bool is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool valid_worker_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > WORKER_MAX)
        return false;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    }
    return true;
}

/* A topic binding key: dot-separated words, each "*", "#" or [A-Za-z0-9_-]+. */
static bool valid_route(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    while (*s) {
        const char *w = s;

        while (*s && *s != '.')
            s++;
        size_t len = (size_t)(s - w);
        if (len == 0)
            return false;
        if (!(len == 1 && (*w == '*' || *w == '#'))) {
            for (size_t i = 0; i < len; i++) {
                if (!is_word_char(w[i]))
                    return false;
            }
        }
        if (*s == '.') {
            s++;
            if (!*s)
                return false; /* trailing dot */
        }
    }
    return true;
}

/* Exchange names: letters, digits, '-', '_', '.', ':'; "amq." is the broker's own prefix. */
static bool valid_exchange(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN || strncmp(s, "amq.", 4) == 0)
        return false;
    for (; *s; s++) {
        if (!is_word_char(*s) && *s != '.' && *s != ':')
            return false;
    }
    return true;
}

/* Merges a `retry` map into s, key by key. */
static int load_retry(struct loader *ld, const struct sy_node *r, struct settings *s,
                      const char *at)
{
    static const char *const keys[] = {"max_attempts", "delays", "jitter", NULL};
    const struct sy_node *n;
    long long v;

    if (want_kind(ld, r, SY_NODE_MAP, "retry") != 0 || check_keys(ld, r, keys) != 0)
        return -SY_ECONFIG;
    if ((n = sy_node_get(r, "max_attempts"))) {
        if (read_int(ld, n, 1, ATTEMPTS_MAX, &v) != 0)
            return -SY_ECONFIG;
        s->max_attempts = (unsigned)v;
    }
    if ((n = sy_node_get(r, "delays"))) {
        size_t count = sy_node_len(n);

        if (want_kind(ld, n, SY_NODE_SEQ, "retry.delays") != 0)
            return -SY_ECONFIG;
        if (count == 0 || count > SY_TOPO_MAX_DELAYS) {
            fail(ld, n, "%s.retry.delays: expected 1 to %d durations, got %zu", at,
                 SY_TOPO_MAX_DELAYS, count);
            return -SY_ECONFIG;
        }
        for (size_t i = 0; i < count; i++) {
            const struct sy_node *d = sy_node_at(n, i, NULL);
            const char *text = sy_node_str(d);

            if (!text || sy_node_is_null(d) || sy_conf_parse_ms(text, &v) != 0 || v < 1 ||
                v > DELAY_MAX_MS) {
                fail(ld, d,
                     "%s.retry.delays[%zu]: expected a duration from 1ms to 24d (250ms, 5s, "
                     "2m, 1h), got '%.64s'",
                     at, i, text ? text : "(not a scalar)");
                return -SY_ECONFIG;
            }
            s->delays_ms[i] = v;
        }
        s->ndelays = count;
    }
    if ((n = sy_node_get(r, "jitter"))) {
        char why[256];
        double j;

        if (sy_node_double(n, &j, why, sizeof why) != 0) {
            fail_doc(ld, why);
            return -SY_ECONFIG;
        }
        if (!(j >= 0.0 && j <= 1.0)) {
            fail(ld, n, "%s.retry.jitter: expected a number from 0 to 1, got '%.64s'", at,
                 sy_node_str(n));
            return -SY_ECONFIG;
        }
        s->jitter = j;
    }
    return 0;
}

/* Merges the settings a worker may override (also the shape of `defaults`) into s. */
static int load_settings(struct loader *ld, const struct sy_node *map, struct settings *s,
                         const char *at)
{
    const struct sy_node *n;
    long long v;

    if ((n = sy_node_get(map, "delivery_limit"))) {
        if (read_int(ld, n, 1, LIMIT_MAX, &v) != 0)
            return -SY_ECONFIG;
        s->delivery_limit = v;
    }
    if ((n = sy_node_get(map, "retry")) && load_retry(ld, n, s, at) != 0)
        return -SY_ECONFIG;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p)
        memcpy(p, s, n);
    return p;
}

static int load_routes(struct loader *ld, const struct sy_node *wnode, struct sy_topo_worker *w)
{
    const struct sy_node *n = sy_node_get(wnode, "routes");
    size_t count = sy_node_len(n);

    if (!n) {
        fail(ld, wnode, "workers.%s.routes: required", w->name);
        return -SY_ECONFIG;
    }
    if (want_kind(ld, n, SY_NODE_SEQ, "routes") != 0)
        return -SY_ECONFIG;
    if (count == 0 || count > MAX_ROUTES) {
        fail(ld, n, "workers.%s.routes: expected 1 to %d binding keys, got %zu", w->name,
             MAX_ROUTES, count);
        return -SY_ECONFIG;
    }
    w->routes = calloc(count + 1, sizeof *w->routes);
    if (!w->routes)
        return -SY_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const struct sy_node *r = sy_node_at(n, i, NULL);
        const char *text = sy_node_str(r);

        if (!text || sy_node_is_null(r) || !valid_route(text)) {
            fail(ld, r,
                 "workers.%s.routes[%zu]: '%.64s' is not a topic binding key (dot-separated "
                 "words of [A-Za-z0-9_-], '*' or '#')",
                 w->name, i, text ? text : "(not a scalar)");
            return -SY_ECONFIG;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(w->routes[j], text) == 0) {
                fail(ld, r, "workers.%s.routes[%zu]: duplicate route '%s'", w->name, i, text);
                return -SY_ECONFIG;
            }
        }
        w->routes[i] = dup_str(text);
        if (!w->routes[i])
            return -SY_ENOMEM;
        w->nroutes = i + 1;
    }
    return 0;
}

static int load_worker(struct loader *ld, const char *name, const struct sy_node *n,
                       const struct settings *defaults, struct sy_topo_worker *w)
{
    static const char *const keys[] = {"routes", "delivery_limit", "retry", "description", NULL};
    struct settings s = *defaults;
    char at[WORKER_MAX + 16];
    int rc;

    w->name = dup_str(name);
    if (!w->name)
        return -SY_ENOMEM;
    if (!valid_worker_name(name)) {
        fail(ld, n, "workers: '%.64s' is not a worker name ([a-z0-9_-], 1 to %d characters)", name,
             WORKER_MAX);
        return -SY_ECONFIG;
    }
    if (want_kind(ld, n, SY_NODE_MAP, name) != 0 || check_keys(ld, n, keys) != 0)
        return -SY_ECONFIG;
    if ((rc = load_routes(ld, n, w)) != 0)
        return rc;
    snprintf(at, sizeof at, "workers.%s", name);
    if (load_settings(ld, n, &s, at) != 0)
        return -SY_ECONFIG;
    w->delivery_limit = s.delivery_limit;
    w->max_attempts = s.max_attempts;
    memcpy(w->delays_ms, s.delays_ms, sizeof w->delays_ms);
    w->ndelays = s.ndelays;
    w->jitter = s.jitter;
    return 0;
}

static int load_root(struct loader *ld, const struct sy_node *root, struct sy_topology *t)
{
    static const char *const keys[] = {"exchange", "defaults", "workers", "description", NULL};
    static const char *const default_keys[] = {"delivery_limit", "retry", NULL};
    struct settings defaults = {.delivery_limit = 20, .max_attempts = 8, .jitter = 0.2};
    const struct sy_node *n, *workers;
    int rc;

    defaults.ndelays = sizeof builtin_delays / sizeof builtin_delays[0];
    memcpy(defaults.delays_ms, builtin_delays, sizeof builtin_delays);

    if (!root) {
        fail(ld, NULL, "empty topology");
        return -SY_ECONFIG;
    }
    if (want_kind(ld, root, SY_NODE_MAP, "topology") != 0 || check_keys(ld, root, keys) != 0)
        return -SY_ECONFIG;

    n = sy_node_get(root, "exchange");
    if (!n) {
        fail(ld, root, "exchange: required");
        return -SY_ECONFIG;
    }
    if (want_kind(ld, n, SY_NODE_SCALAR, "exchange") != 0)
        return -SY_ECONFIG;
    if (!valid_exchange(sy_node_str(n))) {
        fail(ld, n,
             "exchange: '%.64s' is not an exchange name ([A-Za-z0-9_.:-], not starting "
             "with 'amq.')",
             sy_node_str(n));
        return -SY_ECONFIG;
    }
    t->exchange = dup_str(sy_node_str(n));
    if (!t->exchange)
        return -SY_ENOMEM;

    if ((n = sy_node_get(root, "defaults"))) {
        if (want_kind(ld, n, SY_NODE_MAP, "defaults") != 0 ||
            check_keys(ld, n, default_keys) != 0 ||
            load_settings(ld, n, &defaults, "defaults") != 0)
            return -SY_ECONFIG;
    }

    workers = sy_node_get(root, "workers");
    if (!workers) {
        fail(ld, root, "workers: required");
        return -SY_ECONFIG;
    }
    if (want_kind(ld, workers, SY_NODE_MAP, "workers") != 0)
        return -SY_ECONFIG;
    if (sy_node_len(workers) == 0 || sy_node_len(workers) > MAX_WORKERS) {
        fail(ld, workers, "workers: expected 1 to %d workers, got %zu", MAX_WORKERS,
             sy_node_len(workers));
        return -SY_ECONFIG;
    }
    t->workers = calloc(sy_node_len(workers), sizeof *t->workers);
    if (!t->workers)
        return -SY_ENOMEM;
    for (size_t i = 0; i < sy_node_len(workers); i++) {
        const char *name = NULL;
        const struct sy_node *w = sy_node_at(workers, i, &name);

        t->nworkers = i + 1;
        if ((rc = load_worker(ld, name, w, &defaults, &t->workers[i])) != 0)
            return rc;
    }
    return 0;
}

struct sy_topology *sy_topology_load(const char *path, char *err, size_t errlen)
{
    struct sy_topology *t = NULL;
    struct sy_doc *doc = NULL;
    struct loader ld = {.name = path, .err = err, .errlen = errlen};
    int rc;

    doc = sy_doc_load_file(path, err, errlen);
    if (!doc)
        goto out;
    ld.doc = doc;
    ld.name = sy_doc_name(doc);
    t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s: %s", path, sy_strerror(-SY_ENOMEM));
        goto out;
    }
    rc = load_root(&ld, sy_doc_root(doc), t);
    if (rc != 0) {
        if (rc == -SY_ENOMEM)
            snprintf(err, errlen, "%s: %s", path, sy_strerror(rc));
        sy_topology_destroy(t);
        t = NULL;
    }
out:
    sy_doc_destroy(doc);
    return t;
}

void sy_topology_destroy(struct sy_topology *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nworkers; i++) {
        struct sy_topo_worker *w = &t->workers[i];

        for (size_t r = 0; w->routes && w->routes[r]; r++)
            free(w->routes[r]);
        free(w->routes);
        free(w->name);
    }
    free(t->workers);
    free(t->exchange);
    free(t);
}

const struct sy_topo_worker *sy_topology_worker(const struct sy_topology *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->nworkers; i++) {
        if (strcmp(t->workers[i].name, name) == 0)
            return &t->workers[i];
    }
    return NULL;
}

/* snprintf's result checked: a name that does not fit is an error, never a truncated name. */
static int fit(int n, char *buf, size_t bufsz)
{
    if (n < 0 || (size_t)n >= bufsz) {
        if (bufsz > 0)
            buf[0] = '\0';
        return -SY_ETOOBIG;
    }
    return 0;
}

int sy_topo_queue_name(const struct sy_topo_worker *w, char *buf, size_t bufsz)
{
    return fit(snprintf(buf, bufsz, "sy.%s", w->name), buf, bufsz);
}

int sy_topo_dead_name(const struct sy_topo_worker *w, char *buf, size_t bufsz)
{
    return fit(snprintf(buf, bufsz, "sy.%s.dead", w->name), buf, bufsz);
}

int sy_topo_retry_name(const struct sy_topo_worker *w, size_t step, char *buf, size_t bufsz)
{
    return fit(snprintf(buf, bufsz, "sy.%s.retry.%zu", w->name, step), buf, bufsz);
}

long long sy_topo_retry_delay(const struct sy_topo_worker *w, unsigned next_attempt, double u,
                              size_t *step)
{
    return sy_topo_retry_delay_min(w, next_attempt, 0, u, step);
}

long long sy_topo_retry_delay_min(const struct sy_topo_worker *w, unsigned next_attempt,
                                  long long min_ms, double u, size_t *step)
{
    size_t i = next_attempt >= 2 ? next_attempt - 2 : 0;
    long long base;
    double extra;

    if (w->ndelays == 0) {
        if (step)
            *step = 0;
        return 0;
    }
    if (i >= w->ndelays)
        i = w->ndelays - 1;
    while (i + 1 < w->ndelays && w->delays_ms[i] < min_ms)
        i++;
    if (step)
        *step = i;
    base = w->delays_ms[i];
    if (!(u >= 0.0)) /* also catches NaN */
        u = 0.0;
    if (u >= 1.0)
        u = 0.999999999;
    /* The jitter only ever adds, so a retry is never back before its step's delay. */
    extra = (double)base * w->jitter * u;
    return base + (long long)extra;
}
