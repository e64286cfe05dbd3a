/* it_ingest_sharepoint.c - sy-ingest's SharePoint source end to end: the fake Microsoft Graph of
 * tests/fakes/graph (its files added and faults switched through /_fake/, its counters read
 * back from /_fake/state) and the real broker, PostgreSQL and Redis, on the fleet's own
 * topology and schemas:
 *  - files in English and Malayalam, listed over several delta pages, become documents with
 *    their language and department, bytes in the file store, one document.ingested each,
 *    downloaded without the token;
 *  - a second poll lists nothing; a changed file (a new cTag) is a new item; a file over the
 *    size limit is rejected without being downloaded; a deleted one is left alone;
 *  - a poll cut short by its limit leaves a next link, and the next poll goes on from it;
 *  - a token that expired mid-run is renewed once;
 *  - 429 with Retry-After and 503 are waited out, and nothing is lost;
 *  - an expired delta link (410 resyncRequired) lists the whole drive again, and what was
 *    stored before is not stored, downloaded or announced again;
 *  - a 500 on a delta page, a gateway's 502 on a download, and answers later than
 *    SY_INGEST_TIMEOUT are retried, and each file is stored and announced once;
 *  - a token refresh the token endpoint refuses is asked for once, recorded in last_error
 *    (and syctl ingest status), and not retried until the next poll, which then gets the file;
 *  - sy-ingest killed after a poll's fetches were published and before its delta link was
 *    saved lists the same changes again once restarted, and stores nothing twice; so does a
 *    delta link rolled back in SQL to an older one;
 *  - nothing is dead-lettered, and neither the client secret nor a token reaches the log.
 * Isolation on shared services: the source ("sharepoint:it<run>"), the file store, and the
 * files' bytes (they carry the run id) are the run's own. */
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
#include "cm_ingest_crash.h"
#include "harness.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/files.h"
#include "sy/json.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER    "ingest"
#define KNOWLEDGE "sy.knowledge"
#define WAIT_MS   90000
#define MAX_BYTES 20000
#define MAX_MSGS  256
#define PAGE_SIZE 2

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char run[17];
    char source[64], drive[64], secret[64];
    char dir[1200], files[1300], conf[1300];
    char queue[256], dead[256];
    struct th_proc proc;
    bool running;
    int port;
    pid_t fake_pid;
    int fake_port;
    struct th_got msgs[MAX_MSGS];
    size_t nmsgs;
    int limit; /* of the last poll */
};

/* --- the fake Graph -------------------------------------------------------------------------- */

static void fake_post(struct fixture *f, const char *what, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    long st = th_fake_glpi_post(f->fake_port, what, text);

    free(text);
    json_decref(body);
    if (st != 200)
        fail_msg("fake-graph /_fake/%s: HTTP %ld", what, st);
}

/* A file in the library, or new content for the file of that name. */
static void put_file(struct fixture *f, const char *name, const char *content, const char *mime)
{
    fake_post(f, "files",
              json_pack("{s:s, s:s, s:s}", "name", name, "content", content, "mime", mime));
}

static long long fake_counter(struct fixture *f, const char *name)
{
    json_t *s = th_fake_glpi_state(f->fake_port);
    long long n;

    if (!s)
        fail_msg("fake-graph gave no state");
    n = json_integer_value(json_object_get(json_object_get(s, "counters"), name));
    json_decref(s);
    return n;
}

/* The downloads of the fake's file called name. */
static long long downloads_of(struct fixture *f, const char *name)
{
    json_t *s = th_fake_glpi_state(f->fake_port), *it;
    long long n = -1;
    size_t i;

    assert_non_null(s);
    json_array_foreach(json_object_get(s, "files"), i, it)
    {
        const char *nm = json_string_value(json_object_get(it, "name"));

        if (nm && strcmp(nm, name) == 0)
            n = json_integer_value(json_object_get(it, "downloads"));
    }
    json_decref(s);
    return n;
}

/* --- the worker ------------------------------------------------------------------------------ */

/* sy-ingest with the run's Graph secret and the extra "K=V" settings (NULL-terminated, may be
 * NULL); waits until it is ready. */
static void worker_start_with(struct fixture *f, const char *const *extra)
{
    char secret[128];
    const char *env[8] = {secret};
    size_t n = 1;

    snprintf(secret, sizeof secret, "SY_IT_GRAPH_SECRET=%s", f->secret);
    for (size_t i = 0; extra && extra[i] && n < 7; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    th_ingest_start(&f->proc, &f->running, &f->port, f->run, f->conf, f->files, env);
}

static void worker_start(struct fixture *f)
{
    worker_start_with(f, NULL);
}

/* Publishes ingest.poll.sharepoint, with a limit when limit > 0. */
static void publish_poll(struct fixture *f, int limit)
{
    json_t *d = limit > 0 ? json_pack("{s:i}", "limit", limit) : json_object();
    void *mp = NULL;
    size_t len = 0;
    int rc = sy_json_to_msgpack(d, &mp, &len);

    json_decref(d);
    if (rc == 0)
        rc = th_publish_body(f->amqp, f->topo->exchange, "ingest.poll.sharepoint", NULL, mp, len,
                             NULL);
    free(mp);
    if (rc == 0)
        rc = sy_amqp_wait_confirms(f->amqp, 10000);
    if (rc != 0)
        fail_msg("publishing a poll: %s", sy_strerror(rc));
    f->limit = limit;
}

/* A poll this run's worker handles: sy.ingest is shared with whatever other sy-ingest runs
 * against the same broker, and one without this source acknowledges the poll and does nothing,
 * so the poll goes again until the fake sees this worker call. */
static void poll_now(struct fixture *f, int limit)
{
    long long before = fake_counter(f, "requests");
    int64_t end = th_now_ms() + WAIT_MS;

    for (;;) {
        publish_poll(f, limit);
        for (int i = 0; i < 100; i++) {
            if (fake_counter(f, "requests") > before)
                return;
            th_sleep_ms(100);
        }
        if (th_now_ms() > end)
            fail_msg("no poll reached sy-ingest in %d ms", WAIT_MS);
    }
}

static long long pg_count(struct fixture *f, const char *sql)
{
    const char *p[1] = {f->source};
    struct sy_pg_res *res = NULL;
    long long n;

    if (sy_pg_exec(f->pg, sql, 1, p, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    n = sy_pg_res_rows(res) == 1 ? atoll(sy_pg_res_get(res, 0, 0)) : -1;
    sy_pg_res_free(res);
    return n;
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

static void check_alive(struct fixture *f)
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
    int64_t end = th_now_ms() + WAIT_MS, moved = th_now_ms();
    long long seen = -1;

    for (;;) {
        long long n = items(f, status);

        /* A retried poll may have gone to another sy-ingest on the broker: stalled, it goes
         * again (a poll lists from the saved cursor, so a spare one lists nothing). */
        if (n != seen) {
            seen = n;
            moved = th_now_ms();
        } else if (th_now_ms() - moved > 12000 && th_queue_depth(f->amqp, f->queue) == 0) {
            publish_poll(f, f->limit);
            moved = th_now_ms();
        }

        if (n >= want && th_queue_depth(f->amqp, f->queue) == 0) {
            th_sleep_ms(500); /* anything still in flight settles */
            if (items(f, status) != want)
                fail_msg("%lld %s items, expected %lld", items(f, status), status, want);
            return;
        }
        check_alive(f);
        if (th_now_ms() > end) {
            th_proc_dump_log(&f->proc, 40);
            fail_msg("%lld %s items after %d ms, expected %lld", n, status, WAIT_MS, want);
        }
        th_sleep_ms(100);
    }
}

/* Waits until the fake answered `want` delta calls in all and the queues are empty. */
static void wait_delta_calls(struct fixture *f, long long want)
{
    int64_t end = th_now_ms() + WAIT_MS;

    while (fake_counter(f, "delta_calls") < want || th_queue_depth(f->amqp, f->queue) != 0) {
        check_alive(f);
        if (th_now_ms() > end) {
            th_proc_dump_log(&f->proc, 40);
            fail_msg("%lld delta calls after %d ms, expected %lld", fake_counter(f, "delta_calls"),
                     WAIT_MS, want);
        }
        th_sleep_ms(100);
    }
    th_sleep_ms(1000);
}

/* document.ingested messages of this run's source so far. */
static size_t announced(struct fixture *f)
{
    return th_ingest_announced(f->amqp, KNOWLEDGE, f->msgs, MAX_MSGS, &f->nmsgs, f->source);
}

/* Waits until no poll or fetch of this run is left: the worker's queue is empty and the fake
 * has had no request for two seconds. A spare poll still in flight would list what a test
 * adds next before the test's own poll does. */
static void settle(struct fixture *f)
{
    int64_t end = th_now_ms() + WAIT_MS;
    long long last = -1;

    for (;;) {
        long long now = fake_counter(f, "requests");

        if (now == last && th_queue_depth(f->amqp, f->queue) == 0)
            return;
        if (th_now_ms() > end)
            fail_msg("sy-ingest did not settle in %d ms", WAIT_MS);
        last = now;
        th_sleep_ms(2000);
    }
}

/* --- tests ----------------------------------------------------------------------------------- */

static void files_become_documents_with_language_and_department_page_by_page(void **state)
{
    struct fixture *f = *state;
    char text[4096];

    snprintf(text, sizeof text,
             "Track inspection between Aluva and Edappally is complete. Two defects were found "
             "on the viaduct; maintenance at the depot next week. Run %s.\n",
             f->run);
    put_file(f, "Track inspection report.txt", text, "text/plain");
    /* ബജറ്റ് റിപ്പോർട്ട് (budget report): the year's budget, expenditure, tax, revenue, audit. */
    snprintf(text, sizeof text,
             "ഈ വർഷത്തെ ബജറ്റ് ചെലവ് വിവരങ്ങൾ ചേർക്കുന്നു. നികുതി മുഴുവനും അടച്ചു, വരുമാനം "
             "കഴിഞ്ഞ വർഷത്തേക്കാൾ കൂടുതലാണ്. ഓഡിറ്റ് അടുത്ത മാസം നടക്കും. എല്ലാ വിഭാഗങ്ങളും "
             "കണക്കുകൾ സമയത്ത് നൽകണം. %s\n",
             f->run);
    put_file(f, "ബജറ്റ് റിപ്പോർട്ട്.txt", text, "text/plain");
    snprintf(text, sizeof text,
             "%%PDF-1.4\n%% run %s\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R "
             ">>\n%%%%EOF\n",
             f->run);
    put_file(f, "Invoice payment schedule.pdf", text, "application/pdf");
    fake_post(f, "files", json_pack("{s:s, s:b}", "name", "Reports", "folder", 1));
    snprintf(text, sizeof text,
             "Evening peak: passenger crowd on the platform at Vyttila station. Run %s.\n", f->run);
    put_file(f, "Platform crowd at Vyttila station.txt", text, "text/plain");

    worker_start(f);
    poll_now(f, 0);
    wait_items(f, "expanded", 4);
    assert_int_equal(items(f, "stored"), 4);
    assert_int_equal(documents(f), 4);
    assert_int_equal(listed(f), 4);
    /* Five items (one a folder), two a page. */
    assert_true(fake_counter(f, "delta_calls") >= 3);
    assert_int_equal(fake_counter(f, "tokens_issued"), 1);
    assert_int_equal(fake_counter(f, "downloads"), 4);
    assert_int_equal(fake_counter(f, "downloads_with_auth"), 0);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM ingest_sources WHERE source = $1"
                                 " AND cursor ? 'delta_link'"),
                     1);

    struct sy_pg_res *res = NULL;
    const char *p[1] = {f->source};
    if (sy_pg_exec(f->pg,
                   "SELECT filename, mime, language, COALESCE(department, ''), sha256, size,"
                   " metadata->>'name', metadata->>'drive_id', metadata->>'item_id',"
                   " COALESCE(metadata->>'cTag', ''), COALESCE(metadata->>'webUrl', ''),"
                   " source_time IS NOT NULL FROM documents WHERE source = $1 ORDER BY source_id",
                   1, p, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    assert_int_equal(sy_pg_res_rows(res), 4);
    static const char *const want[4][5] = {
        {"Track inspection report.txt", "text/plain", "en", "Engineering", "01FAKE00000001"},
        {"ബജറ്റ് റിപ്പോർട്ട്.txt", "text/plain", "ml", "Finance", "01FAKE00000002"},
        {"Invoice payment schedule.pdf", "application/pdf", "en", "Finance", "01FAKE00000003"},
        {"Platform crowd at Vyttila station.txt", "text/plain", "en", "Operations",
         "01FAKE00000005"},
    };
    for (int i = 0; i < 4; i++) {
        for (int c = 0; c < 4; c++)
            if (strcmp(sy_pg_res_get(res, i, c), want[i][c]) != 0)
                fail_msg("document %d column %d: '%s', expected '%s'", i, c,
                         sy_pg_res_get(res, i, c), want[i][c]);
        assert_string_equal(sy_pg_res_get(res, i, 6), want[i][0]);
        assert_string_equal(sy_pg_res_get(res, i, 7), f->drive);
        assert_string_equal(sy_pg_res_get(res, i, 8), want[i][4]);
        assert_true(strncmp(sy_pg_res_get(res, i, 9), "\"c:{", 4) == 0);
        assert_true(strncmp(sy_pg_res_get(res, i, 10), "https://", 8) == 0);
        assert_string_equal(sy_pg_res_get(res, i, 11), "t");
        void *data = NULL;
        size_t len = 0;
        assert_int_equal(sy_files_get(f->files, sy_pg_res_get(res, i, 4), 1 << 20, &data, &len), 0);
        assert_int_equal((long long)len, atoll(sy_pg_res_get(res, i, 5)));
        free(data);
    }
    sy_pg_res_free(res);
    assert_int_equal(announced(f), 4);
}

static void a_second_poll_lists_nothing_and_a_changed_file_is_a_new_item(void **state)
{
    struct fixture *f = *state;
    char text[1024];

    poll_now(f, 0);
    wait_delta_calls(f, 4);
    assert_int_equal(listed(f), 4);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"), 8);

    /* New content for one file, another deleted, and one over the size limit. */
    snprintf(text, sizeof text,
             "Track inspection between Aluva and Edappally, revised: the repair work order for "
             "the viaduct is issued. Run %s.\n",
             f->run);
    put_file(f, "Track inspection report.txt", text, "text/plain");
    fake_post(f, "delete", json_pack("{s:s}", "name", "Platform crowd at Vyttila station.txt"));
    char *big = malloc(MAX_BYTES + 10001);
    memset(big, 'x', MAX_BYTES + 10000);
    big[MAX_BYTES + 10000] = '\0';
    memcpy(big, f->run, strlen(f->run));
    put_file(f, "Viaduct drawings.pdf", big, "application/pdf");
    free(big);

    poll_now(f, 0);
    wait_items(f, "expanded", 6);
    assert_int_equal(listed(f), 6);
    assert_int_equal(items(f, "stored"), 5);
    assert_int_equal(documents(f), 5);
    assert_int_equal(items(f, "rejected"), 1);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"
                                 " AND status = 'rejected' AND reason LIKE '%limit%'"),
                     1);
    assert_int_equal(downloads_of(f, "Viaduct drawings.pdf"), 0);
    assert_int_equal(downloads_of(f, "Track inspection report.txt"), 2);
    /* The file's two versions are two items of the same driveItem. */
    assert_int_equal(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"
                                 " AND status = 'expanded' AND source_id LIKE '01FAKE00000001@%'"),
                     2);
    assert_int_equal(announced(f), 5);
}

static void a_poll_cut_short_by_its_limit_goes_on_from_its_next_link(void **state)
{
    struct fixture *f = *state;
    char name[64], text[512];

    settle(f);
    for (int i = 1; i <= 5; i++) {
        snprintf(name, sizeof name, "Timetable %d.txt", i);
        snprintf(text, sizeof text, "Train service timetable, part %d, run %s.\n", i, f->run);
        put_file(f, name, text, "text/plain");
    }
    /* Two a page: the second page would make four, past the limit of three. */
    poll_now(f, 3);
    int64_t end = th_now_ms() + WAIT_MS;
    while (listed(f) < 8 && th_now_ms() < end)
        th_sleep_ms(50);
    assert_int_equal(listed(f), 8);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM ingest_sources WHERE source = $1"
                                 " AND cursor ? 'next_link'"),
                     1);
    wait_items(f, "expanded", 8);
    poll_now(f, 0);
    wait_items(f, "expanded", 11);
    assert_int_equal(listed(f), 11);
    assert_int_equal(items(f, "stored"), 10);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM ingest_sources WHERE source = $1"
                                 " AND cursor ? 'delta_link'"),
                     1);
    assert_int_equal(announced(f), 10);
}

static void a_token_expired_mid_run_is_renewed_once(void **state)
{
    struct fixture *f = *state;
    long long tokens = fake_counter(f, "tokens_issued");
    char text[512];

    fake_post(f, "faults", json_pack("{s:b}", "expire_tokens", 1));
    snprintf(text, sizeof text, "Safety mock drill and evacuation at the depot, run %s.\n", f->run);
    put_file(f, "Mock drill.txt", text, "text/plain");
    poll_now(f, 0);
    wait_items(f, "expanded", 12);
    assert_int_equal(items(f, "stored"), 11);
    assert_int_equal(fake_counter(f, "tokens_issued"), tokens + 1);
    assert_true(fake_counter(f, "unauthorized") >= 1);
}

static void throttling_and_outages_are_waited_out_and_nothing_is_lost(void **state)
{
    struct fixture *f = *state;
    char name[64], text[512];

    fake_post(f, "faults", json_pack("{s:i, s:i}", "fail_429", 2, "retry_after", 1));
    for (int i = 1; i <= 2; i++) {
        snprintf(name, sizeof name, "Ridership %d.txt", i);
        snprintf(text, sizeof text, "Passenger ridership figures, week %d, run %s.\n", i, f->run);
        put_file(f, name, text, "text/plain");
    }
    poll_now(f, 0);
    wait_items(f, "expanded", 14);
    assert_int_equal(fake_counter(f, "throttled"), 2);

    fake_post(f, "faults", json_pack("{s:i, s:i}", "fail_503", 2, "retry_after", 1));
    for (int i = 1; i <= 2; i++) {
        snprintf(name, sizeof name, "Headway %d.txt", i);
        snprintf(text, sizeof text, "Headway and frequency plan %d, run %s.\n", i, f->run);
        put_file(f, name, text, "text/plain");
    }
    poll_now(f, 0);
    wait_items(f, "expanded", 16);
    assert_int_equal(fake_counter(f, "unavailable"), 2);
    assert_int_equal(items(f, "stored"), 15);
    assert_int_equal(documents(f), 15);
    assert_int_equal(announced(f), 15);
}

static void an_expired_delta_link_lists_all_again_and_stores_nothing_twice(void **state)
{
    struct fixture *f = *state;
    long long rows = pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1");
    long long downloads = fake_counter(f, "downloads"), before = listed(f);
    char text[512];

    snprintf(text, sizeof text, "Board meeting minutes of the meeting, run %s.\n", f->run);
    put_file(f, "Board minutes.txt", text, "text/plain");
    fake_post(f, "faults", json_pack("{s:b}", "expire_delta", 1));
    poll_now(f, 0);
    wait_items(f, "expanded", 17);
    assert_int_equal(fake_counter(f, "gone"), 1);
    /* Every live file listed again: 3 of the first, the oversize one, 5 timetables, the
     * drill, 4 of the throttled polls and the new one. Only the new one is fetched. */
    assert_int_equal(listed(f), before + 15);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1"),
                     rows + 2);
    assert_int_equal(fake_counter(f, "downloads"), downloads + 1);
    assert_int_equal(documents(f), 16);
    assert_int_equal(announced(f), 16);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM ingest_sources WHERE source = $1"
                                 " AND cursor ? 'delta_link' AND last_error IS NULL"),
                     1);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);

    assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_int_equal(th_log_count(&f->proc, f->secret), 0);
    assert_int_equal(th_log_count(&f->proc, "eyJfake."), 0);
    assert_true(th_log_count(&f->proc, "listing the whole drive again") >= 1);
}

/* --- server errors, timeouts, a refused client and a crash ---------------------------------- */

/* The worker these tests run: calls to Graph cut off after two seconds, so a late answer is a
 * failed call. Started again unless it is already the one they started. */
static pid_t quick_pid;

static void worker_quick(struct fixture *f)
{
    static const char *const quick[] = {"SY_INGEST_CONNECT_TIMEOUT=2s", "SY_INGEST_TIMEOUT=2s",
                                        NULL};

    if (f->running && f->proc.pid == quick_pid)
        return;
    if (f->running)
        assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_int_equal(th_log_count(&f->proc, f->secret), 0);
    worker_start_with(f, quick);
    quick_pid = f->proc.pid;
}

static long long all_items(struct fixture *f)
{
    return pg_count(f, "SELECT count(*) FROM document_items WHERE source = $1");
}

/* The first column of the first row of sql over $1 = the source, as text ("" for NULL). */
static char *pg_text(struct fixture *f, const char *sql)
{
    const char *p[1] = {f->source};
    struct sy_pg_res *res = NULL;
    char *s;

    if (sy_pg_exec(f->pg, sql, 1, p, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    s = strdup(sy_pg_res_rows(res) && sy_pg_res_get(res, 0, 0) ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
    return s;
}

static char *saved_cursor(struct fixture *f)
{
    return pg_text(f, "SELECT cursor::text FROM ingest_sources WHERE source = $1");
}

static char *last_error(struct fixture *f)
{
    return pg_text(f, "SELECT COALESCE(last_error, '') FROM ingest_sources WHERE source = $1");
}

static void no_last_error(struct fixture *f)
{
    char *why = last_error(f);

    assert_string_equal(why, "");
    free(why);
}

static void nothing_dead(struct fixture *f)
{
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);
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

/* Three new files, named after tag: from the saved delta link, two a page, they take a page
 * that a nextLink names. */
static void three_files(struct fixture *f, const char *tag, char names[3][96])
{
    static const char *const what[3] = {"Pump overhaul checklist", "Escalator repair report",
                                        "Station lighting survey"};
    char text[512];

    for (int i = 0; i < 3; i++) {
        snprintf(names[i], 96, "%s %s.txt", what[i], tag);
        snprintf(text, sizeof text, "%s at the depot, %s, run %s.\n", what[i], tag, f->run);
        put_file(f, names[i], text, "text/plain");
    }
}

/* The downloads of the three, each at least one. */
static long long downloads_of_all(struct fixture *f, char names[3][96])
{
    long long n = 0;

    for (int i = 0; i < 3; i++) {
        long long d = downloads_of(f, names[i]);

        if (d < 1)
            fail_msg("%s was downloaded %lld times", names[i], d);
        n += d;
    }
    return n;
}

static void server_errors_on_a_delta_page_and_a_download_are_retried_without_loss(void **state)
{
    struct fixture *f = *state;
    char names[3][96];

    worker_quick(f);
    long long docs = documents(f), expanded = items(f, "expanded"), stored = items(f, "stored");
    long long rows = all_items(f), faulted = fake_counter(f, "faulted");
    long long pages = fake_counter(f, "next_pages");
    size_t ann = announced(f), from = f->nmsgs;

    three_files(f, "5xx", names);
    /* A 500 from Graph on the page a nextLink names, and a gateway's 502 page for a
     * download. */
    fake_post(f, "faults",
              json_pack("{s:[{s:s, s:i}, {s:s, s:i}]}", "once", "on", "next_page", "status", 500,
                        "on", "download", "status", 502));
    poll_now(f, 0);
    wait_items(f, "expanded", expanded + 3);
    assert_int_equal(fake_counter(f, "faulted"), faulted + 2);
    /* The listing failed on its second page and went again from the saved link. */
    assert_int_equal(fake_counter(f, "next_pages"), pages + 2);
    /* Each file stored once and downloaded once (the 502 came instead of its bytes). */
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
    char names[3][96];

    worker_quick(f);
    long long docs = documents(f), expanded = items(f, "expanded"), stored = items(f, "stored");
    long long rows = all_items(f), faulted = fake_counter(f, "faulted");
    long long pages = fake_counter(f, "next_pages"), dups = items(f, "duplicate");
    size_t ann = announced(f), from = f->nmsgs;

    three_files(f, "late", names);
    /* The second page and a download answered five seconds late, past the two allowed. */
    fake_post(f, "faults",
              json_pack("{s:[{s:s, s:i}, {s:s, s:i}]}", "once", "on", "next_page", "delay_ms", 5000,
                        "on", "download", "delay_ms", 5000));
    poll_now(f, 0);
    wait_items(f, "expanded", expanded + 3);
    assert_int_equal(fake_counter(f, "faulted"), faulted + 2);
    /* The late page was given up on and the listing went again; so was the late download,
     * and its file was downloaded again (the fake counts the late answer too). */
    assert_int_equal(fake_counter(f, "next_pages"), pages + 2);
    assert_true(th_log_count(&f->proc, "no answer within 2000 ms") >= 1);
    assert_int_equal(downloads_of_all(f, names), 4);
    /* Nothing lost, nothing twice. */
    assert_int_equal(documents(f), docs + 3);
    assert_int_equal(items(f, "stored"), stored + 3);
    assert_int_equal(items(f, "duplicate"), dups);
    assert_int_equal(all_items(f), rows + 6);
    assert_int_equal(announced(f), ann + 3);
    assert_int_equal(distinct_since(f, from), 3);
    no_last_error(f);
    nothing_dead(f);
}

/* The token lapses and the token endpoint refuses the client from then on (its secret
 * expired): the worker asks for a new token once, records why it stopped, and does not try
 * again until the next poll; nothing listed meanwhile is lost once the client is accepted. */
static void a_token_refresh_refused_is_recorded_once_and_the_files_wait(void **state)
{
    struct fixture *f = *state;
    char text[512];

    worker_quick(f);
    long long docs = documents(f), expanded = items(f, "expanded"), was_listed = listed(f);
    long long asked = fake_counter(f, "token_requests"), issued = fake_counter(f, "tokens_issued");
    long long refused = fake_counter(f, "token_refused");
    size_t ann = announced(f);
    char *before = saved_cursor(f);

    snprintf(text, sizeof text, "Refund policy for smart card balances, run %s.\n", f->run);
    put_file(f, "Refund policy.txt", text, "text/plain");
    fake_post(f, "faults", json_pack("{s:b, s:b}", "expire_tokens", 1, "refuse_tokens", 1));
    poll_now(f, 0);
    int64_t end = th_now_ms() + WAIT_MS;
    char *why = NULL;
    for (;;) {
        why = last_error(f);
        if (*why || th_now_ms() > end)
            break;
        free(why);
        check_alive(f);
        th_sleep_ms(100);
    }
    if (!strstr(why, "refused the client") || !strstr(why, "invalid_client"))
        fail_msg("last_error: '%s', expected the client refused", why);
    free(why);
    /* One refresh, refused, and no retry after it: a poll retried would ask within seconds. */
    th_sleep_ms(3000);
    assert_int_equal(fake_counter(f, "token_requests"), asked + 1);
    assert_int_equal(fake_counter(f, "token_refused"), refused + 1);
    assert_int_equal(fake_counter(f, "tokens_issued"), issued);
    assert_int_equal(listed(f), was_listed);
    char *now = saved_cursor(f);
    assert_string_equal(now, before);
    free(now);
    free(before);

    /* What syctl shows of the source: the same error. */
    char *out = NULL, *err = NULL;
    const char *args[] = {"ingest", "status", "--json", NULL};
    assert_int_equal(th_run(th_need_env("SYCTL_BIN"), args, NULL, 30000, &out, &err), 0);
    json_t *all = json_loads(out, 0, NULL), *it, *mine = NULL;
    size_t i;
    assert_non_null(all);
    json_array_foreach(all, i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "source")), f->source) == 0)
            mine = it;
    }
    assert_non_null(mine);
    const char *shown = json_string_value(json_object_get(mine, "last_error"));
    assert_non_null(shown);
    assert_non_null(strstr(shown, "refused the client"));
    json_decref(all);
    free(out);
    free(err);

    /* The client accepted again: the next poll gets a token and the file. */
    fake_post(f, "faults", json_pack("{s:b}", "refuse_tokens", 0));
    poll_now(f, 0);
    wait_items(f, "expanded", expanded + 1);
    assert_int_equal(fake_counter(f, "tokens_issued"), issued + 1);
    assert_int_equal(documents(f), docs + 1);
    assert_int_equal(downloads_of(f, "Refund policy.txt"), 1);
    assert_int_equal(announced(f), ann + 1);
    no_last_error(f);
    nothing_dead(f);
    assert_int_equal(th_log_count(&f->proc, f->secret), 0);
}

/* A real crash: sy-ingest gets SIGKILL after the broker confirmed every fetch of a poll and
 * before the poll's delta link was saved, while a fetch had stored a document and not yet
 * announced it (cm_ingest_crash.h holds both there). Started again, the worker gets the poll
 * again (it was never acknowledged), lists the same changes from the old delta link, and each
 * file is stored and announced once. */
static void
a_crash_between_publishing_fetches_and_saving_the_delta_link_lists_again_once(void **state)
{
    struct fixture *f = *state;
    char names[3][96];

    worker_quick(f);
    long long docs = documents(f), expanded = items(f, "expanded"), stored = items(f, "stored");
    long long rows = all_items(f), was_listed = listed(f), dups = items(f, "duplicate");
    char *before = saved_cursor(f);
    size_t ann = announced(f), from = f->nmsgs;

    three_files(f, "crash", names);
    struct sy_pg *hold = th_ingest_hold_row(f->source);
    poll_now(f, 0);
    th_ingest_wait_waiting(hold, TH_INGEST_CURSOR_UPDATE, &f->proc, &f->running, WAIT_MS);
    th_ingest_wait_waiting(hold, TH_INGEST_STORED_COUNT, &f->proc, &f->running, WAIT_MS);
    th_ingest_kill_held(&f->proc, &f->running, hold, f->source);
    assert_int_equal(th_log_count(&f->proc, f->secret), 0);

    /* Dead with the fetches published: one document stored, none announced, the delta link
     * and the count of listed items where they were. */
    char *now = saved_cursor(f);
    assert_string_equal(now, before);
    free(now);
    assert_int_equal(listed(f), was_listed);
    assert_int_equal(documents(f), docs + 1);
    assert_int_equal(items(f, "expanded"), expanded);
    assert_int_equal(announced(f), ann);

    worker_quick(f);
    wait_items(f, "expanded", expanded + 3);
    /* Listed again (and counted once: the first listing's count died with its link). */
    assert_int_equal(listed(f), was_listed + 3);
    now = saved_cursor(f);
    assert_string_not_equal(now, before);
    free(now);
    free(before);
    assert_int_equal(documents(f), docs + 3);
    assert_int_equal(items(f, "stored"), stored + 3);
    assert_int_equal(items(f, "duplicate"), dups);
    assert_int_equal(all_items(f), rows + 6);
    /* Each announced, the one stored before the crash too; an announcement made again would
     * carry the same id. */
    announced(f);
    assert_int_equal(distinct_since(f, from), 3);
    no_last_error(f);
    nothing_dead(f);
}

/* The delta link rolled back in SQL to one saved before the last two files, as a cursor save
 * lost after its fetches: Graph's changes since then are listed again, and nothing is
 * downloaded, stored or announced again. */
static void a_delta_link_rolled_back_lists_again_without_new_documents(void **state)
{
    struct fixture *f = *state;
    char text[512];

    worker_quick(f);
    char *older = saved_cursor(f);
    long long expanded = items(f, "expanded");
    for (int i = 1; i <= 2; i++) {
        char name[64];

        snprintf(name, sizeof name, "Fare revision %d.txt", i);
        snprintf(text, sizeof text, "Fare revision notice %d for the new stations, run %s.\n", i,
                 f->run);
        put_file(f, name, text, "text/plain");
    }
    poll_now(f, 0);
    wait_items(f, "expanded", expanded + 2);
    char *latest = saved_cursor(f);
    long long rows = all_items(f), docs = documents(f), was_listed = listed(f);
    long long fetched = fake_counter(f, "downloads");
    size_t ann = announced(f);

    const char *p[2] = {f->source, older};
    if (sy_pg_exec(f->pg, "UPDATE ingest_sources SET cursor = $2::jsonb WHERE source = $1", 2, p,
                   NULL) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    poll_now(f, 0);
    int64_t end = th_now_ms() + WAIT_MS;
    while (listed(f) < was_listed + 2 && th_now_ms() < end) {
        check_alive(f);
        th_sleep_ms(100);
    }
    wait_items(f, "expanded", expanded + 2);
    assert_int_equal(listed(f), was_listed + 2);
    char *again = saved_cursor(f);
    assert_string_equal(again, latest);
    free(again);
    free(latest);
    free(older);
    assert_int_equal(all_items(f), rows);
    assert_int_equal(documents(f), docs);
    assert_int_equal(fake_counter(f, "downloads"), fetched);
    assert_int_equal(announced(f), ann);
    nothing_dead(f);

    assert_int_equal(th_stop(&f->proc, &f->running), 0);
    assert_int_equal(th_log_count(&f->proc, f->secret), 0);
    assert_int_equal(th_log_count(&f->proc, "eyJfake."), 0);
}

/* --- a long enumeration ---------------------------------------------------------------------- */

static void a_listing_longer_than_the_lease_hands_on_its_next_link_and_goes_on(void **state)
{
    struct fixture *f = *state;
    long long before = listed(f), expanded = items(f, "expanded"), first;
    static const char *const slow[] = {"SY_INGEST_POLL_LEASE=1s", "SY_INGEST_LIST_TIME=500ms",
                                       NULL};
    char name[64], text[256];

    /* A 1 s lease, 500 ms to list, 400 ms a page: three pages take longer than either. */
    if (f->running)
        th_stop(&f->proc, &f->running);
    th_proc_cleanup(&f->proc);
    worker_start_with(f, slow);

    for (int i = 1; i <= 6; i++) {
        snprintf(name, sizeof name, "Shift roster %d.txt", i);
        snprintf(text, sizeof text, "Station shift roster, week %d, run %s.\n", i, f->run);
        put_file(f, name, text, "text/plain");
    }
    fake_post(f, "faults", json_pack("{s:i}", "delay_ms", 400));
    poll_now(f, 0);
    int64_t end = th_now_ms() + WAIT_MS;
    while (listed(f) == before && th_now_ms() < end) {
        check_alive(f);
        th_sleep_ms(50);
    }
    first = listed(f) - before;
    if (first < 1 || first > 5)
        fail_msg("the first poll listed %lld of 6 files, expected a page or two", first);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM ingest_sources WHERE source = $1"
                                 " AND cursor ? 'next_link'"),
                     1);
    for (int polls = 1; listed(f) < before + 6 && polls < 10; polls++) {
        long long now = listed(f);

        poll_now(f, 0);
        end = th_now_ms() + WAIT_MS;
        while (listed(f) == now && th_now_ms() < end)
            th_sleep_ms(50);
    }
    fake_post(f, "faults", json_pack("{s:i}", "delay_ms", 0));
    wait_items(f, "expanded", expanded + 6);
    assert_int_equal(listed(f), before + 6);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM ingest_sources WHERE source = $1"
                                 " AND cursor ? 'delta_link'"),
                     1);
    assert_int_equal(th_queue_depth(f->amqp, f->dead), 0);
    assert_int_equal(th_stop(&f->proc, &f->running), 0);
}

/* --- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char bin[1200], tenant[40], client[40], page[16];

    assert_non_null(f);
    th_need_env("SY_INGEST_BIN");
    th_run_id(f->run);
    snprintf(f->source, sizeof f->source, "sharepoint:it%s", f->run);
    snprintf(f->drive, sizeof f->drive, "b!drive-%s", f->run);
    snprintf(f->secret, sizeof f->secret, "secret-%s-Xq7", f->run);
    snprintf(tenant, sizeof tenant, "it%s", f->run);
    snprintf(client, sizeof client, "client-%s", f->run);
    snprintf(page, sizeof page, "%d", PAGE_SIZE);
    snprintf(bin, sizeof bin, "%s/graph/fake-graph", th_need_env("SY_FAKES_DIR"));
    const char *argv[] = {bin,       "--tenant", tenant,   "--client-id", client, "--client-secret",
                          f->secret, "--drive",  f->drive, "--page-size", page,   NULL};
    if (th_fake_glpi_start(argv, &f->fake_pid, &f->fake_port) != 0)
        fail_msg("fake-graph did not start: %s", bin);

    th_ingest_prepare("it-ingest-sharepoint", f->run, &f->amqp, &f->topo, f->queue, f->dead, &f->pg,
                      f->dir, f->files, f->conf);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "limits:\n  max_bytes: %d\n  types: [application/pdf, text/*]\n"
             "sharepoint:\n  it%s:\n    tenant: %s\n    client_id: %s\n"
             "    client_secret_env: SY_IT_GRAPH_SECRET\n    drive_id: \"%s\"\n"
             "    token_url: http://127.0.0.1:%d/%s/oauth2/v2.0/token\n"
             "    graph_url: http://127.0.0.1:%d/v1.0/\n    allow_http: true\n",
             MAX_BYTES, f->run, tenant, client, f->drive, f->fake_port, tenant, f->fake_port);
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
        cmocka_unit_test(files_become_documents_with_language_and_department_page_by_page),
        cmocka_unit_test(a_second_poll_lists_nothing_and_a_changed_file_is_a_new_item),
        cmocka_unit_test(a_poll_cut_short_by_its_limit_goes_on_from_its_next_link),
        cmocka_unit_test(a_token_expired_mid_run_is_renewed_once),
        cmocka_unit_test(throttling_and_outages_are_waited_out_and_nothing_is_lost),
        cmocka_unit_test(an_expired_delta_link_lists_all_again_and_stores_nothing_twice),
        cmocka_unit_test(server_errors_on_a_delta_page_and_a_download_are_retried_without_loss),
        cmocka_unit_test(answers_later_than_the_timeout_are_retried_without_loss),
        cmocka_unit_test(a_token_refresh_refused_is_recorded_once_and_the_files_wait),
        cmocka_unit_test(
            a_crash_between_publishing_fetches_and_saving_the_delta_link_lists_again_once),
        cmocka_unit_test(a_delta_link_rolled_back_lists_again_without_new_documents),
        cmocka_unit_test(a_listing_longer_than_the_lease_hands_on_its_next_link_and_goes_on),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
