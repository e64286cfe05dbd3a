/* pull.c - grm.pull: status changes made in the GRM, read since a durable watermark and
 * applied to PostgreSQL, each announced as grievance.status_changed; then the grievances
 * whose GRM copy is still pending (see grievance.h for the conflict rule). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grievance/grm_map.h"
#include "grievance/store_int.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/mysql.h"
#include "sy/pg.h"
#include "sy/worker.h"

#define PUBLISH_TIMEOUT_MS 5000
#define PENDING_AGE        "60 seconds" /* a pending copy younger than this is its message's */
#define PENDING_MAX        500
/* pg_advisory_xact_lock key of pulls: one replica pulls at a time ("sygrmpul" as an int). */
#define PULL_LOCK_SQL "SELECT pg_try_advisory_xact_lock(8320787152930565484)"
#define EPOCH         "1970-01-01 00:00:00.000000"

/* Watermarks are kept per GRM table, so pointing the map at another table starts afresh. */
static const char sql_watermark[] = "SELECT updated, key FROM grm_watermark WHERE name = $1";

static const char sql_set_watermark[] =
    "INSERT INTO grm_watermark (name, updated, key) VALUES ($3, $1, $2)"
    " ON CONFLICT (name) DO UPDATE SET updated = EXCLUDED.updated, key = EXCLUDED.key,"
    " pulled_at = now()";

/* Our side of one grievance, locked: status, phone, whether PostgreSQL holds a change the GRM
 * has not received, and whether that change is later than the GRM's ($2, UTC). */
static const char sql_ours[] = "SELECT g.status, g.phone_number, COALESCE(s.pending, false),"
                               " g.updated_at > ($2::timestamp AT TIME ZONE 'UTC')"
                               " FROM grievances g LEFT JOIN grm_sync s USING (grievance_id)"
                               " WHERE g.grievance_id = $1 FOR UPDATE OF g";

static const char sql_apply[] =
    "WITH g AS (UPDATE grievances SET status = $2, updated_at = now() WHERE grievance_id = $1"
    "   RETURNING grievance_id),"
    " h AS (INSERT INTO status_history (grievance_id, status, created_by, message_id)"
    "   SELECT grievance_id, $2, 'grm', $3 FROM g ON CONFLICT (message_id) DO NOTHING),"
    " s AS (INSERT INTO grm_sync (grievance_id, pending, pushed_status, grm_updated_at)"
    "   SELECT grievance_id, false, $2, $4 FROM g ON CONFLICT (grievance_id) DO UPDATE SET"
    "   pushed_status = EXCLUDED.pushed_status, grm_updated_at = EXCLUDED.grm_updated_at)"
    " SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

static const char sql_seen[] = "UPDATE grm_sync SET grm_updated_at = $2 WHERE grievance_id = $1";

static const char sql_history[] =
    "INSERT INTO sync_history (direction, grievance_id, outcome, pg_status, grm_status, detail,"
    " message_id) VALUES ('pull', $1, $2, $3, $4, $5, $6)";

static int history(struct gr_store *s, const char *gid, const char *outcome, const char *pg_status,
                   const char *grm_status, const char *detail, const char *id)
{
    const char *params[6] = {gid, outcome, pg_status, grm_status, detail, id};

    return sy_pg_exec(s->pg, sql_history, 6, params, NULL);
}

static int publish(struct gr_store *s, const char *id, json_t *data)
{
    void *mp = NULL;
    size_t len = 0;
    int rc;

    if (!s->w)
        return 0;
    rc = sy_json_to_msgpack(data, &mp, &len);
    if (rc == 0)
        rc = sy_worker_publish(s->w, "grievance.status_changed", id, mp, len, PUBLISH_TIMEOUT_MS,
                               NULL);
    free(mp);
    return rc;
}

/* One GRM row: its status applied to PostgreSQL unless it is ours already or loses a
 * conflict. 0, a PostgreSQL error, or 1 (with why) when an announcement failed. */
static int pull_row(struct gr_store *s, const char *key, const char *updated, const char *theirs,
                    char *why, size_t whylen)
{
    const char *ours = grm_status_from_grm(s->map, theirs), *params[4];
    char id[SY_MSG_ID_MAX + 1], detail[512];
    struct sy_pg_res *res = NULL, *at = NULL;
    const char *cur, *phone;
    bool pending, pg_later;
    json_t *data;
    int rc;

    if (!key)
        return 0; /* a row the GRM made itself: not one of ours */
    if (!ours) {
        snprintf(detail, sizeof detail, "the GRM status '%s' has no mapping in grm.yaml",
                 theirs ? theirs : "(null)");
        return history(s, key, "failed", NULL, theirs, detail, NULL);
    }
    params[0] = key;
    params[1] = updated;
    if ((rc = sy_pg_exec(s->pg, sql_ours, 2, params, &res)) != 0)
        return rc;
    if (sy_pg_res_rows(res) != 1) {
        sy_pg_res_free(res);
        return history(s, key, "skipped", NULL, theirs, "no such grievance in PostgreSQL", NULL);
    }
    cur = sy_pg_res_get(res, 0, 0);
    phone = sy_pg_res_get(res, 0, 1);
    pending = strcmp(sy_pg_res_get(res, 0, 2), "t") == 0;
    pg_later = strcmp(sy_pg_res_get(res, 0, 3), "t") == 0;
    if (strcmp(cur, ours) == 0) {
        rc = sy_pg_exec(s->pg, sql_seen, 2, params, NULL);
        goto out;
    }
    if (pending) {
        snprintf(detail, sizeof detail,
                 "both changed: PostgreSQL to %s, the GRM to %s at %s; %s wins (the later)", cur,
                 ours, updated, pg_later ? "PostgreSQL" : "the GRM");
        sy_counter_add(s->conflicts, 1);
        if ((rc = history(s, key, "conflict", cur, theirs, detail, NULL)) != 0 || pg_later)
            goto out;
    }
    /* The id names the change, so a pull that runs again announces it under the same id. */
    snprintf(id, sizeof id, "grm:%s:%s", key, updated);
    for (char *c = id; *c; c++)
        if (*c == ' ')
            *c = 'T';
    params[1] = ours;
    params[2] = id;
    params[3] = updated;
    if ((rc = sy_pg_exec(s->pg, sql_apply, 4, params, &at)) != 0)
        goto out;
    if ((rc = history(s, key, "ok", ours, theirs, NULL, id)) != 0)
        goto out;
    data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "grievance_id", key, "status", ours,
                     "previous_status", cur, "phone_number", phone, "changed_by", "grm", "at",
                     sy_pg_res_get(at, 0, 0));
    rc = data ? publish(s, id, data) : -SY_ENOMEM;
    json_decref(data);
    if (rc != 0) {
        snprintf(why, whylen, "grievance.status_changed %s not published: %s", id, sy_strerror(rc));
        rc = 1;
    } else {
        sy_counter_add(s->pulled, 1);
    }
out:
    sy_pg_res_free(res);
    sy_pg_res_free(at);
    return rc;
}

/* One round: the next pull_batch GRM rows past the watermark, in one PostgreSQL transaction
 * that also moves the watermark. *more: a full batch came, so there may be more. */
static int pull_round(struct gr_store *s, bool *more, bool *busy, long long *rows_read, char *why,
                      size_t whylen)
{
    struct sy_pg_res *lock = NULL, *wm = NULL;
    struct sy_mysql_res *rows = NULL;
    char *sql = NULL, upd[64] = EPOCH, key[128] = "";
    const char *params[3];
    int rc, n = 0;

    *more = *busy = false;
    if ((rc = sy_pg_begin(s->pg)) != 0)
        goto pg_fail;
    if ((rc = sy_pg_exec(s->pg, PULL_LOCK_SQL, 0, NULL, &lock)) != 0)
        goto pg_fail;
    if (strcmp(sy_pg_res_get(lock, 0, 0), "t") != 0) {
        *busy = true;
        sy_pg_rollback(s->pg);
        goto out;
    }
    params[0] = grm_map_table(s->map);
    if ((rc = sy_pg_exec(s->pg, sql_watermark, 1, params, &wm)) != 0)
        goto pg_fail;
    if (sy_pg_res_rows(wm) == 1) {
        snprintf(upd, sizeof upd, "%s", sy_pg_res_get(wm, 0, 0));
        snprintf(key, sizeof key, "%s", sy_pg_res_get(wm, 0, 1));
    }
    params[0] = params[1] = upd;
    params[2] = key;
    if (!(sql = grm_map_pull_sql(s->map))) {
        rc = -SY_ENOMEM;
        goto pg_fail;
    }
    if ((rc = gr_mysql(s)) == 0)
        rc = sy_mysql_exec(s->my, sql, 3, params, &rows);
    if (rc != 0) {
        gr_mysql_drop(s, rc);
        snprintf(why, whylen, "the GRM could not be read: %s (%s)", sy_strerror(rc), s->my_err);
        sy_pg_rollback(s->pg);
        rc = 1;
        goto out;
    }
    n = sy_mysql_res_rows(rows);
    for (int r = 0; r < n; r++) {
        const char *k = sy_mysql_res_get(rows, r, 0), *u = sy_mysql_res_get(rows, r, 1);

        rc = pull_row(s, k, u, sy_mysql_res_get(rows, r, 2), why, whylen);
        if (rc != 0) {
            sy_pg_rollback(s->pg);
            goto out;
        }
        snprintf(upd, sizeof upd, "%s", u ? u : EPOCH);
        snprintf(key, sizeof key, "%s", k ? k : "");
    }
    if (n > 0) {
        params[0] = upd;
        params[1] = key;
        params[2] = grm_map_table(s->map);
        if ((rc = sy_pg_exec(s->pg, sql_set_watermark, 3, params, NULL)) != 0)
            goto pg_fail;
    }
    gr_monitor(s, true, NULL);
    if ((rc = sy_pg_commit(s->pg)) != 0)
        goto pg_fail;
    *more = (size_t)n >= grm_map_pull_batch(s->map);
    *rows_read += n;
    goto out;
pg_fail:
    snprintf(why, whylen, "PostgreSQL: %s (%s)", sy_strerror(rc), sy_pg_error(s->pg));
    sy_pg_rollback(s->pg);
    if (rc == -SY_ECONN) {
        sy_pg_destroy(s->pg);
        s->pg = NULL;
    }
    rc = 1;
out:
    free(sql);
    sy_pg_res_free(lock);
    sy_pg_res_free(wm);
    sy_mysql_res_free(rows);
    return rc;
}

void gr_pull(struct gr_store *s, struct sy_msg *msg)
{
    char why[768] = "";
    bool more = true, busy = false;
    int64_t limit = 0;
    long long nrows = 0;
    char text[32];
    const char *params[1] = {text};
    int rc, rounds = s->pull_rounds;

    if (!grm_map_enabled(s->map))
        return; /* nothing to pull: the integration is off */
    if ((rc = gr_pg(s)) != 0) {
        sy_msg_fail(msg, SY_RETRY, "PostgreSQL is unreachable: %s", s->pg_err);
        return;
    }
    /* data.limit: about this many GRM rows at most (whole batches of pull_batch). */
    if (sy_msg_get_int(msg, "limit", &limit) == 0 && limit > 0) {
        int64_t batch = (int64_t)grm_map_pull_batch(s->map), want = (limit + batch - 1) / batch;

        if (want < rounds)
            rounds = (int)want;
    }
    for (int round = 0; more && round < rounds; round++) {
        if (pull_round(s, &more, &busy, &nrows, why, sizeof why) != 0) {
            gr_monitor(s, false, why);
            gr_monitor_flush(s);
            sy_msg_fail(msg, SY_RETRY, "%s", why);
            return;
        }
        if (busy) {
            sy_log_debug("grievance.pull", "another replica is pulling; this grm.pull ends");
            return;
        }
    }
    /* When the last pull ran and how many GRM rows it read (the watermark says how far). */
    snprintf(text, sizeof text, "%lld", nrows);
    (void)sy_pg_exec(s->pg,
                     "INSERT INTO system_monitoring (component, name, value)"
                     " VALUES ('grm', 'last_pull_rows', $1) ON CONFLICT (component, name)"
                     " DO UPDATE SET value = EXCLUDED.value, at = now()",
                     1, params, NULL);
    if (gr_push_pending(s, PENDING_AGE, PENDING_MAX, why, sizeof why) != 0)
        sy_msg_fail(msg, SY_RETRY, "%s", why);
    gr_monitor_flush(s);
}
