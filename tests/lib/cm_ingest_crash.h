/* cm_ingest_crash.h - sy-ingest killed between publishing a poll's fetches and saving the poll's
 * cursor. The test holds the source's ingest_sources row (SELECT ... FOR UPDATE in a
 * transaction of its own), so the poll's cursor update, which comes only after the broker
 * confirmed every fetch, waits on it, and so does a fetch's count of what it stored, which comes
 * after its documents rows and before their announcement. Once both wait, the worker gets
 * SIGKILL. Its server sessions, still waiting, are then ended (the cursor update was sent with
 * its COMMIT in one pipeline: released, it would commit for a dead worker), its poller's lock in
 * Redis is let go (the lease would lapse by itself in a minute), and the row is released.
 * Checks fail the running cmocka test. */
#ifndef SY_TEST_CM_INGEST_CRASH_H
#define SY_TEST_CM_INGEST_CRASH_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>

#include "cm_worker.h"
#include "sy/pg.h"

/* The poll's cursor update and a fetch's count of stored documents, as pg_stat_activity shows
 * them. */
#define TH_INGEST_CURSOR_UPDATE "%SET cursor = COALESCE%"
#define TH_INGEST_STORED_COUNT  "%SET stored = stored + 1%"

/* A connection of its own holding source's row until th_ingest_kill_held. */
static inline struct sy_pg *th_ingest_hold_row(const char *source)
{
    char err[512] = "";
    struct sy_pg *pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err);
    struct sy_pg_res *res = NULL;

    if (!pg)
        fail_msg("pg: %s", err);
    /* A test that fails while holding the row leaves the session idle: it then ends by itself,
     * and the tests after it are not held up. */
    if (sy_pg_exec(pg, "SET idle_in_transaction_session_timeout = '20s'", 0, NULL, NULL) != 0 ||
        sy_pg_begin(pg) != 0 ||
        sy_pg_exec(pg, "SELECT 1 FROM ingest_sources WHERE source = $1 FOR UPDATE", 1, &source,
                   &res) != 0)
        fail_msg("holding %s: %s", source, sy_pg_error(pg));
    if (sy_pg_res_rows(res) != 1)
        fail_msg("holding %s: the source has no ingest_sources row yet", source);
    sy_pg_res_free(res);
    return pg;
}

/* The sessions waiting on hold, directly or behind another that waits on it. */
#define TH_INGEST_WAITING_ON_HOLD                                                                  \
    "WITH RECURSIVE w (pid) AS ("                                                                  \
    " SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))"       \
    " UNION SELECT a.pid FROM pg_stat_activity a"                                                  \
    "  JOIN w ON w.pid = ANY (pg_blocking_pids(a.pid)))"

/* Sessions waiting on hold whose statement is LIKE like. */
static inline long long th_ingest_waiting(struct sy_pg *hold, const char *like)
{
    struct sy_pg_res *res = NULL;
    long long n;

    /* What pg_stat_activity shows is taken once a transaction: taken afresh. */
    if (sy_pg_exec(hold, "SELECT pg_stat_clear_snapshot()", 0, NULL, NULL) != 0 ||
        sy_pg_exec(hold,
                   TH_INGEST_WAITING_ON_HOLD " SELECT count(*) FROM pg_stat_activity"
                                             " WHERE pid IN (SELECT pid FROM w) AND query LIKE $1",
                   1, &like, &res) != 0)
        fail_msg("pg_stat_activity: %s", sy_pg_error(hold));
    n = atoll(sy_pg_res_get(res, 0, 0));
    sy_pg_res_free(res);
    return n;
}

/* The database's other sessions, on stderr (for failing tests). */
static inline void th_ingest_dump_sessions(struct sy_pg *hold)
{
    struct sy_pg_res *res = NULL;

    if (sy_pg_exec(hold, "SELECT pg_stat_clear_snapshot()", 0, NULL, NULL) != 0 ||
        sy_pg_exec(hold,
                   "SELECT pid, state, COALESCE(wait_event_type || '/' || wait_event, ''),"
                   " pg_blocking_pids(pid)::text, left(regexp_replace(query, '\\s+', ' ', 'g'),"
                   " 100) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND pid <> pg_backend_pid()",
                   0, NULL, &res) != 0)
        return;
    fprintf(stderr, "---- sessions (pid, state, waiting on, blocked by, statement) ----\n");
    for (int i = 0; i < sy_pg_res_rows(res); i++)
        fprintf(stderr, "%s | %s | %s | %s | %s\n", sy_pg_res_get(res, i, 0),
                sy_pg_res_get(res, i, 1) ? sy_pg_res_get(res, i, 1) : "", sy_pg_res_get(res, i, 2),
                sy_pg_res_get(res, i, 3), sy_pg_res_get(res, i, 4));
    sy_pg_res_free(res);
}

/* Waits until a session of the worker p waits on hold with a statement LIKE like. */
static inline void th_ingest_wait_waiting(struct sy_pg *hold, const char *like, struct th_proc *p,
                                          bool *running, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;

    while (th_ingest_waiting(hold, like) == 0) {
        if (th_proc_wait(p, 0) == 0) {
            *running = false;
            th_proc_dump_log(p, 40);
            fail_msg("sy-ingest exited with %d", p->exit_status);
        }
        if (th_now_ms() > end) {
            th_proc_dump_log(p, 40);
            th_ingest_dump_sessions(hold);
            fail_msg("no session of sy-ingest waited with %s in %d ms", like, max_ms);
        }
        th_sleep_ms(50);
    }
}

/* SIGKILL for the worker p, then its waiting sessions ended, the poller's lock of source let go
 * and hold's row released (hold is closed). */
static inline void th_ingest_kill_held(struct th_proc *p, bool *running, struct sy_pg *hold,
                                       const char *source)
{
    struct sy_pg_res *res = NULL;
    redisContext *r;
    redisReply *rep;

    th_proc_signal(p, SIGKILL);
    if (th_proc_wait(p, 10000) != 0)
        fail_msg("sy-ingest did not die of SIGKILL");
    *running = false;
    /* pg_terminate_backend(pid, timeout) waits until the session is gone. */
    if (sy_pg_exec(hold, "SELECT pg_stat_clear_snapshot()", 0, NULL, NULL) != 0 ||
        sy_pg_exec(hold,
                   TH_INGEST_WAITING_ON_HOLD
                   " SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, 10000))"
                   " FROM w",
                   0, NULL, &res) != 0)
        fail_msg("ending the worker's sessions: %s", sy_pg_error(hold));
    if (atoll(sy_pg_res_get(res, 0, 0)) != 0)
        fail_msg("a session of the killed worker did not end");
    sy_pg_res_free(res);
    r = th_redis();
    rep = redisCommand(r, "DEL sy:lock:ingest:%s", source);
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        fail_msg("redis DEL: %s", rep ? rep->str : r->errstr);
    freeReplyObject(rep);
    redisFree(r);
    if (sy_pg_rollback(hold) != 0)
        fail_msg("rollback: %s", sy_pg_error(hold));
    sy_pg_destroy(hold);
}

#endif
