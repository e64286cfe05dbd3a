/* metrics.c - a fixed-capacity registry of counters, gauges and histograms, rendered in the
 * Prometheus text exposition format 0.0.4. Registration takes a mutex; updates are relaxed
 * atomics, because they sit on every message's path and need no ordering with each other. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/log.h"
#include "sy/metrics.h"

#define METRICS_MAX       512
#define METRIC_NAME_MAX   128
#define METRIC_HELP_MAX   512
#define METRIC_LABELS_MAX 512

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

/* Upper bounds in seconds, and the same as text so the output never depends on %g rounding. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
static const char *const bucket_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                          "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5",
                                          "5",      "10",    "30",     "60"};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

struct sy_counter {
    atomic_uint_fast64_t v;
};

struct sy_gauge {
    atomic_int_fast64_t v;
};

struct sy_histogram {
    /* Per-bucket (not cumulative) counts; the last slot holds what exceeds 60 s. The total
     * count is their sum, so +Inf always equals _count in one rendering. */
    atomic_uint_fast64_t bucket[NBUCKETS + 1];
    _Atomic uint64_t sum_bits; /* a double's bits: C11 has no atomic add for doubles */
};

struct metric {
    enum metric_kind kind;
    char *name;
    char *help;
    char *labels; /* "" when none */
    union {
        struct sy_counter counter;
        struct sy_gauge gauge;
        struct sy_histogram histogram;
    } u;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric *registry[METRICS_MAX];
static size_t registry_len;

static const char *const kind_name[] = {"counter", "gauge", "histogram"};

static bool valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > METRIC_NAME_MAX)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* A label set as written between braces: name="value"(,name="value")*, values escaped the
 * Prometheus way (\\, \", \n). Checked here so a typo cannot break the whole scrape. */
static bool valid_labels(const char *s)
{
    if (strlen(s) > METRIC_LABELS_MAX)
        return false;
    const char *p = s;
    while (*p) {
        const char *name = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
               (p > name && *p >= '0' && *p <= '9'))
            p++;
        if (p == name || strncmp(name, "le=", 3) == 0 || *p++ != '=' || *p++ != '"')
            return false;
        while (*p && *p != '"') {
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return false;
            } else if (*p == '\n') {
                return false;
            }
            p++;
        }
        if (*p++ != '"')
            return false;
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            return false;
    }
    return true;
}

static struct metric *metric_get(enum metric_kind kind, const char *name, const char *help,
                                 const char *labels)
{
    if (!labels)
        labels = "";
    if (!help)
        help = "";
    if (!valid_name(name) || !valid_labels(labels) || strlen(help) > METRIC_HELP_MAX) {
        sy_log_error("metrics.register",
                     "refusing metric '%.128s' {%.128s}: invalid name, "
                     "labels or help",
                     name ? name : "(null)", labels);
        return NULL;
    }

    struct metric *m = NULL;
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_len; i++) {
        struct metric *e = registry[i];
        if (strcmp(e->name, name) != 0)
            continue;
        if (e->kind != kind) {
            sy_log_error("metrics.register", "metric '%s' is already a %s, not a %s", name,
                         kind_name[e->kind], kind_name[kind]);
            goto out;
        }
        if (strcmp(e->labels, labels) == 0) {
            m = e;
            goto out;
        }
    }
    if (registry_len == METRICS_MAX) {
        sy_log_error("metrics.register", "metric registry full (%d): '%s' not registered",
                     METRICS_MAX, name);
        goto out;
    }
    struct metric *n = calloc(1, sizeof *n);
    if (!n)
        goto out;
    n->kind = kind;
    n->name = strdup(name);
    n->help = strdup(help);
    n->labels = strdup(labels);
    if (!n->name || !n->help || !n->labels) {
        free(n->name);
        free(n->help);
        free(n->labels);
        free(n);
        goto out;
    }
    registry[registry_len++] = n;
    m = n;
out:
    pthread_mutex_unlock(&registry_lock);
    return m;
}

struct sy_counter *sy_counter_get(const char *name, const char *help, const char *labels)
{
    struct metric *m = metric_get(KIND_COUNTER, name, help, labels);
    return m ? &m->u.counter : NULL;
}

void sy_counter_add(struct sy_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

struct sy_gauge *sy_gauge_get(const char *name, const char *help, const char *labels)
{
    struct metric *m = metric_get(KIND_GAUGE, name, help, labels);
    return m ? &m->u.gauge : NULL;
}

void sy_gauge_set(struct sy_gauge *g, int64_t v)
{
    if (g)
        atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

void sy_gauge_add(struct sy_gauge *g, int64_t delta)
{
    if (g)
        atomic_fetch_add_explicit(&g->v, delta, memory_order_relaxed);
}

struct sy_histogram *sy_histogram_get(const char *name, const char *help, const char *labels)
{
    struct metric *m = metric_get(KIND_HISTOGRAM, name, help, labels);
    return m ? &m->u.histogram : NULL;
}

static uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

void sy_histogram_observe(struct sy_histogram *h, double seconds)
{
    if (!h || isnan(seconds))
        return;
    if (seconds < 0) /* a clock step backwards; count it as instantaneous */
        seconds = 0;
    size_t i = 0;
    while (i < NBUCKETS && seconds > bucket_le[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old,
                                                  double_bits(bits_double(old) + seconds),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static void put_help(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fputc('\n', f);
}

/* "{labels}" or "", for counters and gauges. */
static void put_labels(FILE *f, const char *labels)
{
    if (labels[0])
        fprintf(f, "{%s}", labels);
}

static void put_histogram(FILE *f, const struct metric *m)
{
    const struct sy_histogram *h = &m->u.histogram;
    const char *sep = m->labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        fprintf(f, "%s_bucket{%s%sle=\"%s\"} %llu\n", m->name, m->labels, sep,
                i < NBUCKETS ? bucket_text[i] : "+Inf", (unsigned long long)cum);
    }
    double sum = bits_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
    fprintf(f, "%s_sum", m->name);
    put_labels(f, m->labels);
    fprintf(f, " %.15g\n", sum);
    fprintf(f, "%s_count", m->name);
    put_labels(f, m->labels);
    fprintf(f, " %llu\n", (unsigned long long)cum);
}

static void put_metric(FILE *f, const struct metric *m)
{
    switch (m->kind) {
    case KIND_COUNTER:
        fputs(m->name, f);
        put_labels(f, m->labels);
        fprintf(f, " %llu\n",
                (unsigned long long)atomic_load_explicit(&m->u.counter.v, memory_order_relaxed));
        break;
    case KIND_GAUGE:
        fputs(m->name, f);
        put_labels(f, m->labels);
        fprintf(f, " %lld\n", (long long)atomic_load_explicit(&m->u.gauge.v, memory_order_relaxed));
        break;
    case KIND_HISTOGRAM:
        put_histogram(f, m);
        break;
    }
}

char *sy_metrics_render(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    /* The registry only grows and entries never move, but the list itself is read under the
     * lock so a concurrent registration is seen whole or not at all. */
    pthread_mutex_lock(&registry_lock);
    size_t n = registry_len;
    /* One HELP/TYPE block per name, with every label set of that name under it, in order of
     * first registration. */
    for (size_t i = 0; i < n; i++) {
        const struct metric *m = registry[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(registry[j]->name, m->name) == 0;
        if (seen)
            continue;
        put_help(f, m->name, m->help);
        fprintf(f, "# TYPE %s %s\n", m->name, kind_name[m->kind]);
        for (size_t j = i; j < n; j++)
            if (strcmp(registry[j]->name, m->name) == 0)
                put_metric(f, registry[j]);
    }
    pthread_mutex_unlock(&registry_lock);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
