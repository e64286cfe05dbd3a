/* mysql.c - a MySQL/MariaDB connection over libmysqlclient (MariaDB Connector/C): prepared
 * statements cached per connection, results copied out as text, server and client error
 * numbers sorted into the runtime's codes, and one reconnect outside transactions. */
#include <errmsg.h>
#include <limits.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/mysql.h"
#include "text_int.h"

#define MY_ERR_MAX        512
#define MY_PARAMS_MAX     65535 /* the protocol's limit */
#define MY_STMT_CACHE     32
#define MY_URL_MAX        4096
#define MY_TIMEOUT_MAX    86400
#define MY_IDENT_MAX      64                     /* bytes of a table or column name */
#define MY_RES_BYTES_MAX  (256u * 1024u * 1024u) /* text of one result, names included */
#define MY_CELL_FIRST     256                    /* a column's first fetch buffer */
#define MY_CELL_FIRST_MAX (1024u * 1024u)        /* ... when the server's max_length is bigger */
/* STRICT_ALL_TABLES makes a value that does not fit an error on every engine, not only
 * transactional ones; the others keep zero dates and silent engine swaps out. */
#define MY_SQL_MODE                                                                                \
    "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,"                   \
    "NO_ENGINE_SUBSTITUTION"
#define MY_SESSION_SQL "SET time_zone = '+00:00', sql_mode = '" MY_SQL_MODE "'"

enum ssl_mode { SSL_DISABLED, SSL_PREFERRED, SSL_REQUIRED, SSL_VERIFY_CA, SSL_VERIFY_IDENTITY };

/* What a (re)connect needs, parsed once from the URL. */
struct my_target {
    char *host, *user, *password, *database, *socket;
    unsigned port;
    unsigned connect_timeout, read_timeout, write_timeout; /* seconds */
    enum ssl_mode ssl;
    char *ssl_ca, *ssl_cert, *ssl_key;
    char *charset;
};

struct my_stmt {
    char *sql; /* cache key; NULL for a free slot */
    MYSQL_STMT *stmt;
    unsigned long long used; /* LRU clock value of the last use */
};

struct sy_mysql {
    MYSQL *conn; /* NULL after a failed reconnect */
    struct my_target t;
    bool dead;    /* the session is gone (lost, killed, timed out): reconnect before use */
    bool in_tx;   /* between sy_mysql_begin and sy_mysql_commit/rollback */
    bool tx_lost; /* the session died inside that transaction: refuse until it ends */
    unsigned err_no;
    char err[MY_ERR_MAX];
    struct my_stmt cache[MY_STMT_CACHE];
    unsigned long long clock;
};

/* Cells live in one text block: off[row * cols + col] is a cell's start, SIZE_MAX for NULL;
 * name_off[col] a column name's. */
struct sy_mysql_res {
    int rows, cols;
    long long affected;
    size_t *off, *name_off;
    size_t rows_cap;
    char *text;
    size_t len, cap;
};

/* --- Library setup ---------------------------------------------------------------------- */

/* mysql_library_init must run once before any thread uses the library, and the documented API
 * wants mysql_thread_init/mysql_thread_end around each thread's use. Connector/C 3.x already
 * guards its init with pthread_once and makes the per-thread calls no-ops; they are made
 * anyway (the end through a key destructor at thread exit) so a library that needs them gets
 * them. */
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static pthread_key_t lib_thread_key;
static int lib_rc;

static void thread_done(void *unused)
{
    mysql_thread_end();
}

static void lib_init(void)
{
    lib_rc = mysql_library_init(0, NULL, NULL) ? -SY_EINTERNAL : 0;
    if (lib_rc == 0 && pthread_key_create(&lib_thread_key, thread_done) != 0)
        lib_rc = -SY_ENOMEM;
}

static int lib_ready(void)
{
    pthread_once(&lib_once, lib_init);
    if (lib_rc)
        return lib_rc;
    if (!pthread_getspecific(lib_thread_key)) {
        if (mysql_thread_init())
            return -SY_EINTERNAL;
        pthread_setspecific(lib_thread_key, (void *)1);
    }
    return 0;
}

/* --- Errors ----------------------------------------------------------------------------- */

static void set_err(struct sy_mysql *m, unsigned no, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(struct sy_mysql *m, unsigned no, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    m->err_no = no;
}

/* The session is gone after these: the server closed it or the client gave up on it. */
static bool conn_lost(unsigned no)
{
    switch (no) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_IPSOCK_ERROR:
    case CR_UNKNOWN_HOST:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_HANDSHAKE_ERR:
    case CR_SERVER_LOST:
    case CR_SSL_CONNECTION_ERROR:
    case CR_SERVER_LOST_EXTENDED:
    case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case 4031: /* MySQL 8: disconnected by the server because of inactivity */
        return true;
    default:
        return false;
    }
}

/* Error number to a runtime code: retriable when waiting may help (lost session, deadlock,
 * lock wait, read-only, too many connections), refused when the statement or its data is at
 * fault. Unknown numbers count as retriable: the attempt limit still ends a loop. */
static int translate(unsigned no, const char *sqlstate)
{
    if (conn_lost(no))
        return -SY_ECONN;
    switch (no) {
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_CON_COUNT_ERROR:
    case ER_OPTION_PREVENTS_STATEMENT: /* read-only server (a replica, a failover) */
    case ER_QUERY_INTERRUPTED:
        return -SY_EDB;
    case ER_STATEMENT_TIMEOUT: /* max_statement_time */
        return -SY_ETIMEOUT;
    case ER_DUP_ENTRY:
    case ER_DUP_UNIQUE:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
    case ER_DATA_TOO_LONG:
    case ER_TRUNCATED_WRONG_VALUE:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_WARN_DATA_OUT_OF_RANGE:
    case WARN_DATA_TRUNCATED:
    case ER_DIVISION_BY_ZERO:
    case ER_NO_DEFAULT_FOR_FIELD:
    case ER_BAD_NULL_ERROR:
    case ER_BAD_FIELD_ERROR:
    case ER_NO_SUCH_TABLE:
    case ER_PARSE_ERROR:
    case ER_NO_REFERENCED_ROW:
    case ER_NO_REFERENCED_ROW_2:
    case ER_ROW_IS_REFERENCED:
    case ER_ROW_IS_REFERENCED_2:
    case ER_CONSTRAINT_FAILED:
    case ER_WRONG_VALUE_FOR_TYPE:
    case ER_WRONG_VALUE_COUNT_ON_ROW:
    case ER_UNSUPPORTED_PS:
    case ER_TABLEACCESS_DENIED_ERROR:
    case ER_COLUMNACCESS_DENIED_ERROR:
    case CR_PARAMS_NOT_BOUND:
    case CR_INVALID_PARAMETER_NO:
    case CR_UNSUPPORTED_PARAM_TYPE:
        return -SY_EDBDATA;
    case CR_OUT_OF_MEMORY:
        return -SY_ENOMEM;
    default:
        break;
    }
    /* The rest by SQLSTATE class, as pg.c does: integrity, data, syntax or access rule,
     * cardinality. */
    if (sqlstate && (strncmp(sqlstate, "23", 2) == 0 || strncmp(sqlstate, "22", 2) == 0 ||
                     strncmp(sqlstate, "42", 2) == 0 || strncmp(sqlstate, "21", 2) == 0))
        return -SY_EDBDATA;
    return -SY_EDB;
}

static void log_failure(const struct sy_mysql *m, int rc)
{
    /* Refused data is the caller's business (it may be an expected duplicate); the rest is
     * an operational problem worth a line. */
    enum sy_log_level lvl = rc == -SY_EDBDATA ? SY_LOG_DEBUG : SY_LOG_WARN;
    sy_log_write(lvl, "mysql.error", -1, m->err, "statement failed: %s", sy_strerror(rc));
}

/* Records a failure reported by the library (the server's message, never the parameters) and
 * classifies it. A lost session that took at least the read or write timeout is the client
 * giving up: Connector/C reports both as CR_SERVER_LOST and closes the socket. */
static int fail(struct sy_mysql *m, unsigned no, const char *msg, const char *sqlstate,
                int64_t started)
{
    if (sqlstate && *sqlstate && strcmp(sqlstate, "HY000") != 0)
        set_err(m, no, "%s (errno %u, SQLSTATE %s)", msg, no, sqlstate);
    else
        set_err(m, no, "%s (errno %u)", msg, no);
    int rc = translate(no, sqlstate);
    if (rc == -SY_ECONN)
        m->dead = true;
    if (no == CR_SERVER_LOST && started >= 0) {
        unsigned limit =
            m->t.read_timeout < m->t.write_timeout ? m->t.read_timeout : m->t.write_timeout;
        if (sy_mono_ms() - started >= (int64_t)limit * 1000 - 50)
            rc = -SY_ETIMEOUT;
    }
    return rc;
}

static int fail_conn(struct sy_mysql *m, int64_t started)
{
    return fail(m, mysql_errno(m->conn), mysql_error(m->conn), mysql_sqlstate(m->conn), started);
}

static int fail_stmt(struct sy_mysql *m, MYSQL_STMT *st, int64_t started)
{
    return fail(m, mysql_stmt_errno(st), mysql_stmt_error(st), mysql_stmt_sqlstate(st), started);
}

/* --- URL -------------------------------------------------------------------------------- */

/* A malloc'd percent-decoded copy of s[0..n); NULL when malformed (or holding NUL) or out of
 * memory (*oom set). */
static char *pct_decode(const char *s, size_t n, bool *oom)
{
    char *out = malloc(n + 1);
    if (!out) {
        *oom = true;
        return NULL;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? sy__hexval(s[i + 1]) : -1;
        int lo = hi < 0 ? -1 : sy__hexval(s[i + 2]);
        if (lo >= 0 && (hi || lo)) {
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
            continue;
        }
        free(out);
        return NULL;
    }
    out[j] = '\0';
    return out;
}

static void target_free(struct my_target *t)
{
    if (t->password) {
        /* Not left behind in freed memory for a core dump to show. */
        volatile char *p = t->password;
        while (*p)
            *p++ = '\0';
    }
    free(t->host);
    free(t->user);
    free(t->password);
    free(t->database);
    free(t->socket);
    free(t->ssl_ca);
    free(t->ssl_cert);
    free(t->ssl_key);
    free(t->charset);
    memset(t, 0, sizeof *t);
}

static int parse_seconds(const char *v, unsigned *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > MY_TIMEOUT_MAX)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static int parse_option(struct my_target *t, const char *key, char *val, char *err, size_t errlen)
{
    char **slot = NULL;
    if (strcmp(key, "connect_timeout") == 0 || strcmp(key, "read_timeout") == 0 ||
        strcmp(key, "write_timeout") == 0) {
        unsigned *n = key[0] == 'c'   ? &t->connect_timeout
                      : key[0] == 'r' ? &t->read_timeout
                                      : &t->write_timeout;
        if (parse_seconds(val, n) != 0) {
            sy_errf(err, errlen, "MySQL URL: option %s wants seconds from 1 to %d", key,
                    MY_TIMEOUT_MAX);
            return -SY_ECONFIG;
        }
        free(val);
        return 0;
    }
    if (strcmp(key, "ssl_mode") == 0) {
        static const char *const names[] = {"disabled", "preferred", "required", "verify_ca",
                                            "verify_identity"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcasecmp(val, names[i]) == 0) {
                t->ssl = (enum ssl_mode)i;
                free(val);
                return 0;
            }
        sy_errf(err, errlen,
                "MySQL URL: ssl_mode must be disabled, preferred, required, verify_ca or "
                "verify_identity");
        return -SY_ECONFIG;
    }
    if (strcmp(key, "ssl_ca") == 0)
        slot = &t->ssl_ca;
    else if (strcmp(key, "ssl_cert") == 0)
        slot = &t->ssl_cert;
    else if (strcmp(key, "ssl_key") == 0)
        slot = &t->ssl_key;
    else if (strcmp(key, "socket") == 0)
        slot = &t->socket;
    else if (strcmp(key, "charset") == 0) {
        for (const char *c = val; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_'))
                goto bad_charset;
        if (!*val)
            goto bad_charset;
        slot = &t->charset;
    } else {
        sy_errf(err, errlen, "MySQL URL: unknown option '%.64s'", key);
        return -SY_ECONFIG;
    }
    if (!*val) {
        sy_errf(err, errlen, "MySQL URL: option %s is empty", key);
        return -SY_ECONFIG;
    }
    free(*slot);
    *slot = val;
    return 0;
bad_charset:
    sy_errf(err, errlen, "MySQL URL: charset must be a character set name such as utf8mb4");
    return -SY_ECONFIG;
}

/* mysql://user[:password]@host[:port]/database[?k=v&...]. Error texts never quote the URL:
 * it holds the password. */
static int parse_url(const char *url, struct my_target *t, char *err, size_t errlen)
{
    static const char scheme[] = "mysql://";
    bool oom = false;
    int rc = -SY_ECONFIG;
    memset(t, 0, sizeof *t);
    t->port = 3306;
    t->connect_timeout = 5;
    t->read_timeout = t->write_timeout = 30;
    t->ssl = SSL_PREFERRED;

    if (strlen(url) > MY_URL_MAX) {
        sy_errf(err, errlen, "MySQL URL: longer than %d bytes", MY_URL_MAX);
        return -SY_ECONFIG;
    }
    if (strncasecmp(url, scheme, sizeof scheme - 1) != 0) {
        sy_errf(err, errlen, "MySQL URL: must start with mysql://");
        return -SY_ECONFIG;
    }
    const char *p = url + sizeof scheme - 1;
    const char *auth_end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q; /* the last one: a password may hold an unencoded '@' */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
        t->user = pct_decode(p, ulen, &oom);
        if (!t->user)
            goto bad_part;
        if (colon) {
            t->password = pct_decode(colon + 1, (size_t)(at - colon - 1), &oom);
            if (!t->password)
                goto bad_part;
            /* Registered before anything can log the URL or the library's message. */
            if (*t->password)
                sy_log_add_secret(t->password);
        }
        p = at + 1;
    }
    /* Host: a name, an IPv4 address or [IPv6]; then :port. */
    const char *host_end;
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(auth_end - p));
        if (!host_end) {
            sy_errf(err, errlen, "MySQL URL: unclosed [ in the host");
            goto out;
        }
        t->host = strndup(p + 1, (size_t)(host_end - p - 1));
        host_end++;
    } else {
        host_end = p + strcspn(p, ":/?#");
        if (host_end > auth_end)
            host_end = auth_end;
        t->host = strndup(p, (size_t)(host_end - p));
    }
    if (!t->host) {
        oom = true;
        goto bad_part;
    }
    if (!t->host[0]) {
        sy_errf(err, errlen, "MySQL URL: no host");
        goto out;
    }
    if (host_end < auth_end) {
        if (*host_end != ':') {
            sy_errf(err, errlen, "MySQL URL: unexpected text after the host");
            goto out;
        }
        char digits[8];
        size_t n = (size_t)(auth_end - host_end - 1);
        if (n == 0 || n >= sizeof digits || strspn(host_end + 1, "0123456789") < n) {
            sy_errf(err, errlen, "MySQL URL: the port must be a number from 1 to 65535");
            goto out;
        }
        memcpy(digits, host_end + 1, n);
        digits[n] = '\0';
        long port = strtol(digits, NULL, 10);
        if (port < 1 || port > 65535) {
            sy_errf(err, errlen, "MySQL URL: the port must be a number from 1 to 65535");
            goto out;
        }
        t->port = (unsigned)port;
    }
    p = auth_end;
    if (*p == '#') {
        sy_errf(err, errlen, "MySQL URL: a fragment (#) is not allowed");
        goto out;
    }
    if (*p == '/') {
        p++;
        size_t n = strcspn(p, "?#");
        if (n > 0) {
            t->database = pct_decode(p, n, &oom);
            if (!t->database)
                goto bad_part;
            if (strchr(t->database, '/')) {
                sy_errf(err, errlen, "MySQL URL: the database name holds a '/'");
                goto out;
            }
        }
        p += n;
    }
    if (*p == '#') {
        sy_errf(err, errlen, "MySQL URL: a fragment (#) is not allowed");
        goto out;
    }
    if (*p == '?') {
        p++;
        while (*p) {
            size_t n = strcspn(p, "&");
            const char *eq = memchr(p, '=', n);
            if (n == 0) {
                p++;
                continue;
            }
            if (!eq) {
                char key[72];
                snprintf(key, sizeof key, "%.*s", (int)(n < 64 ? n : 64), p);
                sy_errf(err, errlen, "MySQL URL: option '%s' has no value", key);
                goto out;
            }
            char *key = pct_decode(p, (size_t)(eq - p), &oom);
            char *val = key ? pct_decode(eq + 1, (size_t)(p + n - eq - 1), &oom) : NULL;
            if (!key || !val) {
                free(key);
                goto bad_part;
            }
            rc = parse_option(t, key, val, err, errlen);
            free(key);
            if (rc) {
                free(val);
                goto out;
            }
            rc = -SY_ECONFIG;
            p += n;
            if (*p == '&')
                p++;
        }
    }
    if (t->ssl == SSL_DISABLED && (t->ssl_ca || t->ssl_cert || t->ssl_key)) {
        sy_errf(err, errlen, "MySQL URL: ssl_ca, ssl_cert or ssl_key given with ssl_mode=disabled");
        goto out;
    }
    if (!t->charset && !(t->charset = strdup("utf8mb4"))) {
        oom = true;
        goto bad_part;
    }
    return 0;

bad_part:
    if (oom) {
        sy_errf(err, errlen, "out of memory");
        rc = -SY_ENOMEM;
    } else {
        sy_errf(err, errlen, "MySQL URL: bad percent-encoding");
    }
out:
    target_free(t);
    return rc;
}

/* --- Connection ------------------------------------------------------------------------- */

static void cache_clear(struct sy_mysql *m)
{
    for (size_t i = 0; i < MY_STMT_CACHE; i++) {
        if (m->cache[i].stmt)
            mysql_stmt_close(m->cache[i].stmt);
        free(m->cache[i].sql);
        m->cache[i] = (struct my_stmt){0};
    }
}

/* Options for one connection attempt. TLS under Connector/C 3.3, which has no single
 * "ssl mode" option:
 *   disabled        - MYSQL_OPT_SSL_ENFORCE off: plain TCP.
 *   preferred       - SSL_ENFORCE on, no verification: TLS when the server offers it, plain
 *                     otherwise (the library falls back by itself), any certificate.
 *   required        - as preferred, and a connection that did not end up encrypted is
 *                     refused afterwards (mysql_get_ssl_cipher), since the library only
 *                     refuses plain text by itself when verifying.
 *   verify_ca,
 *   verify_identity - SSL_ENFORCE and MYSQL_OPT_SSL_VERIFY_SERVER_CERT on: the chain against
 *                     ssl_ca (or the system's store) and the host name both; Connector/C
 *                     cannot check the chain alone, so verify_ca is as strict as
 *                     verify_identity.
 * Verification is set off explicitly for the weaker modes: Connector/C 3.4 turned it on by
 * default. */
static int set_options(MYSQL *c, const struct my_target *t)
{
    unsigned proto = MYSQL_PROTOCOL_TCP;
    unsigned connect_timeout = t->connect_timeout, read_timeout = t->read_timeout,
             write_timeout = t->write_timeout;
    my_bool off = 0, on = 1;
    my_bool enforce = t->ssl != SSL_DISABLED;
    my_bool verify = t->ssl >= SSL_VERIFY_CA;
    int bad = 0;
    if (t->socket)
        proto = MYSQL_PROTOCOL_SOCKET;
    bad |= mysql_optionsv(c, MYSQL_OPT_PROTOCOL, &proto);
    bad |= mysql_optionsv(c, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    bad |= mysql_optionsv(c, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    bad |= mysql_optionsv(c, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
    bad |= mysql_optionsv(c, MYSQL_SET_CHARSET_NAME, t->charset);
    /* Reconnects are ours: the library's would silently drop the session's settings and any
     * open transaction. LOAD DATA LOCAL would let a hostile server read our files. */
    bad |= mysql_optionsv(c, MYSQL_OPT_RECONNECT, &off);
    bad |= mysql_optionsv(c, MYSQL_OPT_LOCAL_INFILE, &off);
    bad |= mysql_optionsv(c, MYSQL_REPORT_DATA_TRUNCATION, &on);
    bad |= mysql_optionsv(c, MYSQL_OPT_SSL_ENFORCE, &enforce);
    bad |= mysql_optionsv(c, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    if (t->ssl_ca)
        bad |= mysql_optionsv(c, MYSQL_OPT_SSL_CA, t->ssl_ca);
    if (t->ssl_cert)
        bad |= mysql_optionsv(c, MYSQL_OPT_SSL_CERT, t->ssl_cert);
    if (t->ssl_key)
        bad |= mysql_optionsv(c, MYSQL_OPT_SSL_KEY, t->ssl_key);
    return bad ? -SY_ECONFIG : 0;
}

/* Opens a fresh session with the session settings applied. On failure m->conn is NULL and
 * m->err says why. */
static int open_session(struct sy_mysql *m)
{
    const struct my_target *t = &m->t;
    MYSQL *c = mysql_init(NULL);
    if (!c) {
        set_err(m, CR_OUT_OF_MEMORY, "out of memory");
        return -SY_ENOMEM;
    }
    int rc = set_options(c, t);
    if (rc) {
        set_err(m, 0, "the client library refused a connection option (%s)", mysql_error(c));
        goto fail;
    }
    if (!mysql_real_connect(c, t->socket ? NULL : t->host, t->user, t->password, t->database,
                            t->socket ? 0 : t->port, t->socket, 0)) {
        unsigned no = mysql_errno(c);
        set_err(m, no, "%s (errno %u)", mysql_error(c), no);
        rc = translate(no, mysql_sqlstate(c));
        /* Access denied, unknown database: the settings are wrong, and the caller's retry
         * will not fix them, but the server may also be starting: leave it retriable. */
        if (rc != -SY_ECONN && rc != -SY_ENOMEM)
            rc = -SY_ECONN;
        goto fail;
    }
    if (t->ssl == SSL_REQUIRED && !mysql_get_ssl_cipher(c)) {
        set_err(m, CR_SSL_CONNECTION_ERROR, "ssl_mode=required, but the server does not offer TLS");
        rc = -SY_ECONN;
        goto fail;
    }
    if (mysql_real_query(c, MY_SESSION_SQL, sizeof MY_SESSION_SQL - 1) != 0) {
        unsigned no = mysql_errno(c);
        set_err(m, no, "session setup: %s (errno %u)", mysql_error(c), no);
        rc = conn_lost(no) ? -SY_ECONN : -SY_EDB;
        goto fail;
    }
    m->conn = c;
    m->dead = false;
    return 0;
fail:
    mysql_close(c);
    return rc;
}

/* Drops the old session (its statements go with it) and opens a new one. */
static int reconnect(struct sy_mysql *m)
{
    cache_clear(m);
    mysql_close(m->conn);
    m->conn = NULL;
    m->dead = true;
    int rc = open_session(m);
    if (rc) {
        sy_log_write(SY_LOG_WARN, "mysql.reset", -1, m->err, "reconnect to MySQL failed");
        return rc;
    }
    sy_log_info("mysql.reset", "reconnected to MySQL");
    return 0;
}

struct sy_mysql *sy_mysql_connect(const char *url, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!url || !*url) {
        sy_errf(err, errlen, "MySQL URL is empty");
        return NULL;
    }
    if (lib_ready() != 0) {
        sy_errf(err, errlen, "MySQL: the client library failed to initialise");
        return NULL;
    }
    struct sy_mysql *m = calloc(1, sizeof *m);
    if (!m) {
        sy_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_url(url, &m->t, err, errlen) != 0) {
        free(m);
        return NULL;
    }
    if (open_session(m) != 0) {
        /* The library's text names user and host, never the password. */
        sy_errf(err, errlen, "MySQL: %s", m->err);
        sy_mysql_destroy(m);
        return NULL;
    }
    return m;
}

void sy_mysql_destroy(struct sy_mysql *m)
{
    if (!m)
        return;
    cache_clear(m);
    mysql_close(m->conn);
    target_free(&m->t);
    free(m);
}

const char *sy_mysql_error(const struct sy_mysql *m)
{
    return m ? m->err : "";
}

unsigned sy_mysql_errno(const struct sy_mysql *m)
{
    return m ? m->err_no : 0;
}

/* --- Results ---------------------------------------------------------------------------- */

static struct sy_mysql_res *res_new(int cols)
{
    struct sy_mysql_res *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cols = cols;
    if (cols > 0 && !(r->name_off = calloc((size_t)cols, sizeof *r->name_off))) {
        free(r);
        return NULL;
    }
    return r;
}

/* Appends n bytes and a NUL to the text block; the offset of the copy in *at. */
static int res_put(struct sy_mysql_res *r, const char *s, size_t n, size_t *at)
{
    if (n >= MY_RES_BYTES_MAX || r->len + n + 1 > MY_RES_BYTES_MAX)
        return -SY_ETOOBIG;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *grown = realloc(r->text, cap);
        if (!grown)
            return -SY_ENOMEM;
        r->text = grown;
        r->cap = cap;
    }
    if (n)
        memcpy(r->text + r->len, s, n);
    r->text[r->len + n] = '\0';
    *at = r->len;
    r->len += n + 1;
    return 0;
}

/* Makes room for one more row of offsets. */
static int res_add_row(struct sy_mysql_res *r)
{
    if (r->rows == INT_MAX)
        return -SY_ETOOBIG;
    if ((size_t)r->rows == r->rows_cap) {
        size_t cap = r->rows_cap ? r->rows_cap * 2 : 16;
        if (r->cols > 0 && cap > SIZE_MAX / sizeof *r->off / (size_t)r->cols)
            return -SY_ETOOBIG;
        size_t *grown = realloc(r->off, cap * (size_t)(r->cols > 0 ? r->cols : 1) * sizeof *grown);
        if (!grown)
            return -SY_ENOMEM;
        r->off = grown;
        r->rows_cap = cap;
    }
    r->rows++;
    return 0;
}

static int res_names(struct sy_mysql_res *r, MYSQL_FIELD *fields)
{
    for (int i = 0; i < r->cols; i++) {
        const char *name = fields[i].name ? fields[i].name : "";
        int rc = res_put(r, name, strlen(name), &r->name_off[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* --- Statements ------------------------------------------------------------------------- */

/* The cached statement for sql, prepared now when missing (evicting the least recently used).
 * NULL with the failure's code in *rc. */
static MYSQL_STMT *stmt_get(struct sy_mysql *m, const char *sql, int64_t started, int *rc)
{
    struct my_stmt *slot = NULL;
    for (size_t i = 0; i < MY_STMT_CACHE; i++) {
        struct my_stmt *e = &m->cache[i];
        if (e->sql && strcmp(e->sql, sql) == 0) {
            e->used = ++m->clock;
            return e->stmt;
        }
        if (!slot || !e->sql || (slot->sql && e->used < slot->used))
            slot = e;
    }
    MYSQL_STMT *st = mysql_stmt_init(m->conn);
    char *key = strdup(sql);
    if (!st || !key) {
        if (st)
            mysql_stmt_close(st);
        free(key);
        set_err(m, CR_OUT_OF_MEMORY, "out of memory");
        *rc = -SY_ENOMEM;
        return NULL;
    }
    my_bool on = 1;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
    if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
        *rc = fail_stmt(m, st, started);
        mysql_stmt_close(st);
        free(key);
        return NULL;
    }
    if (slot->sql) {
        mysql_stmt_close(slot->stmt);
        free(slot->sql);
    }
    *slot = (struct my_stmt){.sql = key, .stmt = st, .used = ++m->clock};
    return st;
}

/* Drops st from the cache and closes it. */
static void stmt_forget(struct sy_mysql *m, MYSQL_STMT *st)
{
    for (size_t i = 0; i < MY_STMT_CACHE; i++)
        if (m->cache[i].stmt == st) {
            mysql_stmt_close(st);
            free(m->cache[i].sql);
            m->cache[i] = (struct my_stmt){0};
            return;
        }
}

struct col_buf {
    char *buf;
    unsigned long cap, len;
    my_bool is_null, error;
};

static void bind_col(MYSQL_BIND *b, struct col_buf *c)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = c->buf;
    b->buffer_length = c->cap;
    b->length = &c->len;
    b->is_null = &c->is_null;
    b->error = &c->error;
}

/* Copies every row of an executed statement's stored result into r, as text: each column is
 * fetched as a string (the library formats numbers and DATETIME itself), and a value longer
 * than its buffer is fetched again whole with mysql_stmt_fetch_column. */
static int fetch_rows(struct sy_mysql *m, MYSQL_STMT *st, MYSQL_RES *meta, struct sy_mysql_res *r)
{
    int cols = r->cols, rc = 0;
    if (cols <= 0)
        return 0;
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    MYSQL_BIND *binds = calloc((unsigned)cols, sizeof *binds);
    struct col_buf *bufs = calloc((unsigned)cols, sizeof *bufs);
    if (!binds || !bufs) {
        rc = -SY_ENOMEM;
        goto out;
    }
    for (int i = 0; i < cols; i++) {
        unsigned long want = fields[i].max_length + 1;
        if (want < MY_CELL_FIRST)
            want = MY_CELL_FIRST;
        if (want > MY_CELL_FIRST_MAX)
            want = MY_CELL_FIRST_MAX;
        bufs[i].cap = want;
        if (!(bufs[i].buf = malloc(want))) {
            rc = -SY_ENOMEM;
            goto out;
        }
        bind_col(&binds[i], &bufs[i]);
    }
    if (mysql_stmt_bind_result(st, binds) != 0) {
        rc = fail_stmt(m, st, -1);
        goto out;
    }
    for (;;) {
        int f = mysql_stmt_fetch(st);
        if (f == MYSQL_NO_DATA)
            break;
        if (f == 1) {
            rc = fail_stmt(m, st, -1);
            goto out;
        }
        bool rebind = false;
        for (int i = 0; i < cols; i++) {
            struct col_buf *c = &bufs[i];
            if (c->is_null || c->len < c->cap)
                continue;
            /* Cut short: grow this column's buffer for this row and the next ones. */
            if (c->len >= MY_RES_BYTES_MAX) {
                rc = -SY_ETOOBIG;
                goto out;
            }
            char *grown = realloc(c->buf, c->len + 1);
            if (!grown) {
                rc = -SY_ENOMEM;
                goto out;
            }
            c->buf = grown;
            c->cap = c->len + 1;
            bind_col(&binds[i], c);
            if (mysql_stmt_fetch_column(st, &binds[i], (unsigned)i, 0) != 0) {
                rc = fail_stmt(m, st, -1);
                goto out;
            }
            rebind = true;
        }
        if (rebind && mysql_stmt_bind_result(st, binds) != 0) {
            rc = fail_stmt(m, st, -1);
            goto out;
        }
        if ((rc = res_add_row(r)) != 0)
            goto out;
        size_t *row = r->off + (size_t)(r->rows - 1) * (size_t)cols;
        for (int i = 0; i < cols; i++) {
            if (bufs[i].is_null) {
                row[i] = SIZE_MAX;
                continue;
            }
            if ((rc = res_put(r, bufs[i].buf, bufs[i].len, &row[i])) != 0)
                goto out;
        }
    }
out:
    if (rc == -SY_ENOMEM)
        set_err(m, CR_OUT_OF_MEMORY, "out of memory");
    else if (rc == -SY_ETOOBIG)
        set_err(m, 0, "the result is larger than %u bytes", MY_RES_BYTES_MAX);
    for (int i = 0; bufs && i < cols; i++)
        free(bufs[i].buf);
    free(bufs);
    free(binds);
    return rc;
}

/* One attempt of a prepared statement. */
static int run_prepared(struct sy_mysql *m, const char *sql, int nparams, const char *const *params,
                        struct sy_mysql_res **out)
{
    int64_t started = sy_mono_ms();
    int rc = 0;
    MYSQL_STMT *st = stmt_get(m, sql, started, &rc);
    if (!st)
        return rc;
    MYSQL_BIND *binds = NULL;
    unsigned long *lens = NULL;
    my_bool *nulls = NULL;
    MYSQL_RES *meta = NULL;
    struct sy_mysql_res *r = NULL;
    bool stored = false;

    unsigned long want = mysql_stmt_param_count(st);
    if (want != (unsigned long)nparams) {
        set_err(m, 0, "the statement has %lu placeholders, %d parameters given", want, nparams);
        return -SY_EINVAL;
    }
    if (nparams > 0) {
        binds = calloc((size_t)nparams, sizeof *binds);
        lens = calloc((size_t)nparams, sizeof *lens);
        nulls = calloc((size_t)nparams, sizeof *nulls);
        if (!binds || !lens || !nulls) {
            set_err(m, CR_OUT_OF_MEMORY, "out of memory");
            rc = -SY_ENOMEM;
            goto out;
        }
        for (int i = 0; i < nparams; i++) {
            binds[i].buffer_type = MYSQL_TYPE_STRING;
            if (params[i]) {
                lens[i] = (unsigned long)strlen(params[i]);
                binds[i].buffer = (void *)params[i];
                binds[i].buffer_length = lens[i];
            } else {
                nulls[i] = 1;
            }
            binds[i].length = &lens[i];
            binds[i].is_null = &nulls[i];
        }
        if (mysql_stmt_bind_param(st, binds) != 0) {
            rc = fail_stmt(m, st, started);
            goto out;
        }
    }
    if (mysql_stmt_execute(st) != 0) {
        rc = fail_stmt(m, st, started);
        goto out;
    }
    meta = mysql_stmt_result_metadata(st);
    if (!meta && mysql_stmt_errno(st) != 0) {
        rc = fail_stmt(m, st, started);
        goto out;
    }
    if (meta) {
        if (mysql_stmt_store_result(st) != 0) {
            rc = fail_stmt(m, st, started);
            goto out;
        }
        stored = true;
        /* Read again after storing: only now does it carry each column's max_length. */
        mysql_free_result(meta);
        meta = mysql_stmt_result_metadata(st);
        if (!meta) {
            rc = fail_stmt(m, st, started);
            goto out;
        }
    }
    if (!out)
        goto out;
    r = res_new(meta ? (int)mysql_num_fields(meta) : 0);
    if (!r) {
        set_err(m, CR_OUT_OF_MEMORY, "out of memory");
        rc = -SY_ENOMEM;
        goto out;
    }
    my_ulonglong affected = mysql_stmt_affected_rows(st);
    r->affected = affected == (my_ulonglong)-1 ? 0 : (long long)affected;
    if (meta) {
        rc = res_names(r, mysql_fetch_fields(meta));
        if (rc) {
            set_err(m, 0, "%s", rc == -SY_ENOMEM ? "out of memory" : "result too large");
            goto out;
        }
        rc = fetch_rows(m, st, meta, r);
    }
out:
    if (meta)
        mysql_free_result(meta);
    if (stored)
        mysql_stmt_free_result(st);
    free(binds);
    free(lens);
    free(nulls);
    if (rc == 0 && out) {
        *out = r;
        r = NULL;
    }
    sy_mysql_res_free(r);
    /* The server's refusals (a duplicate key) leave the prepared statement fine, and it
     * re-prepares by itself when a table changes under it. After a client-side failure the
     * handle's state is unknown: prepare afresh next time. On a dead session the whole cache
     * goes at the reconnect. */
    if (rc && !m->dead && m->err_no >= CR_MIN_ERROR)
        stmt_forget(m, st);
    return rc;
}

/* One attempt of a statement without parameters or results over the text protocol: the
 * transaction statements, which need no preparing. */
static int run_text(struct sy_mysql *m, const char *sql)
{
    int64_t started = sy_mono_ms();
    if (mysql_real_query(m->conn, sql, strlen(sql)) != 0)
        return fail_conn(m, started);
    MYSQL_RES *res = mysql_store_result(m->conn);
    if (res)
        mysql_free_result(res);
    else if (mysql_errno(m->conn) != 0)
        return fail_conn(m, started);
    return 0;
}

/* Inside sy_mysql_begin's transaction, or one the caller opened with a statement of its own
 * (the server's status flag). A dead session's flag is stale: its transaction is gone. */
static bool inside_tx(const struct sy_mysql *m)
{
    unsigned status = 0;
    if (m->in_tx)
        return true;
    if (m->conn && !m->dead &&
        mariadb_get_infov(m->conn, MARIADB_CONNECTION_SERVER_STATUS, &status) == 0)
        return (status & SERVER_STATUS_IN_TRANS) != 0;
    return false;
}

/* The one path every statement takes. params NULL with nparams < 0 means the text protocol
 * (run_text). */
static int run(struct sy_mysql *m, const char *sql, int nparams, const char *const *params,
               struct sy_mysql_res **out)
{
    m->err_no = 0;
    m->err[0] = '\0';
    if (m->tx_lost) {
        set_err(m, 0, "the transaction was lost with the connection; roll it back");
        return -SY_ECONN;
    }
    bool in_tx = inside_tx(m);
    bool reconnected = false;
    if (m->dead || !m->conn) {
        /* Lost earlier: nothing was sent yet, so a new session may run the statement,
         * unless a transaction died with the old one. */
        if (in_tx) {
            m->tx_lost = m->in_tx;
            set_err(m, CR_SERVER_GONE_ERROR, "connection lost inside a transaction");
            return -SY_ECONN;
        }
        int rc = reconnect(m);
        if (rc)
            return rc;
        reconnected = true;
    }
    for (;;) {
        int rc = nparams < 0 ? run_text(m, sql) : run_prepared(m, sql, nparams, params, out);
        if (rc == 0)
            return 0;
        log_failure(m, rc);
        if (!m->dead)
            return rc;
        if (in_tx) {
            m->tx_lost = m->in_tx;
            return rc;
        }
        /* Outside a transaction the statement either committed alone or not at all; the
         * runtime's handlers are idempotent, so running it again is the lesser risk. Not
         * after a timeout: the server may still be running the first one. */
        if (rc != -SY_ECONN || reconnected || reconnect(m) != 0)
            return rc;
        reconnected = true;
    }
}

int sy_mysql_exec(struct sy_mysql *m, const char *sql, int nparams, const char *const *params,
                  struct sy_mysql_res **res)
{
    if (res)
        *res = NULL;
    if (!m || !sql || nparams < 0 || nparams > MY_PARAMS_MAX || (nparams > 0 && !params))
        return -SY_EINVAL;
    if (!*sql) {
        set_err(m, 0, "empty statement");
        return -SY_EINVAL;
    }
    return run(m, sql, nparams, params, res);
}

int sy_mysql_begin(struct sy_mysql *m)
{
    if (!m)
        return -SY_EINVAL;
    if (m->in_tx || m->tx_lost) {
        set_err(m, 0, "a transaction is already open");
        return -SY_EINVAL;
    }
    int rc = run(m, "START TRANSACTION", -1, NULL, NULL);
    if (rc == 0)
        m->in_tx = true;
    return rc;
}

int sy_mysql_commit(struct sy_mysql *m)
{
    if (!m)
        return -SY_EINVAL;
    if (m->tx_lost) {
        m->tx_lost = m->in_tx = false;
        set_err(m, CR_SERVER_GONE_ERROR, "the transaction was lost with the connection");
        return -SY_ECONN;
    }
    int rc = run(m, "COMMIT", -1, NULL, NULL);
    m->in_tx = m->tx_lost = false;
    return rc;
}

int sy_mysql_rollback(struct sy_mysql *m)
{
    if (!m)
        return -SY_EINVAL;
    if (m->tx_lost) {
        /* The server rolled back when the session died: nothing left to undo. */
        m->tx_lost = m->in_tx = false;
        return 0;
    }
    int rc = run(m, "ROLLBACK", -1, NULL, NULL);
    m->in_tx = m->tx_lost = false;
    /* A session lost here takes the transaction with it: the outcome asked for holds. */
    return rc == -SY_ECONN || rc == -SY_ETIMEOUT ? 0 : rc;
}

int sy_mysql_ping(struct sy_mysql *m)
{
    if (!m)
        return -SY_EINVAL;
    if (m->tx_lost) {
        set_err(m, 0, "the transaction was lost with the connection; roll it back");
        return -SY_ECONN;
    }
    if (m->dead || !m->conn) {
        if (inside_tx(m)) {
            m->tx_lost = m->in_tx;
            return -SY_ECONN;
        }
        return reconnect(m);
    }
    if (mysql_ping(m->conn) != 0) {
        int rc = fail_conn(m, sy_mono_ms());
        if (m->dead && m->in_tx)
            m->tx_lost = true;
        return rc;
    }
    return 0;
}

/* --- Result access ---------------------------------------------------------------------- */

int sy_mysql_res_rows(const struct sy_mysql_res *res)
{
    return res ? res->rows : 0;
}

int sy_mysql_res_cols(const struct sy_mysql_res *res)
{
    return res ? res->cols : 0;
}

const char *sy_mysql_res_get(const struct sy_mysql_res *res, int row, int col)
{
    if (!res || row < 0 || col < 0 || row >= res->rows || col >= res->cols)
        return NULL;
    size_t at = res->off[(size_t)row * (size_t)res->cols + (size_t)col];
    return at == SIZE_MAX ? NULL : res->text + at;
}

const char *sy_mysql_res_name(const struct sy_mysql_res *res, int col)
{
    if (!res || col < 0 || col >= res->cols)
        return NULL;
    return res->text + res->name_off[col];
}

long long sy_mysql_res_affected(const struct sy_mysql_res *res)
{
    return res ? res->affected : 0;
}

void sy_mysql_res_free(struct sy_mysql_res *res)
{
    if (!res)
        return;
    free(res->off);
    free(res->name_off);
    free(res->text);
    free(res);
}

/* --- Identifiers ------------------------------------------------------------------------ */

int sy_mysql_quote_ident(const char *name, char *out, size_t outlen)
{
    if (!name || !*name)
        return -SY_EINVAL;
    size_t n = strnlen(name, MY_IDENT_MAX + 1);
    if (n > MY_IDENT_MAX)
        return -SY_EINVAL;
    size_t need = 2 + 1; /* the backticks and the NUL */
    for (size_t i = 0; i < n; i++)
        need += name[i] == '`' ? 2 : 1;
    if (!out || outlen < need)
        return -SY_ETOOBIG;
    size_t j = 0;
    out[j++] = '`';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '`')
            out[j++] = '`';
        out[j++] = name[i];
    }
    out[j++] = '`';
    out[j] = '\0';
    return 0;
}
