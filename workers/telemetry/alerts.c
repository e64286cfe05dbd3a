/* alerts.c - alert state in PostgreSQL and the outbox of changes (alerts.h). Whole batches go
 * in a few statements: the keys, states and changes travel as arrays and unnest() on the
 * server. */
#include "telemetry/alerts.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/json.h"
#include "sy/log.h"
#include "sy/pg.h"
#include "sy/worker.h"
#include "telemetry/buf.h"

#define PUBLISH_MAX     100
#define PUBLISH_TIMEOUT 10000

static const char sql_state_new[] =
    "INSERT INTO telemetry_alert_state (rule, plant, device)"
    " SELECT r, p, d FROM unnest($1::text[], $2::text[], $3::text[]) AS k(r, p, d)"
    " ORDER BY r, p, d ON CONFLICT DO NOTHING";

/* Locked in one order by every replica, so two batches cannot wait on each other. */
static const char sql_state_lock[] =
    "SELECT s.rule, s.plant, s.device, s.active, s.streak, s.last_ts_us"
    " FROM telemetry_alert_state s"
    " JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(r, p, d)"
    "   ON s.rule = k.r AND s.plant = k.p AND s.device = k.d"
    " ORDER BY s.rule, s.plant, s.device FOR UPDATE OF s";

static const char sql_state_save[] =
    "UPDATE telemetry_alert_state s SET active = u.a, streak = u.n, last_ts_us = u.t,"
    "   updated_at = now()"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::integer[],"
    "   $6::bigint[]) AS u(r, p, d, a, n, t)"
    " WHERE s.rule = u.r AND s.plant = u.p AND s.device = u.d";

static const char sql_changes[] =
    "INSERT INTO telemetry_alerts (rule, severity, state, plant, kind, device, metric, value,"
    "   threshold, ts)"
    " SELECT r, sev, st, p, k, d, m, v, th, timestamptz 'epoch' + t * interval '1 microsecond'"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    "   $7::text[], $8::float8[], $9::float8[], $10::bigint[])"
    "   AS a(r, sev, st, p, k, d, m, v, th, t)"
    " ON CONFLICT DO NOTHING";

static const char sql_outbox[] =
    "SELECT id, rule, severity, state, plant, kind, device, metric, value, threshold,"
    "   to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    " FROM telemetry_alerts WHERE published_at IS NULL ORDER BY id LIMIT 100"
    " FOR UPDATE SKIP LOCKED";

static const char sql_published[] =
    "UPDATE telemetry_alerts SET published_at = now() WHERE id = ANY($1::bigint[])";

struct hit {
    size_t rule;    /* index into the model's rules */
    size_t reading; /* index into the batch */
};

struct key {
    size_t rule;
    const char *plant, *device;
    struct tm_alert_state st;
    bool changed;
};

struct change {
    size_t rule, reading;
    bool raised;
};

static int cmp_hit(const void *a, const void *b, void *batch)
{
    const struct hit *x = a, *y = b;
    const struct tm_batch *bt = batch;
    const struct tm_reading *rx = &bt->r[x->reading], *ry = &bt->r[y->reading];
    int c;

    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if ((c = strcmp(rx->plant, ry->plant)) || (c = strcmp(rx->device, ry->device)))
        return c;
    return rx->ts_us < ry->ts_us ? -1 : rx->ts_us > ry->ts_us;
}

static int cmp_key(const struct tm_rule *rules, const struct key *k, const char *rule,
                   const char *plant, const char *device)
{
    int c = strcmp(rules[k->rule].name, rule);

    if (c || (c = strcmp(k->plant, plant)))
        return c;
    return strcmp(k->device, device);
}

#define ARRAYS_MAX 10

struct arrays {
    struct tm_buf a[ARRAYS_MAX];
    const char *params[ARRAYS_MAX];
};

static void arrays_free(struct arrays *x)
{
    for (size_t i = 0; i < ARRAYS_MAX; i++)
        tm_buf_free(&x->a[i]);
}

static int arrays_end(struct arrays *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (tm_arr_end(&x->a[i]) != 0)
            return -SY_ENOMEM;
        x->params[i] = x->a[i].p;
    }
    return 0;
}

static struct key *find_key(const struct tm_rule *rules, struct key *keys, size_t n,
                            const char *rule, const char *plant, const char *device)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_key(rules, &keys[mid], rule, plant, device);

        if (c == 0)
            return &keys[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int load_states(struct sy_pg *pg, const struct tm_rule *rules, struct key *keys,
                       size_t nkeys, struct arrays *x)
{
    struct sy_pg_res *res = NULL;
    int rc;

    for (size_t i = 0; i < 3; i++)
        if (tm_arr_begin(&x->a[i]) != 0)
            return -SY_ENOMEM;
    for (size_t i = 0; i < nkeys; i++)
        if (tm_arr_text(&x->a[0], rules[keys[i].rule].name) ||
            tm_arr_text(&x->a[1], keys[i].plant) || tm_arr_text(&x->a[2], keys[i].device))
            return -SY_ENOMEM;
    if (arrays_end(x, 3) != 0)
        return -SY_ENOMEM;
    if ((rc = sy_pg_exec(pg, sql_state_new, 3, x->params, NULL)) != 0 ||
        (rc = sy_pg_exec(pg, sql_state_lock, 3, x->params, &res)) != 0)
        return rc;
    for (int row = 0; row < sy_pg_res_rows(res); row++) {
        struct key *k = find_key(rules, keys, nkeys, sy_pg_res_get(res, row, 0),
                                 sy_pg_res_get(res, row, 1), sy_pg_res_get(res, row, 2));

        if (!k)
            continue;
        k->st.active = strcmp(sy_pg_res_get(res, row, 3), "t") == 0;
        k->st.streak = atoi(sy_pg_res_get(res, row, 4));
        k->st.last_ts_us = strtoll(sy_pg_res_get(res, row, 5), NULL, 10);
    }
    sy_pg_res_free(res);
    return 0;
}

static int save_states(struct sy_pg *pg, const struct tm_rule *rules, const struct key *keys,
                       size_t nkeys, struct arrays *x)
{
    size_t n = 0;

    for (size_t i = 0; i < 6; i++)
        if (tm_arr_begin(&x->a[i]) != 0)
            return -SY_ENOMEM;
    for (size_t i = 0; i < nkeys; i++) {
        const struct key *k = &keys[i];

        if (!k->changed)
            continue;
        n++;
        if (tm_arr_text(&x->a[0], rules[k->rule].name) || tm_arr_text(&x->a[1], k->plant) ||
            tm_arr_text(&x->a[2], k->device) ||
            tm_arr_raw(&x->a[3], "%s", k->st.active ? "t" : "f") ||
            tm_arr_raw(&x->a[4], "%d", k->st.streak) ||
            tm_arr_raw(&x->a[5], "%" PRId64, k->st.last_ts_us))
            return -SY_ENOMEM;
    }
    if (n == 0)
        return 0;
    if (arrays_end(x, 6) != 0)
        return -SY_ENOMEM;
    return sy_pg_exec(pg, sql_state_save, 6, x->params, NULL);
}

static int save_changes(struct sy_pg *pg, const struct tm_rule *rules, const struct tm_batch *b,
                        const struct change *c, size_t n, struct arrays *x)
{
    for (size_t i = 0; i < 10; i++)
        if (tm_arr_begin(&x->a[i]) != 0)
            return -SY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct tm_rule *r = &rules[c[i].rule];
        const struct tm_reading *rd = &b->r[c[i].reading];

        if (tm_arr_text(&x->a[0], r->name) || tm_arr_text(&x->a[1], r->severity) ||
            tm_arr_text(&x->a[2], c[i].raised ? "raised" : "cleared") ||
            tm_arr_text(&x->a[3], rd->plant) || tm_arr_text(&x->a[4], rd->kind) ||
            tm_arr_text(&x->a[5], rd->device) || tm_arr_text(&x->a[6], rd->metric) ||
            tm_arr_raw(&x->a[7], "%.17g", rd->value) ||
            tm_arr_raw(&x->a[8], "%.17g", c[i].raised ? r->raise : r->clear) ||
            tm_arr_raw(&x->a[9], "%" PRId64, rd->ts_us))
            return -SY_ENOMEM;
    }
    if (arrays_end(x, 10) != 0)
        return -SY_ENOMEM;
    return sy_pg_exec(pg, sql_changes, 10, x->params, NULL);
}

int tm_alerts_apply(struct sy_pg *pg, const struct tm_model *m, const struct tm_batch *b,
                    size_t *changes)
{
    const struct tm_rule *rules;
    size_t nrules = tm_model_rules(m, &rules), nhits = 0, nkeys = 0, nchanges = 0;
    struct hit *hits = NULL;
    struct key *keys = NULL;
    struct change *ch = NULL;
    struct arrays x = {0};
    int rc = 0;

    *changes = 0;
    if (nrules == 0 || b->good == 0)
        return 0;
    for (size_t i = 0; i < b->n; i++)
        for (size_t j = 0; j < nrules; j++)
            if (tm_rule_matches(&rules[j], &b->r[i])) {
                if (!hits && !(hits = malloc(b->n * nrules * sizeof *hits)))
                    return -SY_ENOMEM;
                hits[nhits++] = (struct hit){j, i};
            }
    if (nhits == 0)
        return 0;
    qsort_r(hits, nhits, sizeof *hits, cmp_hit, (void *)b);
    if (!(keys = malloc(nhits * sizeof *keys)) || !(ch = malloc(nhits * sizeof *ch))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nhits; i++) {
        const struct tm_reading *r = &b->r[hits[i].reading];

        if (nkeys &&
            cmp_key(rules, &keys[nkeys - 1], rules[hits[i].rule].name, r->plant, r->device) == 0)
            continue;
        keys[nkeys++] = (struct key){.rule = hits[i].rule, .plant = r->plant, .device = r->device};
    }
    if ((rc = load_states(pg, rules, keys, nkeys, &x)) != 0)
        goto out;
    for (size_t i = 0, k = 0; i < nhits; i++) {
        const struct tm_reading *r = &b->r[hits[i].reading];
        struct tm_alert_state before;
        enum tm_step step;

        while (cmp_key(rules, &keys[k], rules[hits[i].rule].name, r->plant, r->device) != 0)
            k++;
        before = keys[k].st;
        step = tm_rule_step(&rules[hits[i].rule], &keys[k].st, r->value, r->ts_us);
        if (memcmp(&before, &keys[k].st, sizeof before) != 0)
            keys[k].changed = true;
        if (step != TM_STEP_NONE)
            ch[nchanges++] = (struct change){hits[i].rule, hits[i].reading, step == TM_STEP_RAISE};
    }
    if ((rc = save_states(pg, rules, keys, nkeys, &x)) != 0)
        goto out;
    if (nchanges && (rc = save_changes(pg, rules, b, ch, nchanges, &x)) != 0)
        goto out;
    *changes = nchanges;
out:
    arrays_free(&x);
    free(hits);
    free(keys);
    free(ch);
    return rc;
}

/* --- the outbox --------------------------------------------------------------------------- */

static int publish_row(struct sy_worker *w, const struct sy_pg_res *res, int row)
{
    char type[64], id[64];
    void *mp = NULL;
    size_t len = 0;
    json_t *d;
    int rc;

#define COL(i) sy_pg_res_get(res, row, i)
    d = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:s}", "alert_id",
                  (json_int_t)strtoll(COL(0), NULL, 10), "rule", COL(1), "severity", COL(2),
                  "state", COL(3), "plant", COL(4), "kind", COL(5), "device", COL(6), "metric",
                  COL(7), "value", strtod(COL(8), NULL), "threshold", strtod(COL(9), NULL), "ts",
                  COL(10));
    snprintf(type, sizeof type, "telemetry.alert.%s", COL(2));
    snprintf(id, sizeof id, "telemetry-alert-%s", COL(0));
#undef COL
    if (!d)
        return -SY_ENOMEM;
    rc = sy_json_to_msgpack(d, &mp, &len);
    json_decref(d);
    if (rc == 0)
        rc = sy_worker_publish(w, type, id, mp, len, PUBLISH_TIMEOUT, NULL);
    free(mp);
    return rc;
}

int tm_alerts_publish(struct sy_pg *pg, struct sy_worker *w, size_t *published)
{
    struct sy_pg_res *res = NULL;
    struct tm_buf ids = {0};
    size_t done = 0;
    int rc;

    *published = 0;
    if ((rc = sy_pg_begin(pg)) != 0)
        return rc;
    if ((rc = sy_pg_exec(pg, sql_outbox, 0, NULL, &res)) != 0)
        goto fail;
    if (tm_arr_begin(&ids) != 0) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    for (int row = 0; row < sy_pg_res_rows(res) && row < PUBLISH_MAX; row++) {
        if ((rc = publish_row(w, res, row)) != 0) {
            sy_log_warn("telemetry.alert", "alert %s not published yet: %s",
                        sy_pg_res_get(res, row, 0), sy_strerror(rc));
            break;
        }
        if (tm_arr_raw(&ids, "%s", sy_pg_res_get(res, row, 0)) != 0) {
            rc = -SY_ENOMEM;
            break;
        }
        done++;
    }
    sy_pg_res_free(res);
    res = NULL;
    if (done) {
        int urc;

        if (tm_arr_end(&ids) != 0) {
            rc = -SY_ENOMEM;
            goto fail;
        }
        if ((urc = sy_pg_exec(pg, sql_published, 1, (const char *[]){ids.p}, NULL)) != 0) {
            rc = urc;
            goto fail;
        }
    }
    tm_buf_free(&ids);
    if ((rc == 0 || done) && sy_pg_commit(pg) == 0) {
        *published = done;
        return rc;
    }
    sy_pg_rollback(pg);
    return rc ? rc : -SY_EDB;
fail:
    sy_pg_res_free(res);
    tm_buf_free(&ids);
    sy_pg_rollback(pg);
    return rc;
}
