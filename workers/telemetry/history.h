/* history.h - a batch into PostgreSQL: its good readings copied into a temporary table and merged
 * into telemetry_points (a reading already there is left alone, so redelivery stores nothing
 * twice), its rejected ones into telemetry_rejects, and the spool position it reaches. */
#ifndef TELEMETRY_HISTORY_H
#define TELEMETRY_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "telemetry/batch.h"
#include "telemetry/buf.h"

struct sy_pg;
struct tm_buf;

/* Inside a transaction the caller opened on pg: 0 with *inserted (readings new to the table), or
 * the error of sy_pg_exec (the caller rolls back). series[i] is reading i's series number
 * (tm_series_resolve); rows is the caller's buffer for the COPY text, kept between batches. The
 * temporary table must exist (tm_history_stage): a connection that was reset lost it, and the COPY
 * then fails with SQLSTATE 42P01. */
int tm_history_write(struct sy_pg *pg, struct tm_buf *rows, const struct tm_batch *b,
                     const int32_t *series, const char *client_id, const char *spool_id,
                     long long *inserted);
/* Makes this connection's temporary table, once per session. */
int tm_history_stage(struct sy_pg *pg);

/* The spool position stored for client_id: 1 with *pos when it belongs to spool_id, 0 when there
 * is none (or it belongs to a spool that is gone), negative on a database error. */
int tm_history_position(struct sy_pg *pg, const char *client_id, const char *spool_id,
                        struct tm_spool_pos *pos);

#endif
