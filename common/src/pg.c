/* pg.c - a PostgreSQL connection over libpq: parameterised statements, SQLSTATE translation,
 * one reset on a lost connection, migrations under an advisory lock, and the fencing check. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/clock.h"
#include "sy/config.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/pg.h"

#define PG_ERR_MAX         512
#define PG_PARAMS_MAX      65535 /* the protocol's limit */
#define MIGRATION_FILE_MAX (4u * 1024u * 1024u)
#define MIGRATION_NAME_MAX 200
#define MIGRATIONS_MAX     10000
#define MIGRATION_PATH_MAX 4096
/* pg_advisory_lock key of migration runs: "symigrat" read as a big-endian integer, chosen so
 * no application lock is likely to pick the same number. */
#define MIGRATION_LOCK_SQL   "SELECT pg_advisory_lock(8320802086018244980)"
#define MIGRATION_UNLOCK_SQL "SELECT pg_advisory_unlock(8320802086018244980)"

struct sy_pg {
    PGconn *conn;
    bool in_tx;    /* between sy_pg_begin and sy_pg_commit/rollback */
    bool tx_lost;  /* the connection dropped inside that transaction: refuse until it ends */
    bool no_reset; /* set during migrate: a reset would silently drop the advisory lock */
    char err[PG_ERR_MAX];
    char state[6]; /* SQLSTATE of the last failure, "" when it had none */
};

struct sy_pg_res {
    PGresult *res;
};

static void set_err(struct sy_pg *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct sy_pg *pg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pg->err, sizeof pg->err, fmt, ap);
    va_end(ap);
    /* libpq ends its messages with a newline; one log line wants none. */
    size_t n = strlen(pg->err);
    while (n > 0 && (pg->err[n - 1] == '\n' || pg->err[n - 1] == ' '))
        pg->err[--n] = '\0';
}

static bool sqlstate_class(const char *state, const char *cls)
{
    return strncmp(state, cls, 2) == 0;
}

/* SQLSTATE to a runtime code: retriable when waiting may help (connection, deadlock,
 * serialization, lock timeout, resources), permanent when the statement or its data is at
 * fault. Unknown classes count as retriable: the attempt limit still ends a loop. */
static int translate_sqlstate(const char *s)
{
    if (sqlstate_class(s, "08") || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
        strcmp(s, "57P03") == 0)
        return -SY_ECONN;
    if (strcmp(s, "57014") == 0) /* statement_timeout or a cancel */
        return -SY_ETIMEOUT;
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0 ||
        sqlstate_class(s, "53"))
        return -SY_EDB;
    if (sqlstate_class(s, "23") || sqlstate_class(s, "22") || sqlstate_class(s, "42") ||
        sqlstate_class(s, "21") || sqlstate_class(s, "0A") || sqlstate_class(s, "54"))
        return -SY_EDBDATA;
    return -SY_EDB;
}

/* Classifies a result and records the error text: the server's primary message and SQLSTATE,
 * never the parameters. */
static int check_result(struct sy_pg *pg, const PGresult *res)
{
    if (!res) {
        if (PQstatus(pg->conn) == CONNECTION_BAD) {
            set_err(pg, "%s", PQerrorMessage(pg->conn));
            return -SY_ECONN;
        }
        set_err(pg, "%s", "out of memory");
        return -SY_ENOMEM;
    }
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        return 0;
    case PGRES_EMPTY_QUERY:
        set_err(pg, "%s", "empty statement");
        return -SY_EINVAL;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_BAD_RESPONSE:
        break;
    default:
        /* COPY and pipeline states are not part of this API. */
        set_err(pg, "unsupported result status %s", PQresStatus(PQresultStatus(res)));
        return -SY_EINVAL;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(pg->state, sizeof pg->state, "%s", state ? state : "");
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!primary)
        primary = PQresultErrorMessage(res);
    if (state) {
        char buf[PG_ERR_MAX];
        snprintf(buf, sizeof buf, "%s (SQLSTATE %s)", primary, state);
        set_err(pg, "%s", buf);
    } else {
        set_err(pg, "%s", primary);
    }
    /* libpq makes up errors without SQLSTATE for a dropped socket. */
    if (PQstatus(pg->conn) == CONNECTION_BAD)
        return -SY_ECONN;
    return state ? translate_sqlstate(state) : -SY_EDB;
}

static void log_failure(const struct sy_pg *pg, int rc)
{
    /* Refused data is the caller's business (it may be an expected duplicate); the rest is
     * an operational problem worth a line. */
    enum sy_log_level lvl = rc == -SY_EDBDATA ? SY_LOG_DEBUG : SY_LOG_WARN;
    sy_log_write(lvl, "pg.error", -1, pg->err, "statement failed: %s", sy_strerror(rc));
}

static int pg_reset(struct sy_pg *pg)
{
    PQreset(pg->conn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        set_err(pg, "%s", PQerrorMessage(pg->conn));
        sy_log_write(SY_LOG_WARN, "pg.reset", -1, pg->err, "reconnect to PostgreSQL failed");
        return -SY_ECONN;
    }
    sy_log_info("pg.reset", "reconnected to PostgreSQL");
    return 0;
}

static bool inside_tx(const struct sy_pg *pg)
{
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
    return pg->in_tx || ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

/* What every statement checks before it is sent: a transaction lost with its connection
 * refuses until rolled back; a connection lost while idle (or by an earlier failure) is reset,
 * since nothing was sent yet, unless a transaction died with the old session. *in_tx says
 * whether one is open, *reset_done whether the connection was just made again. 0 or
 * -SY_ECONN. */
static int before_send(struct sy_pg *pg, bool *in_tx, bool *reset_done)
{
    pg->state[0] = '\0';
    *reset_done = false;
    if (pg->tx_lost) {
        set_err(pg, "%s", "the transaction was lost with the connection; roll it back");
        return -SY_ECONN;
    }
    *in_tx = inside_tx(pg);
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        if (*in_tx) {
            pg->tx_lost = true;
            set_err(pg, "%s", "connection lost inside a transaction");
            return -SY_ECONN;
        }
        if (pg->no_reset || pg_reset(pg) != 0)
            return -SY_ECONN;
        *reset_done = true;
    }
    return 0;
}

/* The one path every statement takes. nparams < 0 means "run sql as a script with PQexec"
 * (migrations only). */
static int pg_run(struct sy_pg *pg, const char *sql, int nparams, const char *const *params,
                  PGresult **out)
{
    *out = NULL;
    bool in_tx, reset_done;
    if (before_send(pg, &in_tx, &reset_done) != 0)
        return -SY_ECONN;
    for (;;) {
        PGresult *res = nparams < 0
                            ? PQexec(pg->conn, sql)
                            : PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
        int rc = check_result(pg, res);
        if (rc == 0) {
            *out = res;
            return 0;
        }
        PQclear(res);
        log_failure(pg, rc);
        if (rc != -SY_ECONN || PQstatus(pg->conn) != CONNECTION_BAD)
            return rc;
        if (in_tx) {
            pg->tx_lost = pg->in_tx;
            return rc;
        }
        /* Outside a transaction the statement either committed alone or not at all; the
         * runtime's handlers are idempotent, so running it again is the lesser risk. */
        if (reset_done || pg->no_reset || pg_reset(pg) != 0)
            return rc;
        reset_done = true;
    }
}

/* Server notices ("relation already exists, skipping") go to the log, not to stderr raw. */
static void on_notice(void *arg, const char *message)
{
    char line[PG_ERR_MAX];
    snprintf(line, sizeof line, "%s", message);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    sy_log_debug("pg.notice", "%s", line);
}

struct sy_pg *sy_pg_connect(const char *url, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!url || !*url) {
        snprintf(err, errlen, "PostgreSQL URL is empty");
        return NULL;
    }
    /* Register the password before anything can log the URL or libpq's message. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        snprintf(err, errlen, "PostgreSQL URL: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        size_t n = strlen(err);
        while (n > 0 && err[n - 1] == '\n')
            err[--n] = '\0';
        return NULL;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            sy_log_add_secret(o->val);
    PQconninfoFree(opts);

    struct sy_pg *pg = calloc(1, sizeof *pg);
    if (!pg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Defaults first, the URL (expanded from dbname) last, so the URL may override them. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"10", "switchyard", url, NULL};
    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "PostgreSQL: %s",
                 pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        size_t n = strlen(err);
        while (n > 0 && err[n - 1] == '\n')
            err[--n] = '\0';
        sy_pg_destroy(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg->conn, on_notice, NULL);
    return pg;
}

void sy_pg_destroy(struct sy_pg *pg)
{
    if (!pg)
        return;
    PQfinish(pg->conn);
    free(pg);
}

const char *sy_pg_error(const struct sy_pg *pg)
{
    return pg ? pg->err : "";
}

const char *sy_pg_sqlstate(const struct sy_pg *pg)
{
    return pg ? pg->state : "";
}

/* r to the caller in wrap (allocated before the statement ran, so a success is never lost to a
 * failed malloc after it) when rc is 0 and a result is wanted; otherwise both are freed. */
static int give_result(int rc, PGresult *r, struct sy_pg_res *wrap, struct sy_pg_res **res)
{
    if (rc == 0 && wrap) {
        wrap->res = r;
        *res = wrap;
        return 0;
    }
    free(wrap);
    PQclear(r);
    return rc;
}

int sy_pg_exec(struct sy_pg *pg, const char *sql, int nparams, const char *const *params,
               struct sy_pg_res **res)
{
    if (res)
        *res = NULL;
    if (!pg || !sql || nparams < 0 || nparams > PG_PARAMS_MAX || (nparams > 0 && !params))
        return -SY_EINVAL;
    struct sy_pg_res *wrap = NULL;
    if (res) {
        wrap = malloc(sizeof *wrap);
        if (!wrap)
            return -SY_ENOMEM;
    }
    PGresult *r;
    int rc = pg_run(pg, sql, nparams, params, &r);
    return give_result(rc, r, wrap, res);
}

/* Runs a statement whose result nobody reads. */
#define COPY_CHUNK (1u << 20)

/* The results left after a COPY: the first one says how it went. */
static int copy_finish(struct sy_pg *pg, long long *rows)
{
    PGresult *r;
    int rc = 0;
    bool first = true;

    while ((r = PQgetResult(pg->conn))) {
        if (first) {
            rc = check_result(pg, r);
            if (rc == 0 && rows)
                *rows = atoll(PQcmdTuples(r));
            first = false;
        }
        PQclear(r);
    }
    if (first)
        rc = check_result(pg, NULL);
    return rc;
}

int sy_pg_copy(struct sy_pg *pg, const char *copy_sql, const char *data, size_t len,
               long long *rows)
{
    PGresult *r;
    int rc;

    if (!pg || !copy_sql || (!data && len))
        return -SY_EINVAL;
    if (rows)
        *rows = 0;
    bool in_tx, reset_done;
    if ((rc = before_send(pg, &in_tx, &reset_done)) != 0)
        return rc;
    r = PQexec(pg->conn, copy_sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        rc = check_result(pg, r);
        if (rc == 0) {
            set_err(pg, "%s", "not a COPY ... FROM STDIN statement");
            rc = -SY_EINVAL;
        }
        PQclear(r);
        goto out;
    }
    PQclear(r);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < COPY_CHUNK ? len - off : COPY_CHUNK;

        if (PQputCopyData(pg->conn, data + off, (int)n) != 1) {
            set_err(pg, "%s", PQerrorMessage(pg->conn));
            PQputCopyEnd(pg->conn, "sending failed");
            copy_finish(pg, NULL);
            rc = -SY_ECONN;
            goto out;
        }
        off += n;
    }
    if (PQputCopyEnd(pg->conn, NULL) != 1) {
        set_err(pg, "%s", PQerrorMessage(pg->conn));
        copy_finish(pg, NULL);
        rc = -SY_ECONN;
        goto out;
    }
    rc = copy_finish(pg, rows);
out:
    if (rc != 0) {
        log_failure(pg, rc);
        if (in_tx && PQstatus(pg->conn) == CONNECTION_BAD)
            pg->tx_lost = pg->in_tx;
    }
    return rc;
}

static int pg_simple(struct sy_pg *pg, const char *sql)
{
    PGresult *r;
    int rc = pg_run(pg, sql, 0, NULL, &r);
    PQclear(r);
    return rc;
}

int sy_pg_begin(struct sy_pg *pg)
{
    if (!pg)
        return -SY_EINVAL;
    if (pg->in_tx || pg->tx_lost) {
        set_err(pg, "%s", "a transaction is already open");
        return -SY_EINVAL;
    }
    int rc = pg_simple(pg, "BEGIN");
    if (rc == 0)
        pg->in_tx = true;
    return rc;
}

int sy_pg_commit(struct sy_pg *pg)
{
    if (!pg)
        return -SY_EINVAL;
    if (pg->tx_lost) {
        pg->tx_lost = pg->in_tx = false;
        set_err(pg, "%s", "the transaction was lost with the connection");
        return -SY_ECONN;
    }
    PGresult *r;
    int rc = pg_run(pg, "COMMIT", 0, NULL, &r);
    pg->in_tx = pg->tx_lost = false;
    /* COMMIT of a transaction that had a failed statement "succeeds" as a ROLLBACK. */
    if (rc == 0 && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        set_err(pg, "%s", "the transaction had a failed statement and was rolled back");
        rc = -SY_EDB;
    }
    PQclear(r);
    return rc;
}

int sy_pg_rollback(struct sy_pg *pg)
{
    if (!pg)
        return -SY_EINVAL;
    if (pg->tx_lost) {
        /* The server rolled back when the session died: nothing left to undo. */
        pg->tx_lost = pg->in_tx = false;
        return 0;
    }
    int rc = pg_simple(pg, "ROLLBACK");
    pg->in_tx = false;
    /* A connection lost here takes the transaction with it: the outcome asked for holds. */
    return rc == -SY_ECONN ? 0 : rc;
}

int sy_pg_res_rows(const struct sy_pg_res *res)
{
    return res ? PQntuples(res->res) : 0;
}

int sy_pg_res_cols(const struct sy_pg_res *res)
{
    return res ? PQnfields(res->res) : 0;
}

const char *sy_pg_res_get(const struct sy_pg_res *res, int row, int col)
{
    if (!res || row < 0 || col < 0 || row >= PQntuples(res->res) || col >= PQnfields(res->res))
        return NULL;
    if (PQgetisnull(res->res, row, col))
        return NULL;
    return PQgetvalue(res->res, row, col);
}

long long sy_pg_res_affected(const struct sy_pg_res *res)
{
    if (!res)
        return 0;
    const char *n = PQcmdTuples(res->res);
    return n && *n ? strtoll(n, NULL, 10) : 0;
}

void sy_pg_res_free(struct sy_pg_res *res)
{
    if (!res)
        return;
    PQclear(res->res);
    free(res);
}

int sy_pg_fence(struct sy_pg *pg, const char *resource, uint64_t fence)
{
    if (!pg || !resource || !*resource || fence == 0 || fence > INT64_MAX)
        return -SY_EINVAL;
    char fence_txt[24];
    snprintf(fence_txt, sizeof fence_txt, "%" PRIu64, fence);
    const char *params[] = {resource, fence_txt};
    struct sy_pg_res *res = NULL;
    int rc = sy_pg_exec(pg,
                        "INSERT INTO sy_fences (resource, fence, updated_at) "
                        "VALUES ($1, $2::bigint, now()) "
                        "ON CONFLICT (resource) DO UPDATE "
                        "SET fence = EXCLUDED.fence, updated_at = EXCLUDED.updated_at "
                        "WHERE sy_fences.fence <= EXCLUDED.fence "
                        "RETURNING fence",
                        2, params, &res);
    if (rc == 0 && sy_pg_res_rows(res) == 0) {
        set_err(pg, "a newer fence already wrote '%.200s'", resource);
        rc = -SY_ESTALE;
    }
    sy_pg_res_free(res);
    return rc;
}

/* The fence as a statement that fails when stale, so the statements after it in the same
 * pipeline are skipped and nothing commits: the upsert writes no row when a newer fence holds
 * the resource, and dividing by that count raises 22012 on this statement alone. */
static const char FENCE_OR_FAIL_SQL[] =
    "WITH f AS (INSERT INTO sy_fences (resource, fence, updated_at)"
    " VALUES ($1, $2::bigint, now())"
    " ON CONFLICT (resource) DO UPDATE SET fence = EXCLUDED.fence, updated_at = EXCLUDED.updated_at"
    " WHERE sy_fences.fence <= EXCLUDED.fence RETURNING 1)"
    " SELECT 1 / count(*)::int FROM f";

/* One pipeline: the fence, sql, Sync. Between the first statement and the Sync the server runs
 * both in one transaction, and skips sql once the fence failed. *out: sql's result. */
static int pipeline_fenced(struct sy_pg *pg, const char *const fparams[2], const char *sql,
                           int nparams, const char *const *params, PGresult **out)
{
    PGconn *c = pg->conn;
    int rc = 0, query = 0;

    *out = NULL;
    if (PQenterPipelineMode(c) != 1 ||
        PQsendQueryParams(c, FENCE_OR_FAIL_SQL, 2, NULL, fparams, NULL, NULL, 0) != 1 ||
        PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0) != 1 ||
        PQpipelineSync(c) != 1) {
        set_err(pg, "%s", PQerrorMessage(c));
        /* A half-sent pipeline cannot be taken back: start afresh. */
        if (PQstatus(c) != CONNECTION_BAD)
            pg_reset(pg);
        return -SY_ECONN;
    }
    /* Each statement's result, then NULL; a statement after a failure reports
     * PIPELINE_ABORTED; the Sync ends it all. */
    for (;;) {
        PGresult *r = PQgetResult(c);

        if (!r) {
            if (PQstatus(c) == CONNECTION_BAD || ++query > 2) {
                set_err(pg, "%s",
                        PQstatus(c) == CONNECTION_BAD ? PQerrorMessage(c)
                                                      : "the pipeline did not end");
                rc = -SY_ECONN;
                break;
            }
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (st == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
            continue;
        }
        int qrc = check_result(pg, r);
        if (query == 0 && qrc != 0 && strcmp(pg->state, "22012") == 0) {
            qrc = -SY_ESTALE;
            set_err(pg, "a newer fence already wrote '%.200s'", fparams[0]);
        }
        if (qrc != 0 && rc == 0) {
            rc = qrc;
            if (qrc != -SY_ESTALE) /* a lost race, not a fault */
                log_failure(pg, qrc);
        }
        if (query == 1 && qrc == 0 && !*out)
            *out = r;
        else
            PQclear(r);
    }
    if (rc == -SY_ECONN || PQexitPipelineMode(c) != 1) {
        if (rc == 0)
            set_err(pg, "%s", PQerrorMessage(c));
        PQclear(*out);
        *out = NULL;
        if (PQstatus(c) != CONNECTION_BAD)
            pg_reset(pg);
        return -SY_ECONN;
    }
    if (rc != 0) {
        PQclear(*out);
        *out = NULL;
    }
    return rc;
}

int sy_pg_exec_fenced(struct sy_pg *pg, const char *resource, uint64_t fence, const char *sql,
                      int nparams, const char *const *params, struct sy_pg_res **res)
{
    if (res)
        *res = NULL;
    if (!pg || !resource || !*resource || fence == 0 || fence > INT64_MAX || !sql || nparams < 0 ||
        nparams > PG_PARAMS_MAX || (nparams > 0 && !params))
        return -SY_EINVAL;
    if (inside_tx(pg) || pg->tx_lost) {
        set_err(pg, "%s", "a transaction is open: use sy_pg_fence inside it");
        return -SY_EINVAL;
    }
    char fence_txt[24];
    snprintf(fence_txt, sizeof fence_txt, "%" PRIu64, fence);
    const char *const fparams[2] = {resource, fence_txt};
    struct sy_pg_res *wrap = NULL;
    if (res && !(wrap = malloc(sizeof *wrap)))
        return -SY_ENOMEM;
    pg->state[0] = '\0';
    bool reset_done = false;
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        if (pg->no_reset || pg_reset(pg) != 0) {
            free(wrap);
            return -SY_ECONN;
        }
        reset_done = true;
    }
    PGresult *r = NULL;
    int rc;
    for (;;) {
        rc = pipeline_fenced(pg, fparams, sql, nparams, params, &r);
        /* As in pg_run: the pipeline committed whole or not at all, and running it again on
         * a new connection is the lesser risk; the fence keeps a stale holder out either way. */
        if (rc != -SY_ECONN || reset_done || pg->no_reset ||
            (PQstatus(pg->conn) == CONNECTION_BAD && pg_reset(pg) != 0))
            break;
        reset_done = true;
    }
    return give_result(rc, r, wrap, res);
}

/* --- Readiness ------------------------------------------------------------------------- */

struct sy_pg_probe {
    pthread_mutex_t mu;
    char *url;
    int every_ms;
    struct sy_pg *pg;
    int64_t at_ms; /* of the last answer, 0 before the first */
    int rc;
};

struct sy_pg_probe *sy_pg_probe_new(const char *url, int every_ms)
{
    struct sy_pg_probe *p = calloc(1, sizeof *p);

    if (!p || !(p->url = strdup(url ? url : ""))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->every_ms = every_ms;
    return p;
}

int sy_pg_probe_check(struct sy_pg_probe *p)
{
    int64_t now = sy_mono_ms();
    char err[256];
    int rc;

    pthread_mutex_lock(&p->mu);
    if (p->at_ms && now - p->at_ms < p->every_ms) {
        rc = p->rc;
        goto out;
    }
    if (!p->pg)
        p->pg = sy_pg_connect(p->url, err, sizeof err);
    rc = p->pg ? sy_pg_exec(p->pg, "SELECT 1", 0, NULL, NULL) : -SY_ECONN;
    if (rc != 0) {
        sy_pg_destroy(p->pg);
        p->pg = NULL;
    }
    p->rc = rc == 0 ? 0 : -1;
    p->at_ms = now;
    rc = p->rc;
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void sy_pg_probe_free(struct sy_pg_probe *p)
{
    if (!p)
        return;
    sy_pg_destroy(p->pg);
    pthread_mutex_destroy(&p->mu);
    free(p->url);
    free(p);
}

/* --- Migrations ------------------------------------------------------------------------- */

/* NNNN_name.sql with name made of [A-Za-z0-9_-]. */
static bool migration_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 4 + 1 + 1 + 4 || len > MIGRATION_NAME_MAX || strcmp(n + len - 4, ".sql") != 0)
        return false;
    for (size_t i = 0; i < 4; i++)
        if (n[i] < '0' || n[i] > '9')
            return false;
    if (n[4] != '_')
        return false;
    for (size_t i = 5; i < len - 4; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The migration files of dir, sorted. Other .sql files are reported, not silently skipped:
 * a misnamed migration would otherwise never run. */
static int list_migrations(const char *dir, char ***out, size_t *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "migrations directory %.200s: %s", dir, strerror(errno));
        return -SY_EIO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!migration_name(e->d_name)) {
            size_t len = strlen(e->d_name);
            if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0 && e->d_name[0] != '.')
                sy_log_warn("pg.migrate", "ignoring %s: migrations are named NNNN_name.sql",
                            e->d_name);
            continue;
        }
        if (n == MIGRATIONS_MAX) {
            snprintf(err, errlen, "more than %d migrations in %.200s", MIGRATIONS_MAX, dir);
            rc = -SY_ETOOBIG;
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(names, ncap * sizeof *names);
            if (!grown) {
                rc = -SY_ENOMEM;
                goto out;
            }
            names = grown;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            rc = -SY_ENOMEM;
            goto out;
        }
        n++;
    }
    if (n > 0)
        qsort(names, n, sizeof *names, cmp_names);
out:
    closedir(d);
    if (rc) {
        if (rc == -SY_ENOMEM)
            snprintf(err, errlen, "out of memory");
        free_names(names, n);
        return rc;
    }
    *out = names;
    *count = n;
    return 0;
}

/* Applies one file in its own transaction together with its sy_migrations row. *applied says
 * whether it ran (false when an earlier run already recorded it). */
static int apply_one(struct sy_pg *pg, const char *dir, const char *name, bool *applied, char *err,
                     size_t errlen)
{
    *applied = false;
    char path[MIGRATION_PATH_MAX];
    char *sql = NULL;
    PGresult *r = NULL;
    const char *params[] = {name};
    bool began = false;

    int rc = pg_run(pg, "SELECT 1 FROM sy_migrations WHERE name = $1", 1, params, &r);
    if (rc)
        goto fail_db;
    bool done = PQntuples(r) > 0;
    PQclear(r);
    r = NULL;
    if (done)
        return 0;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        snprintf(err, errlen, "%s: path too long", name);
        return -SY_ETOOBIG;
    }
    rc = sy_read_file(path, MIGRATION_FILE_MAX, &sql, NULL);
    if (rc) {
        snprintf(err, errlen, "%s: cannot read (%s)", name, sy_strerror(rc));
        return rc;
    }

    rc = pg_simple(pg, "BEGIN");
    if (rc)
        goto fail_db;
    began = true;
    /* PQexec runs the whole file, several statements at once. That is what parameterised
     * statements forbid, and it is acceptable only here: migrations are trusted files from
     * the repository, never input from outside. */
    r = PQexec(pg->conn, sql);
    rc = check_result(pg, r);
    if (rc == -SY_EINVAL && r && PQresultStatus(r) == PGRES_EMPTY_QUERY)
        rc = 0; /* a file of comments only */
    PQclear(r);
    r = NULL;
    if (rc)
        goto fail_db;
    if (PQtransactionStatus(pg->conn) != PQTRANS_INTRANS) {
        snprintf(err, errlen,
                 "%s: the file must not end the transaction itself (COMMIT or "
                 "ROLLBACK in a migration)",
                 name);
        rc = -SY_EDBDATA;
        goto out;
    }
    rc = pg_run(pg, "INSERT INTO sy_migrations (name, applied_at) VALUES ($1, now())", 1, params,
                &r);
    PQclear(r);
    r = NULL;
    if (rc)
        goto fail_db;
    rc = pg_simple(pg, "COMMIT");
    began = false;
    if (rc)
        goto fail_db;
    *applied = true;
    goto out;

fail_db:
    snprintf(err, errlen, "%s: %s", name, pg->err);
out:
    if (began && PQstatus(pg->conn) == CONNECTION_OK) {
        PGresult *rb = PQexec(pg->conn, "ROLLBACK");
        PQclear(rb);
    }
    free(sql);
    return rc;
}

int sy_pg_migrate(struct sy_pg *pg, const char *dir, void (*cb)(const char *name, void *ud),
                  void *ud, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!pg || !dir)
        return -SY_EINVAL;
    if (pg->in_tx || inside_tx(pg)) {
        snprintf(err, errlen, "migrations cannot run inside an open transaction");
        return -SY_EINVAL;
    }
    char **names = NULL;
    size_t n = 0, applied = 0;
    bool locked = false;
    int rc = list_migrations(dir, &names, &n, err, errlen);
    if (rc)
        return rc;

    /* A session lost before the run may be reopened; once the lock is held it may not, as
     * the advisory lock belongs to the session and a silent reset would run the rest
     * unlocked. */
    if (PQstatus(pg->conn) == CONNECTION_BAD && pg_reset(pg) != 0) {
        snprintf(err, errlen, "migrations: %s", pg->err);
        rc = -SY_ECONN;
        goto out;
    }
    pg->no_reset = true;
    rc = pg_simple(pg, MIGRATION_LOCK_SQL);
    if (rc) {
        snprintf(err, errlen, "migration lock: %s", pg->err);
        goto out;
    }
    locked = true;
    rc = pg_simple(pg, "CREATE TABLE IF NOT EXISTS sy_migrations ("
                       "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    if (rc) {
        snprintf(err, errlen, "sy_migrations: %s", pg->err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool ran;
        rc = apply_one(pg, dir, names[i], &ran, err, errlen);
        if (rc) {
            sy_log_write(SY_LOG_ERROR, "pg.migrate", -1, err, "migration failed");
            goto out;
        }
        if (ran) {
            applied++;
            sy_log_info("pg.migrate", "applied %s", names[i]);
            if (cb)
                cb(names[i], ud);
        }
    }
    sy_log_info("pg.migrate", "%zu of %zu migrations applied now, the rest were already there",
                applied, n);
out:
    if (locked && PQstatus(pg->conn) == CONNECTION_OK)
        pg_simple(pg, MIGRATION_UNLOCK_SQL);
    pg->no_reset = false;
    free_names(names, n);
    return rc;
}
