/* push.c - the GRM copy of grievances: their current PostgreSQL rows, mapped by grm.yaml,
 * upserted into the GRM's table in one MySQL transaction per batch (see store_int.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grievance/grm_map.h"
#include "grievance/store_int.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/mysql.h"
#include "sy/pg.h"

#define PARAMS_MAX 60000 /* placeholders in one statement (the protocol allows 65535) */
#define ROWS_MAX   500   /* rows in one statement */
#define SCRATCH    64    /* custom values of one row made into text (a map has at most 64) */

/* The current state of the grievances to copy, locked so no other batch copies an older
 * state of one of them after this one. */
static const char sql_rows[] =
    "SELECT g.grievance_id, u.name, u.phone_number, g.description, g.location, g.status,"
    " g.project_type, to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
    " g.custom::text"
    " FROM grievances g JOIN users u ON u.phone_number = g.phone_number"
    " WHERE g.grievance_id IN (SELECT json_array_elements_text($1::json))"
    " ORDER BY g.grievance_id FOR UPDATE OF g";

static const char *const row_fields[] = {
    "grievance_id",       "user_full_name",        "user_contact_phone", "grievance_details",
    "grievance_location", "classification_status", "project_type",       "submitted_at",
};

struct row {
    const struct sy_pg_res *res;
    int r;
    json_t *custom;
    char text[SCRATCH][32];
    int ntext;
};

static const char *row_lookup(void *ud, const char *field)
{
    struct row *w = ud;
    json_t *v;

    for (size_t i = 0; i < sizeof row_fields / sizeof row_fields[0]; i++)
        if (strcmp(field, row_fields[i]) == 0)
            return sy_pg_res_get(w->res, w->r, (int)i);
    if (strncmp(field, "custom.", 7) != 0 || !(v = json_object_get(w->custom, field + 7)))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    if (w->ntext == SCRATCH || json_is_null(v))
        return NULL;
    if (json_is_integer(v))
        snprintf(w->text[w->ntext], sizeof w->text[0], "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(w->text[w->ntext], sizeof w->text[0], "%.17g", json_real_value(v));
    else
        snprintf(w->text[w->ntext], sizeof w->text[0], "%d", json_is_true(v) ? 1 : 0);
    return w->text[w->ntext++];
}

/* Upserts rows [from, to) of params (ncols each) in statements of at most ROWS_MAX rows. */
static int upsert(struct gr_store *s, const char **params, size_t ncols, size_t from, size_t to)
{
    size_t per = PARAMS_MAX / ncols < ROWS_MAX ? PARAMS_MAX / ncols : ROWS_MAX;
    int rc = 0;

    for (size_t i = from; i < to && rc == 0; i += per) {
        size_t k = to - i < per ? to - i : per;
        char *sql = grm_map_upsert_sql(s->map, k);

        if (!sql)
            return -SY_ENOMEM;
        rc = sy_mysql_exec(s->my, sql, (int)(k * ncols), params + i * ncols, NULL);
        free(sql);
    }
    return rc;
}

int gr_push_ids(struct gr_store *s, const char *const *ids, size_t n, bool *bad, char **why,
                int *grm_rc)
{
    size_t ncols = grm_map_ncols(s->map), nrows;
    json_t *list = json_array();
    struct sy_pg_res *res = NULL;
    struct row *rows = NULL;
    const char **params = NULL;
    char err[256];
    int rc;

    *grm_rc = 0;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(ids[i]));
    rc = gr_exec_json(s, sql_rows, list, &res);
    json_decref(list);
    if (rc != 0)
        return rc;
    nrows = (size_t)sy_pg_res_rows(res);
    rows = calloc(nrows ? nrows : 1, sizeof *rows);
    params = calloc((nrows ? nrows : 1) * ncols, sizeof *params);
    if (!rows || !params) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nrows; i++) {
        const char *custom = sy_pg_res_get(res, (int)i, 8);

        rows[i].res = res;
        rows[i].r = (int)i;
        rows[i].custom = custom ? json_loads(custom, 0, NULL) : NULL;
        if (grm_map_row(s->map, row_lookup, &rows[i], params + i * ncols, err, sizeof err) != 0) {
            /* Only a map without a status of ours gets here, and the map refuses that at start. */
            *grm_rc = -SY_EDBDATA;
            snprintf(s->my_err, sizeof s->my_err, "%s", err);
            goto out;
        }
    }
    if ((*grm_rc = gr_mysql(s)) != 0)
        goto out;
    if ((*grm_rc = sy_mysql_begin(s->my)) == 0 &&
        (*grm_rc = upsert(s, params, ncols, 0, nrows)) == 0)
        *grm_rc = sy_mysql_commit(s->my);
    if (*grm_rc != 0) {
        gr_mysql_drop(s, *grm_rc);
        if (s->my)
            sy_mysql_rollback(s->my);
    }
    if (*grm_rc == -SY_EDBDATA) {
        /* Somebody's row broke the statement for all: find whose, one at a time. */
        *grm_rc = 0;
        for (size_t i = 0; i < nrows && *grm_rc == 0; i++) {
            int one = upsert(s, params, ncols, i, i + 1);

            if (one == -SY_EDBDATA) {
                const char *gid = sy_pg_res_get(res, (int)i, 0);

                for (size_t j = 0; j < n; j++)
                    if (strcmp(ids[j], gid) == 0) {
                        bad[j] = true;
                        why[j] = strdup(sy_mysql_error(s->my));
                    }
            } else if (one != 0) {
                *grm_rc = one;
                gr_mysql_drop(s, one);
            }
        }
    }
out:
    for (size_t i = 0; rows && i < nrows; i++)
        json_decref(rows[i].custom);
    free(rows);
    free(params);
    sy_pg_res_free(res);
    return rc;
}

/* Each grievance's GRM state after a copy, with a sync_history row: ok clears pending, a
 * failure leaves it pending with the error. $2 (fresh): the grievances changed in this batch,
 * so a failure starts their attempts afresh; a sweep's retry adds one. */
static const char sql_pushed[] =
    "WITH x AS (SELECT x.*, g.status FROM json_to_recordset($1::json) AS x(grievance_id text,"
    "   ok boolean, detail text) JOIN grievances g USING (grievance_id)),"
    " s AS (INSERT INTO grm_sync AS s (grievance_id, pending, changed_at, pushed_at, pushed_status,"
    "   attempts, last_error)"
    "   SELECT grievance_id, NOT ok, now(), CASE WHEN ok THEN now() END,"
    "     CASE WHEN ok THEN status END, CASE WHEN ok THEN 0 ELSE 1 END,"
    "     CASE WHEN ok THEN NULL ELSE detail END FROM x"
    "   ON CONFLICT (grievance_id) DO UPDATE SET"
    "     pending = EXCLUDED.pending,"
    "     changed_at = CASE WHEN $2 THEN now() ELSE s.changed_at END,"
    "     pushed_at = COALESCE(EXCLUDED.pushed_at, s.pushed_at),"
    "     pushed_status = COALESCE(EXCLUDED.pushed_status, s.pushed_status),"
    "     attempts = CASE WHEN EXCLUDED.pending AND NOT $2 THEN s.attempts + 1"
    "       ELSE EXCLUDED.attempts END,"
    "     last_error = EXCLUDED.last_error)"
    " INSERT INTO sync_history (direction, grievance_id, outcome, pg_status, detail)"
    " SELECT 'push', grievance_id, CASE WHEN ok THEN 'ok' ELSE 'failed' END, status, detail"
    " FROM x";

/* The grievances changed while the GRM copy is off: pending until it is turned on. */
static const char sql_mark_pending[] =
    "INSERT INTO grm_sync (grievance_id)"
    " SELECT DISTINCT value FROM json_array_elements_text($1::json)"
    " ON CONFLICT (grievance_id) DO UPDATE SET pending = true, changed_at = now(), attempts = 0";

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Records each grievance's outcome: failed[i] with why[i] (or detail). */
static int record(struct gr_store *s, const char **ids, size_t n, const bool *failed,
                  char *const *why, const char *detail, bool fresh)
{
    json_t *rows = json_array();
    char *text;
    const char *params[2];
    int rc;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(rows, json_pack("{s:s, s:b, s:s?}", "grievance_id", ids[i], "ok",
                                              !failed[i], "detail",
                                              failed[i] ? (why[i] ? why[i] : detail) : NULL));
    text = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    if (!text)
        return -SY_ENOMEM;
    params[0] = text;
    params[1] = fresh ? "true" : "false";
    rc = sy_pg_exec(s->pg, sql_pushed, 2, params, NULL);
    free(text);
    return rc;
}

int gr_push(struct gr_store *s, struct gr_item *items, size_t n)
{
    const char **ids = NULL;
    bool *bad = NULL, *failed = NULL;
    char **why = NULL;
    size_t k = 0, u = 0, nbad = 0;
    int rc = 0, grm_rc = 0;

    if (!(ids = malloc((n ? n : 1) * sizeof *ids)))
        return -SY_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (items[i].push && items[i].stored && items[i].v == SY_ACK)
            ids[k++] = items[i].gid;
    if (k == 0)
        goto out;
    if (!grm_map_enabled(s->map)) {
        json_t *list = json_array();

        for (size_t i = 0; i < k; i++)
            json_array_append_new(list, json_string(ids[i]));
        rc = gr_exec_json(s, sql_mark_pending, list, NULL);
        json_decref(list);
        goto out;
    }
    qsort(ids, k, sizeof *ids, by_str);
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(ids[u - 1], ids[i]) != 0)
            ids[u++] = ids[i];
    bad = calloc(u, sizeof *bad);
    failed = calloc(u, sizeof *failed);
    why = calloc(u, sizeof *why);
    if (!bad || !failed || !why) {
        rc = -SY_ENOMEM;
        goto out;
    }
    if ((rc = gr_push_ids(s, ids, u, bad, why, &grm_rc)) != 0)
        goto out;
    for (size_t i = 0; i < u; i++) {
        failed[i] = grm_rc != 0 || bad[i];
        nbad += failed[i];
    }
    rc = record(s, ids, u, failed, why, s->my_err, true);
    if (rc != 0)
        goto out;
    sy_counter_add(s->pushed, u - nbad);
    sy_counter_add(s->push_failed, nbad);
    gr_monitor(s, grm_rc == 0, grm_rc == 0 ? NULL : s->my_err);
    if (grm_rc != 0) {
        sy_log_write(SY_LOG_WARN, "grievance.grm", -1, s->my_err,
                     "GRM copy of %zu grievance(s) failed: %s; they are retried", u,
                     sy_strerror(grm_rc));
    }
    /* The items whose grievance was not copied wait for a retry, or are refused. */
    for (size_t i = 0; i < n; i++) {
        struct gr_item *it = &items[i];
        const char **hit;

        if (!it->push || !it->stored || it->v != SY_ACK)
            continue;
        hit = bsearch(&it->gid, ids, u, sizeof *ids, by_str);
        if (!hit)
            continue;
        if (grm_rc != 0)
            gr_verdict(it, sy_err_retriable(grm_rc) ? SY_RETRY : SY_REJECT,
                       "the GRM did not take grievance %s: %s (%s)", it->gid, sy_strerror(grm_rc),
                       s->my_err);
        else if (bad[hit - ids])
            gr_verdict(it, SY_REJECT, "the GRM refused grievance %s: %s", it->gid,
                       why[hit - ids] ? why[hit - ids] : "");
    }
out:
    for (size_t i = 0; why && i < u; i++)
        free(why[i]);
    free(why);
    free(bad);
    free(failed);
    free(ids);
    return rc;
}

static const char sql_pending[] = "SELECT grievance_id FROM grm_sync WHERE pending AND attempts < 5"
                                  " AND changed_at < now() - $1::interval"
                                  " ORDER BY grievance_id LIMIT $2 FOR UPDATE SKIP LOCKED";

int gr_push_pending(struct gr_store *s, const char *age, int max, char *why, size_t whylen)
{
    struct sy_pg_res *res = NULL;
    const char **ids = NULL;
    bool *bad = NULL;
    char **whys = NULL, limit[16];
    const char *params[2] = {age, limit};
    int rc, grm_rc = 0, n = 0;

    snprintf(limit, sizeof limit, "%d", max);
    if ((rc = sy_pg_begin(s->pg)) != 0)
        goto fail;
    if ((rc = sy_pg_exec(s->pg, sql_pending, 2, params, &res)) != 0)
        goto fail;
    n = sy_pg_res_rows(res);
    if (n == 0) {
        rc = sy_pg_commit(s->pg);
        goto done;
    }
    ids = calloc((size_t)n, sizeof *ids);
    bad = calloc((size_t)n, sizeof *bad);
    whys = calloc((size_t)n, sizeof *whys);
    if (!ids || !bad || !whys) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < n; i++)
        ids[i] = sy_pg_res_get(res, i, 0);
    if ((rc = gr_push_ids(s, ids, (size_t)n, bad, whys, &grm_rc)) != 0)
        goto fail;
    for (int i = 0; i < n; i++)
        bad[i] = bad[i] || grm_rc != 0;
    if ((rc = record(s, ids, (size_t)n, bad, whys, s->my_err, false)) != 0)
        goto fail;
    gr_monitor(s, grm_rc == 0, grm_rc == 0 ? NULL : s->my_err);
    if ((rc = sy_pg_commit(s->pg)) != 0)
        goto fail;
    if (grm_rc != 0) {
        snprintf(why, whylen, "the GRM did not take %d pending grievance(s): %s (%s)", n,
                 sy_strerror(grm_rc), s->my_err);
        rc = 1;
    }
    goto done;
fail:
    snprintf(why, whylen, "PostgreSQL: %s (%s)", sy_strerror(rc), sy_pg_error(s->pg));
    sy_pg_rollback(s->pg);
    rc = 1;
done:
    for (int i = 0; whys && i < n; i++)
        free(whys[i]);
    free(whys);
    free(bad);
    free(ids);
    sy_pg_res_free(res);
    return rc;
}
