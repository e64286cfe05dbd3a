/* it_ingest.c - sy-ingest end to end against the stack's real Dovecot (SY_IMAP_URL), broker,
 * PostgreSQL and Redis, on the fleet's own topology and schemas. A mailbox of the run's own
 * gets mails through IMAP APPEND:
 *  - a Malayalam mail (RFC 2047 subject, an RFC 2231 Malayalam file name) with a PDF and a CSV,
 *    an English mail with no attachment, and an HTML mail with an inline image become four
 *    documents with their language and department, their bytes in the file store under their
 *    SHA-256, and one document.ingested each;
 *  - a second poll lists nothing new; the same PDF in another mail is a duplicate, not a new
 *    document; a mail over the size limit is rejected without being downloaded;
 *  - a poll whose cursor advance was lost (a crash after the fetches were published) lists the
 *    same mails again and makes no new document;
 *  - a mailbox re-created under a new UIDVALIDITY is listed again, and its old mail is found by
 *    its bytes;
 *  - an attachment named in 2000 bytes (RFC 2231) is kept and announced under a name cut to
 *    document.ingested's 1024 bytes, its extension kept; a text type of 300 bytes becomes
 *    application/octet-stream; neither holds up the mail's other attachments;
 *  - a second mailbox, searched three UIDs at a time and listed four mails a poll, with UIDs
 *    expunged between its mails: each mail is listed once, the cursor stops at the fourth,
 *    and a window of expunged UIDs moves it on all the same.
 * Isolation on shared services: the mailboxes, the sources ("email:it<run>", "email:itw<run>")
 * and the file store are the run's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_ingest.h"
#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/files.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER    "ingest"
#define KNOWLEDGE "sy.knowledge"
#define WAIT_MS   60000
#define MAX_BYTES 200000
#define MAX_MSGS  256

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char run[17];
    char mailbox[40], source[64];
    char wmailbox[40], wsource[64]; /* the mailbox searched window by window */
    char base[256];                 /* imap://host:port/ */
    char dir[1200], files[1300], conf[1300];
    char queue[256], dead[256];
    struct th_proc proc;
    bool running;
    int port;
    struct th_got msgs[MAX_MSGS];
    size_t nmsgs;
};

/* --- IMAP as a mail client sees it ---------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* One IMAP request: url under the server, an optional command, an optional message to APPEND. */
static void imap(struct fixture *f, const char *path, const char *command, const char *upload)
{
    CURL *c = curl_easy_init();
    char url[512];
    CURLcode cc;

    snprintf(url, sizeof url, "%s%s", f->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERNAME, th_need_env("SY_IMAP_USER"));
    curl_easy_setopt(c, CURLOPT_PASSWORD, th_need_env("SY_IMAP_PASSWORD"));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (command)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, command);
    if (upload) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)strlen(upload));
        FILE *m = fmemopen((void *)upload, strlen(upload), "r");
        assert_non_null(m);
        curl_easy_setopt(c, CURLOPT_READDATA, m);
        cc = curl_easy_perform(c);
        fclose(m);
    } else {
        cc = curl_easy_perform(c);
    }
    curl_easy_cleanup(c);
    if (cc != CURLE_OK)
        fail_msg("IMAP %s %s: %s", path, command ? command : "APPEND", curl_easy_strerror(cc));
}

static void append(struct fixture *f, const char *mail)
{
    imap(f, f->mailbox, NULL, mail);
}

/* A base64 body of len bytes, 76 characters a line; malloc'd. */
static char *b64(const void *data, size_t len)
{
    char *flat = malloc(sy_base64_encoded_len(len) + 1), *out;
    size_t n = sy_base64_encode(data, len, false, flat), o = 0;

    out = malloc(n + n / 76 * 2 + 3);
    for (size_t i = 0; i < n; i += 76) {
        size_t k = n - i < 76 ? n - i : 76;

        memcpy(out + o, flat + i, k);
        o += k;
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o] = '\0';
    free(flat);
    return out;
}

/* The run's PDF: its bytes carry the run id, so no other run has the same SHA-256. */
static void pdf_of(struct fixture *f, char *out, size_t n)
{
    snprintf(out, n,
             "%%PDF-1.4\n%% run %s\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R "
             ">>\n%%%%EOF\n",
             f->run);
}

static char *malayalam_mail(struct fixture *f, const char *message_id)
{
    char pdf[256], *pdf64, *csv64, *mail = malloc(16384);
    const char *csv = "km,defect\n12.4,fastening\n";

    pdf_of(f, pdf, sizeof pdf);
    pdf64 = b64(pdf, strlen(pdf));
    csv64 = b64(csv, strlen(csv));
    /* Subject: പരിശോധന റിപ്പോർട്ട് (inspection report); the PDF is റിപ്പോർട്ട്.pdf. */
    snprintf(
        mail, 16384,
        "From: Track Engineer <pwi@example.org>\r\n"
        "To: ingest@example.org\r\n"
        "Subject: "
        "=?UTF-8?B?4LSq4LSw4LS/"
        "4LS24LWL4LSn4LSoIOC0seC0v+C0quC1jeC0quC1i+C1vOC0n+C1jeC0n+C1jQ==?=\r\n"
        "Message-ID: <%s>\r\n"
        "Date: Mon, 07 Dec 2026 10:00:00 +0530\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "ആലുവ മുതൽ ഇടപ്പള്ളി വരെയുള്ള പാളം പരിശോധന പൂർത്തിയായി. രണ്ട് തകരാർ കണ്ടെത്തി. "
        "അറ്റകുറ്റപ്പണി ഡിപ്പോയിൽ അടുത്ത ആഴ്ച നടത്തും. വിശദമായ റിപ്പോർട്ട് ചേർത്തിരിക്കുന്നു. "
        "എല്ലാ സ്റ്റേഷനുകളിലും അറിയിപ്പ് നൽകിയിട്ടുണ്ട്.\r\n"
        "--b1\r\n"
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment; "
        "filename*=UTF-8''%%E0%%B4%%B1%%E0%%B4%%BF%%E0%%B4%%AA%%E0%%B5%%8D%%E0%%B4%%AA%%E0%%B5%%8B"
        "%%E0%%B5%%BC%%E0%%B4%%9F%%E0%%B5%%8D%%E0%%B4%%9F%%E0%%B5%%8D.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s"
        "--b1\r\n"
        "Content-Type: text/csv; name=\"readings.csv\"\r\n"
        "Content-Disposition: attachment; filename=\"readings.csv\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s"
        "--b1--\r\n",
        message_id, pdf64, csv64);
    free(pdf64);
    free(csv64);
    return mail;
}

/* --- the worker ------------------------------------------------------------------------------ */

static void worker_start(struct fixture *f)
{
    th_ingest_start(&f->proc, &f->running, &f->port, f->run, f->conf, f->files, NULL);
}

static void poll_now(struct fixture *f)
{
    th_ingest_publish(f->amqp, f->topo->exchange, "ingest.poll.email", NULL, NULL, 0);
}

static long long pg_count(struct fixture *f, const char *sql)
{
    return th_ingest_count(f->pg, f->source, sql);
}

static long long items(struct fixture *f, const char *status)
{
    return th_ingest_items(f->pg, f->source, status);
}

/* Waits until `status` items number want and the worker's queues are empty. */
static void wait_items(struct fixture *f, const char *status, long long want)
{
    th_ingest_wait_items(f->amqp, f->queue, f->pg, f->source, status, want, &f->proc, &f->running,
                         WAIT_MS);
}

static long long documents(struct fixture *f)
{
    return pg_count(f, "SELECT count(*) FROM documents WHERE source = $1");
}

/* document.ingested messages of this run's source so far. */
static size_t announced(struct fixture *f)
{
    return th_ingest_announced(f->amqp, KNOWLEDGE, f->msgs, MAX_MSGS, &f->nmsgs, f->source);
}

/* --- tests ----------------------------------------------------------------------------------- */

static void mails_become_documents_with_language_and_department(void **state)
{
    struct fixture *f = *state;
    char mid[128], *m1;

    snprintf(mid, sizeof mid, "m1-%s@example.org", f->run);
    m1 = malayalam_mail(f, mid);
    append(f, m1);
    free(m1);
    char m2[2048];
    snprintf(m2, sizeof m2,
             "From: Accounts <accounts@example.org>\r\nTo: ingest@example.org\r\n"
             "Subject: Invoice payment reminder %s\r\nMessage-ID: <m2-%s@example.org>\r\n"
             "Date: Mon, 07 Dec 2026 11:00:00 +0530\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=UTF-8\r\n\r\n"
             "The payment for invoice INV-2291 is due. Please clear it within the current budget "
             "and send the GST details to the accounts team.\r\n",
             f->run, f->run);
    append(f, m2);
    char png[64], *png64, m3[4096];
    snprintf(png, sizeof png, "\x89PNG\r\n\x1a\nrun %s", f->run);
    png64 = b64(png, strlen(png));
    snprintf(m3, sizeof m3,
             "From: Station Control <control@example.org>\r\nTo: ingest@example.org\r\n"
             "Subject: Platform crowd at Vyttila station\r\nMessage-ID: <m3-%s@example.org>\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/related; boundary=\"r1\"\r\n\r\n"
             "--r1\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
             "<html><body><p>Evening peak: passenger crowd on the platform.</p>"
             "<img src=\"cid:crowd@x\"></body></html>\r\n"
             "--r1\r\nContent-Type: image/png\r\nContent-ID: <crowd@x>\r\n"
             "Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n%s"
             "--r1--\r\n",
             f->run, png64);
    free(png64);
    append(f, m3);

    worker_start(f);
    poll_now(f);
    wait_items(f, "expanded", 3);
    assert_int_equal(items(f, "stored"), 4);
    assert_int_equal(documents(f), 4);
    assert_int_equal(pg_count(f, "SELECT listed FROM ingest_sources WHERE source = $1"), 3);

    /* Language and department per mail, names decoded, bytes in the store under their hash. */
    struct sy_pg_res *res = NULL;
    const char *p[1] = {f->source};
    if (sy_pg_exec(
            f->pg,
            "SELECT COALESCE(filename, ''), mime, language, COALESCE(department, ''), sha256,"
            " size, metadata->>'subject' FROM documents WHERE source = $1 ORDER BY source_id",
            1, p, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    assert_int_equal(sy_pg_res_rows(res), 4);
    static const char *const want[4][4] = {
        {"റിപ്പോർട്ട്.pdf", "application/pdf", "ml", "Engineering"},
        {"readings.csv", "text/csv", "ml", "Engineering"},
        {"message.txt", "text/plain", "en", "Finance"},
        {"", "image/png", "en", "Operations"},
    };
    for (int i = 0; i < 4; i++) {
        for (int c = 0; c < 4; c++)
            if (strcmp(sy_pg_res_get(res, i, c), want[i][c]) != 0)
                fail_msg("document %d column %d: '%s', expected '%s'", i, c,
                         sy_pg_res_get(res, i, c), want[i][c]);
        char path[1600];
        void *data = NULL;
        size_t len = 0;
        assert_int_equal(sy_files_path(f->files, sy_pg_res_get(res, i, 4), path, sizeof path), 0);
        assert_int_equal(sy_files_get(f->files, sy_pg_res_get(res, i, 4), 1 << 20, &data, &len), 0);
        assert_int_equal((long long)len, atoll(sy_pg_res_get(res, i, 5)));
        free(data);
    }
    assert_string_equal(sy_pg_res_get(res, 0, 6), "പരിശോധന റിപ്പോർട്ട്");
    sy_pg_res_free(res);
    assert_int_equal(announced(f), 4);
}

static void a_second_poll_lists_nothing_and_repeats_are_not_new(void **state)
{
    struct fixture *f = *state;

    poll_now(f);
    th_sleep_ms(1500);
    wait_items(f, "expanded", 3);
    assert_int_equal(pg_count(f, "SELECT listed FROM ingest_sources WHERE source = $1"), 3);

    /* The same PDF in another mail: the PDF is a duplicate, the CSV and text are the same
     * bytes too. */
    char mid[128], *again;
    snprintf(mid, sizeof mid, "m4-%s@example.org", f->run);
    again = malayalam_mail(f, mid);
    append(f, again);
    free(again);
    /* Over the limit: recorded, never downloaded. */
    size_t big = MAX_BYTES + 50000;
    char *blob = malloc(big), *mail = malloc(big * 2);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)('a' + i % 26);
    char *blob64 = b64(blob, big);
    snprintf(
        mail, big * 2,
        "From: x@example.org\r\nSubject: big %s\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\n"
        "Content-Type: text/plain\r\n\r\nsee attached\r\n--z\r\n"
        "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=big.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s--z--\r\n",
        f->run, blob64);
    append(f, mail);
    free(blob);
    free(blob64);
    free(mail);

    poll_now(f);
    wait_items(f, "expanded", 4);
    assert_int_equal(items(f, "duplicate"), 2);
    assert_int_equal(documents(f), 4);
    assert_int_equal(items(f, "rejected"), 1);
    assert_true(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"
                            " AND status = 'rejected' AND reason LIKE '%limit%'") == 1);
    assert_int_equal(announced(f), 4);
}

static void a_lost_cursor_advance_lists_again_without_new_documents(void **state)
{
    struct fixture *f = *state;
    const char *p[1] = {f->source};

    /* As if the worker died after publishing the fetches and before advancing the cursor. */
    if (sy_pg_exec(f->pg,
                   "UPDATE ingest_sources SET cursor = jsonb_set(cursor, '{uid}', '0')"
                   " WHERE source = $1",
                   1, p, NULL) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    long long before = pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1");
    poll_now(f);
    int64_t end = th_now_ms() + WAIT_MS;
    while (pg_count(f, "SELECT (cursor->>'uid')::bigint FROM ingest_sources WHERE source = $1") <
               5 &&
           th_now_ms() < end)
        th_sleep_ms(100);
    th_sleep_ms(1500);
    assert_int_equal(pg_count(f, "SELECT (cursor->>'uid')::bigint FROM ingest_sources"
                                 " WHERE source = $1"),
                     5);
    assert_int_equal(pg_count(f, "SELECT listed FROM ingest_sources WHERE source = $1"), 10);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"), before);
    assert_int_equal(documents(f), 4);
    assert_int_equal(announced(f), 4);
}

static void a_new_uidvalidity_lists_the_mailbox_again_and_dedupes(void **state)
{
    struct fixture *f = *state;
    char cmd[96], mid[128], *again;

    snprintf(cmd, sizeof cmd, "DELETE %s", f->mailbox);
    imap(f, "", cmd, NULL);
    snprintf(cmd, sizeof cmd, "CREATE %s", f->mailbox);
    imap(f, "", cmd, NULL);
    snprintf(mid, sizeof mid, "m1-%s@example.org", f->run);
    again = malayalam_mail(f, mid);
    append(f, again);
    free(again);
    poll_now(f);
    wait_items(f, "expanded", 5);
    assert_int_equal(items(f, "duplicate"), 4);
    assert_int_equal(documents(f), 4);
    assert_int_equal(pg_count(f, "SELECT (cursor->>'uid')::bigint FROM ingest_sources"
                                 " WHERE source = $1"),
                     1);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);

    /* What syctl shows of the source: the same ledger. */
    char *out = NULL, *err = NULL;
    const char *args[] = {"ingest", "status", "--json", NULL};
    assert_int_equal(th_run(th_need_env("SYCTL_BIN"), args, NULL, 30000, &out, &err), 0);
    json_t *all = json_loads(out, 0, NULL), *it, *mine = NULL;
    size_t i;
    assert_non_null(all);
    json_array_foreach(all, i, it) if (strcmp(json_string_value(json_object_get(it, "source")),
                                              f->source) == 0) mine = it;
    assert_non_null(mine);
    assert_int_equal(json_integer_value(json_object_get(mine, "listed")), 11);
    assert_int_equal(json_integer_value(json_object_get(mine, "stored")), 4);
    assert_int_equal(json_integer_value(json_object_get(mine, "duplicates")), 4);
    assert_int_equal(json_integer_value(json_object_get(mine, "rejected")), 1);
    assert_int_equal(json_integer_value(json_object_get(mine, "documents")), 4);
    assert_true(json_is_null(json_object_get(mine, "last_error")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(mine, "cursor"), "uid")),
                     1);
    json_decref(all);
    free(out);
    free(err);

    assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_int_equal(th_log_count(&f->proc, th_need_env("SY_IMAP_PASSWORD")), 0);
}

static void a_long_file_name_or_type_does_not_hold_up_the_mail(void **state)
{
    struct fixture *f = *state;
    char pdf[256], name[2100], enc[6400], params[8000], type[320], *pdf64, *mail = malloc(32768);
    long long expanded = items(f, "expanded"), stored = items(f, "stored");
    long long rejected = items(f, "rejected");
    size_t o = 0;

    /* 2000 bytes of name: "ലോഗ്" (log) in Malayalam over and over, then ".pdf". */
    static const char word[] = "\xe0\xb4\xb2\xe0\xb5\x8b\xe0\xb4\x97\xe0\xb5\x8d";
    size_t wn = strlen(word);
    for (o = 0; o + wn <= 1996; o += wn)
        memcpy(name + o, word, wn);
    memset(name + o, 'x', 1996 - o);
    memcpy(name + 1996, ".pdf", 5);
    assert_int_equal(strlen(name), 2000);
    o = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        o += (size_t)snprintf(enc + o, sizeof enc - o, *c < 0x80 ? "%c" : "%%%02X", *c);
    /* In RFC 2231 continuations, each on a folded line of its own, none cutting a %XX. */
    size_t po = 0, k = 0;
    for (int part = 0; enc[k]; part++) {
        size_t end = k + 60 < strlen(enc) ? k + 60 : strlen(enc);

        while (end < strlen(enc) && end > k && (enc[end - 1] == '%' || enc[end - 2] == '%'))
            end--;
        po += (size_t)snprintf(params + po, sizeof params - po, ";\r\n filename*%d*=%s%.*s", part,
                               part == 0 ? "UTF-8''" : "", (int)(end - k), enc + k);
        k = end;
    }
    snprintf(type, sizeof type, "text/x-%0300d", 7);
    snprintf(pdf, sizeof pdf,
             "%%PDF-1.4\n%% long name %s\n1 0 obj << /Type /Catalog >> endobj\n%%%%EOF\n", f->run);
    pdf64 = b64(pdf, strlen(pdf));
    snprintf(mail, 32768,
             "From: Depot Clerk <clerk@example.org>\r\n"
             "To: ingest@example.org\r\n"
             "Subject: Logs of the week\r\n"
             "Message-ID: <long-%s@example.org>\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed; boundary=\"b3\"\r\n\r\n"
             "--b3\r\n"
             "Content-Type: application/pdf\r\n"
             "Content-Disposition: attachment%s\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n%s"
             "--b3\r\n"
             "Content-Type: %s\r\n"
             "Content-Disposition: attachment; filename=\"odd.txt\"\r\n\r\n"
             "an odd type %s\r\n"
             "--b3\r\n"
             "Content-Type: text/plain; charset=UTF-8\r\n"
             "Content-Disposition: attachment; filename=\"after.txt\"\r\n\r\n"
             "the attachment after them %s\r\n"
             "--b3--\r\n",
             f->run, params, pdf64, type, f->run, f->run);
    free(pdf64);
    append(f, mail);
    free(mail);

    th_proc_cleanup(&f->proc);
    worker_start(f);
    poll_now(f);
    wait_items(f, "expanded", expanded + 1);
    assert_int_equal(items(f, "stored"), stored + 2);
    assert_int_equal(items(f, "rejected"), rejected + 1);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);

    /* The PDF under its name cut on a character, ".pdf" kept; announced as stored. */
    const char *p[1] = {f->source};
    struct sy_pg_res *res = NULL;
    if (sy_pg_exec(f->pg,
                   "SELECT filename, mime FROM documents WHERE source = $1"
                   " AND filename LIKE '%.pdf' AND length(filename) > 200",
                   1, p, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    assert_int_equal(sy_pg_res_rows(res), 1);
    const char *kept = sy_pg_res_get(res, 0, 0);
    assert_true(strlen(kept) <= 1024 && strlen(kept) > 1000);
    assert_int_equal(memcmp(kept, name, strlen(kept) - 4), 0);
    assert_string_equal(kept + strlen(kept) - 4, ".pdf");
    assert_string_equal(sy_pg_res_get(res, 0, 1), "application/pdf");
    sy_pg_res_free(res);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"
                                 " AND status = 'rejected' AND reason LIKE"
                                 " '%application/octet-stream%'"),
                     1);
    size_t before = f->nmsgs;
    announced(f);
    size_t long_named = 0, after = 0;
    for (size_t i = before; i < f->nmsgs; i++) {
        const char *fn =
            json_string_value(json_object_get(json_object_get(f->msgs[i].env, "data"), "filename"));

        long_named += fn && strlen(fn) > 1000 && strlen(fn) <= 1024;
        after += fn && strcmp(fn, "after.txt") == 0;
    }
    assert_int_equal(long_named, 1);
    assert_int_equal(after, 1);

    assert_int_equal(th_stop(&f->proc, &f->running), 0);
}

/* The windowed mailbox's cursor UID once it is want (or WAIT_MS passed), after its mails
 * expanded number expanded. */
static long long window_cursor(struct fixture *f, long long want, long long expanded)
{
    static const char sql[] =
        "SELECT (cursor->>'uid')::bigint FROM ingest_sources WHERE source = $1";
    int64_t end = th_now_ms() + WAIT_MS;
    long long uid;

    while ((uid = th_ingest_count(f->pg, f->wsource, sql)) != want && th_now_ms() < end)
        th_sleep_ms(100);
    th_ingest_wait_items(f->amqp, f->queue, f->pg, f->wsource, "expanded", expanded, &f->proc,
                         &f->running, WAIT_MS);
    return th_ingest_count(f->pg, f->wsource, sql);
}

static void window_mails(struct fixture *f, int from, int to)
{
    char mail[512];

    for (int i = from; i <= to; i++) {
        snprintf(mail, sizeof mail,
                 "From: depot@example.org\r\nSubject: Shift log %d, run %s\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                 "Shift log %d of the run %s: the night shift checked the escalators.\r\n",
                 i, f->run, i, f->run);
        imap(f, f->wmailbox, NULL, mail);
    }
}

static void expunge(struct fixture *f, const char *uids)
{
    char cmd[96];

    snprintf(cmd, sizeof cmd, "UID STORE %s +FLAGS.SILENT (\\Deleted)", uids);
    imap(f, f->wmailbox, cmd, NULL);
    imap(f, f->wmailbox, "EXPUNGE", NULL);
}

static void a_mailbox_is_searched_window_by_window(void **state)
{
    struct fixture *f = *state;
    static const char listed[] = "SELECT listed FROM ingest_sources WHERE source = $1";
    static const char docs[] = "SELECT count(*) FROM documents WHERE source = $1";

    worker_start(f);
    /* UIDs 1 to 12, then 4 to 9 expunged: 1 2 3 | 4 5 6 | 7 8 9 | 10 11 12 in windows of 3. */
    window_mails(f, 1, 12);
    expunge(f, "4:9");
    /* Windows 1-3 (three), 4-6 and 7-9 (none), 10-12 (the fourth, 10): the batch is full. */
    poll_now(f);
    assert_int_equal(window_cursor(f, 10, 4), 10);
    assert_int_equal(th_ingest_count(f->pg, f->wsource, listed), 4);
    /* 11 and 12, and the end of the mailbox. */
    poll_now(f);
    assert_int_equal(window_cursor(f, 12, 6), 12);
    assert_int_equal(th_ingest_count(f->pg, f->wsource, listed), 6);
    assert_int_equal(th_ingest_count(f->pg, f->wsource, docs), 6);
    /* Mails that are gone before a poll sees them: the cursor passes their UIDs. */
    window_mails(f, 13, 15);
    expunge(f, "13:15");
    poll_now(f);
    assert_int_equal(window_cursor(f, 15, 6), 15);
    assert_int_equal(th_ingest_count(f->pg, f->wsource, listed), 6);
    /* And one after them is found. */
    window_mails(f, 16, 16);
    poll_now(f);
    assert_int_equal(window_cursor(f, 16, 7), 16);
    assert_int_equal(th_ingest_count(f->pg, f->wsource, listed), 7);
    assert_int_equal(th_ingest_count(f->pg, f->wsource, docs), 7);
    assert_int_equal(th_ingest_items(f->pg, f->wsource, "expanded"), 7);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);
    assert_int_equal(th_stop(&f->proc, &f->running), 0);
}

/* --- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char cmd[96];
    const char *url = th_need_env("SY_IMAP_URL");

    assert_non_null(f);
    th_need_env("SY_IMAP_PASSWORD");
    th_need_env("SY_INGEST_BIN");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    th_run_id(f->run);
    snprintf(f->mailbox, sizeof f->mailbox, "it%s", f->run);
    snprintf(f->source, sizeof f->source, "email:it%s", f->run);
    snprintf(f->wmailbox, sizeof f->wmailbox, "itw%s", f->run);
    snprintf(f->wsource, sizeof f->wsource, "email:itw%s", f->run);
    /* imap://host:port/INBOX -> imap://host:port/ */
    const char *slash = strchr(url + 7, '/');
    assert_non_null(slash);
    snprintf(f->base, sizeof f->base, "%.*s", (int)(slash + 1 - url), url);

    th_ingest_prepare("it-ingest", f->run, &f->amqp, &f->topo, f->queue, f->dead, &f->pg, f->dir,
                      f->files, f->conf);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "limits:\n  max_bytes: %d\n  types: [application/pdf, text/*, image/*]\n"
             "email:\n  it%s:\n    url: %s%s\n    user: ${SY_IMAP_USER}\n"
             "    password_env: SY_IMAP_PASSWORD\n    allow_plain: true\n    batch: 50\n"
             "  itw%s:\n    url: %s%s\n    user: ${SY_IMAP_USER}\n"
             "    password_env: SY_IMAP_PASSWORD\n    allow_plain: true\n    batch: 4\n"
             "    search_window: 3\n",
             MAX_BYTES, f->run, f->base, f->mailbox, f->run, f->base, f->wmailbox);
    assert_int_equal(th_write_file(f->conf, yaml), 0);
    snprintf(cmd, sizeof cmd, "CREATE %s", f->mailbox);
    imap(f, "", cmd, NULL);
    snprintf(cmd, sizeof cmd, "CREATE %s", f->wmailbox);
    imap(f, "", cmd, NULL);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[96];

    snprintf(cmd, sizeof cmd, "DELETE %s", f->mailbox);
    imap(f, "", cmd, NULL);
    snprintf(cmd, sizeof cmd, "DELETE %s", f->wmailbox);
    imap(f, "", cmd, NULL);
    th_ingest_forget(f->pg, f->wsource, NULL);
    th_ingest_teardown(&f->proc, &f->running, f->amqp, f->topo, f->pg, f->source, f->dir, f->msgs,
                       f->nmsgs);
    curl_global_cleanup();
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mails_become_documents_with_language_and_department),
        cmocka_unit_test(a_second_poll_lists_nothing_and_repeats_are_not_new),
        cmocka_unit_test(a_lost_cursor_advance_lists_again_without_new_documents),
        cmocka_unit_test(a_new_uidvalidity_lists_the_mailbox_again_and_dedupes),
        cmocka_unit_test(a_long_file_name_or_type_does_not_hold_up_the_mail),
        cmocka_unit_test(a_mailbox_is_searched_window_by_window),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
