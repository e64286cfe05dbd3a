/* ledger.c - the scheduler's record in PostgreSQL (see ledger.h and 0002_schedule.sql): job
 * cursors and per-tick claim rows, written in transactions that begin with the group's fence
 * check, so the check and the writes commit together or not at all. */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/msg.h"
#include "sy/pg.h"

/* 1970-01-01T00:00:01Z .. 9999-12-31T23:59:59Z: what to_timestamp and the tick ids handle. */
#define TICK_MIN 1
#define TICK_MAX INT64_C(253402300799)
#define TYPE_MAX (sizeof(((struct sched_pending *)0)->type) - 1)
#define NUM_MAX  24 /* a decimal int64 with sign and NUL */
/* A plan's ticks; claimed_mask has one bit for each. */
#define PLAN_TICKS (sizeof(((struct sched_plan *)0)->ticks) / sizeof(int64_t))
_Static_assert(PLAN_TICKS <= 64, "claimed_mask has 64 bits");
/* "scheduler:" + group */
#define FENCE_RESOURCE_MAX (10 + SCHED_GROUP_MAX + 1)

bool sched_ledger_group_ok(const char *group)
{
    if (!group)
        return false;
    size_t n = strlen(group);
    if (n == 0 || n > SCHED_GROUP_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = group[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* --- Checks and conversions ----------------------------------------------------------------- */

static bool text_ok(const char *s, size_t max)
{
    if (!s)
        return false;
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max;
}

static bool tick_ok(int64_t t)
{
    return t >= TICK_MIN && t <= TICK_MAX;
}

static bool job_ok(const struct sched_job *j)
{
    return j && text_ok(j->name, SCHED_JOB_NAME_MAX) && text_ok(j->type, TYPE_MAX) && j->data &&
           j->data_len > 0 && j->data_len <= SY_MSG_MAX_BYTES;
}

static void fmt_i64(char buf[NUM_MAX], int64_t v)
{
    snprintf(buf, NUM_MAX, "%" PRId64, v);
}

static void fmt_u64(char buf[NUM_MAX], uint64_t v)
{
    snprintf(buf, NUM_MAX, "%" PRIu64, v);
}

/* A cell holding a decimal integer; NULL reads as 0. */
static int cell_i64(const struct sy_pg_res *res, int row, int col, int64_t *out)
{
    const char *s = sy_pg_res_get(res, row, col);
    *out = 0;
    if (!s)
        return 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return -SY_EDBDATA;
    *out = v;
    return 0;
}

static int cell_u64(const struct sy_pg_res *res, int row, int col, uint64_t *out)
{
    int64_t v;
    int rc = cell_i64(res, row, col, &v);
    *out = v > 0 ? (uint64_t)v : 0;
    return rc;
}

/* Copies a text cell into a fixed buffer; a longer value than the ledger ever writes is bad
 * data, not something to cut silently. NULL reads as "". */
static int cell_text(const struct sy_pg_res *res, int row, int col, char *buf, size_t bufsz)
{
    const char *s = sy_pg_res_get(res, row, col);
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (n >= bufsz) {
        buf[0] = '\0';
        return -SY_EDBDATA;
    }
    memcpy(buf, s, n + 1);
    return 0;
}

/* bytea input in hex form ("\x0aff..."): accepted whatever the server's bytea_output. */
static char *hex_param(const void *p, size_t len)
{
    char *out = malloc(2 * len + 3);
    if (!out)
        return NULL;
    out[0] = '\\';
    out[1] = 'x';
    sy_hex_encode(p, len, out + 2);
    return out;
}

/* Decodes encode(data, 'hex') output into a malloc'd buffer of at most SY_MSG_MAX_BYTES. */
static int hex_decode(const char *s, void **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!s)
        return -SY_EDBDATA;
    size_t n = strlen(s);
    if (n % 2 != 0 || n / 2 > SY_MSG_MAX_BYTES)
        return -SY_EDBDATA;
    uint8_t *b = malloc(n / 2 ? n / 2 : 1);
    if (!b)
        return -SY_ENOMEM;
    if (sy_hex_decode(s, n, b, n / 2) != 0) {
        free(b);
        return -SY_EDBDATA;
    }
    *out = b;
    *len = n / 2;
    return 0;
}

/* A PostgreSQL array literal of text elements, each quoted and escaped, so any byte but NUL
 * passes as data. */
static char *text_array(const char *const *items, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(items[i]) + 3;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        *o++ = '"';
        for (const char *p = items[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                *o++ = '\\';
            *o++ = *p;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

/* --- Transactions --------------------------------------------------------------------------- */

/* Opens the transaction of a fenced write with the fence check as its first statement: the
 * row lock it takes on sy_fences also orders concurrent writers of the group. On failure the
 * transaction is rolled back already. */
static int fenced_begin(struct sy_pg *pg, const char *group, uint64_t fence)
{
    char resource[FENCE_RESOURCE_MAX];
    snprintf(resource, sizeof resource, "scheduler:%s", group);
    int rc = sy_pg_begin(pg);
    if (rc)
        return rc;
    rc = sy_pg_fence(pg, resource, fence);
    if (rc)
        sy_pg_rollback(pg);
    return rc;
}

/* Ends a transaction: commits when rc is 0, else rolls back and keeps rc. */
static int tx_end(struct sy_pg *pg, int rc)
{
    if (rc == 0)
        return sy_pg_commit(pg);
    sy_pg_rollback(pg);
    return rc;
}

static bool fence_ok(uint64_t fence)
{
    return fence > 0 && fence <= INT64_MAX;
}

/* --- Jobs ----------------------------------------------------------------------------------- */

#define JOB_COLUMNS                                                                                \
    "extract(epoch FROM cursor_tick)::bigint, extract(epoch FROM last_tick)::bigint, "             \
    "extract(epoch FROM last_published_at)::bigint, last_message_id, last_instance, "              \
    "extract(epoch FROM last_manual_at)::bigint, published_total, dropped_total"

/* Reads the JOB_COLUMNS that start at column `col` into st (whose job name is set). */
static int read_state(const struct sy_pg_res *res, int row, int col, struct sched_job_state *st)
{
    int rc;
    if ((rc = cell_i64(res, row, col, &st->cursor)) != 0 ||
        (rc = cell_i64(res, row, col + 1, &st->last_tick)) != 0 ||
        (rc = cell_i64(res, row, col + 2, &st->last_published)) != 0 ||
        (rc = cell_text(res, row, col + 3, st->last_id, sizeof st->last_id)) != 0 ||
        (rc = cell_text(res, row, col + 4, st->last_instance, sizeof st->last_instance)) != 0 ||
        (rc = cell_i64(res, row, col + 5, &st->last_manual)) != 0 ||
        (rc = cell_u64(res, row, col + 6, &st->published)) != 0 ||
        (rc = cell_u64(res, row, col + 7, &st->dropped)) != 0)
        return rc;
    return 0;
}

int sched_ledger_load(struct sy_pg *pg, const char *group, const struct sched_schedule *s,
                      struct sched_job_state *states)
{
    if (!pg || !sched_ledger_group_ok(group) || !s || (s->njobs && (!s->jobs || !states)))
        return -SY_EINVAL;
    const char **names = NULL;
    char *names_txt = NULL;
    struct sy_pg_res *res = NULL;
    int rc = 0;

    for (size_t i = 0; i < s->njobs; i++) {
        if (!text_ok(s->jobs[i].name, SCHED_JOB_NAME_MAX))
            return -SY_EINVAL;
        memset(&states[i], 0, sizeof states[i]);
        memcpy(states[i].job, s->jobs[i].name, strlen(s->jobs[i].name) + 1);
    }
    if (s->njobs == 0)
        return 0;
    names = malloc(s->njobs * sizeof *names);
    if (!names) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->njobs; i++)
        names[i] = s->jobs[i].name;
    names_txt = text_array(names, s->njobs);
    if (!names_txt) {
        rc = -SY_ENOMEM;
        goto out;
    }
    const char *params[] = {group, names_txt};
    rc = sy_pg_exec(pg,
                    "SELECT job, " JOB_COLUMNS " FROM sy_schedule_jobs "
                    "WHERE grp = $1 AND job = ANY($2::text[])",
                    2, params, &res);
    if (rc)
        goto out;
    for (int r = 0; r < sy_pg_res_rows(res); r++) {
        const char *job = sy_pg_res_get(res, r, 0);
        for (size_t i = 0; job && i < s->njobs; i++) {
            if (strcmp(states[i].job, job) != 0)
                continue;
            if ((rc = read_state(res, r, 1, &states[i])) != 0)
                goto out;
            break;
        }
    }
out:
    sy_pg_res_free(res);
    free(names_txt);
    free(names);
    return rc;
}

int sched_ledger_init_job(struct sy_pg *pg, const char *group, const char *job, int64_t now,
                          uint64_t fence)
{
    if (!pg || !sched_ledger_group_ok(group) || !text_ok(job, SCHED_JOB_NAME_MAX) ||
        !tick_ok(now) || !fence_ok(fence))
        return -SY_EINVAL;
    char now_txt[NUM_MAX];
    fmt_i64(now_txt, now);
    int rc = fenced_begin(pg, group, fence);
    if (rc)
        return rc;
    const char *params[] = {group, job, now_txt};
    rc = sy_pg_exec(pg,
                    "INSERT INTO sy_schedule_jobs (grp, job, cursor_tick) "
                    "VALUES ($1, $2, to_timestamp($3::bigint)) "
                    "ON CONFLICT (grp, job) DO NOTHING",
                    3, params, NULL);
    return tx_end(pg, rc);
}

/* --- Claims ----------------------------------------------------------------------------------*/

static bool plan_ok(const struct sched_plan *plan)
{
    if (!plan || plan->n > PLAN_TICKS || plan->dropped > INT64_MAX ||
        (plan->dropped > 0) != (plan->dropped_last != 0) ||
        (plan->dropped_last != 0 && !tick_ok(plan->dropped_last)))
        return false;
    for (size_t i = 0; i < plan->n; i++) {
        if (!tick_ok(plan->ticks[i]) || (i > 0 && plan->ticks[i] <= plan->ticks[i - 1]))
            return false;
    }
    return true;
}

/* Moves the job's cursor to `target` (never back) and adds the dropped ticks unless the
 * cursor is past them already (a repeated call must not count them twice). Creates the row if
 * the job has none. *old_cursor gets the cursor before, -1 when there was no row. */
static int advance_job(struct sy_pg *pg, const char *group, const char *job, int64_t target,
                       const struct sched_plan *plan, int64_t *old_cursor)
{
    struct sy_pg_res *res = NULL;
    char target_txt[NUM_MAX], dropped_txt[NUM_MAX], last_txt[NUM_MAX];
    fmt_i64(target_txt, target);
    fmt_u64(dropped_txt, plan->dropped);
    fmt_i64(last_txt, plan->dropped_last);

    *old_cursor = -1;
    const char *sel[] = {group, job};
    int rc = sy_pg_exec(pg,
                        "SELECT extract(epoch FROM cursor_tick)::bigint FROM sy_schedule_jobs "
                        "WHERE grp = $1 AND job = $2 FOR UPDATE",
                        2, sel, &res);
    if (rc)
        goto out;
    if (sy_pg_res_rows(res) == 1 && (rc = cell_i64(res, 0, 0, old_cursor)) != 0)
        goto out;
    if (target == 0)
        goto out;
    const char *params[] = {group, job, target_txt, dropped_txt, last_txt};
    rc = sy_pg_exec(pg,
                    "INSERT INTO sy_schedule_jobs AS s (grp, job, cursor_tick, dropped_total) "
                    "VALUES ($1, $2, to_timestamp($3::bigint), $4::bigint) "
                    "ON CONFLICT (grp, job) DO UPDATE SET "
                    "cursor_tick = greatest(s.cursor_tick, EXCLUDED.cursor_tick), "
                    "dropped_total = s.dropped_total + CASE "
                    "WHEN $5::bigint > extract(epoch FROM s.cursor_tick) "
                    "THEN EXCLUDED.dropped_total ELSE 0 END, "
                    "updated_at = now()",
                    5, params, NULL);
out:
    sy_pg_res_free(res);
    return rc;
}

int sched_ledger_claim(struct sy_pg *pg, const char *group, const struct sched_job *j,
                       const struct sched_plan *plan, uint64_t fence, const char *instance,
                       int takeover_s, uint64_t *claimed_mask)
{
    if (claimed_mask)
        *claimed_mask = 0;
    if (!pg || !sched_ledger_group_ok(group) || !job_ok(j) || !plan_ok(plan) || !fence_ok(fence) ||
        !text_ok(instance, SCHED_INSTANCE_MAX) || takeover_s < 0 || !claimed_mask)
        return -SY_EINVAL;

    char ids[PLAN_TICKS][SCHED_TICK_ID_MAX + 1];
    const char *id_ptrs[PLAN_TICKS];
    char ticks_txt[PLAN_TICKS * NUM_MAX + 3];
    char fence_txt[NUM_MAX], cursor_txt[NUM_MAX], takeover_txt[NUM_MAX];
    char *ids_txt = NULL, *data_txt = NULL;
    struct sy_pg_res *res = NULL;
    int64_t old_cursor = -1;
    uint64_t mask = 0;

    size_t used = (size_t)snprintf(ticks_txt, sizeof ticks_txt, "{");
    for (size_t i = 0; i < plan->n; i++) {
        sched_tick_id(j->name, plan->ticks[i], 0, ids[i], sizeof ids[i]);
        id_ptrs[i] = ids[i];
        used += (size_t)snprintf(ticks_txt + used, sizeof ticks_txt - used, "%s%" PRId64,
                                 i ? "," : "", plan->ticks[i]);
    }
    snprintf(ticks_txt + used, sizeof ticks_txt - used, "}");
    fmt_u64(fence_txt, fence);
    int64_t target = plan->n ? plan->ticks[plan->n - 1] : 0;
    if (plan->dropped_last > target)
        target = plan->dropped_last;

    int rc = fenced_begin(pg, group, fence);
    if (rc)
        return rc;
    if ((rc = advance_job(pg, group, j->name, target, plan, &old_cursor)) != 0 || plan->n == 0)
        goto out;
    ids_txt = text_array(id_ptrs, plan->n);
    data_txt = hex_param(j->data, j->data_len);
    if (!ids_txt || !data_txt) {
        rc = -SY_ENOMEM;
        goto out;
    }
    fmt_i64(cursor_txt, old_cursor);
    fmt_i64(takeover_txt, takeover_s);
    /* One statement for the whole plan. A new row is made only for a tick past the cursor the
     * job had; an existing row is taken over only while claimed under an older fence, and
     * only once that claim is older than takeover_s (its owner's lease), so a published tick
     * is never claimed again and one still being published is not claimed twice. */
    const char *params[] = {group,    j->name,   ticks_txt, ids_txt,    j->type,
                            data_txt, fence_txt, instance,  cursor_txt, takeover_txt};
    rc = sy_pg_exec(pg,
                    "INSERT INTO sy_schedule_ticks AS t "
                    "(grp, job, kind, tick, message_id, type, data, state, fence, instance) "
                    "SELECT $1, $2, 'tick', to_timestamp(u.t), u.id, $5, $6::bytea, 'claimed', "
                    "$7::bigint, $8 "
                    "FROM unnest($3::bigint[], $4::text[]) AS u(t, id) "
                    "WHERE u.t > $9::bigint OR EXISTS (SELECT 1 FROM sy_schedule_ticks x "
                    "WHERE x.grp = $1 AND x.job = $2 AND x.kind = 'tick' "
                    "AND x.tick = to_timestamp(u.t)) "
                    "ON CONFLICT (grp, job, kind, tick) DO UPDATE SET "
                    "fence = EXCLUDED.fence, instance = EXCLUDED.instance, claimed_at = now() "
                    "WHERE t.state = 'claimed' AND t.fence < EXCLUDED.fence "
                    "AND t.claimed_at < now() - make_interval(secs => $10::bigint) "
                    "RETURNING extract(epoch FROM t.tick)::bigint",
                    10, params, &res);
    if (rc)
        goto out;
    for (int r = 0; r < sy_pg_res_rows(res); r++) {
        int64_t t;
        if ((rc = cell_i64(res, r, 0, &t)) != 0)
            goto out;
        for (size_t i = 0; i < plan->n; i++) {
            if (plan->ticks[i] == t)
                mask |= UINT64_C(1) << i;
        }
    }
out:
    sy_pg_res_free(res);
    free(data_txt);
    free(ids_txt);
    rc = tx_end(pg, rc);
    if (rc == 0)
        *claimed_mask = mask;
    return rc;
}

int sched_ledger_claim_manual(struct sy_pg *pg, const char *group, const struct sched_job *j,
                              int64_t now, const char *instance, char *id_out)
{
    if (!pg || !sched_ledger_group_ok(group) || !job_ok(j) || !tick_ok(now) ||
        !text_ok(instance, SCHED_INSTANCE_MAX) || !id_out)
        return -SY_EINVAL;
    char id[SCHED_TICK_ID_MAX + 1], now_txt[NUM_MAX];
    struct sy_pg_res *res = NULL;
    sched_tick_id(j->name, now, 1, id, sizeof id);
    fmt_i64(now_txt, now);
    char *data_txt = hex_param(j->data, j->data_len);
    if (!data_txt)
        return -SY_ENOMEM;
    /* One statement, no fence: an operator's tick belongs to no leader until one takes it
     * over in sched_ledger_pending. */
    const char *params[] = {group, j->name, now_txt, id, j->type, data_txt, instance};
    int rc = sy_pg_exec(pg,
                        "INSERT INTO sy_schedule_ticks "
                        "(grp, job, kind, tick, message_id, type, data, state, fence, instance) "
                        "VALUES ($1, $2, 'manual', to_timestamp($3::bigint), $4, $5, $6::bytea, "
                        "'claimed', NULL, $7) "
                        "ON CONFLICT (grp, job, kind, tick) DO NOTHING RETURNING 1",
                        7, params, &res);
    if (rc == 0 && sy_pg_res_rows(res) == 0)
        rc = -SY_EEXISTS;
    if (rc == 0)
        memcpy(id_out, id, strlen(id) + 1);
    sy_pg_res_free(res);
    free(data_txt);
    return rc;
}

/* --- Pending and published -------------------------------------------------------------------*/

void sched_pending_free(struct sched_pending *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++)
        free(p[i].data);
    free(p);
}

int sched_ledger_pending(struct sy_pg *pg, const char *group, uint64_t fence, const char *instance,
                         int takeover_s, struct sched_pending **out, size_t *n, size_t max)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!pg || !sched_ledger_group_ok(group) || !fence_ok(fence) ||
        !text_ok(instance, SCHED_INSTANCE_MAX) || takeover_s < 0 || !out || !n)
        return -SY_EINVAL;
    if (max > SCHED_PENDING_MAX)
        max = SCHED_PENDING_MAX;
    if (max == 0)
        return 0;

    char fence_txt[NUM_MAX], max_txt[NUM_MAX], takeover_txt[NUM_MAX];
    struct sy_pg_res *res = NULL;
    struct sched_pending *p = NULL;
    int rows = 0;
    fmt_u64(fence_txt, fence);
    fmt_u64(max_txt, max);
    fmt_i64(takeover_txt, takeover_s);

    int rc = fenced_begin(pg, group, fence);
    if (rc)
        return rc;
    /* Our own claims come back at once. Another's only once its owner cannot be publishing
     * it any more: a leader publishes only inside its lease, so a claim older than the lease
     * (takeover_s) is abandoned; a manual claim younger than SCHED_MANUAL_SETTLE_S may still
     * be on its way through the syctl that made it.
     * The oldest claims are locked, then taken over: a row of an older fence (or of none, a
     * manual one) becomes this fence's, so its former owner can no longer mark it, and its
     * age starts again. A newer fence cannot own one, as the fence check above just passed. */
    const char *params[] = {group, fence_txt, max_txt, instance, takeover_txt};
    rc = sy_pg_exec(pg,
                    "WITH picked AS ("
                    " SELECT job, kind, tick FROM sy_schedule_ticks"
                    " WHERE grp = $1 AND state = 'claimed'"
                    " AND (fence = $2::bigint OR claimed_at < now() - make_interval(secs => "
                    " CASE WHEN fence IS NULL THEN greatest($5::bigint, " SCHED_MANUAL_SETTLE_TXT
                    ") ELSE $5::bigint END))"
                    " ORDER BY tick, job, kind LIMIT $3::bigint FOR UPDATE), "
                    "taken AS ("
                    " UPDATE sy_schedule_ticks t SET fence = $2::bigint, instance = $4,"
                    " claimed_at = CASE WHEN t.fence = $2::bigint THEN t.claimed_at ELSE now() END"
                    " FROM picked p"
                    " WHERE t.grp = $1 AND t.job = p.job AND t.kind = p.kind AND t.tick = p.tick"
                    " AND (t.fence IS NULL OR t.fence <= $2::bigint)"
                    " RETURNING t.job, t.kind, t.tick, t.message_id, t.type, t.data) "
                    "SELECT job, kind = 'manual', extract(epoch FROM tick)::bigint, message_id,"
                    " type, encode(data, 'hex') FROM taken ORDER BY tick, job, kind",
                    5, params, &res);
    if (rc)
        goto out;
    if (sy_pg_res_rows(res) == 0)
        goto out;
    p = calloc((size_t)sy_pg_res_rows(res), sizeof *p);
    if (!p) {
        rc = -SY_ENOMEM;
        goto out;
    }
    rows = sy_pg_res_rows(res);
    for (int r = 0; r < rows; r++) {
        struct sched_pending *e = &p[r];
        const char *manual = sy_pg_res_get(res, r, 1);
        e->manual = manual && strcmp(manual, "t") == 0;
        e->fence = fence;
        if ((rc = cell_text(res, r, 0, e->job, sizeof e->job)) != 0 ||
            (rc = cell_i64(res, r, 2, &e->tick)) != 0 ||
            (rc = cell_text(res, r, 3, e->id, sizeof e->id)) != 0 ||
            (rc = cell_text(res, r, 4, e->type, sizeof e->type)) != 0 ||
            (rc = hex_decode(sy_pg_res_get(res, r, 5), &e->data, &e->data_len)) != 0)
            goto out;
    }
out:
    sy_pg_res_free(res);
    rc = tx_end(pg, rc);
    if (rc) {
        sched_pending_free(p, (size_t)rows); /* calloc'd: unread entries hold no data */
        return rc;
    }
    *out = p;
    *n = (size_t)rows;
    return 0;
}

/* After an UPDATE that marked nothing: why. Already marked by the same owner is success (a
 * repeated call), no row is -SY_ENOTFOUND, anything else belongs to a newer fence. */
static int why_unmarked(struct sy_pg *pg, const char *const key[4], const char *fence_txt)
{
    struct sy_pg_res *res = NULL;
    const char *params[] = {key[0], key[1], key[2], key[3], fence_txt};
    int rc = sy_pg_exec(pg,
                        "SELECT state = 'published' AND fence IS NOT DISTINCT FROM $5::bigint "
                        "FROM sy_schedule_ticks WHERE grp = $1 AND job = $2 AND kind = $3 "
                        "AND tick = to_timestamp($4::bigint)",
                        5, params, &res);
    if (rc == 0) {
        const char *same = sy_pg_res_get(res, 0, 0);
        if (sy_pg_res_rows(res) == 0)
            rc = -SY_ENOTFOUND;
        else if (!same || strcmp(same, "t") != 0)
            rc = -SY_ESTALE;
        else
            rc = 1; /* done before */
    }
    sy_pg_res_free(res);
    return rc;
}

int sched_ledger_published(struct sy_pg *pg, const char *group, const char *job, int64_t tick,
                           int manual, uint64_t fence, const char *instance)
{
    if (!pg || !sched_ledger_group_ok(group) || !text_ok(job, SCHED_JOB_NAME_MAX) ||
        !tick_ok(tick) || (fence != 0 && !fence_ok(fence)) || (!manual && fence == 0) ||
        !text_ok(instance, SCHED_INSTANCE_MAX))
        return -SY_EINVAL;
    char tick_txt[NUM_MAX], fence_txt[NUM_MAX];
    struct sy_pg_res *res = NULL;
    fmt_i64(tick_txt, tick);
    fmt_u64(fence_txt, fence);
    /* fence 0 stands for "no fence": SQL NULL, which IS NOT DISTINCT FROM matches. */
    const char *fence_param = fence ? fence_txt : NULL;
    const char *key[4] = {group, job, manual ? "manual" : "tick", tick_txt};

    /* No group fence check here: a leader that lost its lease after publishing still records
     * the truth, that its tick went out, as long as nobody took the claim over; otherwise the
     * next leader would publish it again. */
    int rc = sy_pg_begin(pg);
    if (rc)
        return rc;
    const char *params[] = {key[0], key[1], key[2], key[3], fence_param, instance};
    rc = sy_pg_exec(pg,
                    "UPDATE sy_schedule_ticks SET state = 'published', published_at = now(), "
                    "instance = $6 "
                    "WHERE grp = $1 AND job = $2 AND kind = $3 AND tick = to_timestamp($4::bigint) "
                    "AND state = 'claimed' AND fence IS NOT DISTINCT FROM $5::bigint "
                    "RETURNING message_id",
                    6, params, &res);
    if (rc)
        goto out;
    if (sy_pg_res_rows(res) == 0) {
        rc = why_unmarked(pg, key, fence_param);
        if (rc == 1)
            rc = 0; /* marked before: the job row was updated then */
        goto out;
    }
    if (manual) {
        const char *mp[] = {group, job};
        rc = sy_pg_exec(pg,
                        "UPDATE sy_schedule_jobs SET last_manual_at = now(), updated_at = now() "
                        "WHERE grp = $1 AND job = $2",
                        2, mp, NULL);
        goto out;
    }
    const char *tp[] = {group, job, tick_txt, sy_pg_res_get(res, 0, 0), instance};
    rc = sy_pg_exec(pg,
                    "UPDATE sy_schedule_jobs SET published_total = published_total + 1, "
                    "last_tick = CASE WHEN last_tick > to_timestamp($3::bigint) THEN last_tick "
                    "ELSE to_timestamp($3::bigint) END, "
                    "last_published_at = CASE WHEN last_tick > to_timestamp($3::bigint) "
                    "THEN last_published_at ELSE now() END, "
                    "last_message_id = CASE WHEN last_tick > to_timestamp($3::bigint) "
                    "THEN last_message_id ELSE $4 END, "
                    "last_instance = CASE WHEN last_tick > to_timestamp($3::bigint) "
                    "THEN last_instance ELSE $5 END, "
                    "updated_at = now() "
                    "WHERE grp = $1 AND job = $2",
                    5, tp, NULL);
out:
    sy_pg_res_free(res);
    return tx_end(pg, rc);
}

/* --- Upkeep and reading ----------------------------------------------------------------------*/

int sched_ledger_prune(struct sy_pg *pg, const char *group, int64_t before, long long *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!pg || !sched_ledger_group_ok(group) || !tick_ok(before))
        return -SY_EINVAL;
    char before_txt[NUM_MAX];
    struct sy_pg_res *res = NULL;
    fmt_i64(before_txt, before);
    const char *params[] = {group, before_txt};
    int rc = sy_pg_exec(pg,
                        "DELETE FROM sy_schedule_ticks WHERE grp = $1 AND state = 'published' "
                        "AND published_at < to_timestamp($2::bigint)",
                        2, params, &res);
    if (rc == 0 && deleted)
        *deleted = sy_pg_res_affected(res);
    sy_pg_res_free(res);
    return rc;
}

int sched_ledger_fence(struct sy_pg *pg, const char *group, uint64_t *fence)
{
    if (fence)
        *fence = 0;
    if (!pg || !sched_ledger_group_ok(group) || !fence)
        return -SY_EINVAL;
    char resource[FENCE_RESOURCE_MAX];
    struct sy_pg_res *res = NULL;
    snprintf(resource, sizeof resource, "scheduler:%s", group);
    const char *params[] = {resource};
    int rc = sy_pg_exec(pg, "SELECT fence FROM sy_fences WHERE resource = $1", 1, params, &res);
    if (rc == 0 && sy_pg_res_rows(res) == 1)
        rc = cell_u64(res, 0, 0, fence);
    sy_pg_res_free(res);
    return rc;
}

int sched_ledger_jobs(struct sy_pg *pg, const char *group, struct sched_ledger_job **out, size_t *n,
                      size_t max)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!pg || !sched_ledger_group_ok(group) || !out || !n || max > INT32_MAX)
        return -SY_EINVAL;
    if (max == 0)
        return 0;
    char max_txt[NUM_MAX];
    struct sy_pg_res *res = NULL;
    struct sched_ledger_job *jobs = NULL;
    int rows = 0;
    fmt_u64(max_txt, max);
    const char *params[] = {group, max_txt};
    int rc = sy_pg_exec(
        pg,
        "WITH names AS ("
        " SELECT job FROM sy_schedule_jobs WHERE grp = $1"
        " UNION SELECT DISTINCT job FROM sy_schedule_ticks WHERE grp = $1) "
        "SELECT n.job, extract(epoch FROM j.cursor_tick)::bigint,"
        " extract(epoch FROM j.last_tick)::bigint,"
        " extract(epoch FROM j.last_published_at)::bigint, j.last_message_id, j.last_instance,"
        " extract(epoch FROM greatest(j.last_manual_at, m.published_at))::bigint,"
        " j.published_total, j.dropped_total, m.message_id, p.n,"
        " extract(epoch FROM p.oldest)::bigint "
        "FROM names n "
        "LEFT JOIN sy_schedule_jobs j ON j.grp = $1 AND j.job = n.job "
        "LEFT JOIN LATERAL (SELECT message_id, published_at FROM sy_schedule_ticks t"
        " WHERE t.grp = $1 AND t.job = n.job AND t.kind = 'manual' AND t.state = 'published'"
        " ORDER BY t.published_at DESC LIMIT 1) m ON true "
        "LEFT JOIN LATERAL (SELECT count(*) AS n, min(tick) AS oldest FROM sy_schedule_ticks t"
        " WHERE t.grp = $1 AND t.job = n.job AND t.state = 'claimed') p ON true "
        "ORDER BY n.job LIMIT $2::bigint",
        2, params, &res);
    if (rc)
        goto out;
    if (sy_pg_res_rows(res) == 0)
        goto out;
    jobs = calloc((size_t)sy_pg_res_rows(res), sizeof *jobs);
    if (!jobs) {
        rc = -SY_ENOMEM;
        goto out;
    }
    rows = sy_pg_res_rows(res);
    for (int r = 0; r < rows; r++) {
        struct sched_ledger_job *e = &jobs[r];
        if ((rc = cell_text(res, r, 0, e->state.job, sizeof e->state.job)) != 0 ||
            (rc = read_state(res, r, 1, &e->state)) != 0 ||
            (rc = cell_text(res, r, 9, e->last_manual_id, sizeof e->last_manual_id)) != 0 ||
            (rc = cell_u64(res, r, 10, &e->pending)) != 0 ||
            (rc = cell_i64(res, r, 11, &e->pending_oldest)) != 0)
            goto out;
    }
out:
    sy_pg_res_free(res);
    if (rc) {
        free(jobs);
        return rc;
    }
    *out = jobs;
    *n = (size_t)rows;
    return 0;
}
