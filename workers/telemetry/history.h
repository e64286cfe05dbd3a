/* history.h - a batch into PostgreSQL: its good readings copied into a temporary table and merged
 * into telemetry_readings (a reading already there is left alone, so redelivery stores nothing
 * twice), its rejected ones into telemetry_rejects, and the spool position it reaches. */
#ifndef TELEMETRY_HISTORY_H
#define TELEMETRY_HISTORY_H

#include <stdbool.h>

#include "telemetry/batch.h"

struct sy_pg;
struct tm_buf;

/* Inside a transaction the caller opened on pg: 0 with *inserted (readings new to the table), or
 * the error of sy_pg_exec (the caller rolls back). rows is the caller's buffer for the COPY
 * text, kept between batches. The temporary table must exist (tm_history_stage): a connection
 * that was reset lost it, and the COPY then fails with SQLSTATE 42P01. */
int tm_history_write(struct sy_pg *pg, struct tm_buf *rows, const struct tm_batch *b,
                     const char *client_id, const char *spool_id, long long *inserted);
/* Makes this connection's temporary table, once per session. */
int tm_history_stage(struct sy_pg *pg);

/* The spool position stored for client_id: 1 with *pos when it belongs to spool_id, 0 when there
 * is none (or it belongs to a spool that is gone), negative on a database error. */
int tm_history_position(struct sy_pg *pg, const char *client_id, const char *spool_id,
                        struct tm_spool_pos *pos);

/* COPY text of one field (tab, newline, backslash escaped; invalid UTF-8 replaced by '?') onto
 * the end of a buffer; shared with the alert writer. 0 or -SY_ENOMEM. */
struct tm_buf {
    char *p;
    size_t n, cap;
};
int tm_buf_grow(struct tm_buf *b, size_t more);
int tm_buf_text(struct tm_buf *b, const char *s, size_t n);
void tm_buf_free(struct tm_buf *b);

#endif
