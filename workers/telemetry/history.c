/* history.c - readings and rejects into PostgreSQL through COPY (history.h). */
#include "telemetry/history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sy/err.h"
#include "sy/pg.h"

#define PAYLOAD_KEPT 1024 /* bytes of a rejected message's payload stored with it */

/* Times travel as microseconds since the epoch: integers are cheaper to write and to read
 * than timestamp text, and exact. */
static const char sql_stage[] =
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_stage (series integer, ts_us bigint,"
    " value double precision, text text) ON COMMIT DELETE ROWS";

static const char sql_copy[] = "COPY telemetry_stage (series, ts_us, value, text) FROM STDIN";

static const char sql_merge[] =
    "INSERT INTO telemetry_points (series, ts, value, text)"
    " SELECT series, timestamptz 'epoch' + ts_us * interval '1 microsecond', value, text"
    " FROM telemetry_stage ON CONFLICT DO NOTHING";

static const char sql_rejects[] =
    "COPY telemetry_rejects (received_at, topic, plant, kind, device, metric, reason, payload)"
    " FROM STDIN";

static const char sql_position[] =
    "INSERT INTO telemetry_spool (client_id, spool_id, seg, off) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (client_id) DO UPDATE SET spool_id = EXCLUDED.spool_id, seg = EXCLUDED.seg,"
    "   off = EXCLUDED.off, updated_at = now()";

static const char sql_position_get[] =
    "SELECT spool_id, seg, off FROM telemetry_spool WHERE client_id = $1";

/* --- COPY text ---------------------------------------------------------------------------- */

static void put(struct tm_buf *b, const char *s, size_t n)
{
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_i64(struct tm_buf *b, int64_t v)
{
    char tmp[24];
    size_t k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do
        tmp[k++] = (char)('0' + u % 10);
    while ((u /= 10));
    if (v < 0)
        b->p[b->n++] = '-';
    while (k)
        b->p[b->n++] = tmp[--k];
}

/* A row of telemetry_stage. */
static int stage_row(struct tm_buf *b, const struct tm_reading *r, int32_t series)
{
    if (tm_buf_grow(b, 80) != 0)
        return -SY_ENOMEM;
    put_i64(b, series);
    b->p[b->n++] = '\t';
    put_i64(b, r->ts_us);
    b->p[b->n++] = '\t';
    if (r->is_text) {
        put(b, "\\N\t", 3);
        if (tm_buf_text(b, r->text, strlen(r->text)) != 0 || tm_buf_grow(b, 2) != 0)
            return -SY_ENOMEM;
    } else {
        b->n += (size_t)snprintf(b->p + b->n, 32, "%.17g", r->value);
        put(b, "\t\\N", 3);
    }
    b->p[b->n++] = '\n';
    return 0;
}

/* A nullable text field: \N for "". */
static int opt_text(struct tm_buf *b, const char *s)
{
    if (!s[0]) {
        if (tm_buf_grow(b, 3) != 0)
            return -SY_ENOMEM;
        put(b, "\\N\t", 3);
        return 0;
    }
    if (tm_buf_text(b, s, strlen(s)) != 0 || tm_buf_grow(b, 1) != 0)
        return -SY_ENOMEM;
    b->p[b->n++] = '\t';
    return 0;
}

static int reject_row(struct tm_buf *b, const struct tm_reading *r, const struct tm_msgref *m)
{
    static const char hex[] = "0123456789abcdef";
    time_t secs = (time_t)(m->arrival_us / 1000000);
    struct tm tm;
    size_t kept = m->len < PAYLOAD_KEPT ? m->len : PAYLOAD_KEPT;
    const unsigned char *p = m->payload;

    gmtime_r(&secs, &tm);
    if (tm_buf_grow(b, 48) != 0)
        return -SY_ENOMEM;
    b->n += strftime(b->p + b->n, 32, "%Y-%m-%d %H:%M:%S", &tm);
    b->n += (size_t)snprintf(b->p + b->n, 16, ".%06d+00\t", (int)(m->arrival_us % 1000000));
    if (tm_buf_text(b, m->topic, m->topic_len) != 0 || tm_buf_grow(b, 1) != 0)
        return -SY_ENOMEM;
    b->p[b->n++] = '\t';
    if (opt_text(b, r->plant) || opt_text(b, r->kind) || opt_text(b, r->device) ||
        opt_text(b, r->metric) || tm_buf_text(b, r->why, strlen(r->why)) != 0 ||
        tm_buf_grow(b, 2 * kept + 8) != 0)
        return -SY_ENOMEM;
    put(b, "\t\\\\x", 4);
    for (size_t i = 0; i < kept; i++) {
        b->p[b->n++] = hex[p[i] >> 4];
        b->p[b->n++] = hex[p[i] & 15];
    }
    b->p[b->n++] = '\n';
    return 0;
}

int tm_history_write(struct sy_pg *pg, struct tm_buf *rows, const struct tm_batch *b,
                     const int32_t *series, const char *client_id, const char *spool_id,
                     long long *inserted)
{
    struct sy_pg_res *res = NULL;
    char seg[24], off[24];
    long long n = 0;
    int rc;

    *inserted = 0;
    if (b->good) {
        rows->n = 0;
        for (size_t i = 0; i < b->n; i++)
            if (!b->r[i].why[0] && stage_row(rows, &b->r[i], series[i]) != 0)
                return -SY_ENOMEM;
        if ((rc = sy_pg_copy(pg, sql_copy, rows->p, rows->n, &n)) != 0)
            return rc;
        if ((rc = sy_pg_exec(pg, sql_merge, 0, NULL, &res)) != 0)
            return rc;
        *inserted = sy_pg_res_affected(res);
        sy_pg_res_free(res);
    }
    if (b->rejected) {
        rows->n = 0;
        for (size_t i = 0; i < b->n; i++)
            if (b->r[i].why[0] && reject_row(rows, &b->r[i], &b->m[b->msg[i]]) != 0)
                return -SY_ENOMEM;
        if ((rc = sy_pg_copy(pg, sql_rejects, rows->p, rows->n, &n)) != 0)
            return rc;
    }
    snprintf(seg, sizeof seg, "%" PRIu64, b->end.seg);
    snprintf(off, sizeof off, "%" PRIu64, b->end.off);
    return sy_pg_exec(pg, sql_position, 4, (const char *[]){client_id, spool_id, seg, off}, NULL);
}

int tm_history_stage(struct sy_pg *pg)
{
    return sy_pg_exec(pg, sql_stage, 0, NULL, NULL);
}

int tm_history_position(struct sy_pg *pg, const char *client_id, const char *spool_id,
                        struct tm_spool_pos *pos)
{
    struct sy_pg_res *res = NULL;
    int rc = sy_pg_exec(pg, sql_position_get, 1, (const char *[]){client_id}, &res);

    if (rc != 0)
        return rc;
    rc = 0;
    if (sy_pg_res_rows(res) == 1 && strcmp(sy_pg_res_get(res, 0, 0), spool_id) == 0) {
        pos->seg = strtoull(sy_pg_res_get(res, 0, 1), NULL, 10);
        pos->off = strtoull(sy_pg_res_get(res, 0, 2), NULL, 10);
        rc = 1;
    }
    sy_pg_res_free(res);
    return rc;
}
