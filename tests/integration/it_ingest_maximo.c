/* it_ingest_maximo.c - sy-ingest's Maximo source end to end: the fake Maximo of
 * tests/fakes/maximo behind the stack's real broker, PostgreSQL and Redis, on the fleet's own
 * topology, schemas and departments.yaml.
 *  - work orders in English and Malayalam with their doclinks become documents with language and
 *    department, listed over three pages whose next-page links name Maximo's internal host
 *    (and so do the documents' links): every link is followed on the configured base; a web
 *    link is not a document;
 *  - a second poll lists nothing new; a work order changed after the watermark is listed again
 *    and only its new doclink becomes a document;
 *  - 429 with Retry-After and 503 are retried, and nothing is lost;
 *  - an expired API key is recorded in ingest_sources.last_error and leaves the cursor where it
 *    was, until the key works again;
 *  - a document over the size limit is recorded as rejected without being downloaded (its size
 *    from the listing), or without being kept (its size from the answer alone);
 *  - a 500 on a listing page, a proxy's 502 on a download, and answers later than
 *    SY_INGEST_TIMEOUT are retried, and each document is stored and announced once;
 *  - sy-ingest killed after a poll's fetches were published and before its watermark was
 *    saved lists the same work orders again once restarted, and stores nothing twice; so does
 *    a watermark rolled back in SQL;
 *  - nothing is dead-lettered, and the API key never reaches the log;
 *  - a listing that takes longer than the poll's lease (a slow Maximo, a doclinks request per
 *    work order) keeps its lock and hands its items on; one that runs past SY_INGEST_LIST_TIME
 *    hands on the work orders it took whole, and the next poll goes on after them; so does one
 *    cut short by a failed request.
 * Isolation on shared services: the fake, the source ("maximo:it<run>") and the file store are
 * the run's own. */
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
#include <sys/types.h>
#include <unistd.h>

#include "chatwoot.h"
#include "cm_ingest.h"
#include "cm_ingest_crash.h"
#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER     "ingest"
#define KNOWLEDGE  "sy.knowledge"
#define WAIT_MS    60000
#define MAX_BYTES  200000
#define MAX_MSGS   256
#define APIKEY_ENV "SY_IT_MAXIMO_APIKEY"
#define INTERNAL   "http://10.0.0.7:9080" /* where Maximo behind a proxy says it is */

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char run[17], source[64], apikey[40];
    char dir[1200], files[1300], conf[1300];
    char queue[256], dead[256];
    struct th_proc proc;
    bool running;
    int port;
    pid_t fake;
    int fake_port;
    struct th_got msgs[MAX_MSGS];
    size_t nmsgs;
};

/* --- the fake Maximo ------------------------------------------------------------------------- */

static void fake_post(struct fixture *f, const char *what, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    long st = th_fake_glpi_post(f->fake_port, what, text); /* any fake's control call */

    free(text);
    json_decref(body);
    if (st != 200)
        fail_msg("fake-maximo /_fake/%s: HTTP %ld", what, st);
}

static void faults(struct fixture *f, json_t *body)
{
    fake_post(f, "faults", body);
}

/* Adds or changes work orders (an array, taken). */
static void workorders(struct fixture *f, json_t *list)
{
    fake_post(f, "workorders", json_pack("{s:o}", "workorders", list));
}

static json_t *fake_state(struct fixture *f)
{
    json_t *s = th_fake_glpi_state(f->fake_port);

    if (!s)
        fail_msg("fake-maximo did not answer /_fake/state");
    return s;
}

static long long fake_counter(struct fixture *f, const char *name)
{
    json_t *s = fake_state(f);
    long long n = json_integer_value(json_object_get(json_object_get(s, "counters"), name));

    json_decref(s);
    return n;
}

/* How often the fake served the document of that file name. */
static long long downloads(struct fixture *f, const char *filename)
{
    json_t *s = fake_state(f), *wo, *d;
    long long n = -1;
    size_t i, j;

    json_array_foreach(json_object_get(s, "workorders"), i, wo)
        json_array_foreach(json_object_get(wo, "doclinks"), j, d)
    {
        const char *name = json_string_value(json_object_get(d, "fileName"));

        if (name && strcmp(name, filename) == 0)
            n = json_integer_value(json_object_get(d, "downloads"));
    }
    json_decref(s);
    return n;
}

/* A doclink with text content: its bytes carry the run id, so no other run has its SHA-256. */
static json_t *doclink(struct fixture *f, const char *name, const char *mime, const char *text)
{
    char content[512];

    snprintf(content, sizeof content, "%s\n%% %s %s\n", text, f->run, name);
    return json_pack("{s:s, s:s, s:s, s:s}", "fileName", name, "mime", mime, "title", name,
                     "content", content);
}

static json_t *pdf(struct fixture *f, const char *name)
{
    return doclink(f, name, "application/pdf",
                   "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>");
}

/* --- the worker ------------------------------------------------------------------------------ */

static void worker_start(struct fixture *f)
{
    /* A link left pointing at the internal host would hang on connecting: fail it soon. */
    static const char *const extra[] = {"SY_INGEST_CONNECT_TIMEOUT=2s", "SY_INGEST_TIMEOUT=20s",
                                        NULL};

    th_ingest_start(&f->proc, &f->running, &f->port, f->run, f->conf, f->files, extra);
}

static void poll_now(struct fixture *f)
{
    th_ingest_publish(f->amqp, f->topo->exchange, "ingest.poll.maximo", NULL, NULL, 0);
}

/* The first column of the first row of sql over $1 = the source, as text ("" for NULL). */
static char *pg_text(struct fixture *f, const char *sql)
{
    const char *p[1] = {f->source};
    struct sy_pg_res *res = NULL;
    char *s;

    if (sy_pg_exec(f->pg, sql, 1, p, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    s = strdup(sy_pg_res_rows(res) ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
    return s;
}

static long long pg_count(struct fixture *f, const char *sql)
{
    return th_ingest_count(f->pg, f->source, sql);
}

static long long items(struct fixture *f, const char *status)
{
    return th_ingest_items(f->pg, f->source, status);
}

static long long listed(struct fixture *f)
{
    return pg_count(f, "SELECT listed FROM ingest_sources WHERE source = $1");
}

static long long documents(struct fixture *f)
{
    return pg_count(f, "SELECT count(*) FROM documents WHERE source = $1");
}

static void check_worker(struct fixture *f)
{
    if (th_proc_wait(&f->proc, 0) == 0) {
        f->running = false;
        th_proc_dump_log(&f->proc, 40);
        fail_msg("sy-ingest exited with %d", f->proc.exit_status);
    }
}

/* Waits until `status` items number want and the worker's queues are empty. */
static void wait_items(struct fixture *f, const char *status, long long want)
{
    th_ingest_wait_items(f->amqp, f->queue, f->pg, f->source, status, want, &f->proc, &f->running,
                         WAIT_MS);
}

/* document.ingested messages of this run's source so far. */
static size_t announced(struct fixture *f)
{
    return th_ingest_announced(f->amqp, KNOWLEDGE, f->msgs, MAX_MSGS, &f->nmsgs, f->source);
}

static void nothing_dead(struct fixture *f)
{
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);
}

/* --- tests ----------------------------------------------------------------------------------- */

static void work_orders_over_three_pages_become_documents_with_language_and_department(void **state)
{
    struct fixture *f = *state;

    /* Five work orders, two a page: the links Maximo writes name its internal host. */
    faults(f, json_pack("{s:s}", "foreign_host", INTERNAL));
    workorders(
        f,
        json_pack(
            "[{s:s, s:s, s:s, s:[o, o]}, {s:s, s:s, s:s, s:[o]}, {s:s, s:s, s:[o]}, {s:s, s:s},"
            " {s:s, s:s, s:s, s:[{s:s, s:s, s:s}, o]}]",
            /* Track maintenance at the Aluva depot, in Malayalam. */
            "wonum", "1001", "description", "ആലുവ ഡിപ്പോയിലെ പാളം അറ്റകുറ്റപ്പണി",
            "description_longdescription",
            "ആലുവ മുതൽ ഇടപ്പള്ളി വരെയുള്ള പാളം പരിശോധന പൂർത്തിയായി. രണ്ട് തകരാർ കണ്ടെത്തി. "
            "അറ്റകുറ്റപ്പണി അടുത്ത ആഴ്ച നടത്തും. എല്ലാ സ്റ്റേഷനുകളിലും അറിയിപ്പ് "
            "നൽകിയിട്ടുണ്ട്.",
            "doclinks", pdf(f, "report.pdf"),
            doclink(f, "readings.csv", "text/csv", "കി.മീ,തകരാർ\n12.4,പാളം"), "wonum", "1002",
            "description", "Invoice payment for the quarterly audit", "description_longdescription",
            "Clear the payment within the budget and send the GST details to accounts.", "doclinks",
            pdf(f, "invoice.pdf"), "wonum", "1003", "description",
            "Fire safety mock drill at Vyttila station", "doclinks",
            doclink(f, "drill-plan.txt", "text/plain",
                    "Evacuation plan for the emergency mock drill"),
            "wonum", "1004", "description", "Replace the lamp at gate 2", "wonum", "1005",
            "description", "Signal failure repair near Edappally", "description_longdescription",
            "Track circuit breakdown.", "doclinks", "fileName", "manual", "urltype", "URL", "title",
            "the vendor's manual", pdf(f, "repair.pdf")));

    worker_start(f);
    poll_now(f);
    wait_items(f, "expanded", 5);
    assert_int_equal(items(f, "stored"), 5);
    assert_int_equal(documents(f), 5);
    assert_int_equal(listed(f), 5);
    /* Three pages, each asked on the configured base (the fake never hears of 10.0.0.7
     * otherwise, and a request there would fail to connect). */
    assert_true(fake_counter(f, "lists") >= 3);
    assert_int_equal(downloads(f, "manual"), 0);

    struct sy_pg_res *res = NULL;
    const char *p[1] = {f->source};
    if (sy_pg_exec(f->pg,
                   "SELECT COALESCE(filename, ''), mime, language, COALESCE(department, ''),"
                   " metadata->>'wonum', metadata->>'siteid', metadata->>'changedate',"
                   " source_time IS NOT NULL FROM documents WHERE source = $1 ORDER BY source_id",
                   1, p, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    assert_int_equal(sy_pg_res_rows(res), 5);
    static const char *const want[5][5] = {
        {"report.pdf", "application/pdf", "ml", "Engineering", "1001"},
        {"readings.csv", "text/csv", "ml", "Engineering", "1001"},
        {"invoice.pdf", "application/pdf", "en", "Finance", "1002"},
        {"drill-plan.txt", "text/plain", "en", "Safety", "1003"},
        {"repair.pdf", "application/pdf", "en", "Engineering", "1005"},
    };
    for (int i = 0; i < 5; i++) {
        for (int c = 0; c < 5; c++)
            if (strcmp(sy_pg_res_get(res, i, c), want[i][c]) != 0)
                fail_msg("document %d column %d: '%s', expected '%s'", i, c,
                         sy_pg_res_get(res, i, c), want[i][c]);
        assert_string_equal(sy_pg_res_get(res, i, 5), "BEDFORD");
        assert_true(strlen(sy_pg_res_get(res, i, 6)) >= 19);
        assert_string_equal(sy_pg_res_get(res, i, 7), "t");
    }
    sy_pg_res_free(res);

    /* The watermark is the last work order's. */
    char *wonum = pg_text(f, "SELECT cursor->>'wonum' FROM ingest_sources WHERE source = $1");
    assert_string_equal(wonum, "1005");
    free(wonum);
    assert_int_equal(announced(f), 5);
    nothing_dead(f);
}

static void a_second_poll_lists_nothing_and_a_later_change_is_picked_up(void **state)
{
    struct fixture *f = *state;
    long long lists = fake_counter(f, "lists");

    poll_now(f);
    int64_t end = th_now_ms() + WAIT_MS;
    while (fake_counter(f, "lists") == lists && th_now_ms() < end)
        th_sleep_ms(100);
    th_sleep_ms(1000);
    assert_int_equal(listed(f), 5);
    assert_int_equal(items(f, "expanded"), 5);

    /* A new document on 1002: it changes, and is listed again whole. */
    workorders(f, json_pack("[{s:s, s:[o]}]", "wonum", "1002", "doclinks",
                            pdf(f, "invoice-corrected.pdf")));
    poll_now(f);
    wait_items(f, "expanded", 6);
    assert_int_equal(listed(f), 7);
    assert_int_equal(documents(f), 6);
    assert_int_equal(items(f, "stored"), 6);
    char *wonum = pg_text(f, "SELECT cursor->>'wonum' FROM ingest_sources WHERE source = $1");
    assert_string_equal(wonum, "1002");
    free(wonum);
    assert_int_equal(announced(f), 6);
    nothing_dead(f);
}

static void too_many_requests_and_unavailable_are_retried_without_loss(void **state)
{
    struct fixture *f = *state;

    faults(f, json_pack("{s:i, s:i}", "fail_429", 2, "retry_after", 1));
    workorders(f, json_pack("[{s:s, s:s, s:[o]}]", "wonum", "1006", "description",
                            "Bogie inspection at Muttom depot", "doclinks", pdf(f, "bogie.pdf")));
    poll_now(f);
    wait_items(f, "expanded", 7);
    assert_int_equal(fake_counter(f, "refused_429"), 2);

    faults(f, json_pack("{s:i, s:i}", "fail_503", 2, "retry_after", -1));
    workorders(f, json_pack("[{s:s, s:s, s:[o]}]", "wonum", "1007", "description",
                            "Overhead line traction check", "doclinks", pdf(f, "traction.pdf")));
    poll_now(f);
    wait_items(f, "expanded", 8);
    assert_int_equal(fake_counter(f, "refused_503"), 2);
    assert_int_equal(documents(f), 8);
    assert_int_equal(announced(f), 8);
    nothing_dead(f);
}

static void an_expired_apikey_is_recorded_and_the_cursor_stays(void **state)
{
    struct fixture *f = *state;
    char *before = pg_text(f, "SELECT cursor::text FROM ingest_sources WHERE source = $1");

    faults(f, json_pack("{s:b}", "expire_apikey", 1));
    workorders(f, json_pack("[{s:s, s:s, s:[o]}]", "wonum", "1008", "description",
                            "Viaduct bearing repair", "doclinks", pdf(f, "viaduct.pdf")));
    poll_now(f);
    int64_t end = th_now_ms() + WAIT_MS;
    char *why = NULL;
    for (;;) {
        why = pg_text(f, "SELECT COALESCE(last_error, '') FROM ingest_sources WHERE source = $1");
        if (*why || th_now_ms() > end)
            break;
        free(why);
        check_worker(f);
        th_sleep_ms(100);
    }
    if (!strstr(why, "apikey refused"))
        fail_msg("last_error: '%s', expected the API key refused", why);
    free(why);
    th_sleep_ms(500);
    char *after = pg_text(f, "SELECT cursor::text FROM ingest_sources WHERE source = $1");
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(listed(f), 9);
    assert_true(fake_counter(f, "refused_401") >= 1);

    /* A key that works again: the same work order, and the error is gone. */
    faults(f, json_pack("{s:b}", "expire_apikey", 0));
    poll_now(f);
    wait_items(f, "expanded", 9);
    assert_int_equal(documents(f), 9);
    why = pg_text(f, "SELECT COALESCE(last_error, '') FROM ingest_sources WHERE source = $1");
    assert_string_equal(why, "");
    free(why);
    free(before);
    nothing_dead(f);
}

static void an_oversize_document_is_rejected_without_download(void **state)
{
    struct fixture *f = *state;

    workorders(f, json_pack("[{s:s, s:s, s:[{s:s, s:s, s:i}, {s:s, s:s, s:i, s:b}]}]", "wonum",
                            "1009", "description", "Depot survey drawings", "doclinks", "fileName",
                            "survey.pdf", "mime", "application/pdf", "size", MAX_BYTES + 50000,
                            "fileName", "unsized.pdf", "mime", "application/pdf", "size",
                            MAX_BYTES + 1000, "hide_size", 1));
    poll_now(f);
    /* One item per doclink: both are taken apart, neither kept. */
    wait_items(f, "expanded", 11);
    assert_int_equal(items(f, "rejected"), 2);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"
                                 " AND status = 'rejected' AND reason LIKE '%limit%'"),
                     2);
    /* Its size from the listing: never asked for. */
    assert_int_equal(downloads(f, "survey.pdf"), 0);
    assert_int_equal(pg_count(f, "SELECT size FROM document_items WHERE source = $1"
                                 " AND status = 'rejected' AND size > 240000"),
                     MAX_BYTES + 50000);
    assert_int_equal(documents(f), 9);
    assert_int_equal(announced(f), 9);
    nothing_dead(f);

    assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_int_equal(th_log_count(&f->proc, f->apikey), 0);
}

/* --- server errors, timeouts and a crash ---------------------------------------------------- */

/* The worker these tests run: calls to Maximo cut off after two seconds, so a late answer is a
 * failed call. Started again unless it is already the one they started. */
static pid_t quick_pid;

static void worker_quick(struct fixture *f)
{
    static const char *const extra[] = {"SY_INGEST_CONNECT_TIMEOUT=2s", "SY_INGEST_TIMEOUT=2s",
                                        NULL};

    if (f->running && f->proc.pid == quick_pid)
        return;
    if (f->running)
        assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_int_equal(th_log_count(&f->proc, f->apikey), 0);
    th_ingest_start(&f->proc, &f->running, &f->port, f->run, f->conf, f->files, extra);
    quick_pid = f->proc.pid;
}

static long long all_items(struct fixture *f)
{
    return pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1");
}

static char *saved_cursor(struct fixture *f)
{
    return pg_text(f, "SELECT cursor::text FROM ingest_sources WHERE source = $1");
}

static void no_last_error(struct fixture *f)
{
    char *why = pg_text(f, "SELECT COALESCE(last_error, '') FROM ingest_sources"
                           " WHERE source = $1");

    assert_string_equal(why, "");
    free(why);
}

/* Distinct message ids among the announcements read from msgs[from] on. */
static size_t distinct_since(struct fixture *f, size_t from)
{
    size_t n = 0;

    for (size_t i = from; i < f->nmsgs; i++) {
        bool seen = false;

        for (size_t j = from; j < i && !seen; j++)
            seen = strcmp(f->msgs[i].id, f->msgs[j].id) == 0;
        n += !seen;
    }
    return n;
}

/* Two work orders after the watermark's, with three doclinks: listed from the watermark's own
 * work order on, two a page, they take a second page. */
static void two_work_orders(struct fixture *f, const char *first, const char *second,
                            const char *const names[3])
{
    workorders(f,
               json_pack("[{s:s, s:s, s:[o, o]}, {s:s, s:s, s:[o]}]", "wonum", first, "description",
                         "Pump overhaul at Kalamassery depot", "doclinks", pdf(f, names[0]),
                         doclink(f, names[1], "text/plain", "Pump overhaul checklist"), "wonum",
                         second, "description", "Escalator repair at MG Road station", "doclinks",
                         pdf(f, names[2])));
}

/* The downloads of the three, each at least one. */
static long long downloads_of_all(struct fixture *f, const char *const names[3])
{
    long long n = 0;

    for (int i = 0; i < 3; i++) {
        long long d = downloads(f, names[i]);

        if (d < 1)
            fail_msg("%s was downloaded %lld times", names[i], d);
        n += d;
    }
    return n;
}

static void server_errors_on_a_listing_page_and_a_download_are_retried_without_loss(void **state)
{
    struct fixture *f = *state;
    static const char *const names[3] = {"pump-5xx.pdf", "pump-5xx-checklist.txt",
                                         "escalator-5xx.pdf"};

    worker_quick(f);
    long long docs = documents(f), expanded = items(f, "expanded"), rows = all_items(f);
    long long stored = items(f, "stored"), faulted = fake_counter(f, "faulted"),
              pages = fake_counter(f, "next_pages");
    size_t ann = announced(f), from = f->nmsgs;

    two_work_orders(f, "1010", "1011", names);
    /* A 500 from Maximo on the second page, and a proxy's 502 page for a download. */
    faults(f, json_pack("{s:[{s:s, s:i}, {s:s, s:i}]}", "once", "on", "next_page", "status", 500,
                        "on", "download", "status", 502));
    poll_now(f);
    wait_items(f, "expanded", expanded + 3);
    assert_int_equal(fake_counter(f, "faulted"), faulted + 2);
    /* The listing failed on its second page; the work order of its first was handed on, so
     * the retry lists from after it, all on one page. */
    assert_int_equal(fake_counter(f, "next_pages"), pages + 1);
    /* Each document stored once and downloaded once (the 502 came instead of its bytes). */
    assert_int_equal(documents(f), docs + 3);
    assert_int_equal(items(f, "stored"), stored + 3);
    assert_int_equal(all_items(f), rows + 6);
    assert_int_equal(downloads_of_all(f, names), 3);
    assert_int_equal(announced(f), ann + 3);
    assert_int_equal(distinct_since(f, from), 3);
    no_last_error(f);
    nothing_dead(f);
}

static void answers_later_than_the_timeout_are_retried_without_loss(void **state)
{
    struct fixture *f = *state;
    static const char *const names[3] = {"pump-late.pdf", "pump-late-checklist.txt",
                                         "escalator-late.pdf"};

    worker_quick(f);
    long long docs = documents(f), expanded = items(f, "expanded"), rows = all_items(f);
    long long stored = items(f, "stored"), faulted = fake_counter(f, "faulted"),
              pages = fake_counter(f, "next_pages");
    size_t ann = announced(f), from = f->nmsgs;

    two_work_orders(f, "1012", "1013", names);
    /* The second page and a download answered five seconds late, past the two allowed. */
    faults(f, json_pack("{s:[{s:s, s:i}, {s:s, s:i}]}", "once", "on", "next_page", "delay_ms", 5000,
                        "on", "download", "delay_ms", 5000));
    poll_now(f);
    wait_items(f, "expanded", expanded + 3);
    assert_int_equal(fake_counter(f, "faulted"), faulted + 2);
    /* The late page was given up on, the work order of the first handed on, and the retry
     * listed from after it on one page; the late download was given up on too, and its
     * document downloaded again (the fake counts the late answer too). */
    assert_int_equal(fake_counter(f, "next_pages"), pages + 1);
    assert_true(th_log_count(&f->proc, "no answer within 2000 ms") >= 1);
    assert_int_equal(downloads_of_all(f, names), 4);
    /* Nothing lost, nothing twice. */
    assert_int_equal(documents(f), docs + 3);
    assert_int_equal(items(f, "stored"), stored + 3);
    assert_int_equal(all_items(f), rows + 6);
    assert_int_equal(items(f, "duplicate"), 0);
    assert_int_equal(announced(f), ann + 3);
    assert_int_equal(distinct_since(f, from), 3);
    no_last_error(f);
    nothing_dead(f);
}

/* A real crash: sy-ingest gets SIGKILL after the broker confirmed every fetch of a poll and
 * before the poll's cursor was saved, while a fetch had stored a document and not yet announced
 * it (cm_ingest_crash.h holds both there). Started again, the worker gets the poll again (it
 * was never acknowledged), lists the same work orders from the old watermark, and each doclink
 * is stored and announced once. */
static void a_crash_between_publishing_fetches_and_saving_the_cursor_lists_again_once(void **state)
{
    struct fixture *f = *state;
    static const char *const names[3] = {"pump-crash.pdf", "pump-crash-checklist.txt",
                                         "escalator-crash.pdf"};

    worker_quick(f);
    long long docs = documents(f), expanded = items(f, "expanded"), rows = all_items(f);
    long long stored = items(f, "stored"), was_listed = listed(f);
    char *before = saved_cursor(f);
    size_t ann = announced(f), from = f->nmsgs;

    two_work_orders(f, "1014", "1015", names);
    struct sy_pg *hold = th_ingest_hold_row(f->source);
    poll_now(f);
    th_ingest_wait_waiting(hold, TH_INGEST_CURSOR_UPDATE, &f->proc, &f->running, WAIT_MS);
    th_ingest_wait_waiting(hold, TH_INGEST_STORED_COUNT, &f->proc, &f->running, WAIT_MS);
    th_ingest_kill_held(&f->proc, &f->running, hold, f->source);
    assert_int_equal(th_log_count(&f->proc, f->apikey), 0);

    /* Dead with the fetches published: one document stored, none announced, the cursor and
     * the count of listed items where they were. */
    char *now = saved_cursor(f);
    assert_string_equal(now, before);
    free(now);
    assert_int_equal(listed(f), was_listed);
    assert_int_equal(documents(f), docs + 1);
    assert_int_equal(items(f, "expanded"), expanded);
    assert_int_equal(announced(f), ann);

    worker_quick(f);
    wait_items(f, "expanded", expanded + 3);
    /* Listed again (and counted once: the first listing's count died with its cursor). */
    assert_int_equal(listed(f), was_listed + 3);
    char *wonum = pg_text(f, "SELECT cursor->>'wonum' FROM ingest_sources WHERE source = $1");
    assert_string_equal(wonum, "1015");
    free(wonum);
    assert_int_equal(documents(f), docs + 3);
    assert_int_equal(items(f, "stored"), stored + 3);
    assert_int_equal(all_items(f), rows + 6);
    assert_int_equal(items(f, "duplicate"), 0);
    /* Each announced, the one stored before the crash too; an announcement made again would
     * carry the same id. */
    announced(f);
    assert_int_equal(distinct_since(f, from), 3);
    no_last_error(f);
    nothing_dead(f);
    free(before);
}

/* The watermark rolled back in SQL to where it was before the last two work orders, as a
 * cursor save lost after its fetches: they are listed again, and nothing is fetched, stored or
 * announced again. */
static void a_watermark_rolled_back_lists_again_without_new_documents(void **state)
{
    struct fixture *f = *state;

    worker_quick(f);
    long long rows = all_items(f), docs = documents(f), was_listed = listed(f);
    long long fetched = fake_counter(f, "downloads");
    size_t ann = announced(f);
    char *now = saved_cursor(f);
    const char *p[1] = {f->source};

    /* Back to the watermark of the work order before 1014. */
    if (sy_pg_exec(f->pg,
                   "UPDATE ingest_sources SET cursor = (SELECT jsonb_build_object("
                   "   'changedate', metadata->>'changedate', 'wonum', metadata->>'wonum')"
                   "  FROM documents WHERE source = $1 AND metadata->>'wonum' = '1013' LIMIT 1)"
                   " WHERE source = $1",
                   1, p, NULL) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    poll_now(f);
    int64_t end = th_now_ms() + WAIT_MS;
    while (listed(f) < was_listed + 3 && th_now_ms() < end) {
        check_worker(f);
        th_sleep_ms(100);
    }
    wait_items(f, "expanded", items(f, "expanded"));
    assert_int_equal(listed(f), was_listed + 3);
    char *again = saved_cursor(f);
    assert_string_equal(again, now);
    free(again);
    free(now);
    assert_int_equal(all_items(f), rows);
    assert_int_equal(documents(f), docs);
    assert_int_equal(fake_counter(f, "downloads"), fetched);
    assert_int_equal(announced(f), ann);
    nothing_dead(f);

    assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_int_equal(th_log_count(&f->proc, f->apikey), 0);
}

/* --- long listings --------------------------------------------------------------------------- */

/* The worker again, with a lease and a listing time of its own. */
static void worker_restart(struct fixture *f, const char *lease, const char *list_time)
{
    char a[64], b[64];
    const char *extra[] = {"SY_INGEST_CONNECT_TIMEOUT=2s", "SY_INGEST_TIMEOUT=20s", a, b, NULL};

    snprintf(a, sizeof a, "SY_INGEST_POLL_LEASE=%s", lease);
    snprintf(b, sizeof b, "SY_INGEST_LIST_TIME=%s", list_time);
    if (f->running)
        th_stop(&f->proc, &f->running);
    th_proc_cleanup(&f->proc);
    th_ingest_start(&f->proc, &f->running, &f->port, f->run, f->conf, f->files, extra);
}

/* Six work orders with a document each, wonums from first on. */
static void six_work_orders(struct fixture *f, int first)
{
    json_t *list = json_array();
    char wonum[16], name[64];

    for (int i = 0; i < 6; i++) {
        snprintf(wonum, sizeof wonum, "%d", first + i);
        snprintf(name, sizeof name, "log-%d.txt", first + i);
        json_array_append_new(list, json_pack("{s:s, s:s, s:[o]}", "wonum", wonum, "description",
                                              "Daily log", "doclinks",
                                              doclink(f, name, "text/plain", "daily log")));
    }
    workorders(f, list);
}

static void a_listing_longer_than_the_lease_keeps_its_lock(void **state)
{
    struct fixture *f = *state;
    long long expanded = items(f, "expanded"), before = listed(f);

    /* Three pages and six doclinks lists at 300 ms each: about 2.7 s against a 1 s lease. */
    worker_restart(f, "1s", "1m");
    six_work_orders(f, 2001);
    faults(f, json_pack("{s:i}", "delay_ms", 300));
    poll_now(f);
    wait_items(f, "expanded", expanded + 6);
    faults(f, json_pack("{s:i}", "delay_ms", 0));
    assert_int_equal(listed(f), before + 6);
    char *wonum = pg_text(f, "SELECT cursor->>'wonum' FROM ingest_sources WHERE source = $1");
    assert_string_equal(wonum, "2006");
    free(wonum);
    nothing_dead(f);
}

static void a_listing_past_its_time_hands_on_what_it_took(void **state)
{
    struct fixture *f = *state;
    long long expanded = items(f, "expanded"), before = listed(f), first;
    long long lists = fake_counter(f, "lists");

    /* 300 ms an answer, 700 ms to list: two or three work orders a poll. */
    worker_restart(f, "1s", "700ms");
    six_work_orders(f, 3001);
    faults(f, json_pack("{s:i}", "delay_ms", 300));
    poll_now(f);
    int64_t end = th_now_ms() + WAIT_MS;
    while (listed(f) == before && th_now_ms() < end)
        th_sleep_ms(50);
    first = listed(f) - before;
    if (first < 1 || first > 4)
        fail_msg("the first poll listed %lld of 6 work orders, expected a few", first);
    char *wonum = pg_text(f, "SELECT cursor->>'wonum' FROM ingest_sources WHERE source = $1");
    assert_true(atoi(wonum) == 3000 + first);
    free(wonum);
    /* Each poll goes on from there, until all were listed once. */
    for (int polls = 1; listed(f) < before + 6 && polls < 10; polls++) {
        long long now = listed(f);

        poll_now(f);
        end = th_now_ms() + WAIT_MS;
        while (listed(f) == now && th_now_ms() < end)
            th_sleep_ms(50);
    }
    faults(f, json_pack("{s:i}", "delay_ms", 0));
    wait_items(f, "expanded", expanded + 6);
    assert_int_equal(listed(f), before + 6);
    assert_true(fake_counter(f, "lists") >= lists + 2);
    nothing_dead(f);
    assert_int_equal(th_stop(&f->proc, &f->running), 0);
}

static void a_failure_mid_listing_hands_on_what_was_taken_before_it(void **state)
{
    struct fixture *f = *state;
    long long expanded = items(f, "expanded"), before = listed(f);
    long long doclinks = fake_counter(f, "doclink_lists"), refused = fake_counter(f, "refused_503");

    worker_restart(f, "60s", "2m");
    six_work_orders(f, 4001);
    /* The first page and its two work orders' doclinks answer, the second page does not. */
    faults(f, json_pack("{s:i, s:i, s:i}", "pass_first", 3, "fail_503", 1, "retry_after", 1));
    poll_now(f);
    wait_items(f, "expanded", expanded + 6);
    assert_int_equal(fake_counter(f, "refused_503"), refused + 1);
    assert_int_equal(listed(f), before + 6);
    /* Each work order's doclinks asked for once by the listings (the retry went on after the
     * two taken before the failure) and once by its fetch. */
    assert_int_equal(fake_counter(f, "doclink_lists") - doclinks, 12);
    char *wonum = pg_text(f, "SELECT cursor->>'wonum' FROM ingest_sources WHERE source = $1");
    assert_string_equal(wonum, "4006");
    free(wonum);
    nothing_dead(f);
    assert_int_equal(th_stop(&f->proc, &f->running), 0);
}

/* --- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char bin[1200];

    assert_non_null(f);
    th_need_env("SY_INGEST_BIN");
    th_run_id(f->run);
    snprintf(f->source, sizeof f->source, "maximo:it%s", f->run);
    snprintf(f->apikey, sizeof f->apikey, "mxkey-%s", f->run);
    setenv(APIKEY_ENV, f->apikey, 1);

    snprintf(bin, sizeof bin, "%s/maximo/fake-maximo", th_need_env("SY_FAKES_DIR"));
    const char *argv[] = {bin, "--apikey", f->apikey, NULL};
    if (th_fake_glpi_start(argv, &f->fake, &f->fake_port) != 0)
        fail_msg("%s did not start", bin);

    th_ingest_prepare("it-ingest-maximo", f->run, &f->amqp, &f->topo, f->queue, f->dead, &f->pg,
                      f->dir, f->files, f->conf);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "limits:\n  max_bytes: %d\n  types: [application/pdf, text/*, image/*]\n"
             "maximo:\n  it%s:\n    url: http://127.0.0.1:%d/maximo/\n    allow_http: true\n"
             "    apikey_env: %s\n    page_size: 2\n    where: siteid=\"BEDFORD\"\n",
             MAX_BYTES, f->run, f->fake_port, APIKEY_ENV);
    assert_int_equal(th_write_file(f->conf, yaml), 0);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;

    th_fake_glpi_stop(&f->fake);
    th_ingest_teardown(&f->proc, &f->running, f->amqp, f->topo, f->pg, f->source, f->dir, f->msgs,
                       f->nmsgs);
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            work_orders_over_three_pages_become_documents_with_language_and_department),
        cmocka_unit_test(a_second_poll_lists_nothing_and_a_later_change_is_picked_up),
        cmocka_unit_test(too_many_requests_and_unavailable_are_retried_without_loss),
        cmocka_unit_test(an_expired_apikey_is_recorded_and_the_cursor_stays),
        cmocka_unit_test(an_oversize_document_is_rejected_without_download),
        cmocka_unit_test(server_errors_on_a_listing_page_and_a_download_are_retried_without_loss),
        cmocka_unit_test(answers_later_than_the_timeout_are_retried_without_loss),
        cmocka_unit_test(a_crash_between_publishing_fetches_and_saving_the_cursor_lists_again_once),
        cmocka_unit_test(a_watermark_rolled_back_lists_again_without_new_documents),
        cmocka_unit_test(a_listing_longer_than_the_lease_keeps_its_lock),
        cmocka_unit_test(a_listing_past_its_time_hands_on_what_it_took),
        cmocka_unit_test(a_failure_mid_listing_hands_on_what_was_taken_before_it),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
