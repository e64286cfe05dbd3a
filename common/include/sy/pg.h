/* pg.h - a PostgreSQL connection (libpq hidden), parameterised queries only, migrations, and
 * the fencing check for writes made under a lock. */
#ifndef SY_PG_H
#define SY_PG_H

#include <stddef.h>
#include <stdint.h>

struct sy_pg;     /* one connection; one thread at a time */
struct sy_pg_res; /* a query result */

struct sy_pg *sy_pg_connect(const char *url, char *err, size_t errlen);
void sy_pg_destroy(struct sy_pg *pg);
/* Last error text (server message, no parameters). */
const char *sy_pg_error(const struct sy_pg *pg);
/* SQLSTATE of the last failed statement ("42P01"), "" when it had none (a lost connection). */
const char *sy_pg_sqlstate(const struct sy_pg *pg);

/* Runs sql with text parameters ($1..$n; NULL entries are SQL NULL). Result may be NULL when
 * the caller does not want it. Errors: -SY_ECONN / -SY_EDB (retriable: connection, deadlock,
 * serialization) or -SY_EDBDATA (constraint, bad input). The connection is reset once when it
 * was lost. */
int sy_pg_exec(struct sy_pg *pg, const char *sql, int nparams, const char *const *params,
               struct sy_pg_res **res);
/* COPY ... FROM STDIN: runs copy_sql, sends data[0..len) (the COPY text format, whole rows) and
 * ends it; *rows (may be NULL) gets the rows copied. Errors as sy_pg_exec; a connection lost
 * inside a transaction loses the transaction (the caller rolls back and tries again). */
int sy_pg_copy(struct sy_pg *pg, const char *copy_sql, const char *data, size_t len,
               long long *rows);
int sy_pg_begin(struct sy_pg *pg);
int sy_pg_commit(struct sy_pg *pg);
int sy_pg_rollback(struct sy_pg *pg);

int sy_pg_res_rows(const struct sy_pg_res *res);
int sy_pg_res_cols(const struct sy_pg_res *res);
/* Cell text, or NULL for SQL NULL. */
const char *sy_pg_res_get(const struct sy_pg_res *res, int row, int col);
/* Rows touched by INSERT/UPDATE/DELETE. */
long long sy_pg_res_affected(const struct sy_pg_res *res);
void sy_pg_res_free(struct sy_pg_res *res);

/* Applies every NNNN_name.sql in dir not yet in table sy_migrations, in order, each in its
 * own transaction, all under a session advisory lock so concurrent runs wait. Reports the
 * names applied through cb (may be NULL). Idempotent. */
int sy_pg_migrate(struct sy_pg *pg, const char *dir, void (*cb)(const char *name, void *ud),
                  void *ud, char *err, size_t errlen);

/* Records that `fence` wrote `resource` in table sy_fences (created by migration 0001):
 * succeeds when fence is newer than or equal to the last recorded one, -SY_ESTALE otherwise.
 * Run it inside the transaction that makes the guarded write, so the two commit together. */
int sy_pg_fence(struct sy_pg *pg, const char *resource, uint64_t fence);

/* sy_pg_begin, sy_pg_fence, sy_pg_exec and sy_pg_commit in one round trip (a pipeline the
 * server runs as one transaction): sql commits only when `fence` is not older than the last one
 * recorded for resource, and -SY_ESTALE (nothing written) when it is. Outside a transaction
 * only. */
int sy_pg_exec_fenced(struct sy_pg *pg, const char *resource, uint64_t fence, const char *sql,
                      int nparams, const char *const *params, struct sy_pg_res **res);

/* Whether PostgreSQL answers, for a worker's /readyz: a connection of its own runs SELECT 1,
 * at most once every every_ms (a probe between answers gets the last one). Thread-safe. */
struct sy_pg_probe;
struct sy_pg_probe *sy_pg_probe_new(const char *url, int every_ms); /* NULL: out of memory */
int sy_pg_probe_check(struct sy_pg_probe *p); /* 0 when it answered, -1 otherwise */
void sy_pg_probe_free(struct sy_pg_probe *p); /* accepts NULL */

#endif
