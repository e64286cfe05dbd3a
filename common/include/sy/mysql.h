/* mysql.h - a MySQL/MariaDB connection (libmysqlclient hidden) for the legacy systems the fleet
 * writes into: parameterised statements only, results as text, errors sorted into retriable
 * and refused like sy/pg.h's.
 *
 * URL: mysql://user[:password]@host[:port]/database[?option=value&...] (percent-decoded;
 * default port 3306). Options: connect_timeout, read_timeout, write_timeout (seconds; defaults
 * 5, 30, 30), ssl_mode (disabled, preferred, required, verify_ca, verify_identity; default
 * preferred), ssl_ca, ssl_cert, ssl_key (file paths), charset (default utf8mb4), socket (a
 * Unix socket path, used instead of host and port; without it the connection is TCP, even to
 * "localhost"). ssl_mode required refuses a session that did not end up encrypted; verify_ca
 * checks the host name as well, as verify_identity does (Connector/C 3.3 cannot check the
 * chain alone). An unknown option is refused at connect, naming it. Every session, the first
 * and each reconnect, runs with time_zone '+00:00' and sql_mode STRICT_ALL_TABLES, so a value
 * that does not fit is an error, never cut short. */
#ifndef SY_MYSQL_H
#define SY_MYSQL_H

#include <stddef.h>

struct sy_mysql;     /* one connection; one thread at a time */
struct sy_mysql_res; /* a query's rows, fetched whole */

/* NULL with err on failure (the URL's password never appears in err). */
struct sy_mysql *sy_mysql_connect(const char *url, char *err, size_t errlen);
void sy_mysql_destroy(struct sy_mysql *m);
/* Last error text ("message (errno 1062, SQLSTATE 23000)"), never parameter values. */
const char *sy_mysql_error(const struct sy_mysql *m);
/* The server's error number of the last failure (1062 = duplicate key), 0 when none. */
unsigned sy_mysql_errno(const struct sy_mysql *m);

/* Runs sql with '?' placeholders bound to params (text, or NULL for SQL NULL; the server
 * converts text to each column's type). nparams up to 65535, and equal to the placeholders
 * (-SY_EINVAL otherwise). res may be NULL. Errors: -SY_ECONN (connection lost or refused:
 * outside a transaction the statement is run again once on a new session; inside one the
 * transaction is lost, and every call but sy_mysql_rollback/commit is refused with -SY_ECONN
 * until one of them ends it), -SY_ETIMEOUT (read or write timeout: not run again, the next
 * call opens a new session), -SY_EDB (retriable: deadlock 1213, lock wait timeout 1205,
 * read-only, too many connections), -SY_EDBDATA (the statement or its data is refused:
 * duplicate key, data too long, bad value, unknown column or table, syntax) or -SY_ETOOBIG
 * (the rows hold over 256 MiB of text). Prepared statements are cached per connection by
 * their text (32, least recently used goes first). */
int sy_mysql_exec(struct sy_mysql *m, const char *sql, int nparams, const char *const *params,
                  struct sy_mysql_res **res);
int sy_mysql_begin(struct sy_mysql *m);
int sy_mysql_commit(struct sy_mysql *m);
int sy_mysql_rollback(struct sy_mysql *m);
/* 0 when the server answers. */
int sy_mysql_ping(struct sy_mysql *m);

int sy_mysql_res_rows(const struct sy_mysql_res *res);
int sy_mysql_res_cols(const struct sy_mysql_res *res);
/* Cell text (NUL-terminated; DATETIME and TIMESTAMP as "YYYY-MM-DD HH:MM:SS[.ffffff]", with
 * as many fraction digits as the column has, in UTC), NULL for SQL NULL. */
const char *sy_mysql_res_get(const struct sy_mysql_res *res, int row, int col);
/* Column name of col. */
const char *sy_mysql_res_name(const struct sy_mysql_res *res, int col);
/* Rows changed by INSERT/UPDATE/DELETE (ON DUPLICATE KEY UPDATE counts 1 per insert, 2 per
 * changed row, 0 per unchanged, as the server reports). */
long long sy_mysql_res_affected(const struct sy_mysql_res *res);
void sy_mysql_res_free(struct sy_mysql_res *res);

/* Quotes a table or column name for SQL text: `name` with backticks doubled, into out.
 * -SY_EINVAL for an empty name, one over 64 bytes, or one holding NUL; -SY_ETOOBIG when out
 * is too small. Names come from configuration, never from requests. */
int sy_mysql_quote_ident(const char *name, char *out, size_t outlen);

#endif
