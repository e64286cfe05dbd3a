/* runs.c - sy-optimizer's ledger of runs in PostgreSQL: claimed once, heartbeat and cancel
 * flag while solving, the end stored with the whole result. */
#include "optimizer/runs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/pg.h"

bool runs_id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > RUNS_ID_MAX)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("_.:@-", *p)))
            return false;
    return true;
}

static bool final_status(const char *s)
{
    return strcmp(s, "queued") != 0 && strcmp(s, "running") != 0;
}

int runs_claim(struct sy_pg *pg, const char *run_id, const char *kind, const char *dataset,
               const json_t *options, const char *instance, long long stale_s, enum runs_claim *out,
               bool *cancel, json_t **result)
{
    char *opts = json_dumps(options, JSON_COMPACT), stale[32];
    const char *p[4] = {run_id, kind, dataset, opts};
    const char *q[3] = {run_id, instance, stale};
    struct sy_pg_res *res = NULL;
    int rc;

    *result = NULL;
    *cancel = false;
    if (!opts)
        return -SY_ENOMEM;
    /* A placeholder a cancel left (kind NULL) gets what the solve says. */
    rc = sy_pg_exec(pg,
                    "INSERT INTO optimizer_runs (run_id, kind, dataset, options)"
                    " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (run_id) DO UPDATE"
                    " SET kind = EXCLUDED.kind, dataset = EXCLUDED.dataset,"
                    " options = EXCLUDED.options WHERE optimizer_runs.kind IS NULL",
                    4, p, NULL);
    free(opts);
    if (rc != 0)
        return rc;
    snprintf(stale, sizeof stale, "%lld seconds", stale_s);
    rc = sy_pg_exec(pg,
                    "UPDATE optimizer_runs SET status = 'running', instance = $2,"
                    " started_at = now(), heartbeat_at = now(), progress = NULL"
                    " WHERE run_id = $1 AND (status = 'queued' OR (status = 'running'"
                    " AND heartbeat_at < now() - $3::interval)) RETURNING cancel_requested",
                    3, q, &res);
    if (rc != 0)
        goto out;
    if (sy_pg_res_rows(res) == 1) {
        *out = RUNS_CLAIMED;
        *cancel = strcmp(sy_pg_res_get(res, 0, 0), "t") == 0;
        goto out;
    }
    sy_pg_res_free(res);
    res = NULL;
    if ((rc = sy_pg_exec(pg, "SELECT status, result::text FROM optimizer_runs WHERE run_id = $1", 1,
                         p, &res)) != 0)
        goto out;
    if (sy_pg_res_rows(res) != 1) {
        rc = -SY_EDB; /* removed meanwhile: try again */
        goto out;
    }
    if (!final_status(sy_pg_res_get(res, 0, 0))) {
        *out = RUNS_BUSY;
        goto out;
    }
    *out = RUNS_DONE;
    if (!sy_pg_res_get(res, 0, 1) || !(*result = json_loads(sy_pg_res_get(res, 0, 1), 0, NULL)))
        rc = -SY_ENOMEM;
out:
    sy_pg_res_free(res);
    return rc;
}

int runs_heartbeat(struct sy_pg *pg, const char *run_id, const char *instance, bool *cancel)
{
    const char *p[2] = {run_id, instance};
    struct sy_pg_res *res = NULL;
    int rc = sy_pg_exec(pg,
                        "UPDATE optimizer_runs SET heartbeat_at = now() WHERE run_id = $1"
                        " AND instance = $2 RETURNING cancel_requested",
                        2, p, &res);

    *cancel = rc == 0 && sy_pg_res_rows(res) == 1 && strcmp(sy_pg_res_get(res, 0, 0), "t") == 0;
    sy_pg_res_free(res);
    return rc;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

int runs_progress(struct sy_pg *pg, const char *run_id, const struct op_progress *pr)
{
    json_t *j = json_pack("{s:o, s:o, s:o, s:f, s:i}", "incumbent", num_or_null(pr->incumbent),
                          "bound", num_or_null(pr->bound), "gap", num_or_null(pr->gap), "seconds",
                          pr->seconds, "nodes", pr->nodes);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    const char *p[2] = {run_id, text};
    int rc =
        text ? sy_pg_exec(pg, "UPDATE optimizer_runs SET progress = $2::jsonb WHERE run_id = $1", 2,
                          p, NULL)
             : -SY_ENOMEM;

    free(text);
    json_decref(j);
    return rc;
}

/* A number of the result as text, NULL for null. */
static const char *num_text(const json_t *r, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(r, key);

    if (!json_is_number(v))
        return NULL;
    snprintf(buf, len, "%.17g", json_number_value(v));
    return buf;
}

int runs_finish(struct sy_pg *pg, const char *run_id, const char *instance, const json_t *result)
{
    char obj[40], bound[40], gap[40], secs[40], *text = json_dumps(result, JSON_COMPACT);
    const char *reason = json_string_value(json_object_get(result, "reason"));
    const char *p[9] = {run_id,
                        json_string_value(json_object_get(result, "status")),
                        reason && *reason ? reason : NULL,
                        num_text(result, "objective", obj, sizeof obj),
                        num_text(result, "bound", bound, sizeof bound),
                        num_text(result, "gap", gap, sizeof gap),
                        num_text(result, "seconds", secs, sizeof secs),
                        text,
                        instance};
    int rc;

    if (!text)
        return -SY_ENOMEM;
    rc = sy_pg_exec(pg,
                    "UPDATE optimizer_runs SET status = $2, reason = $3, objective = $4::float8,"
                    " bound = $5::float8, gap = $6::float8, seconds = $7::float8,"
                    " result = $8::jsonb, finished_at = now()"
                    " WHERE run_id = $1 AND status = 'running' AND instance = $9",
                    9, p, NULL);
    free(text);
    return rc;
}

int runs_release(struct sy_pg *pg, const char *run_id, const char *instance)
{
    const char *p[2] = {run_id, instance};

    return sy_pg_exec(pg,
                      "UPDATE optimizer_runs SET status = 'queued', instance = NULL,"
                      " heartbeat_at = NULL WHERE run_id = $1 AND status = 'running'"
                      " AND instance = $2",
                      2, p, NULL);
}

int runs_cancel(struct sy_pg *pg, const char *run_id)
{
    const char *p[1] = {run_id};

    return sy_pg_exec(pg,
                      "INSERT INTO optimizer_runs (run_id, cancel_requested) VALUES ($1, true)"
                      " ON CONFLICT (run_id) DO UPDATE SET cancel_requested = true"
                      " WHERE optimizer_runs.status IN ('queued', 'running')",
                      1, p, NULL);
}

int runs_dataset(struct sy_pg *pg, const char *name, json_t **out)
{
    const char *p[1] = {name};
    struct sy_pg_res *res = NULL;
    int rc =
        sy_pg_exec(pg, "SELECT scenario::text FROM optimizer_datasets WHERE name = $1", 1, p, &res);

    *out = NULL;
    if (rc == 0 && sy_pg_res_rows(res) != 1)
        rc = -SY_ENOTFOUND;
    else if (rc == 0 && !(*out = json_loads(sy_pg_res_get(res, 0, 0), 0, NULL)))
        rc = -SY_ENOMEM;
    sy_pg_res_free(res);
    return rc;
}
