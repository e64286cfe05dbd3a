/* redis.c - one Redis connection (hiredis 0.14 blocking API) with URL parsing, AUTH/SELECT,
 * error translation and a single reconnect when the connection was lost; and the plain key
 * commands built on it (set if absent, delete). */
#include "redis_int.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "sy/err.h"
#include "sy/log.h"
#include "text_int.h"

#define REDIS_DEFAULT_PORT 6379
#define REDIS_HOST_MAX     255
#define REDIS_CRED_MAX     512
#define REDIS_DB_MAX       100000
#define REDIS_KEY_MAX      1000
#define REDIS_VALUE_MAX    (64 * 1024)

/* KEYS: key. ARGV: value, ttl ms. 1 when set, or when key already holds this very value (the
 * resend of a command whose first run went through, see redis.h); 0 otherwise. */
static const char set_nx_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  return 1\n"
    "end\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

struct sy_redis {
    redisContext *ctx; /* NULL while disconnected: the next command reconnects */
    char host[REDIS_HOST_MAX + 1];
    int port;
    int db;
    char *user;     /* NULL unless the URL names one (Redis 6 ACL) */
    char *password; /* NULL when the URL has none */
    struct timeval timeout;
};

/* Percent-decodes [s, s+len) into a new string, so passwords may carry ':' or '@'. */
static char *url_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = i + 2 < len ? sy__hexval(s[i + 1]) : -1;
        int lo = i + 2 < len ? sy__hexval(s[i + 2]) : -1;
        if (s[i] == '%' && hi >= 0 && lo >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* redis://[[user]:password@]host[:port][/db]. Fills r's address and credentials. */
static int parse_url(struct sy_redis *r, const char *url, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    if (!url || strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, errlen, "redis URL must start with %s", scheme);
        return -SY_EINVAL;
    }
    const char *p = url + sizeof scheme - 1;
    const char *end = p + strcspn(p, "/?#");
    if (*end == '?' || *end == '#') {
        snprintf(err, errlen, "redis URL: query and fragment are not supported");
        return -SY_EINVAL;
    }

    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        if ((size_t)(at - p) > REDIS_CRED_MAX) {
            snprintf(err, errlen, "redis URL: credentials longer than %d bytes", REDIS_CRED_MAX);
            return -SY_EINVAL;
        }
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p; /* "redis://secret@h" is a bare password too */
        if (colon && colon > p) {
            r->user = url_decode(p, (size_t)(colon - p));
            if (!r->user)
                return -SY_ENOMEM;
        }
        if (at > pw) {
            r->password = url_decode(pw, (size_t)(at - pw));
            if (!r->password)
                return -SY_ENOMEM;
            /* Registered before anything else can fail and log the URL; the encoded form
             * too, as it appears in the URL itself. */
            sy_log_add_secret(r->password);
            char enc[REDIS_CRED_MAX + 1];
            snprintf(enc, sizeof enc, "%.*s", (int)(at - pw), pw);
            if (strcmp(enc, r->password) != 0)
                sy_log_add_secret(enc);
        }
        p = at + 1;
    }

    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end) {
            snprintf(err, errlen, "redis URL: unterminated [ in host");
            return -SY_EINVAL;
        }
        p = host_end + 1;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (!host_end)
            host_end = end;
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen > REDIS_HOST_MAX) {
        snprintf(err, errlen, "redis URL: host missing or longer than %d bytes", REDIS_HOST_MAX);
        return -SY_EINVAL;
    }
    memcpy(r->host, host, hlen);
    r->host[hlen] = '\0';

    r->port = REDIS_DEFAULT_PORT;
    if (p < end && *p == ':') {
        long port = 0;
        const char *q = p + 1;
        if (q == end)
            port = -1;
        for (; q < end && port >= 0; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                port = -1;
            else
                port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535) {
            snprintf(err, errlen, "redis URL: port must be 1..65535");
            return -SY_EINVAL;
        }
        r->port = (int)port;
    } else if (p != end) {
        snprintf(err, errlen, "redis URL: unexpected text after host");
        return -SY_EINVAL;
    }

    r->db = 0;
    if (*end == '/' && end[1] != '\0') {
        long db = 0;
        for (const char *q = end + 1; *q && db >= 0; q++) {
            if (*q < '0' || *q > '9' || db > REDIS_DB_MAX)
                db = -1;
            else
                db = db * 10 + (*q - '0');
        }
        if (db < 0 || db > REDIS_DB_MAX) {
            snprintf(err, errlen, "redis URL: database must be a number from 0 to %d",
                     REDIS_DB_MAX);
            return -SY_EINVAL;
        }
        r->db = (int)db;
    }
    return 0;
}

static bool is_timeout_errno(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || e == EINPROGRESS;
}

/* Translates a failed context (reply NULL); `saved_errno` is errno right after the call,
 * because hiredis reports a socket timeout as REDIS_ERR_IO with EAGAIN. */
static int ctx_error(const redisContext *c, int saved_errno)
{
    switch (c->err) {
    case REDIS_ERR_IO:
        return is_timeout_errno(saved_errno) ? -SY_ETIMEOUT : -SY_ECONN;
    case REDIS_ERR_EOF:
        return -SY_ECONN;
    case REDIS_ERR_OOM:
        return -SY_ENOMEM;
    case REDIS_ERR_PROTOCOL:
        return -SY_EPROTO;
    default:
        /* REDIS_ERR_OTHER covers name resolution and connect failures. */
        return strstr(c->errstr, "timed out") ? -SY_ETIMEOUT : -SY_ECONN;
    }
}

/* Error replies that mean "this server cannot serve you right now" rather than "your command
 * is wrong": a failover, a restart still loading, a busy script. */
static bool transient_reply(const char *msg)
{
    static const char *const prefixes[] = {"LOADING",  "BUSY",        "READONLY",   "MASTERDOWN",
                                           "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", NULL};
    for (size_t i = 0; prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(msg, prefixes[i], n) == 0 && (msg[n] == ' ' || msg[n] == '\0'))
            return true;
    }
    return false;
}

/* Sends one command on a fresh context during connect; no reconnect here. */
static int setup_cmd(redisContext *c, char *err, size_t errlen, const char *what, redisReply *reply)
{
    if (!reply) {
        int rc = ctx_error(c, errno);
        snprintf(err, errlen, "%s: %s", what, c->errstr);
        return rc;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s refused: %.*s", what, (int)reply->len, reply->str);
        rc = -SY_ECONN;
    }
    freeReplyObject(reply);
    return rc;
}

/* Opens r->ctx: connect, command timeout, AUTH, SELECT. Error text names host:port, never the
 * credentials. */
static int redis_open(struct sy_redis *r, char *err, size_t errlen)
{
    char what[REDIS_HOST_MAX + 64];
    redisContext *c = redisConnectWithTimeout(r->host, r->port, r->timeout);
    if (!c) {
        snprintf(err, errlen, "redis %s:%d: out of memory", r->host, r->port);
        return -SY_ENOMEM;
    }
    int rc = 0;
    if (c->err) {
        rc = ctx_error(c, errno);
        snprintf(err, errlen, "redis %s:%d: %s", r->host, r->port, c->errstr);
        goto out;
    }
    if (redisSetTimeout(c, r->timeout) != REDIS_OK) {
        rc = -SY_ECONN;
        snprintf(err, errlen, "redis %s:%d: cannot set timeout: %s", r->host, r->port, c->errstr);
        goto out;
    }
    if (r->password) {
        snprintf(what, sizeof what, "redis %s:%d AUTH", r->host, r->port);
        redisReply *reply = r->user ? redisCommand(c, "AUTH %s %s", r->user, r->password)
                                    : redisCommand(c, "AUTH %s", r->password);
        rc = setup_cmd(c, err, errlen, what, reply);
        if (rc)
            goto out;
    }
    if (r->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        snprintf(what, sizeof what, "redis %s:%d SELECT %d", r->host, r->port, r->db);
        rc = setup_cmd(c, err, errlen, what, redisCommand(c, "SELECT %s", db));
        if (rc)
            goto out;
    }
out:
    if (rc) {
        redisFree(c);
        return rc;
    }
    r->ctx = c;
    return 0;
}

static void redis_close(struct sy_redis *r)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}

struct sy_redis *sy_redis_connect(const char *url, int timeout_ms, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (timeout_ms <= 0 || timeout_ms > 3600 * 1000) {
        snprintf(err, errlen, "redis timeout must be 1 ms to 1 h");
        return NULL;
    }
    struct sy_redis *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->timeout.tv_sec = timeout_ms / 1000;
    r->timeout.tv_usec = (timeout_ms % 1000) * 1000;
    int rc = parse_url(r, url, err, errlen);
    if (rc == -SY_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc == 0)
        rc = redis_open(r, err, errlen);
    if (rc) {
        sy_redis_destroy(r);
        return NULL;
    }
    return r;
}

void sy_redis_destroy(struct sy_redis *r)
{
    if (!r)
        return;
    redis_close(r);
    free(r->user);
    free(r->password);
    free(r);
}

int sy_redis_fd(const struct sy_redis *r)
{
    return r && r->ctx ? r->ctx->fd : -1;
}

static int reconnect(struct sy_redis *r)
{
    char err[256];
    redis_close(r);
    int rc = redis_open(r, err, sizeof err);
    if (rc)
        sy_log_write(SY_LOG_WARN, "redis.reconnect", -1, err, "reconnect to %s:%d failed", r->host,
                     r->port);
    else
        sy_log_info("redis.reconnect", "reconnected to %s:%d", r->host, r->port);
    return rc;
}

int sy_redis_cmd(struct sy_redis *r, redisReply **out, const char *fmt, ...)
{
    *out = NULL;
    /* One reconnect per command: either a context already known to be broken (a previous
     * timeout or loss) or one lost during this call. Commands sent twice this way are the
     * idempotent scripts of lock.c and
     * sy_redis_set_nx, DEL, or plain reads. */
    bool reconnected = false;
    int rc;
    if (!r->ctx) {
        rc = reconnect(r);
        if (rc)
            return rc;
        reconnected = true;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        redisReply *reply = redisvCommand(r->ctx, fmt, ap);
        int saved_errno = errno;
        va_end(ap);
        if (reply) {
            if (reply->type != REDIS_REPLY_ERROR) {
                *out = reply;
                return 0;
            }
            rc = transient_reply(reply->str) ? -SY_ECONN : -SY_EPROTO;
            sy_log_write(SY_LOG_WARN, "redis.error", -1, reply->str,
                         "redis %s:%d refused a command", r->host, r->port);
            freeReplyObject(reply);
            return rc;
        }
        rc = ctx_error(r->ctx, saved_errno);
        sy_log_write(SY_LOG_WARN, "redis.error", -1, r->ctx->errstr, "redis %s:%d: %s", r->host,
                     r->port, sy_strerror(rc));
        /* hiredis leaves a failed context unusable: drop it so the next call reconnects. */
        redis_close(r);
        if (rc != -SY_ECONN || reconnected)
            return rc;
        rc = reconnect(r);
        if (rc)
            return rc;
        reconnected = true;
    }
}

#define PIPELINE_MAX 100000

int sy_redis_pipeline(struct sy_redis *r, size_t n, const int *argc, const char *const *argv,
                      const size_t *argvlen, size_t *errors)
{
    size_t off = 0, bad = 0;
    int rc;

    if (errors)
        *errors = 0;
    if (!r || n > PIPELINE_MAX || (n && (!argc || !argv || !argvlen)))
        return -SY_EINVAL;
    if (n == 0)
        return 0;
    if (!r->ctx && (rc = reconnect(r)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (argc[i] < 1 || redisAppendCommandArgv(r->ctx, argc[i], (const char **)argv + off,
                                                  argvlen + off) != REDIS_OK) {
            redis_close(r); /* half a pipeline may be buffered: start clean next time */
            return argc[i] < 1 ? -SY_EINVAL : -SY_ENOMEM;
        }
        off += (size_t)argc[i];
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *reply = NULL;

        if (redisGetReply(r->ctx, (void **)&reply) != REDIS_OK) {
            rc = ctx_error(r->ctx, errno);
            sy_log_write(SY_LOG_WARN, "redis.error", -1, r->ctx->errstr, "redis %s:%d: %s", r->host,
                         r->port, sy_strerror(rc));
            redis_close(r);
            return rc;
        }
        if (reply->type == REDIS_REPLY_ERROR && bad++ == 0)
            sy_log_write(SY_LOG_WARN, "redis.error", -1, reply->str,
                         "redis %s:%d refused a pipelined command", r->host, r->port);
        freeReplyObject(reply);
    }
    if (errors)
        *errors = bad;
    return bad ? -SY_EPROTO : 0;
}

int sy_redis_script_load(struct sy_redis *r, const char *script, char sha[41])
{
    redisReply *reply;
    int rc;

    if (!r || !script)
        return -SY_EINVAL;
    if ((rc = sy_redis_cmd(r, &reply, "SCRIPT LOAD %s", script)) != 0)
        return rc;
    rc = reply->type == REDIS_REPLY_STRING && reply->len == 40 ? 0 : -SY_EPROTO;
    if (rc == 0)
        memcpy(sha, reply->str, 41);
    freeReplyObject(reply);
    return rc;
}

int sy_redis_ping(struct sy_redis *r)
{
    if (!r)
        return -SY_EINVAL;
    redisReply *reply;
    int rc = sy_redis_cmd(r, &reply, "PING");
    if (rc)
        return -SY_ECONN;
    bool pong = reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
    freeReplyObject(reply);
    return pong ? 0 : -SY_ECONN;
}

static bool valid_key(const char *key)
{
    return key && key[0] && strnlen(key, REDIS_KEY_MAX + 1) <= REDIS_KEY_MAX;
}

int sy_redis_set_nx(struct sy_redis *r, const char *key, const char *value, int ttl_ms)
{
    if (!r || !valid_key(key) || !value || strnlen(value, REDIS_VALUE_MAX + 1) > REDIS_VALUE_MAX ||
        ttl_ms <= 0)
        return -SY_EINVAL;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    redisReply *reply = NULL;
    int rc = sy_redis_cmd(r, &reply, "EVAL %s 1 %s %s %s", set_nx_lua, key, value, ttl);
    if (rc)
        return rc;
    if (reply->type == REDIS_REPLY_INTEGER && (reply->integer == 0 || reply->integer == 1))
        rc = (int)reply->integer;
    else
        rc = -SY_EPROTO;
    freeReplyObject(reply);
    return rc;
}

int sy_redis_del(struct sy_redis *r, const char *key)
{
    if (!r || !valid_key(key))
        return -SY_EINVAL;
    redisReply *reply = NULL;
    int rc = sy_redis_cmd(r, &reply, "DEL %s", key);
    if (rc)
        return rc;
    rc = reply->type == REDIS_REPLY_INTEGER ? 0 : -SY_EPROTO;
    freeReplyObject(reply);
    return rc;
}
