/* series.c - the series cache of series.h: open addressing over "plant\x1fdevice\x1fmetric" (the
 * decoder lets no control character into a name). */
#include "telemetry/series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/pg.h"
#include "telemetry/buf.h"

#define KEY_MAX     (3 * (TM_NAME_MAX + 1))
#define ENTRIES_MAX (1u << 22) /* past this many the cache starts over */
#define ABSENT      0

struct entry {
    uint64_t hash;
    char *key;  /* NULL: a free slot */
    int32_t id; /* ABSENT while being registered */
};

struct tm_series {
    struct entry *e;
    size_t cap, n; /* cap a power of two, n < cap / 2 */
    struct tm_buf arr[4];
};

static const char sql_register[] =
    "INSERT INTO telemetry_series (plant, device, metric, kind)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
    " ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING";

static const char sql_lookup[] = "SELECT s.id, s.plant, s.device, s.metric FROM telemetry_series s"
                                 " JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(p, d, m)"
                                 "   ON s.plant = k.p AND s.device = k.d AND s.metric = k.m";

static uint64_t fnv64(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t make_key(char *k, const char *plant, const char *device, const char *metric)
{
    int n = snprintf(k, KEY_MAX, "%s\x1f%s\x1f%s", plant, device, metric);

    return n < 0 ? 0 : (size_t)n >= KEY_MAX ? KEY_MAX - 1 : (size_t)n;
}

struct tm_series *tm_series_new(void)
{
    struct tm_series *s = calloc(1, sizeof *s);

    if (s && !(s->e = calloc(s->cap = 1024, sizeof *s->e))) {
        free(s);
        return NULL;
    }
    return s;
}

static void clear(struct tm_series *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        free(s->e[i].key);
        s->e[i].key = NULL;
    }
    s->n = 0;
}

void tm_series_free(struct tm_series *s)
{
    if (!s)
        return;
    clear(s);
    free(s->e);
    for (size_t i = 0; i < 4; i++)
        tm_buf_free(&s->arr[i]);
    free(s);
}

static struct entry *slot(struct tm_series *s, uint64_t h, const char *k)
{
    size_t i = (size_t)h & (s->cap - 1);

    while (s->e[i].key && (s->e[i].hash != h || strcmp(s->e[i].key, k) != 0))
        i = (i + 1) & (s->cap - 1);
    return &s->e[i];
}

static int grow(struct tm_series *s)
{
    struct entry *old = s->e;
    size_t ocap = s->cap;

    if (!(s->e = calloc(s->cap = 2 * ocap, sizeof *s->e))) {
        s->e = old;
        s->cap = ocap;
        return -SY_ENOMEM;
    }
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            *slot(s, old[i].hash, old[i].key) = old[i];
    free(old);
    return 0;
}

/* The entry of k, added (ABSENT) when missing: *added says so. NULL: out of memory. */
static struct entry *get(struct tm_series *s, const char *k, size_t n, bool *added)
{
    uint64_t h = fnv64(k, n);
    struct entry *e = slot(s, h, k);

    *added = false;
    if (e->key)
        return e;
    if (s->n + 1 > s->cap / 2) {
        if (s->n >= ENTRIES_MAX)
            clear(s);
        else if (grow(s) != 0)
            return NULL;
        e = slot(s, h, k);
    }
    if (!(e->key = strdup(k)))
        return NULL;
    e->hash = h;
    e->id = ABSENT;
    s->n++;
    *added = true;
    return e;
}

/* Registers the names of b's readings that came back ABSENT, and notes their numbers. */
static int register_names(struct tm_series *s, struct sy_pg *pg, const struct tm_batch *b,
                          const int32_t *ids)
{
    struct sy_pg_res *res = NULL;
    const char *params[4];
    char k[KEY_MAX];
    bool added;
    int rc;

    for (size_t i = 0; i < 4; i++)
        if (tm_arr_begin(&s->arr[i]) != 0)
            return -SY_ENOMEM;
    for (size_t i = 0; i < b->n; i++) {
        const struct tm_reading *r = &b->r[i];

        if (r->why[0] || ids[i] != ABSENT)
            continue;
        if (tm_arr_text(&s->arr[0], r->plant) || tm_arr_text(&s->arr[1], r->device) ||
            tm_arr_text(&s->arr[2], r->metric) || tm_arr_text(&s->arr[3], r->kind))
            return -SY_ENOMEM;
    }
    for (size_t i = 0; i < 4; i++) {
        if (tm_arr_end(&s->arr[i]) != 0)
            return -SY_ENOMEM;
        params[i] = s->arr[i].p;
    }
    if ((rc = sy_pg_exec(pg, sql_register, 4, params, NULL)) != 0 ||
        (rc = sy_pg_exec(pg, sql_lookup, 3, params, &res)) != 0)
        return rc;
    for (int row = 0; row < sy_pg_res_rows(res); row++) {
        size_t n = make_key(k, sy_pg_res_get(res, row, 1), sy_pg_res_get(res, row, 2),
                            sy_pg_res_get(res, row, 3));
        struct entry *e = get(s, k, n, &added);

        if (!e) {
            sy_pg_res_free(res);
            return -SY_ENOMEM;
        }
        e->id = (int32_t)atol(sy_pg_res_get(res, row, 0));
    }
    sy_pg_res_free(res);
    return 0;
}

int tm_series_resolve(struct tm_series *s, struct sy_pg *pg, const struct tm_batch *b, int32_t *ids)
{
    char k[KEY_MAX];
    bool added, missing = false;
    int rc;

    for (int pass = 0; pass < 2; pass++) {
        missing = false;
        for (size_t i = 0; i < b->n; i++) {
            const struct tm_reading *r = &b->r[i];
            size_t n;
            struct entry *e;

            ids[i] = ABSENT;
            if (r->why[0])
                continue;
            n = make_key(k, r->plant, r->device, r->metric);
            if (!(e = get(s, k, n, &added)))
                return -SY_ENOMEM;
            ids[i] = e->id;
            missing |= e->id == ABSENT;
        }
        if (!missing)
            return 0;
        if (pass == 0 && (rc = register_names(s, pg, b, ids)) != 0)
            return rc;
    }
    return -SY_EDB; /* registered, yet not found: the table lost rows under us */
}
