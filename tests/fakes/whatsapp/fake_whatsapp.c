/* fake_whatsapp.c - a fake of the WhatsApp Business Cloud API's media download for sy-ingest's
 * tests: the two steps as Meta documents them. GET /<version>/<media_id> with the Bearer token
 * answers {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}; GET of that
 * url (on this fake, valid a few seconds) with the same token and a User-Agent answers the
 * bytes. Errors are Graph's {"error": {"message", "type", "code", "error_subcode",
 * "fbtrace_id"}}. State lives in memory.
 *
 *   fake-whatsapp [--port N] [--token T] [--version V] [--url-ttl S]
 *
 * Listens on 127.0.0.1 (port 0 or none: any), prints "port=<n>" once listening, serves until
 * SIGTERM. Without --token any non-empty Bearer token is taken. V is "v21.0" unless given; a
 * download URL expires S seconds (5 unless given) after step 1 handed it out, as the real
 * one does after 5 minutes.
 *
 * Control (no auth):
 *   POST /_fake/media {"id", "mime_type", "data_b64", "sha256_form": "hex"|"base64"|"none",
 *                      "file_size": N (what step 1 claims; the bytes' length unless given),
 *                      "file_size_string": true (sent as "49664", as some docs show)}
 *                                             adds (or replaces) a media item
 *   POST /_fake/expire {"id", "status": 400|404}
 *                                             the media id expired: step 1 answers Graph's
 *                                             GraphMethodException 100/33 with that status
 *   POST /_fake/faults with any of (a "call" is any non-control request, step 1 or 2, or of
 *   the kind "on" names: "media" for step 1, "download" for step 2)
 *     {"fail_429": K, "retry_after": S}       the next K calls answer 429, Retry-After: S
 *     {"fail_500": K} / {"fail_503": K}       the next K calls answer 500 / 503
 *     {"on": "media"|"download"|"any"}        which calls the fail_* switches count
 *     {"expire_token": true|false}            step 1 and 2 answer 401 OAuthException 190
 *     {"truncate": K, "truncate_mode": "short"|"cut"}
 *                                             the next K downloads send half the bytes: a
 *                                             complete short answer, or the full
 *                                             Content-Length and a connection cut midway
 *     {"expire_url": K}                       the next K downloads find their URL expired
 *                                             (404), as one used after its 5 minutes does
 *     {"delay_ms": M}                         every call's answer waits M ms (0: off)
 * POST /_fake/reset empties everything (media, faults, counters). GET /_fake/state:
 * {"media": {id: {"resolves", "downloads", "partial"}}, "counters": {"media_calls",
 * "downloads", "faults", "refused_token", "refused_agent", "expired_urls"}}. */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sy/crypto.h"

#include "fake_server.h"

#define BODY_MAX  (32 * 1024 * 1024)
#define MEDIA_MAX 1024

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const char *token = NULL, *version = "v21.0";
static int url_ttl_s = 5, port;
static unsigned hash_seed;

struct media {
    char *id, *mime;
    unsigned char *data;
    size_t len;
    long long claimed; /* file_size step 1 says */
    bool size_string, expired;
    int expired_status;
    char sha[80];
    long long resolves, downloads, partial;
};
static struct media media[MEDIA_MAX];
static size_t nmedia;

enum { ON_ANY, ON_MEDIA, ON_DOWNLOAD };
static struct {
    int fail_429, retry_after, fail_500, fail_503, on, truncate, delay_ms, expire_url;
    bool expire_token, truncate_cut;
} faults;
static struct {
    long long media_calls, downloads, faults, refused_token, refused_agent, expired_urls;
} counters;

static void reset(void)
{
    for (size_t i = 0; i < nmedia; i++) {
        free(media[i].id);
        free(media[i].mime);
        free(media[i].data);
    }
    memset(media, 0, sizeof media);
    nmedia = 0;
    memset(&faults, 0, sizeof faults);
    memset(&counters, 0, sizeof counters);
}

static struct media *find(const char *id)
{
    for (size_t i = 0; i < nmedia; i++)
        if (strcmp(media[i].id, id) == 0)
            return &media[i];
    return NULL;
}

/* The URL's hash: a download URL is this fake's own, not one a client made up. */
static unsigned long url_hash(const char *mid, long long exp)
{
    char buf[400];
    unsigned long h = 1469598103934665603UL ^ hash_seed;

    snprintf(buf, sizeof buf, "%s/%lld", mid, exp);
    for (const char *p = buf; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211UL;
    return h;
}

/* --- replies --------------------------------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, int status, const char *type,
                                const void *data, size_t len, const char *hname, const char *hvalue)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Answers v (taken) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *v, const char *hname,
                                 const char *hvalue)
{
    char *text = json_dumps(v, JSON_COMPACT);
    enum MHD_Result ok = send_buf(c, status, "application/json", text ? text : "null",
                                  text ? strlen(text) : 4, hname, hvalue);

    free(text);
    json_decref(v);
    return ok;
}

/* Graph's error object. */
static enum MHD_Result graph_error(struct MHD_Connection *c, int status, const char *type, int code,
                                   int subcode, const char *msg, const char *hname,
                                   const char *hvalue)
{
    json_t *e = json_pack("{s:s, s:s, s:i, s:s}", "message", msg, "type", type, "code", code,
                          "fbtrace_id", "AbCdEfGhIjKlMnOpQrStUvW");

    if (subcode)
        json_object_set_new(e, "error_subcode", json_integer(subcode));
    return send_json(c, status, json_pack("{s:o}", "error", e), hname, hvalue);
}

/* The fail_* switches, for a call of this kind; MHD_NO with *answered false when none fired. */
static enum MHD_Result induced(struct MHD_Connection *c, int kind, bool *answered)
{
    char ra[16];

    *answered = false;
    if (faults.on != ON_ANY && faults.on != kind)
        return MHD_NO;
    if (faults.fail_429 > 0) {
        faults.fail_429--;
        counters.faults++;
        *answered = true;
        snprintf(ra, sizeof ra, "%d", faults.retry_after);
        /* Graph's own throttling text for an application over its call count. */
        return graph_error(c, 429, "OAuthException", 4, 0, "(#4) Application request limit reached",
                           "Retry-After", ra);
    }
    if (faults.fail_500 > 0 || faults.fail_503 > 0) {
        int status = faults.fail_500 > 0 ? 500 : 503;

        if (status == 500)
            faults.fail_500--;
        else
            faults.fail_503--;
        counters.faults++;
        *answered = true;
        return graph_error(c, status, "OAuthException", 2, 0,
                           "An unexpected error has occurred. Please retry your request later.",
                           NULL, NULL);
    }
    return MHD_NO;
}

/* "Authorization: Bearer <token>" as the fake takes it. */
static bool authorized(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

    if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !auth[7] || faults.expire_token)
        return false;
    return !token || strcmp(auth + 7, token) == 0;
}

static enum MHD_Result token_refused(struct MHD_Connection *c)
{
    counters.refused_token++;
    if (faults.expire_token)
        return graph_error(c, 401, "OAuthException", 190, 463,
                           "Error validating access token: Session has expired on Monday, "
                           "07-Dec-26 10:00:00 PST. The current time is Monday, 07-Dec-26 "
                           "11:00:00 PST.",
                           NULL, NULL);
    return graph_error(c, 401, "OAuthException", 190, 0,
                       "Invalid OAuth access token - Cannot parse access token", NULL, NULL);
}

/* --- step 1: the media id ------------------------------------------------------------------- */

static enum MHD_Result resolve(struct MHD_Connection *c, const char *id)
{
    struct media *m;
    char url[600], msg[600];
    long long exp;
    json_t *out;

    counters.media_calls++;
    if (!authorized(c))
        return token_refused(c);
    if (!(m = find(id)) || m->expired) {
        snprintf(
            msg, sizeof msg,
            "Unsupported get request. Object with ID '%.300s' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please "
            "read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            id);
        return graph_error(c, m && m->expired_status ? m->expired_status : 400,
                           "GraphMethodException", 100, 33, msg, NULL, NULL);
    }
    m->resolves++;
    exp = (long long)time(NULL) + url_ttl_s;
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/whatsapp_business/attachments/?mid=%s&ext=%lld&hash=%lx", port,
             m->id, exp, url_hash(m->id, exp));
    out = json_pack("{s:s, s:s, s:s, s:s}", "messaging_product", "whatsapp", "url", url,
                    "mime_type", m->mime, "id", m->id);
    if (m->sha[0])
        json_object_set_new(out, "sha256", json_string(m->sha));
    if (m->size_string) {
        char n[24];

        snprintf(n, sizeof n, "%lld", m->claimed);
        json_object_set_new(out, "file_size", json_string(n));
    } else {
        json_object_set_new(out, "file_size", json_integer(m->claimed));
    }
    return send_json(c, 200, out, NULL, NULL);
}

/* --- step 2: the download URL ---------------------------------------------------------------- */

struct cut {
    unsigned char *data;
    size_t len, stop;
};

/* Sends up to stop bytes of a Content-Length of len, then drops the connection. */
static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct cut *k = cls;
    size_t n;

    if (pos >= k->stop)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = k->stop - (size_t)pos < max ? k->stop - (size_t)pos : max;
    memcpy(buf, k->data + pos, n);
    return (ssize_t)n;
}

static void cut_free(void *cls)
{
    struct cut *k = cls;

    free(k->data);
    free(k);
}

static enum MHD_Result download(struct MHD_Connection *c)
{
    const char *mid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mid");
    const char *ext = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ext");
    const char *hash = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hash");
    const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    static const char page[] = "<!DOCTYPE html><html><body>Sorry, this content isn't available "
                               "right now</body></html>";
    struct media *m;
    char want[32];

    counters.downloads++;
    if (!authorized(c))
        return token_refused(c);
    /* Without a User-Agent the real host answers a page, not the file. */
    if (!ua || !*ua) {
        counters.refused_agent++;
        return send_buf(c, 400, "text/html", page, sizeof page - 1, NULL, NULL);
    }
    if (!mid || !ext || !hash || !(m = find(mid)))
        return send_buf(c, 404, "text/html", page, sizeof page - 1, NULL, NULL);
    snprintf(want, sizeof want, "%lx", url_hash(mid, atoll(ext)));
    if (strcmp(want, hash) != 0)
        return send_buf(c, 403, "text/html", page, sizeof page - 1, NULL, NULL);
    if (atoll(ext) < (long long)time(NULL) || faults.expire_url > 0) {
        if (faults.expire_url > 0)
            faults.expire_url--;
        counters.expired_urls++;
        return send_buf(c, 404, "text/html", page, sizeof page - 1, NULL, NULL);
    }
    if (faults.truncate > 0) {
        faults.truncate--;
        m->partial++;
        if (!faults.truncate_cut)
            return send_buf(c, 200, m->mime, m->data, m->len / 2, NULL, NULL);
        struct cut *k = calloc(1, sizeof *k);
        struct MHD_Response *r;
        enum MHD_Result ok;

        if (!k || !(k->data = malloc(m->len ? m->len : 1))) {
            free(k);
            return MHD_NO;
        }
        memcpy(k->data, m->data, m->len);
        k->len = m->len;
        k->stop = m->len / 2;
        if (!(r = MHD_create_response_from_callback(m->len, 4096, cut_reader, k, cut_free))) {
            cut_free(k);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", m->mime);
        ok = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ok;
    }
    m->downloads++;
    return send_buf(c, 200, m->mime, m->data, m->len, NULL, NULL);
}

/* --- control --------------------------------------------------------------------------------- */

static enum MHD_Result add_media(struct MHD_Connection *c, json_t *f)
{
    const char *id = json_string_value(json_object_get(f, "id"));
    const char *mime = json_string_value(json_object_get(f, "mime_type"));
    const char *b64 = json_string_value(json_object_get(f, "data_b64"));
    const char *form = json_string_value(json_object_get(f, "sha256_form"));
    json_t *size = json_object_get(f, "file_size");
    struct media *m;
    uint8_t digest[SY_SHA256_LEN];
    unsigned char *data;
    size_t len = 0;

    if (!id || !mime || !b64 || strlen(id) > 256)
        return send_json(c, 400, json_pack("{s:s}", "error", "media: id, mime_type, data_b64"),
                         NULL, NULL);
    if (!(data = malloc(sy_base64_decoded_max(strlen(b64)) + 1)) ||
        sy_base64_decode(b64, strlen(b64), false, data, &len) != 0) {
        free(data);
        return send_json(c, 400, json_pack("{s:s}", "error", "media: data_b64 is not base64"), NULL,
                         NULL);
    }
    if (!(m = find(id))) {
        if (nmedia == MEDIA_MAX) {
            free(data);
            return send_json(c, 400, json_pack("{s:s}", "error", "media: too many"), NULL, NULL);
        }
        m = &media[nmedia++];
        m->id = strdup(id);
    } else {
        free(m->mime);
        free(m->data);
    }
    m->mime = strdup(mime);
    m->data = data;
    m->len = len;
    m->claimed = json_is_integer(size) ? (long long)json_integer_value(size) : (long long)len;
    m->size_string = json_is_true(json_object_get(f, "file_size_string"));
    m->expired = false;
    m->expired_status = 0;
    sy_sha256(data, len, digest);
    m->sha[0] = '\0';
    if (form && strcmp(form, "base64") == 0)
        sy_base64_encode(digest, sizeof digest, false, m->sha);
    else if (!form || strcmp(form, "none") != 0)
        sy_hex_encode(digest, sizeof digest, m->sha);
    return send_json(c, 200, json_pack("{s:b}", "ok", 1), NULL, NULL);
}

static enum MHD_Result control(struct MHD_Connection *c, const char *method, const char *path,
                               struct req *rq)
{
    json_t *f = NULL, *v;
    enum MHD_Result ok;
    const char *s;

    if (strcmp(path, "state") == 0 && strcmp(method, "GET") == 0) {
        json_t *all = json_object();

        for (size_t i = 0; i < nmedia; i++)
            json_object_set_new(
                all, media[i].id,
                json_pack("{s:I, s:I, s:I}", "resolves", (json_int_t)media[i].resolves, "downloads",
                          (json_int_t)media[i].downloads, "partial", (json_int_t)media[i].partial));
        return send_json(c, 200,
                         json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "media", all,
                                   "counters", "media_calls", (json_int_t)counters.media_calls,
                                   "downloads", (json_int_t)counters.downloads, "faults",
                                   (json_int_t)counters.faults, "refused_token",
                                   (json_int_t)counters.refused_token, "refused_agent",
                                   (json_int_t)counters.refused_agent, "expired_urls",
                                   (json_int_t)counters.expired_urls),
                         NULL, NULL);
    }
    if (strcmp(path, "reset") == 0 && strcmp(method, "POST") == 0) {
        reset();
        return send_json(c, 200, json_pack("{s:b}", "ok", 1), NULL, NULL);
    }
    if (strcmp(method, "POST") != 0 ||
        (strcmp(path, "media") != 0 && strcmp(path, "expire") != 0 && strcmp(path, "faults") != 0))
        return send_json(c, 404, json_pack("{s:s}", "error", "no such control"), NULL, NULL);
    if (!rq->len || !json_is_object(f = json_loadb(rq->body, rq->len, 0, NULL))) {
        json_decref(f);
        return send_json(c, 400, json_pack("{s:s}", "error", "expected a JSON object"), NULL, NULL);
    }
    if (strcmp(path, "media") == 0) {
        ok = add_media(c, f);
    } else if (strcmp(path, "expire") == 0) {
        const char *id = json_string_value(json_object_get(f, "id"));
        struct media *m = id ? find(id) : NULL;
        int st = (int)json_integer_value(json_object_get(f, "status"));

        if (m) {
            m->expired = true;
            m->expired_status = st == 404 ? 404 : 400;
        }
        ok = send_json(c, m ? 200 : 404, json_pack("{s:b}", "ok", m != NULL), NULL, NULL);
    } else {
        if ((v = json_object_get(f, "fail_429")))
            faults.fail_429 = (int)json_integer_value(v);
        if ((v = json_object_get(f, "retry_after")))
            faults.retry_after = (int)json_integer_value(v);
        if ((v = json_object_get(f, "fail_500")))
            faults.fail_500 = (int)json_integer_value(v);
        if ((v = json_object_get(f, "fail_503")))
            faults.fail_503 = (int)json_integer_value(v);
        if ((s = json_string_value(json_object_get(f, "on"))))
            faults.on = strcmp(s, "media") == 0      ? ON_MEDIA
                        : strcmp(s, "download") == 0 ? ON_DOWNLOAD
                                                     : ON_ANY;
        if ((v = json_object_get(f, "expire_token")))
            faults.expire_token = json_is_true(v);
        if ((v = json_object_get(f, "truncate")))
            faults.truncate = (int)json_integer_value(v);
        if ((s = json_string_value(json_object_get(f, "truncate_mode"))))
            faults.truncate_cut = strcmp(s, "cut") == 0;
        if ((v = json_object_get(f, "expire_url")))
            faults.expire_url = (int)json_integer_value(v);
        if ((v = json_object_get(f, "delay_ms")))
            faults.delay_ms = (int)json_integer_value(v);
        ok = send_json(c, 200, json_pack("{s:b}", "ok", 1), NULL, NULL);
    }
    json_decref(f);
    return ok;
}

/* --- the server ------------------------------------------------------------------------------ */

static enum MHD_Result api(struct MHD_Connection *c, const char *method, const char *url)
{
    size_t vlen = strlen(version);
    bool answered;
    enum MHD_Result ok;

    if (strcmp(method, "GET") != 0)
        return graph_error(c, 400, "GraphMethodException", 100, 0, "Unsupported method", NULL,
                           NULL);
    if (strcmp(url, "/whatsapp_business/attachments/") == 0) {
        ok = induced(c, ON_DOWNLOAD, &answered);
        return answered ? ok : download(c);
    }
    if (url[0] == '/' && strncmp(url + 1, version, vlen) == 0 && url[1 + vlen] == '/' &&
        url[2 + vlen] && !strchr(url + 2 + vlen, '/')) {
        ok = induced(c, ON_MEDIA, &answered);
        return answered ? ok : resolve(c, url + 2 + vlen);
    }
    return graph_error(c, 400, "GraphMethodException", 100, 0, "Unknown path components", NULL,
                       NULL);
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
                             struct req *rq, int *delay_ms)
{
    enum MHD_Result ok;

    pthread_mutex_lock(&mu);
    if (strncmp(url, "/_fake/", 7) == 0) {
        ok = control(c, method, url + 7, rq);
    } else {
        *delay_ms = faults.delay_ms;
        ok = api(c, method, url);
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

static enum MHD_Result too_big(struct MHD_Connection *c)
{
    return send_json(c, 413, json_pack("{s:s}", "error", "request body too large"), NULL, NULL);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
            token = argv[++i];
        else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc)
            version = argv[++i];
        else if (strcmp(argv[i], "--url-ttl") == 0 && i + 1 < argc)
            url_ttl_s = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: fake-whatsapp [--port N] [--token T] [--version V] "
                            "[--url-ttl S]\n");
            return 2;
        }
    }
    hash_seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    if (fake_serve("fake-whatsapp", &port, BODY_MAX, route, too_big) != 0)
        return 1;
    reset();
    return 0;
}
