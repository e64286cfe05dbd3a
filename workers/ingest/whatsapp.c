/* whatsapp.c - the WhatsApp Business Cloud API connector of sy-ingest (see connector.h): media a
 * citizen sent, announced by ingest.whatsapp.media, downloaded in WhatsApp's two steps (the
 * media id's JSON from the Graph API, then its short-lived URL), checked against the SHA-256
 * WhatsApp gave. Not polled: its items arrive as messages. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/connector.h"
#include "ingest/settings.h"
#include "sy/crypto.h"
#include "sy/doc.h"
#include "sy/err.h"
#include "sy/http.h"
#include "sy/log.h"

#define VALUE_MAX     2048
#define MEDIA_ID_MAX  256
#define MIME_MAX      255
#define FILENAME_MAX_ 1024
#define JSON_MAX      (64u * 1024u) /* the media id's JSON: a few hundred bytes in practice */
#define ATTEMPTS      2 /* a download URL that expired between the two steps: resolved again */
#define GRAPH_DEFAULT "https://graph.facebook.com/v21.0"

struct wa_conf {
    char *graph_url, *token, *phone_number_id;
    bool allow_http;
};

static void wa_unconfigure(void *conf)
{
    struct wa_conf *c = conf;

    if (!c)
        return;
    free(c->graph_url);
    free(c->phone_number_id);
    setting_secret_free(c->token);
    free(c);
}

/* --- settings -------------------------------------------------------------------------------- */

static int wa_configure(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                        const char *dir, void **conf, char *err, size_t errlen)
{
    static const char *const keys[] = {"graph_url",       "access_token_env", "access_token_file",
                                       "phone_number_id", "allow_http",       NULL};
    struct wa_conf *c = calloc(1, sizeof *c);
    const struct sy_node *n;
    char why[256];
    int rc;

    *conf = NULL;
    if (!c)
        return -SY_ENOMEM;
    if ((rc = sy_node_check_keys(doc, m, keys, err, errlen)) != 0 ||
        (rc = setting_secret(doc, m, dir, key, "access_token", &c->token, err, errlen)) != 0)
        goto fail;
    if ((n = sy_node_get(m, "allow_http")) && sy_node_bool(n, &c->allow_http, why, sizeof why)) {
        sy_errf(err, errlen, "%s: %s.%s", sy_doc_name(doc), key, why);
        rc = -SY_ECONFIG;
        goto fail;
    }
    if ((n = sy_node_get(m, "graph_url"))) {
        if ((rc = setting_text(doc, m, key, "graph_url", true, &c->graph_url, err, errlen)) != 0)
            goto fail;
    } else if (!(c->graph_url = strdup(GRAPH_DEFAULT))) {
        rc = -SY_ENOMEM;
        goto fail;
    }
    for (size_t len = strlen(c->graph_url); len > 0 && c->graph_url[len - 1] == '/';)
        c->graph_url[--len] = '\0';
    /* The token goes with every request: never over plain HTTP but in tests. */
    if (strncmp(c->graph_url, "https://", 8) != 0 &&
        !(c->allow_http && strncmp(c->graph_url, "http://", 7) == 0)) {
        sy_errf(err, errlen, "%s:%d: %s.graph_url: expected an https:// URL", sy_doc_name(doc),
                sy_node_line(n ? n : m), key);
        rc = -SY_ECONFIG;
        goto fail;
    }
    if ((n = sy_node_get(m, "phone_number_id"))) {
        if ((rc = setting_text(doc, m, key, "phone_number_id", true, &c->phone_number_id, err,
                               errlen)) != 0)
            goto fail;
        /* Graph's ids are digits; this one goes into a URL's query. */
        if (!*c->phone_number_id || strlen(c->phone_number_id) > 64 ||
            strspn(c->phone_number_id, "0123456789") != strlen(c->phone_number_id)) {
            sy_errf(err, errlen, "%s:%d: %s.phone_number_id: expected 1 to 64 digits",
                    sy_doc_name(doc), sy_node_line(n), key);
            rc = -SY_ECONFIG;
            goto fail;
        }
    }
    *conf = c;
    return 0;
fail:
    wa_unconfigure(c);
    return rc;
}

/* --- what a message said ---------------------------------------------------------------------- */

static const char *hint(const json_t *hints, const char *key)
{
    return json_string_value(json_object_get(hints, key));
}

/* A media id goes into the Graph URL's path: WhatsApp's are digits, so anything but letters,
 * digits, '_' and '-' (a '/', a '?', "..") is refused rather than sent to another object. */
static bool media_id_ok(const char *id)
{
    size_t n = strlen(id);

    return n > 0 && n <= MEDIA_ID_MAX &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* "type/subtype" in lower case, without parameters (a voice note is "audio/ogg; codecs=opus"). */
static void mime_clean(const char *in, char out[MIME_MAX + 1])
{
    size_t n = in ? strcspn(in, ";") : 0;

    while (n > 0 && isspace((unsigned char)in[n - 1]))
        n--;
    if (n > MIME_MAX)
        n = MIME_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    if (!strchr(out, '/'))
        snprintf(out, MIME_MAX + 1, "application/octet-stream");
}

static const char *ext_of(const char *mime)
{
    static const char *const map[][2] = {
        {"application/pdf", "pdf"},
        {"image/jpeg", "jpg"},
        {"image/png", "png"},
        {"image/webp", "webp"},
        {"audio/ogg", "ogg"},
        {"audio/mpeg", "mp3"},
        {"audio/aac", "aac"},
        {"audio/amr", "amr"},
        {"audio/mp4", "m4a"},
        {"video/mp4", "mp4"},
        {"video/3gpp", "3gp"},
        {"text/plain", "txt"},
        {"text/csv", "csv"},
        {"application/msword", "doc"},
        {"application/vnd.ms-excel", "xls"},
        {"application/vnd.ms-powerpoint", "ppt"},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
        {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
    };

    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i][0], mime) == 0)
            return map[i][1];
    return "bin";
}

/* The sender's file name without any folder part, else "<media_id>.<ext>". */
static void filename_of(const json_t *hints, const char *media_id, const char *mime, char *out,
                        size_t n)
{
    const char *name = hint(hints, "filename"), *slash;

    if (name) {
        if ((slash = strrchr(name, '/')))
            name = slash + 1;
        if ((slash = strrchr(name, '\\')))
            name = slash + 1;
    }
    if (name && *name && strlen(name) <= FILENAME_MAX_ && strcmp(name, ".") != 0 &&
        strcmp(name, "..") != 0)
        snprintf(out, n, "%s", name);
    else
        snprintf(out, n, "%s.%s", media_id, ext_of(mime));
}

/* Unix seconds as ISO 8601 UTC, malloc'd; NULL when there are none. */
static char *iso_time(const json_t *v)
{
    json_int_t s = json_integer_value(v);
    time_t t = (time_t)s;
    struct tm tm;
    char buf[32];

    if (!json_is_integer(v) || s <= 0 || !gmtime_r(&t, &tm) ||
        !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return NULL;
    return strdup(buf);
}

/* --- the two steps -------------------------------------------------------------------------- */

/* file_size as a number or a numeric string (both are seen); -1 when absent or not a size. */
static long long size_of(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) >= 0 ? (long long)json_integer_value(v) : -1;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        long long n;

        if (!isdigit((unsigned char)*s) || strlen(s) > 18)
            return -1;
        n = strtoll(s, &end, 10);
        return *end ? -1 : n;
    }
    return -1;
}

/* Whether data has the digest WhatsApp gave: hex in its documentation, base64 seen in the
 * field, so both are tried. 1 it matches, 0 it does not, -1 the digest is neither (unchecked). */
static int digest_matches(const char *given, const void *data, size_t len)
{
    uint8_t want[SY_SHA256_LEN], got[SY_SHA256_LEN], dec[SY_SHA256_LEN + 3];
    size_t n = given ? strlen(given) : 0, dlen = 0;

    if (n == 2 * SY_SHA256_LEN && sy_hex_decode(given, n, want, sizeof want) == 0) {
        /* decoded */
    } else if ((n == 44 || n == 43) &&
               (sy_base64_decode(given, n, false, dec, &dlen) == 0 ||
                sy_base64_decode(given, n, true, dec, &dlen) == 0) &&
               dlen == SY_SHA256_LEN) {
        memcpy(want, dec, sizeof want);
    } else {
        return -1;
    }
    sy_sha256(data, len, got);
    return sy_ct_equal(want, got, sizeof got) ? 1 : 0;
}

/* Graph's error body {"error": {"message", "type", "code", "error_subcode"}} as text. */
static void graph_error(const json_t *j, long status, char *why, size_t n, long long *code)
{
    const json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));

    *code = json_integer_value(json_object_get(e, "code"));
    if (msg)
        snprintf(why, n, "%ld, %s code %lld: %.200s", status,
                 json_string_value(json_object_get(e, "type"))
                     ? json_string_value(json_object_get(e, "type"))
                     : "error",
                 *code, msg);
    else
        snprintf(why, n, "%ld", status);
}

/* Graph's throttling codes, which come with a 400 rather than a 429 (API too many calls 4,
 * 17, 32, 613; WhatsApp's 80007, 130429, 131048, 131056). */
static bool throttled(long long code)
{
    static const long long codes[] = {4, 17, 32, 613, 80007, 130429, 131048, 131056};

    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (code == codes[i])
            return true;
    return false;
}

/* What an answer that is not a 2xx means for the item: a refused token waits for an operator
 * (-SY_ECONFIG), a media id WhatsApp no longer knows is gone (-SY_ENOTFOUND, step 1 only),
 * throttling and server trouble are retried. */
static int refusal(int step, int rc, const char *herr, const struct sy_http_resp *r,
                   const json_t *j, long long *retry_after_ms, char *err, size_t errlen,
                   const char *what)
{
    int delay = -1, v = sy_http_verdict(rc, r, &delay);
    long long code = 0;
    char why[300];

    if (rc != 0) {
        sy_errf(err, errlen, "%s: %s", what, herr);
        return rc == -SY_EINVAL || rc == -SY_ETOOBIG ? -SY_EPROTO : rc;
    }
    graph_error(j, r->status, why, sizeof why, &code);
    if (v == 1) {
        if (delay >= 0)
            *retry_after_ms = (long long)delay * 1000;
        sy_errf(err, errlen, "%s: WhatsApp answered %s", what, why);
        return r->status == 0 ? -SY_ECONN : -SY_EIO;
    }
    if (r->status == 401 || r->status == 403 || code == 190 || code == 10 || code == 200) {
        sy_errf(err, errlen, "%s: the access token was refused (%s)", what, why);
        return -SY_ECONFIG;
    }
    if (throttled(code)) {
        sy_errf(err, errlen, "%s: throttled (%s)", what, why);
        return -SY_EBUSY;
    }
    if (step == 1 && (r->status == 400 || r->status == 404 || r->status == 410)) {
        sy_errf(err, errlen, "%s: no such media, or it expired (%s)", what, why);
        return -SY_ENOTFOUND;
    }
    /* A download URL refused: it expired; a fresh one comes from step 1. */
    sy_errf(err, errlen, "%s: WhatsApp answered %s", what, why);
    return -SY_EPROTO;
}

struct media {
    char *url, mime[MIME_MAX + 1], sha256[130];
    long long size;
};

/* Step 1: GET <graph>/<media_id> for the download URL, type, digest and size. */
static int resolve(struct wa_conf *c, const struct in_env *env, const char *media_id,
                   const char *auth, struct media *m, long long *retry_after_ms, char *err,
                   size_t errlen)
{
    struct sy_http_opts o = {.connect_timeout_ms = env->connect_timeout_ms,
                             .timeout_ms = env->timeout_ms,
                             .body_max = JSON_MAX,
                             .insecure_http = c->allow_http};
    struct sy_http *h = sy_http_new(&o);
    const char *headers[] = {auth, NULL}, *url, *mime, *sha;
    struct sy_http_resp r = {0};
    char graph[2 * VALUE_MAX + MEDIA_ID_MAX + 32], herr[256] = "";
    json_t *j = NULL;
    int rc;

    if (!h)
        return -SY_ENOMEM;
    /* With the business number, Graph itself checks the media was sent to it. */
    snprintf(graph, sizeof graph, "%s/%s%s%s", c->graph_url, media_id,
             c->phone_number_id ? "?phone_number_id=" : "",
             c->phone_number_id ? c->phone_number_id : "");
    rc = sy_http_json(h, "GET", graph, headers, NULL, &r, &j, herr, sizeof herr);
    if (rc != 0 || r.status < 200 || r.status >= 300) {
        rc = refusal(1, rc, herr, &r, j, retry_after_ms, err, errlen, "media id");
        goto out;
    }
    url = json_string_value(json_object_get(j, "url"));
    mime = json_string_value(json_object_get(j, "mime_type"));
    sha = json_string_value(json_object_get(j, "sha256"));
    if (!url || strlen(url) > 8192) {
        sy_errf(err, errlen, "media id: WhatsApp's answer has no usable url");
        rc = -SY_EPROTO;
        goto out;
    }
    if (!(m->url = strdup(url))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    if (mime)
        mime_clean(mime, m->mime);
    if (sha)
        snprintf(m->sha256, sizeof m->sha256, "%s", sha);
    m->size = size_of(json_object_get(j, "file_size"));
out:
    json_decref(j);
    sy_http_resp_free(&r);
    sy_http_destroy(h);
    return rc;
}

/* Step 2: GET the URL with the same token (a request of its own, not a redirect) for at most
 * max_bytes. The download host answers an error page to a request without a User-Agent;
 * sy_http always sends one. *data NULL with 0 when the file is over max_bytes. */
static int download(struct wa_conf *c, const struct in_env *env, const struct media *m,
                    const char *auth, long long max_bytes, unsigned char **data, size_t *len,
                    long long *retry_after_ms, char *err, size_t errlen)
{
    struct sy_http_opts o = {.connect_timeout_ms = env->connect_timeout_ms,
                             .timeout_ms = env->timeout_ms,
                             .body_max = (size_t)max_bytes,
                             .insecure_http = c->allow_http};
    struct sy_http *h = sy_http_new(&o);
    const char *headers[] = {auth, NULL};
    struct sy_http_resp r = {0};
    char herr[256] = "";
    int rc;

    *data = NULL;
    *len = 0;
    if (!h)
        return -SY_ENOMEM;
    rc = sy_http_do(h, "GET", m->url, headers, NULL, 0, &r, herr, sizeof herr);
    if (rc == -SY_ETOOBIG) {
        rc = 0; /* more than WhatsApp said: over the limit all the same */
        goto out;
    }
    if (rc != 0 || r.status < 200 || r.status >= 300) {
        json_t *j = rc == 0 ? json_loadb(r.body, r.len, 0, NULL) : NULL;

        rc = refusal(2, rc, herr, &r, j, retry_after_ms, err, errlen, "download");
        json_decref(j);
        goto out;
    }
    *data = (unsigned char *)r.body;
    *len = r.len;
    r.body = NULL; /* taken over */
out:
    sy_http_resp_free(&r);
    sy_http_destroy(h);
    return rc;
}

/* --- fetch ------------------------------------------------------------------------------------ */

static int wa_fetch(void *conf, const struct in_env *env, const char *item, const json_t *hints,
                    long long max_bytes, struct in_fetched *out, long long *retry_after_ms,
                    char *err, size_t errlen)
{
    struct wa_conf *c = conf;
    const char *phone = hint(hints, "phone_number_id"), *caption = hint(hints, "caption");
    char auth[SECRET_MAX + 32], filename[FILENAME_MAX_ + 1], mime[MIME_MAX + 1];
    struct media m = {0};
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = 0;

    *retry_after_ms = -1;
    if (!media_id_ok(item)) {
        sy_errf(err, errlen, "media_id: expected 1 to %d of [A-Za-z0-9_-], got '%.80s'",
                MEDIA_ID_MAX, item);
        return -SY_EINVAL;
    }
    /* Media sent to another business number is not this source's to fetch (nor its token's). */
    if (c->phone_number_id && phone && strcmp(phone, c->phone_number_id) != 0) {
        sy_errf(err, errlen, "phone_number_id: '%.64s' is not this source's number %s", phone,
                c->phone_number_id);
        return -SY_EINVAL;
    }
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
    /* The URL lives 5 minutes: one that expired before its download is resolved again. */
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        free(m.url);
        memset(&m, 0, sizeof m);
        if ((rc = resolve(c, env, item, auth, &m, retry_after_ms, err, errlen)) != 0)
            goto out;
        if (!m.mime[0])
            mime_clean(hint(hints, "mime_type"), m.mime);
        if (!m.sha256[0] && hint(hints, "sha256"))
            snprintf(m.sha256, sizeof m.sha256, "%s", hint(hints, "sha256"));
        if (m.size > max_bytes)
            break; /* refused before it is downloaded */
        rc = download(c, env, &m, auth, max_bytes, &data, &len, retry_after_ms, err, errlen);
        if (rc != -SY_EPROTO)
            break;
    }
    if (rc != 0)
        goto out;
    if (m.size <= max_bytes && data) {
        /* A short or corrupted download (a connection cut, a proxy's page) is tried again
         * later, never stored. */
        if (m.size >= 0 && (long long)len != m.size) {
            sy_errf(err, errlen, "download: %zu bytes, WhatsApp said %lld", len, m.size);
            rc = -SY_EIO;
            goto out;
        }
        if (digest_matches(m.sha256, data, len) == 0) {
            sy_errf(err, errlen, "download: %zu bytes whose SHA-256 is not the one WhatsApp gave",
                    len);
            rc = -SY_EIO;
            goto out;
        }
    }
    snprintf(mime, sizeof mime, "%s", m.mime);
    filename_of(hints, item, mime, filename, sizeof filename);
    out->meta =
        json_pack("{s:s?, s:s?, s:s?, s:O?, s:s?}", "from", hint(hints, "from"), "wamid",
                  hint(hints, "wamid"), "media_type", hint(hints, "media_type"), "timestamp",
                  json_object_get(hints, "timestamp"), "phone_number_id", phone);
    out->title = caption ? strdup(caption) : NULL;
    out->source_time = iso_time(json_object_get(hints, "timestamp"));
    if (!out->meta || (caption && !out->title)) {
        rc = -SY_ENOMEM;
        goto out;
    }
    /* Over the limit (said, or found while downloading): the document without its bytes, which
     * ingest.c records as rejected. */
    if (!data) {
        rc = in_fetched_add(out, filename, mime, NULL,
                            m.size > max_bytes ? (size_t)m.size : (size_t)max_bytes + 1);
        goto out;
    }
    if ((rc = in_fetched_add(out, filename, mime, data, len)) == 0)
        data = NULL; /* taken over */
out:
    explicit_bzero(auth, sizeof auth);
    free(m.url);
    free(data);
    return rc;
}

/* Media sent to this source's business number is its own; a source without a number takes
 * any, and media whose message names no number may be any source's. */
static int wa_claims(void *conf, const json_t *hints)
{
    const struct wa_conf *c = conf;
    const char *phone = hint(hints, "phone_number_id");

    if (!c->phone_number_id)
        return 1;
    if (!phone)
        return 1; /* the message does not say: as before, the source's fetch decides */
    return strcmp(phone, c->phone_number_id) == 0 ? 2 : 0;
}

const struct connector connector_whatsapp = {
    .kind = "whatsapp",
    .configure = wa_configure,
    .unconfigure = wa_unconfigure,
    .list = NULL,
    .fetch = wa_fetch,
    .claims = wa_claims,
};
