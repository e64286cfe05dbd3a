/* log.c - JSON lines on stderr, redacted, one write per line, no allocation per line. */
#include "sy/log.h"

#include "sy/err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX    (16 * 1024) /* one line, and each stage of building it */
#define LOG_FIELD_MAX   256         /* worker, instance, event, msg_id, type (escaped bytes) */
#define LOG_ERROR_MAX   4096        /* error text kept before redaction */
#define LOG_SECRETS_MAX 64
#define LOG_SECRET_MIN  4
#define LOG_SECRET_CAP  (64 * 1024) /* longer secrets are kept as a prefix: still redacted */

static const char REDACTED[] = "[redacted]";

/* Process-wide fields, set once at start before threads log. */
static char g_worker[128] = "-";
static char g_instance[128] = "-";
static atomic_int g_level = SY_LOG_INFO;

/* The message this thread is handling; borrowed from the caller. */
static _Thread_local const char *tl_msg_id;
static _Thread_local const char *tl_type;

/* Secrets are only ever added: a writer fills the next slot under the mutex, then publishes
 * the count with release order, so readers scan slots [0, count) without taking a lock. */
static pthread_mutex_t g_secret_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *g_secrets[LOG_SECRETS_MAX];
static size_t g_secret_lens[LOG_SECRETS_MAX];
static atomic_size_t g_nsecrets;
static atomic_bool g_secrets_full_warned;

/* Serialises the write of each line: a write to a pipe above PIPE_BUF is not atomic. */
static pthread_mutex_t g_write_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sy_log_init(const char *worker, const char *instance, enum sy_log_level level)
{
    snprintf(g_worker, sizeof(g_worker), "%s", worker && *worker ? worker : "-");
    snprintf(g_instance, sizeof(g_instance), "%s", instance && *instance ? instance : "-");
    if ((int)level < SY_LOG_DEBUG || (int)level > SY_LOG_ERROR)
        level = SY_LOG_INFO;
    atomic_store(&g_level, (int)level);
}

int sy_log_level_parse(const char *s, enum sy_log_level *out)
{
    if (!s)
        return -SY_EINVAL;
    for (int i = SY_LOG_DEBUG; i <= SY_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum sy_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = SY_LOG_WARN;
        return 0;
    }
    return -SY_EINVAL;
}

void sy_log_add_secret(const char *secret)
{
    size_t n, len;
    char *copy = NULL;
    bool full = false;

    if (!secret)
        return;
    len = strnlen(secret, LOG_SECRET_CAP);
    if (len < LOG_SECRET_MIN)
        return;
    pthread_mutex_lock(&g_secret_mu);
    n = atomic_load_explicit(&g_nsecrets, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        if (g_secret_lens[i] == len && memcmp(g_secrets[i], secret, len) == 0)
            goto out;
    }
    if (n == LOG_SECRETS_MAX) {
        full = true;
        goto out;
    }
    copy = strndup(secret, len);
    if (!copy)
        goto out;
    g_secrets[n] = copy;
    g_secret_lens[n] = len;
    atomic_store_explicit(&g_nsecrets, n + 1, memory_order_release);

out:
    pthread_mutex_unlock(&g_secret_mu);
    if (full && !atomic_exchange(&g_secrets_full_warned, true))
        sy_log_warn("log.secrets_full",
                    "more than %d secrets registered: later ones are not "
                    "redacted by value",
                    LOG_SECRETS_MAX);
}

void sy_log_set_msg(const char *msg_id, const char *type)
{
    tl_msg_id = msg_id;
    tl_type = type;
}

/* --- bounded output ------------------------------------------------------------------- */

struct obuf {
    char *p;
    size_t len;
    size_t cap; /* bytes usable, the terminating NUL not included */
};

static bool put(struct obuf *o, const char *s, size_t n)
{
    bool fits = n <= o->cap - o->len;

    if (!fits)
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return fits;
}

/* --- redaction ------------------------------------------------------------------------ */

/* Pass 1: every registered secret. A secret cut by the end of the text (a truncated line)
 * still counts from LOG_SECRET_MIN bytes on, so no line ends with the start of one. */
static void redact_secrets(const char *in, struct obuf *o)
{
    size_t n = atomic_load_explicit(&g_nsecrets, memory_order_acquire);
    size_t inlen = strlen(in), i = 0;

    while (i < inlen) {
        size_t best = 0, left = inlen - i;

        for (size_t s = 0; s < n; s++) {
            size_t l = g_secret_lens[s];

            if (g_secrets[s][0] != in[i])
                continue;
            if (l <= left && l > best && memcmp(in + i, g_secrets[s], l) == 0)
                best = l;
            else if (l > left && left >= LOG_SECRET_MIN && left > best &&
                     memcmp(in + i, g_secrets[s], left) == 0)
                best = left;
        }
        if (best) {
            put(o, REDACTED, sizeof(REDACTED) - 1);
            i += best;
        } else {
            put(o, in + i, 1);
            i++;
        }
    }
}

/* Pass 2: scheme://user:password@host keeps everything but the password. The authority ends
 * where a URL's would (/ ? #) or where the text around it does (space, quote, angle bracket);
 * its last @ ends the user information. */
static void redact_urls(const char *in, struct obuf *o)
{
    size_t i = 0, inlen = strlen(in);

    while (i < inlen) {
        const char *auth, *at = NULL, *colon = NULL;
        size_t end;

        if (strncmp(in + i, "://", 3) != 0) {
            put(o, in + i, 1);
            i++;
            continue;
        }
        put(o, "://", 3);
        i += 3;
        auth = in + i;
        end = strcspn(auth, "/?#\"'<> \t\r\n");
        for (size_t k = 0; k < end; k++) {
            if (auth[k] == '@')
                at = auth + k;
        }
        if (at)
            colon = memchr(auth, ':', (size_t)(at - auth));
        if (!colon)
            continue;
        put(o, auth, (size_t)(colon - auth) + 1);
        put(o, REDACTED, sizeof(REDACTED) - 1);
        i += (size_t)(at - auth);
    }
}

/* "authorization" stays last: it is the one whose value may start with a scheme. */
static const char *const secret_keys[] = {"password", "passwd", "pwd",     "secret",       "token",
                                          "api_key",  "apikey", "api-key", "authorization"};

/* Authorization schemes kept in view: "Authorization: Bearer [redacted]". */
static const char *const auth_schemes[] = {"basic", "bearer", "digest", "negotiate",
                                           "ntlm",  "token",  "apikey", "api-key"};

static bool value_end(char c)
{
    return c == '\0' || c == '&' || c == ',' || c == '"' || c == '\'' || isspace((unsigned char)c);
}

/* If `s` starts with a secret key and its separator, returns the length up to the value (with
 * any opening quote) and sets *quote to that quote (or 0), else 0. */
static size_t match_key(const char *s, char *quote, bool *is_auth)
{
    for (size_t k = 0; k < sizeof(secret_keys) / sizeof(secret_keys[0]); k++) {
        size_t kl = strlen(secret_keys[k]), p = kl;

        if (strncasecmp(s, secret_keys[k], kl) != 0)
            continue;
        if (s[p] == '"' || s[p] == '\'')
            p++; /* the closing quote of a JSON or quoted key */
        while (s[p] == ' ' || s[p] == '\t')
            p++;
        if (s[p] != '=' && s[p] != ':')
            continue;
        p++;
        while (s[p] == ' ' || s[p] == '\t')
            p++;
        *quote = 0;
        if (s[p] == '"' || s[p] == '\'')
            *quote = s[p++];
        *is_auth = k == sizeof(secret_keys) / sizeof(secret_keys[0]) - 1;
        return p;
    }
    return 0;
}

/* Pass 3: "password=...", "token: ...", "\"api_key\":\"...\"" and the like. */
static void redact_keys(const char *in, struct obuf *o)
{
    size_t i = 0;

    while (in[i]) {
        char quote = 0;
        bool is_auth = false;
        size_t p = match_key(in + i, &quote, &is_auth), v;

        if (p == 0) {
            put(o, in + i, 1);
            i++;
            continue;
        }
        put(o, in + i, p);
        i += p;
        if (quote) {
            /* Quoted: the value runs to the closing quote, spaces included. */
            for (v = 0; in[i + v] && in[i + v] != quote; v++) {
                if (in[i + v] == '\\' && in[i + v + 1])
                    v++;
            }
        } else {
            if (is_auth) {
                size_t w = strcspn(in + i, " \t\r\n");

                for (size_t a = 0; a < sizeof(auth_schemes) / sizeof(auth_schemes[0]); a++) {
                    if (w == strlen(auth_schemes[a]) && in[i + w] == ' ' &&
                        strncasecmp(in + i, auth_schemes[a], w) == 0) {
                        put(o, in + i, w + 1);
                        i += w + 1;
                        break;
                    }
                }
            }
            for (v = 0; !value_end(in[i + v]); v++)
                ;
        }
        if (v > 0) {
            put(o, REDACTED, sizeof(REDACTED) - 1);
            i += v;
        }
    }
}

/* Redacts `a` into `b`, both of `sz` bytes; `a` is used as scratch and lost. */
static void redact_in_place(char *a, char *b, size_t sz)
{
    struct obuf o = {b, 0, sz - 1};

    redact_secrets(a, &o);
    b[o.len] = '\0';
    o = (struct obuf){a, 0, sz - 1};
    redact_urls(b, &o);
    a[o.len] = '\0';
    o = (struct obuf){b, 0, sz - 1};
    redact_keys(a, &o);
    b[o.len] = '\0';
}

void sy_log_redact(const char *in, char *out, size_t outsz)
{
    char tmp[LOG_LINE_MAX];
    size_t sz;

    if (!out || outsz == 0)
        return;
    sz = outsz < sizeof(tmp) ? outsz : sizeof(tmp);
    snprintf(tmp, sz, "%s", in ? in : "");
    redact_in_place(tmp, out, sz);
}

/* --- JSON ----------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (s is NUL-terminated), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        need = 1;
    } else if (c < 0xF0) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c < 0xF5) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    }
    return need + 1;
}

/* Appends s as the inside of a JSON string, at most `max` bytes of output, whole escapes only.
 * Control characters become \u00XX; bytes that are not UTF-8 become U+FFFD. */
static void json_escape(struct obuf *o, const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t limit = o->len + max < o->cap ? o->len + max : o->cap;

    while (*u) {
        char esc[8];
        const char *w = esc;
        size_t n, adv;

        if (*u == '"' || *u == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*u;
            n = 2;
            adv = 1;
        } else if (*u < 0x20 || *u == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", *u);
            n = 6;
            adv = 1;
        } else if ((adv = utf8_seq(u)) == 0) {
            w = "\xEF\xBF\xBD";
            n = 3;
            adv = 1;
        } else {
            w = (const char *)u;
            n = adv;
        }
        if (n > limit - o->len)
            break;
        put(o, w, n);
        u += adv;
    }
}

/* ,"name":"value" with the value escaped into at most max bytes; room for the closing quote
 * is kept back from the value. */
static void json_field(struct obuf *o, const char *name, const char *value, size_t max)
{
    char head[32];
    int n = snprintf(head, sizeof(head), ",\"%s\":\"", name);

    if (n < 0 || (size_t)n + 1 > o->cap - o->len)
        return;
    put(o, head, (size_t)n);
    o->cap--;
    json_escape(o, value, max);
    o->cap++;
    put(o, "\"", 1);
}

static void write_line(const char *p, size_t len)
{
    int saved = errno;

    pthread_mutex_lock(&g_write_mu);
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* nowhere left to report it */
        p += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&g_write_mu);
    errno = saved;
}

void sy_log_vwrite(enum sy_log_level lvl, const char *event, double duration_ms, const char *error,
                   const char *fmt, va_list ap)
{
    char a[LOG_LINE_MAX], b[LOG_LINE_MAX], line[LOG_LINE_MAX];
    struct obuf o = {line, 0, sizeof(line) - 2}; /* "}\n" always fits */
    struct timespec now;
    struct tm tm;
    char head[128];
    int n;

    if ((int)lvl < SY_LOG_DEBUG || (int)lvl > SY_LOG_ERROR)
        lvl = SY_LOG_ERROR;
    if ((int)lvl < atomic_load_explicit(&g_level, memory_order_relaxed))
        return;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = snprintf(head, sizeof(head),
                 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 now.tv_nsec / 1000000, level_names[lvl]);
    put(&o, head, (size_t)n);
    json_field(&o, "worker", g_worker, LOG_FIELD_MAX);
    json_field(&o, "instance", g_instance, LOG_FIELD_MAX);
    json_field(&o, "event", event ? event : "", LOG_FIELD_MAX);
    if (tl_msg_id)
        json_field(&o, "msg_id", tl_msg_id, LOG_FIELD_MAX);
    if (tl_type)
        json_field(&o, "type", tl_type, LOG_FIELD_MAX);
    if (duration_ms >= 0 && isfinite(duration_ms)) {
        n = snprintf(head, sizeof(head),
                     duration_ms < 1e12 ? ",\"duration_ms\":%.3f" : ",\"duration_ms\":%.6e",
                     duration_ms);
        put(&o, head, (size_t)n);
    }
    if (error) {
        snprintf(a, LOG_ERROR_MAX, "%s", error);
        redact_in_place(a, b, LOG_ERROR_MAX);
        json_field(&o, "error", b, 6 * LOG_ERROR_MAX / 4);
    }
    /* The text is formatted into a fixed buffer: longer messages are cut, never allocated. */
    if (fmt)
        vsnprintf(a, sizeof(a), fmt, ap);
    else
        a[0] = '\0';
    redact_in_place(a, b, sizeof(b));
    json_field(&o, "msg", b, sizeof(line));
    o.cap += 2;
    put(&o, "}\n", 2);
    write_line(line, o.len);
}

void sy_log_write(enum sy_log_level lvl, const char *event, double duration_ms, const char *error,
                  const char *fmt, ...)
{
    va_list ap;

    /* Checked here too, so a dropped line costs no va_list setup. */
    if ((int)lvl < atomic_load_explicit(&g_level, memory_order_relaxed))
        return;
    va_start(ap, fmt);
    sy_log_vwrite(lvl, event, duration_ms, error, fmt, ap);
    va_end(ap);
}
