/* it_ingest_whatsapp.c - sy-ingest's WhatsApp source end to end: ingest.whatsapp.media messages
 * as the gateway publishes them (message id "whatsapp:<wamid>") into the real broker, documents
 * in the real PostgreSQL and file store, the media served by tests/fakes/whatsapp in WhatsApp's
 * two steps with its faults:
 *  - a PDF with a Malayalam caption about an accident becomes a document in Malayalam for
 *    Safety, an image with an English caption one in English for Operations, each with the
 *    message's sender, wamid and time, its bytes in the store under their SHA-256 (hex and
 *    base64 digests, file_size as a number and as a string);
 *  - a redelivered wamid is recorded once; the same bytes under another media id are a
 *    duplicate, not a new document;
 *  - 429 with Retry-After, 503 and 500, and an answer slower than the worker's timeout are
 *    retried until the media is stored, nothing lost;
 *  - an expired media id (400 or 404) is recorded rejected after one call, not retried;
 *  - a file_size over the limit is rejected without a download;
 *  - a short download and one cut midway are retried, then stored whole; a download URL that
 *    expired before its use is resolved again at once;
 *  - an expired token holds the media (nothing recorded) until the token works again;
 *  - nothing is dead-lettered and the token never reaches the worker's log;
 *  - with two business numbers, each its own source, media sent to the second is fetched by
 *    the second; media for a number no source has is dead-lettered naming it; `syctl ingest
 *    status` lists both sources, and shows an expired token as the source's last error until
 *    a fetch works again; a scheduled ingest.poll.whatsapp is acked without counting as a
 *    poll for a kind no source is configured for.
 * Isolation on shared services: the source ("whatsapp:it<run>"), media ids, wamids, bytes and
 * the file store are the run's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatwoot.h"
#include "cm_ingest.h"
#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/files.h"
#include "sy/json.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER       "ingest"
#define KNOWLEDGE    "sy.knowledge"
#define START_MAX_MS 20000
#define WAIT_MS      30000
#define MAX_BYTES    200000
#define MAX_MSGS     256
#define PHONE_ID     "106540352242922"
#define SENT_AT      1796630400 /* 2026-12-07T08:00:00Z */

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char run[17];
    char source[64], token[64], token_env[80];
    char dir[1200], files[1300], conf[1300];
    char queue[256], dead[256];
    struct th_proc proc;
    bool running;
    int port;
    pid_t fake_pid;
    int fake_port;
    struct th_got msgs[MAX_MSGS];
    size_t nmsgs;
};

/* --- the fake -------------------------------------------------------------------------------- */

static void fake_post(struct fixture *f, const char *what, json_t *body)
{
    char path[64], *text = json_dumps(body, JSON_COMPACT);
    struct th_reply r;

    snprintf(path, sizeof path, "/_fake/%s", what);
    r = th_http(f->fake_port, "POST", path, NULL, text);
    if (r.status != 200)
        fail_msg("fake-whatsapp %s: %ld %s", what, r.status, r.body);
    th_reply_free(&r);
    free(text);
    json_decref(body);
}

/* Media the fake serves: bytes, their digest in `form` (hex, base64), file_size as a number or
 * a string, or a claimed size of its own when claimed >= 0. */
static void fake_media(struct fixture *f, const char *id, const char *mime, const void *data,
                       size_t len, const char *form, bool size_string, long long claimed)
{
    char *b64 = malloc(sy_base64_encoded_len(len) + 1);
    json_t *m;

    assert_non_null(b64);
    sy_base64_encode(data, len, false, b64);
    m = json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "mime_type", mime, "data_b64", b64,
                  "sha256_form", form, "file_size_string", size_string);
    if (claimed >= 0)
        json_object_set_new(m, "file_size", json_integer(claimed));
    free(b64);
    fake_post(f, "media", m);
}

static json_t *fake_state(struct fixture *f)
{
    struct th_reply r = th_http(f->fake_port, "GET", "/_fake/state", NULL, NULL);
    json_t *s = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;

    th_reply_free(&r);
    if (!s)
        fail_msg("fake-whatsapp gave no state");
    return s;
}

/* One of the fake's counters, or a media item's ("resolves", "downloads", "partial"). */
static long long fake_count(struct fixture *f, const char *media, const char *what)
{
    json_t *s = fake_state(f);
    json_t *o = media ? json_object_get(json_object_get(s, "media"), media)
                      : json_object_get(s, "counters");
    long long n = json_integer_value(json_object_get(o, what));

    json_decref(s);
    return n;
}

/* --- the messages ---------------------------------------------------------------------------- */

/* A run's own name: "<prefix><run>". */
static void own(const struct fixture *f, const char *prefix, char *out, size_t n)
{
    snprintf(out, n, "%s%s", prefix, f->run);
}

/* ingest.whatsapp.media as sy-gateway publishes it for a webhook's media message. */
static void publish_media(struct fixture *f, const char *media_id, const char *wamid,
                          const char *media_type, const char *mime, const char *filename,
                          const char *caption)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "media_id", media_id, "mime_type",
                          mime, "media_type", media_type, "from", "919800000000", "wamid", wamid,
                          "timestamp", (json_int_t)SENT_AT, "phone_number_id", PHONE_ID);
    char id[200];
    void *mp = NULL;
    size_t len = 0;
    int rc;

    if (filename)
        json_object_set_new(d, "filename", json_string(filename));
    if (caption)
        json_object_set_new(d, "caption", json_string(caption));
    snprintf(id, sizeof id, "whatsapp:%s", wamid);
    rc = sy_json_to_msgpack(d, &mp, &len);
    json_decref(d);
    if (rc == 0)
        rc =
            th_publish_body(f->amqp, f->topo->exchange, "ingest.whatsapp.media", id, mp, len, NULL);
    free(mp);
    if (rc == 0)
        rc = sy_amqp_wait_confirms(f->amqp, 10000);
    if (rc != 0)
        fail_msg("publishing ingest.whatsapp.media: %s", sy_strerror(rc));
}

/* The run's PDF and image: their bytes carry the run id, so no other run has their SHA-256. */
static size_t pdf_of(const struct fixture *f, char *out, size_t n)
{
    return (size_t)snprintf(out, n,
                            "%%PDF-1.4\n%% accident report %s\n1 0 obj << /Type /Catalog >> "
                            "endobj\ntrailer << /Root 1 0 R >>\n%%%%EOF\n",
                            f->run);
}

static size_t jpeg_of(const struct fixture *f, const char *what, unsigned char *out, size_t n)
{
    static const unsigned char soi[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F'};
    size_t k = sizeof soi;

    memcpy(out, soi, k);
    k += (size_t)snprintf((char *)out + k, n - k, "%s %s", what, f->run);
    /* Some size to it, so a half is a real truncation. */
    for (size_t i = 0; i < 3000 && k < n; i++)
        out[k++] = (unsigned char)(i * 7 + 3);
    return k;
}

/* --- the worker and the ledger ---------------------------------------------------------------- */

static void worker_start(struct fixture *f)
{
    char addr[64], inst[96], sources[1400], files[1400], tok[200];

    f->port = th_free_port();
    snprintf(addr, sizeof addr, "SY_HTTP_ADDR=127.0.0.1:%d", f->port);
    snprintf(inst, sizeof inst, "SY_INSTANCE=it-ingest-wa-%s", f->run);
    snprintf(sources, sizeof sources, "SY_INGEST_SOURCES=%s", f->conf);
    snprintf(files, sizeof files, "SY_FILES_ROOT=%s", f->files);
    snprintf(tok, sizeof tok, "%s=%s", f->token_env, f->token);
    /* A slow answer times out in 3 s: the slow-reply case needs no longer. */
    const char *env[] = {addr,
                         inst,
                         sources,
                         files,
                         tok,
                         "SY_INGEST_TIMEOUT=3s",
                         "SY_HANDLER_THREADS=2",
                         "SY_LOG_LEVEL=debug",
                         NULL};
    assert_int_equal(th_proc_spawn(&f->proc, th_need_env("SY_INGEST_BIN"), env), 0);
    f->running = true;
    th_wait_answer(&f->proc, &f->running, "sy-ingest", f->port, "/readyz", 200, START_MAX_MS);
}

static long long pg_count(struct fixture *f, const char *sql, const char *arg)
{
    const char *p[2] = {f->source, arg};
    struct sy_pg_res *res = NULL;
    long long n;

    if (sy_pg_exec(f->pg, sql, arg ? 2 : 1, p, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    n = atoll(sy_pg_res_get(res, 0, 0));
    sy_pg_res_free(res);
    return n;
}

static long long items(struct fixture *f, const char *status)
{
    return th_ingest_items(f->pg, f->source, status);
}

static long long documents(struct fixture *f)
{
    return pg_count(f, "SELECT count(*) FROM documents WHERE source = $1", NULL);
}

/* The status recorded for a media item (its own row, or its document's for "/1"); "" when none. */
static void item_status(struct fixture *f, const char *item, char *out, size_t n)
{
    const char *p[2] = {f->source, item};
    struct sy_pg_res *res = NULL;

    if (sy_pg_exec(f->pg, "SELECT status FROM document_items WHERE source = $1 AND source_id = $2",
                   2, p, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    snprintf(out, n, "%s", sy_pg_res_rows(res) == 1 ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
}

/* Waits until the item is recorded as want, retries included; fails with the worker's log. */
static void wait_item(struct fixture *f, const char *item, const char *want)
{
    int64_t end = th_now_ms() + WAIT_MS;
    char st[32];

    for (;;) {
        item_status(f, item, st, sizeof st);
        if (strcmp(st, want) == 0)
            return;
        if (st[0])
            fail_msg("%s recorded %s, expected %s", item, st, want);
        if (th_proc_wait(&f->proc, 0) == 0) {
            f->running = false;
            th_proc_dump_log(&f->proc, 40);
            fail_msg("sy-ingest exited with %d", f->proc.exit_status);
        }
        if (th_now_ms() > end) {
            th_proc_dump_log(&f->proc, 40);
            fail_msg("%s not recorded after %d ms, expected %s", item, WAIT_MS, want);
        }
        th_sleep_ms(100);
    }
}

/* The part's status, after its item was expanded. */
static void assert_part(struct fixture *f, const char *item, const char *want)
{
    char part[300], st[32];

    snprintf(part, sizeof part, "%s/1", item);
    item_status(f, part, st, sizeof st);
    if (strcmp(st, want) != 0)
        fail_msg("%s: %s, expected %s", part, st, want);
}

/* document.ingested messages of this run's source so far. */
static size_t announced(struct fixture *f)
{
    return th_ingest_announced(f->amqp, KNOWLEDGE, f->msgs, MAX_MSGS, &f->nmsgs, f->source);
}

/* The stored bytes of an item's document equal data. */
static void assert_stored(struct fixture *f, const char *item, const void *data, size_t len)
{
    char part[300], hex[2 * SY_SHA256_LEN + 1];
    const char *p[2] = {f->source, part};
    struct sy_pg_res *res = NULL;
    uint8_t digest[SY_SHA256_LEN];
    void *got = NULL;
    size_t got_len = 0;

    snprintf(part, sizeof part, "%s/1", item);
    if (sy_pg_exec(f->pg,
                   "SELECT d.sha256 FROM document_items i JOIN documents d ON d.id = i.document_id"
                   " WHERE i.source = $1 AND i.source_id = $2",
                   2, p, &res) != 0 ||
        sy_pg_res_rows(res) != 1)
        fail_msg("%s: no document (%s)", part, sy_pg_error(f->pg));
    sy_sha256(data, len, digest);
    sy_hex_encode(digest, sizeof digest, hex);
    assert_string_equal(sy_pg_res_get(res, 0, 0), hex);
    sy_pg_res_free(res);
    assert_int_equal(sy_files_get(f->files, hex, 1 << 20, &got, &got_len), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
}

/* --- tests ----------------------------------------------------------------------------------- */

static void media_become_documents_with_language_and_department(void **state)
{
    struct fixture *f = *state;
    char pdf[512], doc_id[64], img_id[64], wamid1[80], wamid2[80];
    unsigned char jpg[4096];
    size_t pdf_len = pdf_of(f, pdf, sizeof pdf), jpg_len = jpeg_of(f, "crowd", jpg, sizeof jpg);

    own(f, "d1", doc_id, sizeof doc_id);
    own(f, "i1", img_id, sizeof img_id);
    own(f, "wamid.HBgMOTE5ODAwMDAwMDAwFQIAEhgg1", wamid1, sizeof wamid1);
    own(f, "wamid.HBgMOTE5ODAwMDAwMDAwFQIAEhgg2", wamid2, sizeof wamid2);
    /* The digest in hex and file_size a number; then base64 and a string: both are seen. */
    fake_media(f, doc_id, "application/pdf", pdf, pdf_len, "hex", false, -1);
    fake_media(f, img_id, "image/jpeg", jpg, jpg_len, "base64", true, -1);
    worker_start(f);

    /* "An accident at Vyttila station: a passenger injured on the platform. Safety report
     * attached." */
    publish_media(f, doc_id, wamid1, "document", "application/pdf", "അപകടം റിപ്പോർട്ട്.pdf",
                  "വൈറ്റില സ്റ്റേഷനിൽ അപകടം. പ്ലാറ്റ്ഫോമിൽ ഒരു യാത്രക്കാരന് പരിക്ക് "
                  "പറ്റി. സുരക്ഷ റിപ്പോർട്ട് ചേർക്കുന്നു.");
    publish_media(f, img_id, wamid2, "image", "image/jpeg", NULL,
                  "Evening crowd on the Aluva station platform, passengers waiting for the "
                  "delayed train");
    wait_item(f, doc_id, "expanded");
    wait_item(f, img_id, "expanded");
    assert_part(f, doc_id, "stored");
    assert_part(f, img_id, "stored");
    assert_int_equal(documents(f), 2);
    assert_stored(f, doc_id, pdf, pdf_len);
    assert_stored(f, img_id, jpg, jpg_len);

    struct sy_pg_res *res = NULL;
    const char *p[1] = {f->source};
    if (sy_pg_exec(f->pg,
                   "SELECT filename, mime, language, COALESCE(department, ''),"
                   " metadata->>'from', metadata->>'wamid', metadata->>'media_type',"
                   " metadata->>'phone_number_id', metadata->>'timestamp',"
                   " to_char(source_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'),"
                   " source_id FROM documents WHERE source = $1 ORDER BY source_id",
                   1, p, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    assert_int_equal(sy_pg_res_rows(res), 2);
    char img_name[80], doc_part[80], img_part[80], ts[24];
    snprintf(img_name, sizeof img_name, "%s.jpg", img_id);
    snprintf(doc_part, sizeof doc_part, "%s/1", doc_id);
    snprintf(img_part, sizeof img_part, "%s/1", img_id);
    snprintf(ts, sizeof ts, "%d", SENT_AT);
    const char *want[2][11] = {
        {"അപകടം റിപ്പോർട്ട്.pdf", "application/pdf", "ml", "Safety", "919800000000", wamid1,
         "document", PHONE_ID, ts, "2026-12-07T08:00:00", doc_part},
        {img_name, "image/jpeg", "en", "Operations", "919800000000", wamid2, "image", PHONE_ID, ts,
         "2026-12-07T08:00:00", img_part},
    };
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 11; c++)
            if (strcmp(sy_pg_res_get(res, i, c), want[i][c]) != 0)
                fail_msg("document %d column %d: '%s', expected '%s'", i, c,
                         sy_pg_res_get(res, i, c), want[i][c]);
    sy_pg_res_free(res);
    assert_int_equal(announced(f), 2);
    /* Each in two steps, the download with a User-Agent. */
    assert_int_equal(fake_count(f, doc_id, "resolves"), 1);
    assert_int_equal(fake_count(f, doc_id, "downloads"), 1);
    assert_int_equal(fake_count(f, img_id, "downloads"), 1);
    assert_int_equal(fake_count(f, NULL, "refused_agent"), 0);
}

static void a_redelivery_is_recorded_once_and_the_same_bytes_are_a_duplicate(void **state)
{
    struct fixture *f = *state;
    char pdf[512], doc_id[64], again_id[64], wamid1[80], wamid3[80];
    size_t pdf_len = pdf_of(f, pdf, sizeof pdf);

    own(f, "d1", doc_id, sizeof doc_id);
    own(f, "d2", again_id, sizeof again_id);
    own(f, "wamid.HBgMOTE5ODAwMDAwMDAwFQIAEhgg1", wamid1, sizeof wamid1);
    own(f, "wamid.HBgMOTE5ODAwMDAwMDAwFQIAEhgg3", wamid3, sizeof wamid3);
    /* WhatsApp delivers the webhook again: the gateway publishes the same message again. */
    publish_media(f, doc_id, wamid1, "document", "application/pdf", "അപകടം റിപ്പോർട്ട്.pdf", NULL);
    /* The same file forwarded by someone else: another media id, the same bytes. */
    fake_media(f, again_id, "application/pdf", pdf, pdf_len, "hex", false, -1);
    publish_media(f, again_id, wamid3, "document", "application/pdf", "report.pdf", NULL);
    wait_item(f, again_id, "expanded");
    assert_part(f, again_id, "duplicate");
    int64_t end = th_now_ms() + 3000;
    while (th_queue_depth(f->amqp, f->queue) != 0 && th_now_ms() < end)
        th_sleep_ms(100);
    th_sleep_ms(500);
    assert_int_equal(fake_count(f, doc_id, "resolves"), 1);
    assert_int_equal(items(f, "expanded"), 3);
    assert_int_equal(items(f, "stored"), 2);
    assert_int_equal(items(f, "duplicate"), 1);
    assert_int_equal(documents(f), 2);
    assert_int_equal(announced(f), 2);
}

static void throttling_server_errors_and_slow_answers_are_retried_and_nothing_is_lost(void **state)
{
    struct fixture *f = *state;
    unsigned char a[4096], b[4096], c[4096];
    size_t alen = jpeg_of(f, "throttled", a, sizeof a), blen = jpeg_of(f, "failing", b, sizeof b);
    size_t clen = jpeg_of(f, "slow", c, sizeof c);
    char ida[64], idb[64], idc[64], wa[80], wb[80], wc[80];
    long long faults = fake_count(f, NULL, "faults");

    own(f, "t1", ida, sizeof ida);
    own(f, "t2", idb, sizeof idb);
    own(f, "t3", idc, sizeof idc);
    own(f, "wamid.HBgMt1", wa, sizeof wa);
    own(f, "wamid.HBgMt2", wb, sizeof wb);
    own(f, "wamid.HBgMt3", wc, sizeof wc);
    fake_media(f, ida, "image/jpeg", a, alen, "hex", false, -1);
    fake_media(f, idb, "image/jpeg", b, blen, "hex", false, -1);
    fake_media(f, idc, "image/jpeg", c, clen, "hex", false, -1);

    /* 429 with Retry-After, then 503, on the media id. */
    fake_post(f, "faults",
              json_pack("{s:i, s:i, s:i, s:s}", "fail_429", 1, "retry_after", 1, "fail_503", 1,
                        "on", "any"));
    publish_media(f, ida, wa, "image", "image/jpeg", NULL, "platform photo");
    wait_item(f, ida, "expanded");
    assert_part(f, ida, "stored");
    assert_stored(f, ida, a, alen);
    assert_int_equal(fake_count(f, NULL, "faults"), faults + 2);

    /* 500 on the download itself. */
    fake_post(f, "faults", json_pack("{s:i, s:s}", "fail_500", 1, "on", "download"));
    publish_media(f, idb, wb, "image", "image/jpeg", NULL, "platform photo");
    wait_item(f, idb, "expanded");
    assert_part(f, idb, "stored");
    assert_stored(f, idb, b, blen);
    assert_int_equal(fake_count(f, NULL, "faults"), faults + 3);
    fake_post(f, "faults", json_pack("{s:s}", "on", "any"));

    /* An answer later than the worker's 3 s: timed out, asked again. */
    long long calls = fake_count(f, NULL, "media_calls");
    fake_post(f, "faults", json_pack("{s:i}", "delay_ms", 4500));
    publish_media(f, idc, wc, "image", "image/jpeg", NULL, "platform photo");
    int64_t end = th_now_ms() + 10000;
    while (fake_count(f, NULL, "media_calls") == calls && th_now_ms() < end)
        th_sleep_ms(50);
    fake_post(f, "faults", json_pack("{s:i}", "delay_ms", 0));
    wait_item(f, idc, "expanded");
    assert_part(f, idc, "stored");
    assert_stored(f, idc, c, clen);
    assert_true(fake_count(f, idc, "resolves") >= 2);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);
}

static void an_expired_media_id_is_rejected_once_not_retried(void **state)
{
    struct fixture *f = *state;
    unsigned char a[4096];
    size_t alen = jpeg_of(f, "expired", a, sizeof a);
    char id400[64], id404[64], w1[80], w2[80], st[32];
    long long calls = fake_count(f, NULL, "media_calls");

    own(f, "x1", id400, sizeof id400);
    own(f, "x2", id404, sizeof id404);
    own(f, "wamid.HBgMx1", w1, sizeof w1);
    own(f, "wamid.HBgMx2", w2, sizeof w2);
    fake_media(f, id400, "image/jpeg", a, alen, "hex", false, -1);
    fake_media(f, id404, "image/jpeg", a, alen, "hex", false, -1);
    fake_post(f, "expire", json_pack("{s:s, s:i}", "id", id400, "status", 400));
    fake_post(f, "expire", json_pack("{s:s, s:i}", "id", id404, "status", 404));
    publish_media(f, id400, w1, "image", "image/jpeg", NULL, NULL);
    publish_media(f, id404, w2, "image", "image/jpeg", NULL, NULL);
    wait_item(f, id400, "rejected");
    wait_item(f, id404, "rejected");
    th_sleep_ms(2500); /* a retry, were there one, would have come by now */
    assert_int_equal(fake_count(f, NULL, "media_calls"), calls + 2);
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM document_items WHERE source = $1 AND"
                              " source_id LIKE $2::text || '%' AND status = 'rejected'"
                              " AND reason LIKE 'gone from the source%'",
                              "x"),
                     2);
    item_status(f, id400, st, sizeof st);
    assert_string_equal(st, "rejected");
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);
}

static void a_file_over_the_limit_is_rejected_without_a_download(void **state)
{
    struct fixture *f = *state;
    unsigned char a[4096];
    size_t alen = jpeg_of(f, "big", a, sizeof a);
    char id[64], w[80];

    own(f, "b1", id, sizeof id);
    own(f, "wamid.HBgMb1", w, sizeof w);
    /* WhatsApp says 5 MB; the limit is 200 kB. */
    fake_media(f, id, "video/mp4", a, alen, "hex", false, 5000000);
    publish_media(f, id, w, "video", "video/mp4", NULL, "the crowd at the gate");
    wait_item(f, id, "expanded");
    assert_part(f, id, "rejected");
    assert_int_equal(pg_count(f,
                              "SELECT count(*) FROM document_items WHERE source = $1 AND"
                              " source_id = $2::text || '/1' AND reason LIKE '%limit%'"
                              " AND size = 5000000",
                              id),
                     1);
    assert_int_equal(fake_count(f, id, "resolves"), 1);
    assert_int_equal(fake_count(f, id, "downloads"), 0);
    assert_int_equal(fake_count(f, id, "partial"), 0);
}

static void a_truncated_download_is_retried_then_stored_whole(void **state)
{
    struct fixture *f = *state;
    unsigned char a[4096], b[4096];
    size_t alen = jpeg_of(f, "short", a, sizeof a), blen = jpeg_of(f, "cut", b, sizeof b);
    char ida[64], idb[64], wa[80], wb[80];

    own(f, "s1", ida, sizeof ida);
    own(f, "s2", idb, sizeof idb);
    own(f, "wamid.HBgMs1", wa, sizeof wa);
    own(f, "wamid.HBgMs2", wb, sizeof wb);
    fake_media(f, ida, "image/jpeg", a, alen, "hex", false, -1);
    fake_media(f, idb, "image/jpeg", b, blen, "base64", true, -1);

    /* Half the bytes in a complete answer: only the size and digest tell. */
    fake_post(f, "faults", json_pack("{s:i, s:s}", "truncate", 1, "truncate_mode", "short"));
    publish_media(f, ida, wa, "image", "image/jpeg", NULL, NULL);
    wait_item(f, ida, "expanded");
    assert_part(f, ida, "stored");
    assert_stored(f, ida, a, alen);
    assert_int_equal(fake_count(f, ida, "partial"), 1);
    assert_int_equal(fake_count(f, ida, "downloads"), 1);

    /* The connection cut midway through the announced length. */
    fake_post(f, "faults", json_pack("{s:i, s:s}", "truncate", 1, "truncate_mode", "cut"));
    publish_media(f, idb, wb, "image", "image/jpeg", NULL, NULL);
    wait_item(f, idb, "expanded");
    assert_part(f, idb, "stored");
    assert_stored(f, idb, b, blen);
    assert_int_equal(fake_count(f, idb, "partial"), 1);
    assert_int_equal(fake_count(f, idb, "downloads"), 1);
}

static void an_expired_download_url_is_resolved_again(void **state)
{
    struct fixture *f = *state;
    unsigned char a[4096];
    size_t alen = jpeg_of(f, "late", a, sizeof a);
    char id[64], w[80];
    long long expired = fake_count(f, NULL, "expired_urls");

    own(f, "u1", id, sizeof id);
    own(f, "wamid.HBgMu1", w, sizeof w);
    fake_media(f, id, "image/jpeg", a, alen, "hex", false, -1);
    fake_post(f, "faults", json_pack("{s:i}", "expire_url", 1));
    publish_media(f, id, w, "image", "image/jpeg", NULL, NULL);
    wait_item(f, id, "expanded");
    assert_part(f, id, "stored");
    assert_stored(f, id, a, alen);
    assert_int_equal(fake_count(f, NULL, "expired_urls"), expired + 1);
    assert_int_equal(fake_count(f, id, "resolves"), 2);
    assert_int_equal(fake_count(f, id, "downloads"), 1);
}

static void an_expired_token_holds_the_media_until_it_works_again(void **state)
{
    struct fixture *f = *state;
    unsigned char a[4096];
    size_t alen = jpeg_of(f, "token", a, sizeof a);
    char id[64], w[80], st[32];
    long long refused = fake_count(f, NULL, "refused_token");

    own(f, "k1", id, sizeof id);
    own(f, "wamid.HBgMk1", w, sizeof w);
    fake_media(f, id, "image/jpeg", a, alen, "hex", false, -1);
    fake_post(f, "faults", json_pack("{s:b}", "expire_token", 1));
    publish_media(f, id, w, "image", "image/jpeg", NULL, NULL);
    int64_t end = th_now_ms() + 10000;
    while (fake_count(f, NULL, "refused_token") == refused && th_now_ms() < end)
        th_sleep_ms(50);
    assert_true(fake_count(f, NULL, "refused_token") > refused);
    th_sleep_ms(300);
    /* Not rejected, not gone: it waits for a token that works. */
    item_status(f, id, st, sizeof st);
    assert_string_equal(st, "");
    fake_post(f, "faults", json_pack("{s:b}", "expire_token", 0));
    wait_item(f, id, "expanded");
    assert_part(f, id, "stored");
    assert_stored(f, id, a, alen);

    /* Everything of the run: nothing in the dead letters, no token in the log. */
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);
    assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_true(th_log_count(&f->proc, "access token") > 0);
    assert_int_equal(th_log_count(&f->proc, f->token), 0);
}

/* --- two business numbers ------------------------------------------------------------------- */

#define PHONE_ID2 "106540352242933"
#define PHONE_ID3 "106540352242944"

/* ingest.whatsapp.media for media sent to the business number phone. */
static void publish_media_to(struct fixture *f, const char *phone, const char *media_id,
                             const char *wamid)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "media_id", media_id, "mime_type",
                          "image/jpeg", "media_type", "image", "from", "919800000000", "wamid",
                          wamid, "timestamp", (json_int_t)SENT_AT, "phone_number_id", phone);
    char id[200];
    void *mp = NULL;
    size_t len = 0;
    int rc;

    snprintf(id, sizeof id, "whatsapp:%s", wamid);
    rc = sy_json_to_msgpack(d, &mp, &len);
    json_decref(d);
    if (rc == 0)
        rc =
            th_publish_body(f->amqp, f->topo->exchange, "ingest.whatsapp.media", id, mp, len, NULL);
    free(mp);
    if (rc == 0)
        rc = sy_amqp_wait_confirms(f->amqp, 10000);
    if (rc != 0)
        fail_msg("publishing ingest.whatsapp.media: %s", sy_strerror(rc));
}

/* The text of sql's first cell over $1 = source, $2 = arg ("" when no row or NULL). */
static void pg_text_of(struct fixture *f, const char *source, const char *sql, const char *arg,
                       char *out, size_t n)
{
    const char *p[2] = {source, arg};
    struct sy_pg_res *res = NULL;

    if (sy_pg_exec(f->pg, sql, arg ? 2 : 1, p, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    snprintf(out, n, "%s", sy_pg_res_rows(res) == 1 ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
}

/* `syctl ingest status --json`'s entry for source (a new reference), NULL when it has none. */
static json_t *status_of(const char *source)
{
    char *out = NULL, *err = NULL;
    const char *args[] = {"ingest", "status", "--json", NULL};
    json_t *all, *it, *mine = NULL;
    size_t i;

    assert_int_equal(th_run(th_need_env("SYCTL_BIN"), args, NULL, 30000, &out, &err), 0);
    all = json_loads(out, 0, NULL);
    assert_non_null(all);
    json_array_foreach(all, i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "source")), source) == 0)
            mine = json_incref(it);
    }
    json_decref(all);
    free(out);
    free(err);
    return mine;
}

/* The value of the worker's first metric line starting with name ("{" or " " next). */
static long long metric(struct fixture *f, const char *name)
{
    struct th_reply r = th_http(f->port, "GET", "/metrics", NULL, NULL);
    const char *p = r.body;
    long long v = -1;

    for (; r.status == 200 && p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
        if (strncmp(p, name, strlen(name)) == 0 &&
            (p[strlen(name)] == '{' || p[strlen(name)] == ' ')) {
            const char *sp = strchr(p, ' ');

            v = sp ? atoll(sp + 1) : -1;
            break;
        }
    }
    th_reply_free(&r);
    return v;
}

static void a_second_number_has_its_own_source_and_its_errors_are_shown(void **state)
{
    struct fixture *f = *state;
    char yaml[2048], port[16], second[80], id[64], w[80], st[32], why[600];
    unsigned char a[4096];
    size_t alen = jpeg_of(f, "second number", a, sizeof a);
    long long refused = fake_count(f, NULL, "refused_token");
    json_t *s;

    /* The same account's second number, a source of its own after the first. */
    snprintf(second, sizeof second, "whatsapp:it%sb", f->run);
    snprintf(port, sizeof port, "%d", f->fake_port);
    snprintf(yaml, sizeof yaml,
             "limits:\n  max_bytes: %d\n  types: [application/pdf, image/*, video/*]\n"
             "whatsapp:\n  it%s:\n    graph_url: http://127.0.0.1:%s/v21.0\n"
             "    access_token_env: %s\n    phone_number_id: \"%s\"\n    allow_http: true\n"
             "  it%sb:\n    graph_url: http://127.0.0.1:%s/v21.0\n"
             "    access_token_env: %s\n    phone_number_id: \"%s\"\n    allow_http: true\n",
             MAX_BYTES, f->run, port, f->token_env, PHONE_ID, f->run, port, f->token_env,
             PHONE_ID2);
    assert_int_equal(th_write_file(f->conf, yaml), 0);
    th_proc_cleanup(&f->proc);
    worker_start(f);

    /* An expired token: the media waits, and the second source shows why. */
    own(f, "n2", id, sizeof id);
    own(f, "wamid.HBgMn2", w, sizeof w);
    fake_media(f, id, "image/jpeg", a, alen, "hex", false, -1);
    fake_post(f, "faults", json_pack("{s:b}", "expire_token", 1));
    publish_media_to(f, PHONE_ID2, id, w);
    int64_t end = th_now_ms() + WAIT_MS;
    for (;;) {
        pg_text_of(f, second,
                   "SELECT COALESCE(last_error, '') FROM ingest_sources WHERE source = $1", NULL,
                   why, sizeof why);
        if (*why || th_now_ms() > end)
            break;
        th_sleep_ms(100);
    }
    assert_true(fake_count(f, NULL, "refused_token") > refused);
    if (strncmp(why, "fetch ", 6) != 0 || !strstr(why, "access token"))
        fail_msg("last_error of %s: '%s', expected the refused token", second, why);
    s = status_of(second);
    if (!s)
        fail_msg("syctl ingest status does not list %s", second);
    assert_true(strstr(json_string_value(json_object_get(s, "last_error")), "access token"));
    /* A fetch is not a poll. */
    assert_true(json_is_null(json_object_get(s, "last_poll")));
    json_decref(s);

    /* The token works again: the second number's source stores it, and its error is over. */
    fake_post(f, "faults", json_pack("{s:b}", "expire_token", 0));
    end = th_now_ms() + WAIT_MS;
    for (;;) {
        pg_text_of(f, second,
                   "SELECT status FROM document_items WHERE source = $1 AND source_id = $2", id, st,
                   sizeof st);
        if (*st || th_now_ms() > end)
            break;
        th_sleep_ms(100);
    }
    assert_string_equal(st, "expanded");
    item_status(f, id, st, sizeof st);
    assert_string_equal(st, ""); /* not the first number's */
    s = status_of(second);
    assert_non_null(s);
    assert_true(json_is_null(json_object_get(s, "last_error")));
    assert_false(json_is_null(json_object_get(s, "last_ok")));
    assert_int_equal(json_integer_value(json_object_get(s, "stored")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "documents")), 1);
    json_decref(s);
    s = status_of(f->source);
    if (!s)
        fail_msg("syctl ingest status does not list %s", f->source);
    json_decref(s);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);

    /* A number no source has: dead-lettered at once, naming it. */
    own(f, "n3", id, sizeof id);
    own(f, "wamid.HBgMn3", w, sizeof w);
    fake_media(f, id, "image/jpeg", a, alen, "hex", false, -1);
    publish_media_to(f, PHONE_ID3, id, w);
    end = th_now_ms() + WAIT_MS;
    while (th_queue_depth(f->amqp, f->dead) == 0 && th_now_ms() < end)
        th_sleep_ms(100);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 1);
    assert_int_equal(fake_count(f, id, "resolves"), 0);

    /* WhatsApp lists nothing: its poll is acked, and not as one for an unconfigured kind. */
    long long acked = metric(f, "sy_acked_total");
    th_ingest_publish(f->amqp, f->topo->exchange, "ingest.poll.whatsapp", NULL, NULL, 0);
    end = th_now_ms() + WAIT_MS;
    while (metric(f, "sy_acked_total") == acked && th_now_ms() < end)
        th_sleep_ms(100);
    assert_int_equal(metric(f, "sy_acked_total"), acked + 1);
    assert_int_equal(metric(f, "sy_ingest_items_total{outcome=\"unconfigured_poll\"}"), 0);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 1);
    assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_true(th_log_count(&f->proc, PHONE_ID3) > 0);

    const char *p[1] = {second};
    sy_pg_exec(f->pg, "DELETE FROM document_items WHERE source = $1", 1, p, NULL);
    sy_pg_exec(f->pg, "DELETE FROM documents WHERE source = $1", 1, p, NULL);
    sy_pg_exec(f->pg, "DELETE FROM ingest_sources WHERE source = $1", 1, p, NULL);
    th_purge_worker(f->amqp, f->topo, "ingest");
}

/* --- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char bin[1200], yaml[2048], port[16];

    assert_non_null(f);
    th_need_env("SY_INGEST_BIN");
    th_run_id(f->run);
    snprintf(f->source, sizeof f->source, "whatsapp:it%s", f->run);
    snprintf(f->token, sizeof f->token, "EAAJtok%s", f->run);
    snprintf(f->token_env, sizeof f->token_env, "SY_IT_WA_TOKEN_%s", f->run);

    /* Every fake announces its port on its first line, as fake-glpi does. */
    snprintf(bin, sizeof bin, "%s/whatsapp/fake-whatsapp", th_need_env("SY_FAKES_DIR"));
    const char *argv[] = {bin, "--token", f->token, "--url-ttl", "5", NULL};
    if (th_fake_glpi_start(argv, &f->fake_pid, &f->fake_port) != 0)
        fail_msg("fake-whatsapp did not start: %s", bin);
    snprintf(port, sizeof port, "%d", f->fake_port);

    th_ingest_prepare("it-ingest-whatsapp", f->run, &f->amqp, &f->topo, f->queue, f->dead, &f->pg,
                      f->dir, f->files, f->conf);
    snprintf(yaml, sizeof yaml,
             "limits:\n  max_bytes: %d\n  types: [application/pdf, image/*, video/*]\n"
             "whatsapp:\n  it%s:\n    graph_url: http://127.0.0.1:%s/v21.0\n"
             "    access_token_env: %s\n    phone_number_id: \"%s\"\n    allow_http: true\n",
             MAX_BYTES, f->run, port, f->token_env, PHONE_ID);
    assert_int_equal(th_write_file(f->conf, yaml), 0);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;

    th_fake_glpi_stop(&f->fake_pid);
    th_ingest_teardown(&f->proc, &f->running, f->amqp, f->topo, f->pg, f->source, f->dir, f->msgs,
                       f->nmsgs);
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(media_become_documents_with_language_and_department),
        cmocka_unit_test(a_redelivery_is_recorded_once_and_the_same_bytes_are_a_duplicate),
        cmocka_unit_test(throttling_server_errors_and_slow_answers_are_retried_and_nothing_is_lost),
        cmocka_unit_test(an_expired_media_id_is_rejected_once_not_retried),
        cmocka_unit_test(a_file_over_the_limit_is_rejected_without_a_download),
        cmocka_unit_test(a_truncated_download_is_retried_then_stored_whole),
        cmocka_unit_test(an_expired_download_url_is_resolved_again),
        cmocka_unit_test(an_expired_token_holds_the_media_until_it_works_again),
        cmocka_unit_test(a_second_number_has_its_own_source_and_its_errors_are_shown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
