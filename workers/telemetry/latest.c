/* latest.c - newest values into Redis hashes (latest.h). */
#include "telemetry/latest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/redis.h"
#include "telemetry/buf.h"

/* KEYS: the device's hash, its kind's set. ARGV: member, kind, then (metric, value, ts_us)
 * triples. Sets each metric whose stored time is older (or absent); returns how many. */
static const char latest_lua[] =
    "local f = {}\n"
    "for i = 3, #ARGV, 3 do f[#f + 1] = ARGV[i] .. ':ts' end\n"
    "local old = redis.call('HMGET', KEYS[1], unpack(f))\n"
    "local set, n = {'kind', ARGV[2]}, 0\n"
    "for i = 3, #ARGV, 3 do\n"
    "  local o = old[(i - 3) / 3 + 1]\n"
    "  if not o or tonumber(o) < tonumber(ARGV[i + 2]) then\n"
    "    set[#set + 1] = ARGV[i]; set[#set + 1] = ARGV[i + 1]\n"
    "    set[#set + 1] = ARGV[i] .. ':ts'; set[#set + 1] = ARGV[i + 2]\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], unpack(set))\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "return n\n";

static int cmp_reading(const void *a, const void *b, void *batch)
{
    const struct tm_batch *bt = batch;
    const struct tm_reading *x = &bt->r[*(const uint32_t *)a], *y = &bt->r[*(const uint32_t *)b];
    int c;

    if ((c = strcmp(x->plant, y->plant)) || (c = strcmp(x->device, y->device)) ||
        (c = strcmp(x->metric, y->metric)))
        return c;
    return x->ts_us > y->ts_us ? -1 : x->ts_us < y->ts_us; /* newest first */
}

/* Text of all arguments, one after another; argv points into it once it stops growing. */
struct args {
    struct tm_buf text;
    size_t *off, *len; /* per argument */
    size_t nargs, acap;
    int *argc;
    size_t ncmd, ccap;
};

static int arg(struct args *a, const char *s, size_t n)
{
    if (a->nargs == a->acap) {
        size_t cap = a->acap ? 2 * a->acap : 1024;
        size_t *off = realloc(a->off, cap * sizeof *off), *len;

        if (!off)
            return -SY_ENOMEM;
        a->off = off;
        if (!(len = realloc(a->len, cap * sizeof *len)))
            return -SY_ENOMEM;
        a->len = len;
        a->acap = cap;
    }
    if (tm_buf_grow(&a->text, n + 1) != 0)
        return -SY_ENOMEM;
    memcpy(a->text.p + a->text.n, s, n);
    a->text.p[a->text.n + n] = '\0';
    a->off[a->nargs] = a->text.n;
    a->len[a->nargs++] = n;
    a->text.n += n + 1;
    return 0;
}

static int argf(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int argf(struct args *a, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return arg(a, buf, n < 0 ? 0 : (size_t)n >= sizeof buf ? sizeof buf - 1 : (size_t)n);
}

static int command_end(struct args *a, size_t first)
{
    if (a->ncmd == a->ccap) {
        size_t cap = a->ccap ? 2 * a->ccap : 256;
        int *c = realloc(a->argc, cap * sizeof *c);

        if (!c)
            return -SY_ENOMEM;
        a->argc = c;
        a->ccap = cap;
    }
    a->argc[a->ncmd++] = (int)(a->nargs - first);
    return 0;
}

static void args_free(struct args *a)
{
    tm_buf_free(&a->text);
    free(a->off);
    free(a->len);
    free(a->argc);
}

static int write_all(struct tm_latest *l, struct sy_redis *r, const struct tm_batch *b,
                     size_t *devices)
{
    uint32_t *idx = NULL;
    size_t n = 0;
    struct args a = {0};
    const char **argv = NULL;
    int rc = -SY_ENOMEM;

    *devices = 0;
    if (!(idx = malloc(b->good * sizeof *idx)))
        return -SY_ENOMEM;
    for (size_t i = 0; i < b->n; i++)
        if (!b->r[i].why[0])
            idx[n++] = (uint32_t)i;
    qsort_r(idx, n, sizeof *idx, cmp_reading, (void *)b);
    for (size_t i = 0; i < n;) {
        const struct tm_reading *d = &b->r[idx[i]];
        size_t first = a.nargs;

        if (arg(&a, "EVALSHA", 7) || arg(&a, l->sha, 40) || arg(&a, "2", 1) ||
            argf(&a, "telemetry:latest:%s:%s", d->plant, d->device) ||
            argf(&a, "telemetry:devices:%s", d->kind) || argf(&a, "%s:%s", d->plant, d->device) ||
            arg(&a, d->kind, strlen(d->kind)))
            goto out;
        for (const char *metric = NULL; i < n; i++) {
            const struct tm_reading *x = &b->r[idx[i]];

            if (strcmp(x->plant, d->plant) || strcmp(x->device, d->device))
                break;
            if (metric && strcmp(metric, x->metric) == 0)
                continue; /* an older one of the same metric */
            metric = x->metric;
            if (arg(&a, x->metric, strlen(x->metric)) ||
                (x->is_text ? arg(&a, x->text, strlen(x->text)) : argf(&a, "%.15g", x->value)) ||
                argf(&a, "%" PRId64, x->ts_us))
                goto out;
        }
        if (command_end(&a, first))
            goto out;
    }
    if (!(argv = malloc(a.nargs * sizeof *argv)))
        goto out;
    for (size_t i = 0; i < a.nargs; i++)
        argv[i] = a.text.p + a.off[i];
    rc = sy_redis_pipeline(r, a.ncmd, a.argc, argv, a.len, NULL);
    if (rc == 0)
        *devices = a.ncmd;
out:
    free(argv);
    free(idx);
    args_free(&a);
    return rc;
}

int tm_latest_write(struct tm_latest *l, struct sy_redis *r, const struct tm_batch *b,
                    size_t *devices)
{
    int rc;

    *devices = 0;
    if (b->good == 0)
        return 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!l->sha[0] && (rc = sy_redis_script_load(r, latest_lua, l->sha)) != 0) {
            l->sha[0] = '\0';
            return rc;
        }
        rc = write_all(l, r, b, devices);
        if (rc != -SY_EPROTO)
            return rc;
        l->sha[0] = '\0'; /* NOSCRIPT after a restart of Redis: load it and write again */
    }
    return rc;
}
