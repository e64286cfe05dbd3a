/* imap.c - IMAP over libcurl for sy-ingest (see imap.h). libcurl hands every untagged line of a
 * custom command's answer to the write callback; bodies are fetched with the ;UID= URL form,
 * since curl 7.88 drops the literal of a custom FETCH. */
#include "ingest/imap.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"

struct buf {
    char *p;
    size_t len, max;
    bool over;
};

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t len = size * n;
    char *p;

    if (b->len + len > b->max) {
        b->over = true;
        return 0;
    }
    if (!(p = realloc(b->p, b->len + len + 1)))
        return 0;
    memcpy(p + b->len, data, len);
    b->p = p;
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

/* Splits c->url into "scheme://authority/" and the mailbox name. */
static int split_url(const struct imap_conf *c, char *base, size_t bl, const char **mailbox,
                     char *err, size_t errlen)
{
    const char *u = c->url, *auth, *slash;

    if (!u || strlen(u) >= IMAP_URL_MAX) {
        sy_errf(err, errlen, "the mailbox URL is missing or longer than %d bytes", IMAP_URL_MAX);
        return -SY_ECONFIG;
    }
    if (strncmp(u, "imaps://", 8) == 0) {
        auth = u + 8;
    } else if (strncmp(u, "imap://", 7) == 0 && c->allow_plain) {
        auth = u + 7;
    } else {
        sy_errf(err, errlen,
                "the mailbox URL must start with imaps:// (imap:// only where plain "
                "connections are allowed)");
        return -SY_ECONFIG;
    }
    slash = strchr(auth, '/');
    /* The mailbox goes into a URL and a quoted command as it is: plain names only. */
    if (!slash || slash == auth || !slash[1] || strchr(auth, '@') ||
        strspn(slash + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            strlen(slash + 1)) {
        sy_errf(err, errlen,
                "the mailbox URL must be scheme://host[:port]/MAILBOX, without "
                "credentials, the mailbox of letters, digits and ._-");
        return -SY_ECONFIG;
    }
    snprintf(base, bl, "%.*s", (int)(slash + 1 - u), u);
    *mailbox = slash + 1;
    return 0;
}

/* Each handler thread keeps one handle: libcurl keeps its IMAP connection (logged in, for the
 * same server and account only) between calls, so a fetch costs no new login. Freed when the
 * thread ends. */
static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void handle_key_make(void)
{
    pthread_key_create(&handle_key, handle_free);
}

static CURL *handle(void)
{
    CURL *h;

    pthread_once(&handle_once, handle_key_make);
    if ((h = pthread_getspecific(handle_key))) {
        curl_easy_reset(h); /* options go, connections stay */
        return h;
    }
    if ((h = curl_easy_init()) && pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

/* One request: url with an optional custom command; the answer in b (at most max bytes). fresh:
 * over a connection of its own, with no mailbox selected. */
static int perform(const struct imap_conf *c, const char *url, const char *command, size_t max,
                   bool fresh, struct buf *b, char *err, size_t errlen)
{
    CURL *h = fresh ? curl_easy_init() : handle();
    char ebuf[CURL_ERROR_SIZE] = "";
    CURLcode cc;
    int rc = 0;

    memset(b, 0, sizeof *b);
    b->max = max;
    if (!h)
        return -SY_ENOMEM;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->user ? c->user : "");
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->allow_plain ? "imap,imaps" : "imaps");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    if (command)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, command);
    cc = curl_easy_perform(h);
    if (fresh)
        curl_easy_cleanup(h);
    else
        curl_easy_setopt(h, CURLOPT_PASSWORD, ""); /* not kept in the idle handle */
    if (cc == CURLE_OK)
        return 0;
    if (b->over) {
        sy_errf(err, errlen, "the answer is larger than %zu bytes", max);
        rc = -SY_ETOOBIG;
    } else {
        const char *why = ebuf[0] ? ebuf : curl_easy_strerror(cc);

        switch (cc) {
        case CURLE_LOGIN_DENIED:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            rc = -SY_ECONFIG;
            break;
        case CURLE_OPERATION_TIMEDOUT:
            rc = -SY_ETIMEOUT;
            break;
        case CURLE_REMOTE_FILE_NOT_FOUND:
            rc = -SY_ENOTFOUND;
            break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_SSL_CONNECT_ERROR:
            rc = -SY_ECONN;
            break;
        case CURLE_OUT_OF_MEMORY:
            rc = -SY_ENOMEM;
            break;
        default:
            rc = -SY_EPROTO;
        }
        sy_errf(err, errlen, "IMAP %s: %s", command ? command : "fetch", why);
    }
    free(b->p);
    memset(b, 0, sizeof *b);
    return rc;
}

/* The number after `key ` in s (a parenthesised STATUS list or a FETCH answer), 0 when absent. */
static int number_after(const char *s, const char *key, uint64_t *v)
{
    const char *p = s;
    size_t kl = strlen(key);

    while ((p = strstr(p, key))) {
        if ((p == s || p[-1] == '(' || p[-1] == ' ') && p[kl] == ' ') {
            char *end;
            unsigned long long n = strtoull(p + kl + 1, &end, 10);

            if (end == p + kl + 1)
                return -SY_EPROTO;
            *v = n;
            return 0;
        }
        p += kl;
    }
    return -SY_EPROTO;
}

int imap_status(const struct imap_conf *c, struct imap_status *st, char *err, size_t errlen)
{
    char base[IMAP_URL_MAX], cmd[IMAP_URL_MAX + 64];
    const char *mailbox;
    struct buf b;
    int rc = split_url(c, base, sizeof base, &mailbox, err, errlen);

    memset(st, 0, sizeof *st);
    if (rc != 0)
        return rc;
    /* Without a mailbox in the URL curl sends the command as it is. Polls list over connections
     * of their own: on a kept connection that has the mailbox selected, STATUS and SEARCH may
     * answer from that connection's older view (new messages, a re-created mailbox unseen). */
    snprintf(cmd, sizeof cmd, "STATUS \"%s\" (UIDVALIDITY UIDNEXT MESSAGES)", mailbox);
    if ((rc = perform(c, base, cmd, 64 * 1024, true, &b, err, errlen)) != 0)
        return rc;
    if (!b.p || !strstr(b.p, "* STATUS") || number_after(b.p, "UIDVALIDITY", &st->uidvalidity) ||
        number_after(b.p, "UIDNEXT", &st->uidnext) ||
        number_after(b.p, "MESSAGES", &st->messages) || st->uidvalidity == 0) {
        sy_errf(err, errlen, "IMAP STATUS: no UIDVALIDITY, UIDNEXT and MESSAGES in the answer");
        rc = -SY_EPROTO;
    }
    free(b.p);
    return rc;
}

static int cmp_uid(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int imap_search_range(const struct imap_conf *c, uint64_t lo, uint64_t hi, size_t max,
                      uint64_t **uids, size_t *n, size_t *cap, char *err, size_t errlen)
{
    size_t from = *n;
    char cmd[80];
    struct buf b;
    const char *p;
    int rc;

    if (lo > hi || hi - lo >= IMAP_WINDOW_MAX) {
        sy_errf(err, errlen, "IMAP SEARCH: a range of %" PRIu64 " to %" PRIu64, lo, hi);
        return -SY_EINVAL;
    }
    snprintf(cmd, sizeof cmd, "UID SEARCH UID %" PRIu64 ":%" PRIu64, lo, hi);
    if ((rc = perform(c, c->url, cmd, IMAP_REPLY_MAX, true, &b, err, errlen)) != 0)
        return rc;
    /* "* SEARCH 4 5 9", possibly over several lines. "lo:hi" holds the highest UID even when it
     * is below lo (a range is unordered, and its ends are the mailbox's): what is outside is
     * dropped here. */
    for (p = b.p ? strstr(b.p, "* SEARCH") : NULL; p; p = strstr(p, "* SEARCH")) {
        p += 8;
        while (*p == ' ' || (*p >= '0' && *p <= '9')) {
            char *end;
            uint64_t u;

            if (*p == ' ') {
                p++;
                continue;
            }
            u = strtoull(p, &end, 10);
            p = end;
            if (u < lo || u > hi)
                continue;
            if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                uint64_t *g = realloc(*uids, ncap * sizeof **uids);

                if (!g) {
                    rc = -SY_ENOMEM;
                    goto out;
                }
                *uids = g;
                *cap = ncap;
            }
            (*uids)[(*n)++] = u;
        }
    }
    if (*n - from > 1)
        qsort(*uids + from, *n - from, sizeof **uids, cmp_uid);
    if (*n - from > max)
        *n = from + max;
out:
    free(b.p);
    if (rc != 0)
        *n = from;
    return rc;
}

int imap_size(const struct imap_conf *c, uint64_t uid, uint64_t *size, char *err, size_t errlen)
{
    char cmd[96];
    struct buf b;
    int rc;

    *size = 0;
    snprintf(cmd, sizeof cmd, "UID FETCH %" PRIu64 " (UID RFC822.SIZE)", uid);
    /* A kept connection sees messages that arrived since its last command only after a NOOP;
     * and a message it does not see is asked for again over a connection of its own before
     * it counts as gone, so a new message is never taken for a deleted one. */
    for (int fresh = 0; fresh < 2; fresh++) {
        if (!fresh && (rc = perform(c, c->url, "NOOP", 64 * 1024, false, &b, err, errlen)) == 0)
            free(b.p);
        if ((rc = perform(c, c->url, cmd, 64 * 1024, fresh, &b, err, errlen)) != 0)
            return rc;
        if (b.p && strstr(b.p, " FETCH "))
            break;
        free(b.p);
        b.p = NULL;
    }
    if (!b.p) {
        sy_errf(err, errlen, "IMAP: no message with UID %" PRIu64, uid);
        rc = -SY_ENOTFOUND;
    } else if (number_after(b.p, "RFC822.SIZE", size) != 0) {
        sy_errf(err, errlen, "IMAP FETCH: no RFC822.SIZE in the answer");
        rc = -SY_EPROTO;
    }
    free(b.p);
    return rc;
}

int imap_fetch(const struct imap_conf *c, uint64_t uidvalidity, uint64_t uid, size_t max,
               void **data, size_t *len, char *err, size_t errlen)
{
    char base[IMAP_URL_MAX], url[IMAP_URL_MAX + 96];
    const char *mailbox;
    struct buf b;
    int rc = split_url(c, base, sizeof base, &mailbox, err, errlen);

    *data = NULL;
    *len = 0;
    if (rc != 0)
        return rc;
    /* curl refuses the message when the mailbox's UIDVALIDITY is no longer this one: a UID of
     * an older mailbox never names a message of the new one. */
    snprintf(url, sizeof url, "%s%s;UIDVALIDITY=%" PRIu64 "/;UID=%" PRIu64, base, mailbox,
             uidvalidity, uid);
    if ((rc = perform(c, url, NULL, max, false, &b, err, errlen)) != 0)
        return rc;
    /* Nothing over the kept connection: asked again over one of its own before it is gone. */
    if (!b.p && (rc = perform(c, url, NULL, max, true, &b, err, errlen)) != 0)
        return rc;
    if (!b.p) {
        sy_errf(err, errlen, "IMAP: message %" PRIu64 " is empty or gone", uid);
        return -SY_ENOTFOUND;
    }
    *data = b.p;
    *len = b.len;
    return 0;
}
