/* it_glpi.c - sy-glpi end to end: real sy-glpi processes on the fleet's own topology and
 * message schemas, the real broker, PostgreSQL and Redis, and the fake GLPI of tests/fakes/glpi
 * (its state read back from /_fake/state, its faults switched through /_fake/faults).
 *
 *  - the whole flow: a hook added with syctl (which opens a session to check it), a contact, a
 *    conversation, messages incl. a private note, a resolution, a contact update and an
 *    unhandled event become one User, one Ticket with that requester, followups in order, a
 *    solved ticket; bad data is dead-lettered naming its field; syctl never prints a token;
 *  - a storm: 2,000 events for 100 contacts and 200 conversations, shuffled, a tenth of them
 *    twice, to three replicas at once → exactly 100 people, 200 tickets, every message once
 *    and in order;
 *  - sessions expiring mid-run, and creates of Users, Tickets and followups whose replies are
 *    lost (connection closed, empty 200) → still exactly once, and sessions are reused, not
 *    made per message;
 *  - GLPI failing every call for 30 s, and a 429 with Retry-After → nothing lost, and the
 *    retry waits at least as long as GLPI asked;
 *  - a followup GLPI refuses mid-conversation → recorded with GLPI's answer, its event alone
 *    dead-lettered with GLPI's code, the later messages and the resolution mirrored, and the
 *    event's replay mirrors it once GLPI takes it;
 *  - a resolution whose answer was lost, then a reopening and a new resolution → one
 *    resolution followup;
 *  - --sync contact, and a hook added again with another sync type → a Contact made and
 *    linked in place of the User link, the ticket's requester the contact's email;
 *  - people GLPI already has linked by email and by phone, a LIKE near miss not taken;
 *    `remove` keeping links and `remove --purge` forgetting them;
 *  - `syctl glpi hook add` refusing http:// without --allow-http, --allow-http to another
 *    host, a token GLPI refuses (exit code, GLPI's code, no token printed), and warning when
 *    there is no webhook secret;
 *  - Chatwoot's deliveries through a real sy-gateway that knows the hook only from what syctl
 *    stored: signed ones are mirrored, forged ones 401, an unknown hook 404, a hook stored
 *    without a webhook secret 401, and with the database away 503 with Retry-After.
 *
 * Isolation on shared services: the hook id carries the run id, and the worker's links, fences
 * and mutexes are keyed by it; nothing else consumes sy.glpi. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chatwoot.h"
#include "harness.h"
#include "http.h"
#include "cm_worker.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER         "glpi"
#define DEAD           "sy.glpi.dead"
#define REPLICAS       3
#define START_MAX_MS   20000
#define SETTLE_MS      120000
#define CONTACTS       100
#define CONVS          200
#define EVENTS         2000
#define DOWN_MS        30000
#define USER_TOKEN     "it-user-token-5f1c9a"
#define APP_TOKEN      "it-app-token-77d2e0"
#define WEBHOOK_SECRET "it-webhook-secret-3b9e41"
#define BAD_TOKEN      "it-not-the-user-token-91c0de"

struct worker {
    struct th_proc proc;
    bool running;
    int port;
};

struct fixture {
    struct sy_amqp *amqp;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char run[17];
    char hook[40];
    char bin[1024], src[1024], fake_bin[1024], syctl[1024];
    pid_t fake_pid;
    int fake_port;
    struct worker w[REPLICAS];
    int instances;
    long long next_id; /* Chatwoot ids of this run, unique across tests */
};

/* --- the fake GLPI ------------------------------------------------------------------------ */

static void fake_start(struct fixture *f)
{
    const char *argv[] = {f->fake_bin, "--app-token", APP_TOKEN, "--user-token", USER_TOKEN, NULL};

    if (th_fake_glpi_start(argv, &f->fake_pid, &f->fake_port) != 0)
        fail_msg("fake-glpi did not start: %s", f->fake_bin);
}

static void fake_post(struct fixture *f, const char *path, const char *body)
{
    long st = th_fake_glpi_post(f->fake_port, path + strlen("/_fake/"), body);

    if (st != 200)
        fail_msg("fake %s: %ld", path, st);
}

static json_t *fake_state(struct fixture *f)
{
    json_t *s = th_fake_glpi_state(f->fake_port);

    if (!s)
        fail_msg("fake-glpi gave no state");
    return s;
}

static long long counter(json_t *state, const char *name)
{
    return json_integer_value(json_object_get(json_object_get(state, "counters"), name));
}

/* --- syctl and the worker ----------------------------------------------------------------- */

static int syctl(struct fixture *f, const char *const *args, char **out, char **err)
{
    char tok[64], wh[64];
    const char *env[] = {tok, wh, "IT_GLPI_BAD_TOKEN=" BAD_TOKEN, NULL};

    snprintf(tok, sizeof tok, "IT_GLPI_TOKEN=%s", USER_TOKEN);
    snprintf(wh, sizeof wh, "IT_GLPI_WEBHOOK_SECRET=%s", WEBHOOK_SECRET);
    return th_run(f->syctl, args, env, 30000, out, err);
}

/* syctl glpi hook add for hook `id` against the fake, with the app token, the user token from
 * token_src, the webhook secret when `secret`, and the extra arguments (NULL-ended, may be
 * NULL): syctl's exit code, its output and error output in *out and *err (caller frees). */
static int hook_add_try(struct fixture *f, const char *id, bool contact_sync, bool secret,
                        const char *token_src, const char *const *extra, char **out, char **err)
{
    char url[128], app[256], app_src[300];
    const char *args[40];
    size_t n = 0;
    int rc;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/apirest.php", f->fake_port);
    snprintf(app, sizeof app, "%s/Testing/glpi-app-%s", th_need_env("SY_BUILD_DIR"), f->run);
    assert_int_equal(th_write_file(app, APP_TOKEN "\n"), 0);
    snprintf(app_src, sizeof app_src, "@%s", app);
    static const char *const base[] = {"glpi", "hook", "add"};
    for (size_t i = 0; i < 3; i++)
        args[n++] = base[i];
    args[n++] = id;
    args[n++] = "--api-url";
    args[n++] = url;
    args[n++] = "--user-token";
    args[n++] = token_src;
    args[n++] = "--app-token";
    args[n++] = app_src;
    if (secret) {
        args[n++] = "--webhook-secret";
        args[n++] = "env:IT_GLPI_WEBHOOK_SECRET";
    }
    args[n++] = "--allow-http";
    args[n++] = "--sync";
    args[n++] = contact_sync ? "contact" : "user";
    args[n++] = "--category";
    args[n++] = "7";
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    rc = syctl(f, args, out, err);
    unlink(app);
    /* Whatever the outcome, no token is printed. */
    assert_null(strstr(*out, USER_TOKEN));
    assert_null(strstr(*err, USER_TOKEN));
    assert_null(strstr(*out, APP_TOKEN));
    assert_null(strstr(*err, APP_TOKEN));
    assert_null(strstr(*out, BAD_TOKEN));
    assert_null(strstr(*err, BAD_TOKEN));
    return rc;
}

/* As hook_add_try with the right token, failing the test unless syctl exits 0; *err_out
 * (caller frees, may be NULL) gets its error output. */
static void hook_add_as(struct fixture *f, const char *id, bool contact_sync, bool secret,
                        const char *const *extra, char **err_out)
{
    char *out = NULL, *err = NULL;
    int rc = hook_add_try(f, id, contact_sync, secret, "env:IT_GLPI_TOKEN", extra, &out, &err);

    if (rc != 0)
        fail_msg("syctl glpi hook add: %d: %s %s", rc, out, err);
    free(out);
    if (err_out)
        *err_out = err;
    else
        free(err);
}

static void hook_add(struct fixture *f, bool contact_sync)
{
    hook_add_as(f, f->hook, contact_sync, true, NULL, NULL);
}

static void worker_start(struct fixture *f, struct worker *w)
{
    char addr[64], inst[96], amqp[512], pg[512], redis[512];

    w->port = th_free_port();
    snprintf(addr, sizeof addr, "SY_HTTP_ADDR=127.0.0.1:%d", w->port);
    snprintf(inst, sizeof inst, "SY_INSTANCE=it-glpi-%s-%d", f->run, ++f->instances);
    snprintf(amqp, sizeof amqp, "SY_AMQP_URL=%s", th_need_env("SY_AMQP_URL"));
    snprintf(pg, sizeof pg, "SY_PG_URL=%s", th_need_env("SY_PG_URL"));
    snprintf(redis, sizeof redis, "SY_REDIS_URL=%s", th_need_env("SY_REDIS_URL"));
    const char *env[] = {addr,
                         inst,
                         amqp,
                         pg,
                         redis,
                         "SY_HANDLER_THREADS=4",
                         "SY_GLPI_TIMEOUT=5s",
                         "SY_LOG_LEVEL=info",
                         NULL};
    assert_int_equal(th_proc_spawn(&w->proc, f->bin, env), 0);
    w->running = true;
    int64_t end = th_now_ms() + START_MAX_MS;
    for (;;) {
        struct th_reply r = th_http(w->port, "GET", "/readyz", NULL, NULL);
        long st = r.status;

        th_reply_free(&r);
        if (st == 200)
            return;
        if (th_proc_wait(&w->proc, 0) == 0) {
            w->running = false;
            th_proc_dump_log(&w->proc, 40);
            fail_msg("sy-glpi exited with %d", w->proc.exit_status);
        }
        if (th_now_ms() > end) {
            th_proc_dump_log(&w->proc, 40);
            fail_msg("sy-glpi was not ready within %d ms", START_MAX_MS);
        }
        th_sleep_ms(50);
    }
}

static int worker_stop(struct worker *w)
{
    if (!w->running)
        return -1;
    th_proc_signal(&w->proc, SIGTERM);
    if (th_proc_wait(&w->proc, 20000) != 0)
        th_proc_cleanup(&w->proc);
    w->running = false;
    if (w->proc.exit_status != 0)
        th_proc_dump_log(&w->proc, 40);
    return w->proc.exit_status;
}

static double metric(struct worker *w, const char *name, const char *labels)
{
    struct th_reply r = th_http(w->port, "GET", "/metrics", NULL, NULL);
    size_t len = strlen(name);
    double sum = 0;

    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, name, len) != 0 || (line[len] != ' ' && line[len] != '{'))
            continue;
        if (labels && !strstr(line, labels))
            continue;
        const char *v = strrchr(line, ' ');
        if (v)
            sum += strtod(v + 1, NULL);
    }
    th_reply_free(&r);
    return sum;
}

/* --- Chatwoot's payloads ------------------------------------------------------------------ */

/* An event into the exchange as sy-gateway publishes it (payload consumed). */
static void publish(struct fixture *f, const char *event, json_t *payload, const char *id)
{
    int rc = th_cw_publish(f->amqp, f->topo->exchange, f->hook, event, payload, id);

    if (rc != 0)
        fail_msg("publish: %s (%s)", sy_strerror(rc), sy_amqp_error(f->amqp));
}

static void confirm(struct fixture *f)
{
    int rc = sy_amqp_wait_confirms(f->amqp, 30000);

    if (rc != 0)
        fail_msg("publish not confirmed: %s", sy_strerror(rc));
}

/* --- what PostgreSQL and GLPI hold -------------------------------------------------------- */

static long long pg_count(struct fixture *f, const char *sql)
{
    const char *p[1] = {f->hook};
    struct sy_pg_res *res = NULL;
    long long n;

    if (sy_pg_exec(f->pg, sql, 1, p, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    n = atoll(sy_pg_res_get(res, 0, 0));
    sy_pg_res_free(res);
    return n;
}

/* Waits until every queue of the worker is empty and stays so for a second, and every kept
 * message is a followup (or refused by GLPI). */
static void settle(struct fixture *f, int max_ms)
{
    int64_t end = th_now_ms() + max_ms, quiet_since = 0;
    char retry[64];

    for (;;) {
        uint32_t depth = th_queue_depth(f->amqp, "sy.glpi");

        for (int i = 0; i < 6; i++) {
            snprintf(retry, sizeof retry, "sy.glpi.retry.%d", i);
            depth += th_queue_depth(f->amqp, retry);
        }
        long long waiting =
            pg_count(f, "SELECT count(*) FROM glpi_messages WHERE hook_id = $1 AND followup_id "
                        "IS NULL AND refused_at IS NULL");
        for (int i = 0; i < REPLICAS; i++)
            if (f->w[i].running && th_proc_wait(&f->w[i].proc, 0) == 0) {
                f->w[i].running = false;
                th_proc_dump_log(&f->w[i].proc, 40);
                fail_msg("sy-glpi %d exited with %d", i, f->w[i].proc.exit_status);
            }
        if (depth == 0 && waiting == 0) {
            if (!quiet_since)
                quiet_since = th_now_ms();
            else if (th_now_ms() - quiet_since > 1500)
                return;
        } else {
            quiet_since = 0;
        }
        if (th_now_ms() > end) {
            th_proc_dump_log(&f->w[0].proc, 30);
            fail_msg("not settled within %d ms: %u queued, %lld messages waiting", max_ms, depth,
                     waiting);
        }
        th_sleep_ms(200);
    }
}

/* Checks that GLPI holds, per ticket of this hook, exactly the messages kept for its
 * conversation (but those GLPI refused), once each, in Chatwoot's order (by the followups'
 * dates, then their ids). */
static void expect_followups_in_order(struct fixture *f, json_t *state, long long *nfollowups)
{
    const char *p[1] = {f->hook};
    struct sy_pg_res *res = NULL;
    json_t *fus = json_object_get(state, "followups"), *fu;
    size_t i;

    *nfollowups = 0;
    if (sy_pg_exec(f->pg,
                   "SELECT t.ticket_id, m.message_id FROM glpi_messages m JOIN glpi_tickets t"
                   " USING (hook_id, conversation_id) WHERE m.hook_id = $1"
                   " AND m.refused_at IS NULL ORDER BY t.ticket_id, m.message_id",
                   1, p, &res) != 0)
        fail_msg("%s", sy_pg_error(f->pg));
    int rows = sy_pg_res_rows(res), r = 0;
    while (r < rows) {
        long long tid = atoll(sy_pg_res_get(res, r, 0));
        int start = r;

        /* This ticket's followups of messages, oldest first by (date, id). */
        json_t *mine = json_array();
        json_array_foreach(fus, i, fu)
        {
            const char *content = json_string_value(json_object_get(fu, "content"));
            if (json_integer_value(json_object_get(fu, "items_id")) == tid && content &&
                strstr(content, "(chatwoot message "))
                json_array_append(mine, fu);
        }
        size_t n = json_array_size(mine);
        /* selection sort by (date, id): small lists */
        for (size_t a = 0; a < n; a++)
            for (size_t b = a + 1; b < n; b++) {
                json_t *x = json_array_get(mine, a), *y = json_array_get(mine, b);
                int c = strcmp(json_string_value(json_object_get(x, "date")),
                               json_string_value(json_object_get(y, "date")));
                if (c > 0 || (c == 0 && json_integer_value(json_object_get(x, "id")) >
                                            json_integer_value(json_object_get(y, "id")))) {
                    json_incref(x);
                    json_incref(y);
                    json_array_set_new(mine, a, y);
                    json_array_set_new(mine, b, x);
                }
            }
        while (r < rows && atoll(sy_pg_res_get(res, r, 0)) == tid)
            r++;
        if ((int)n != r - start)
            fail_msg("ticket %lld: %zu followups for %d messages", tid, n, r - start);
        for (int k = start; k < r; k++) {
            char marker[64];
            snprintf(marker, sizeof marker, "(chatwoot message %s)", sy_pg_res_get(res, k, 1));
            const char *content = json_string_value(
                json_object_get(json_array_get(mine, (size_t)(k - start)), "content"));
            if (!strstr(content, marker))
                fail_msg("ticket %lld: followup %d is not message %s: %s", tid, k - start,
                         sy_pg_res_get(res, k, 1), content);
        }
        *nfollowups += (long long)n;
        json_decref(mine);
    }
    sy_pg_res_free(res);
}

/* The fake's items that belong to this run's hook. */
static size_t count_people(struct fixture *f, json_t *state, const char *kind)
{
    json_t *items = json_object_get(state, kind), *it;
    char prefix[80];
    size_t i, n = 0;

    snprintf(prefix, sizeof prefix, "chatwoot-%s-", f->hook);
    json_array_foreach(items, i, it)
    {
        const char *reg = json_string_value(json_object_get(it, "registration_number"));
        if (reg && strncmp(reg, prefix, strlen(prefix)) == 0)
            n++;
    }
    return n;
}

static size_t count_tickets(struct fixture *f, json_t *state)
{
    json_t *items = json_object_get(state, "tickets"), *it;
    char marker[80];
    size_t i, n = 0;

    snprintf(marker, sizeof marker, "[chatwoot %s/", f->hook);
    json_array_foreach(items, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (name && strstr(name, marker))
            n++;
    }
    return n;
}

/* GLPI holds exactly these numbers of Users, Tickets and message followups of this run's hook,
 * each ticket's followups once and in Chatwoot's order. */
static void expect_mirrored(struct fixture *f, size_t people, size_t tickets, long long followups)
{
    json_t *s = fake_state(f);
    long long nfu = 0;

    assert_int_equal(count_people(f, s, "users"), people);
    assert_int_equal(count_tickets(f, s), tickets);
    expect_followups_in_order(f, s, &nfu);
    assert_int_equal(nfu, followups);
    json_decref(s);
}

/* --- tests -------------------------------------------------------------------------------- */

static void full_flow_mirrors_contact_conversation_messages_and_resolution(void **state)
{
    struct fixture *f = *state;
    long long cid = ++f->next_id, conv = ++f->next_id, m1 = ++f->next_id, m2 = ++f->next_id,
              m3 = ++f->next_id;
    json_t *who = th_cw_contact(cid, 1), *c = th_cw_conversation(conv, who, "open", 1790000000.0);

    worker_start(f, &f->w[0]);
    publish(f, "contact_created", json_deep_copy(who), NULL);
    publish(f, "conversation_created", json_deep_copy(c), NULL);
    publish(f, "message_created",
            th_cw_message(m1, c, who, "incoming", false, "Water <supply> & \"pressure\" low",
                          1790000010),
            NULL);
    publish(f, "message_created",
            th_cw_message(m2, c, who, "outgoing", false, "We are on it.\nA crew is coming.",
                          1790000020),
            NULL);
    publish(f, "message_created",
            th_cw_message(m3, c, who, "outgoing", true, "internal: check valve 12", 1790000030),
            NULL);
    publish(f, "conversation_typing_on", json_deep_copy(c), NULL);
    json_t *done = th_cw_conversation(conv, who, "resolved", 1790000100.0);
    publish(f, "conversation_status_changed", done, NULL);
    /* The contact's new name reaches the User the worker made. */
    json_t *renamed = json_deep_copy(who);
    json_object_set_new(renamed, "name", json_string("Citizen Renamed"));
    publish(f, "contact_updated", renamed, NULL);
    /* Bad data: a message without its conversation's id. */
    json_t *bad = th_cw_message(++f->next_id, c, who, "incoming", false, "x", 1790000200);
    json_object_del(json_object_get(bad, "conversation"), "id");
    publish(f, "message_created", bad, "it-glpi-bad-message");
    confirm(f);
    settle(f, 60000);

    json_t *s = fake_state(f);
    assert_int_equal(count_people(f, s, "users"), 1);
    assert_int_equal(count_tickets(f, s), 1);
    json_t *user = NULL, *ticket = NULL, *it;
    size_t i;
    json_array_foreach(json_object_get(s, "users"), i, it)
    {
        const char *reg = json_string_value(json_object_get(it, "registration_number"));
        if (reg && strstr(reg, f->hook))
            user = it;
    }
    json_array_foreach(json_object_get(s, "tickets"), i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (name && strstr(name, f->hook))
            ticket = it;
    }
    assert_non_null(user);
    assert_non_null(ticket);
    assert_string_equal(json_string_value(json_object_get(user, "realname")), "Renamed");
    assert_string_equal(json_string_value(json_object_get(user, "firstname")), "Citizen");
    /* Solved, in the hook's category, with the User as its requester. */
    assert_int_equal(json_integer_value(json_object_get(ticket, "status")), 5);
    assert_int_equal(json_integer_value(json_object_get(ticket, "itilcategories_id")), 7);
    json_t *req = json_array_get(json_object_get(ticket, "requesters"), 0);
    assert_int_equal(json_integer_value(json_object_get(req, "users_id")),
                     json_integer_value(json_object_get(user, "id")));
    long long nfu = 0;
    expect_followups_in_order(f, s, &nfu);
    assert_int_equal(nfu, 3);
    /* The note is private, text arrives escaped once, and the resolution said so. */
    int private = 0, resolved = 0, escaped = 0;
    json_array_foreach(json_object_get(s, "followups"), i, it)
    {
        const char *content = json_string_value(json_object_get(it, "content"));
        if (json_integer_value(json_object_get(it, "items_id")) !=
            json_integer_value(json_object_get(ticket, "id")))
            continue;
        private += json_integer_value(json_object_get(it, "is_private")) == 1;
        resolved += strstr(content, "resolved in Chatwoot") != NULL;
        escaped += strstr(content, "Water &lt;supply&gt; &amp; &#34;pressure&#34; low") != NULL;
    }
    assert_int_equal(private, 1);
    assert_int_equal(resolved, 1);
    assert_int_equal(escaped, 1);
    json_decref(s);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM glpi_tickets WHERE hook_id = $1 AND solved"),
                     1);
    assert_true(metric(&f->w[0], "sy_glpi_events_total", "unhandled") >= 1);
    /* Only the bad message was dead-lettered, naming the field. */
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 1);
    struct sy_amqp_msg *dm = NULL;
    assert_int_equal(sy_amqp_get(f->amqp, DEAD, &dm), 0);
    const char *reason = json_string_value(json_object_get(dm->headers, "x-sy-reason"));
    assert_non_null(reason);
    assert_non_null(strstr(reason, "payload.conversation.id"));
    assert_int_equal(sy_amqp_settle(f->amqp, dm, 1, 0), 0);
    sy_amqp_msg_free(dm);
    assert_int_equal(worker_stop(&f->w[0]), 0);
    /* Its session was ended at GLPI on the way out. */
    s = fake_state(f);
    assert_true(counter(s, "kill_session") >= 1);
    json_decref(s);

    /* syctl lists the hook without its secrets and keeps its links unless told. */
    char *out = NULL, *err = NULL;
    const char *list[] = {"glpi", "hook", "list", "--json", NULL};
    assert_int_equal(syctl(f, list, &out, &err), 0);
    assert_non_null(strstr(out, f->hook));
    assert_null(strstr(out, USER_TOKEN));
    assert_null(strstr(out, APP_TOKEN));
    free(out);
    free(err);
    const char *rm[] = {"glpi", "hook", "remove", f->hook, NULL};
    assert_int_equal(syctl(f, rm, &out, &err), 1);
    free(out);
    free(err);
    json_decref(who);
    json_decref(c);
}

/* One event of the storm: its message id, type and payload. */
struct ev {
    char id[48];
    const char *event;
    json_t *payload;
};

static void storm_of_shuffled_duplicated_events_to_three_replicas_is_exactly_once(void **state)
{
    struct fixture *f = *state;
    struct ev *evs = calloc(EVENTS + EVENTS / 10, sizeof *evs);
    json_t *people[CONTACTS];
    long long base = f->next_id + 1;
    size_t n = 0;

    assert_non_null(evs);
    f->next_id += 100000;
    for (int i = 0; i < CONTACTS; i++) {
        people[i] = th_cw_contact(base + i, i);
        evs[n].event = "contact_created";
        evs[n++].payload = json_deep_copy(people[i]);
    }
    /* Two conversations per contact and 1,700 messages among them: 8 or 9 each. */
    int per_conv[CONVS];
    for (int k = 0; k < CONVS; k++)
        per_conv[k] = 8 + (k % 2);
    long long mid = base + 1000;
    for (int k = 0; k < CONVS; k++) {
        long long conv = base + 10000 + k;
        json_t *who = people[k / 2];
        json_t *c = th_cw_conversation(conv, who, "open", 1790000000.0 + k);

        evs[n].event = "conversation_created";
        evs[n++].payload = json_deep_copy(c);
        for (int j = 0; j < per_conv[k]; j++) {
            char text[64];

            snprintf(text, sizeof text, "conversation %d, message %d", k, j);
            evs[n].event = "message_created";
            evs[n++].payload = th_cw_message(mid++, c, who, j % 2 ? "outgoing" : "incoming", j == 5,
                                             text, 1790000000LL + k * 100 + j);
        }
        json_decref(c);
    }
    assert_int_equal(n, EVENTS);
    for (size_t i = 0; i < n; i++)
        snprintf(evs[i].id, sizeof evs[i].id, "storm-%s-%zu", f->run, i);
    /* A tenth delivered twice: half under the same message id, half under another. */
    srand(20261122);
    for (size_t i = 0; i < EVENTS / 10; i++) {
        size_t src = (size_t)rand() % EVENTS;

        evs[n] = evs[src];
        evs[n].payload = json_deep_copy(evs[src].payload);
        if (i % 2)
            snprintf(evs[n].id, sizeof evs[n].id, "storm-%s-dup-%zu", f->run, i);
        n++;
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        struct ev t = evs[i];

        evs[i] = evs[j];
        evs[j] = t;
    }
    for (int i = 0; i < REPLICAS; i++)
        worker_start(f, &f->w[i]);
    int64_t t0 = th_now_ms();
    for (size_t i = 0; i < n; i++) {
        publish(f, evs[i].event, evs[i].payload, evs[i].id);
        if (i % 500 == 499)
            confirm(f);
    }
    confirm(f);
    settle(f, SETTLE_MS);
    fprintf(stderr, "storm: %zu events through %d replicas in %.1f s\n", n, REPLICAS,
            (double)(th_now_ms() - t0) / 1000.0);

    expect_mirrored(f, CONTACTS, CONVS, 1700);
    assert_int_equal(
        pg_count(f, "SELECT count(*) FROM glpi_people WHERE hook_id = $1 AND glpi_id IS NOT NULL"),
        CONTACTS);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM glpi_tickets WHERE hook_id = $1"
                                 " AND ticket_id IS NOT NULL"),
                     CONVS);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    for (int i = 0; i < REPLICAS; i++)
        assert_int_equal(worker_stop(&f->w[i]), 0);
    for (int i = 0; i < CONTACTS; i++)
        json_decref(people[i]);
    free(evs);
}

/* A burst of conversations with messages: n conversations of a new contact each. */
static void burst(struct fixture *f, int convs, int msgs, long long *first_conv)
{
    for (int k = 0; k < convs; k++) {
        long long cid = ++f->next_id, conv = ++f->next_id;
        json_t *who = th_cw_contact(cid, k),
               *c = th_cw_conversation(conv, who, "open", 1790000000.0);

        if (first_conv && k == 0)
            *first_conv = conv;
        publish(f, "conversation_created", json_deep_copy(c), NULL);
        for (int j = 0; j < msgs; j++)
            publish(f, "message_created",
                    th_cw_message(++f->next_id, c, who, "incoming", false, "hello", 1790000000 + j),
                    NULL);
        json_decref(who);
        json_decref(c);
    }
    confirm(f);
}

static void expired_sessions_and_lost_replies_still_mirror_exactly_once(void **state)
{
    struct fixture *f = *state;

    fake_post(f, "/_fake/reset", "{}");
    worker_start(f, &f->w[0]);
    burst(f, 5, 3, NULL);
    settle(f, 60000);
    json_t *s = fake_state(f);
    long long inits = counter(s, "init_session");
    json_decref(s);
    /* One session for all of it: not one per message. */
    assert_true(inits >= 1 && inits <= 2);

    /* Sessions expire mid-run. */
    fake_post(f, "/_fake/faults", "{\"expire_sessions\": true}");
    burst(f, 4, 3, NULL);
    settle(f, 90000);
    /* Then creates of each kind commit, but their answer is lost: the connection drops, or
     * GLPI's empty 200 comes back. */
    static const char *const kinds[] = {"User", "Ticket", "ITILFollowup"};
    static const char *const modes[] = {"close", "empty200"};
    for (size_t m = 0; m < 2; m++)
        for (size_t k = 0; k < 3; k++) {
            char faults[160];

            snprintf(faults, sizeof faults,
                     "{\"lost_reply\": 2, \"lost_reply_mode\": \"%s\", "
                     "\"lost_reply_itemtype\": \"%s\"}",
                     modes[m], kinds[k]);
            fake_post(f, "/_fake/faults", faults);
            burst(f, 2, 3, NULL);
            settle(f, 90000);
        }

    /* Every lost answer happened, and each item is there once. */
    expect_mirrored(f, 21, 21, 63);
    s = fake_state(f);
    assert_int_equal(counter(s, "lost_replies"), 12);
    /* The expiry cost one new session, not a login per call. */
    assert_true(counter(s, "init_session") - inits >= 1);
    assert_true(counter(s, "init_session") - inits <= 3);
    json_decref(s);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    assert_int_equal(worker_stop(&f->w[0]), 0);
}

static void glpi_failing_for_half_a_minute_and_asking_to_wait_loses_nothing(void **state)
{
    struct fixture *f = *state;

    fake_post(f, "/_fake/reset", "{}");
    worker_start(f, &f->w[0]);

    /* 429 with Retry-After: 3 → the retry comes no sooner (the ladder's 5 s step). */
    fake_post(f, "/_fake/faults", "{\"fail_429\": 1, \"retry_after\": 3}");
    int64_t t0 = th_now_ms();
    burst(f, 1, 1, NULL);
    settle(f, 60000);
    int64_t took = th_now_ms() - t0;
    fprintf(stderr, "a 429 with Retry-After: 3 was mirrored after %lld ms\n", (long long)took);
    assert_true(took >= 3000);

    /* Every call fails for 30 s while events keep coming. */
    fake_post(f, "/_fake/faults", "{\"fail_rate\": 1.0, \"fail_status\": 503}");
    burst(f, 10, 2, NULL);
    th_sleep_ms(DOWN_MS);
    fake_post(f, "/_fake/faults", "{\"fail_rate\": 0}");
    settle(f, SETTLE_MS);
    expect_mirrored(f, 11, 11, 21);
    assert_int_equal(th_queue_depth(f->amqp, DEAD), 0);
    assert_true(metric(&f->w[0], "sy_retried_total", NULL) >= 10);
    assert_int_equal(worker_stop(&f->w[0]), 0);
}

/* --- refusals, people, sync types ----------------------------------------------------------- */

/* The first column of the first row of sql ($1 the hook, $2 arg), "" without rows; caller
 * frees. */
static char *pg_text(struct fixture *f, const char *sql, const char *arg)
{
    const char *p[2] = {f->hook, arg};
    struct sy_pg_res *res = NULL;
    char *v;

    if (sy_pg_exec(f->pg, sql, arg ? 2 : 1, p, &res) != 0)
        fail_msg("%s: %s", sql, sy_pg_error(f->pg));
    v = strdup(sy_pg_res_rows(res) > 0 && sy_pg_res_get(res, 0, 0) ? sy_pg_res_get(res, 0, 0) : "");
    sy_pg_res_free(res);
    assert_non_null(v);
    return v;
}

/* Takes every dead letter off sy.glpi.dead: how many, their reasons one a line in *reasons
 * (caller frees). */
static int dead_take(struct fixture *f, char **reasons)
{
    struct sy_amqp_msg *dm = NULL;
    size_t len = 0;
    FILE *out = open_memstream(reasons, &len);
    int n = 0;

    assert_non_null(out);
    while (sy_amqp_get(f->amqp, DEAD, &dm) == 0) {
        const char *why = json_string_value(json_object_get(dm->headers, "x-sy-reason"));

        fprintf(out, "%s\n", why ? why : "(no reason)");
        assert_int_equal(sy_amqp_settle(f->amqp, dm, 1, 0), 0);
        sy_amqp_msg_free(dm);
        dm = NULL;
        n++;
    }
    fclose(out);
    return n;
}

/* Stores an item in the fake as GLPI's own (not the worker's): its id. */
static long long fake_create(struct fixture *f, const char *body)
{
    struct th_reply r = th_http(f->fake_port, "POST", "/_fake/create", NULL, body);
    json_t *v = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    long long id = json_integer_value(json_object_get(v, "id"));

    if (id <= 0)
        fail_msg("fake create %s: %ld %s", body, r.status, r.body);
    json_decref(v);
    th_reply_free(&r);
    return id;
}

/* The fake's ticket of this hook (borrowed from state), failing when there is none. */
static json_t *the_ticket(struct fixture *f, json_t *state)
{
    json_t *it;
    size_t i;

    json_array_foreach(json_object_get(state, "tickets"), i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (name && strstr(name, f->hook))
            return it;
    }
    fail_msg("no ticket of hook %s", f->hook);
    return NULL;
}

/* How many followups of ticket tid hold text. */
static int followups_with(json_t *state, long long tid, const char *text)
{
    json_t *it;
    size_t i;
    int n = 0;

    json_array_foreach(json_object_get(state, "followups"), i, it)
    {
        const char *content = json_string_value(json_object_get(it, "content"));
        if (json_integer_value(json_object_get(it, "items_id")) == tid && content &&
            strstr(content, text))
            n++;
    }
    return n;
}

static void a_refused_followup_is_recorded_and_the_rest_of_the_conversation_goes_on(void **state)
{
    struct fixture *f = *state;
    long long cid = ++f->next_id, conv = ++f->next_id, m[4];
    static const char *const texts[] = {"first", "second REFUSED-BY-RULE", "third", "fourth"};
    char idtxt[24], *reasons = NULL, *why;

    for (int i = 0; i < 4; i++)
        m[i] = ++f->next_id;
    json_t *who = th_cw_contact(cid, 2), *c = th_cw_conversation(conv, who, "open", 1790000000.0);

    /* GLPI refuses the second message's followup (a business rule), mid-conversation. */
    fake_post(f, "/_fake/faults", "{\"refuse_content\": \"REFUSED-BY-RULE\"}");
    worker_start(f, &f->w[0]);
    publish(f, "contact_created", json_deep_copy(who), NULL);
    publish(f, "conversation_created", json_deep_copy(c), NULL);
    for (int i = 0; i < 4; i++)
        publish(f, "message_created",
                th_cw_message(m[i], c, who, i % 2 ? "outgoing" : "incoming", false, texts[i],
                              1790000010 + i),
                NULL);
    publish(f, "conversation_status_changed",
            th_cw_conversation(conv, who, "resolved", 1790000100.0), NULL);
    confirm(f);
    settle(f, 60000);

    /* The later messages and the resolution went through... */
    expect_mirrored(f, 1, 1, 3);
    json_t *s = fake_state(f), *ticket = the_ticket(f, s);
    long long tid = json_integer_value(json_object_get(ticket, "id"));
    assert_int_equal(json_integer_value(json_object_get(ticket, "status")), 5);
    assert_int_equal(followups_with(s, tid, "resolved in Chatwoot"), 1);
    json_decref(s);
    /* ...the refused one is recorded with GLPI's answer... */
    snprintf(idtxt, sizeof idtxt, "%lld", m[1]);
    why = pg_text(f,
                  "SELECT refused_reason FROM glpi_messages WHERE hook_id = $1"
                  " AND message_id = $2::bigint AND followup_id IS NULL AND refused_at IS NOT NULL",
                  idtxt);
    assert_non_null(strstr(why, "ERROR_GLPI_ADD"));
    assert_non_null(strstr(why, "A rule refused the followup"));
    free(why);
    assert_true(metric(&f->w[0], "sy_glpi_followups_total", "refused") >= 1);
    /* ...and its event alone is dead-lettered, with GLPI's status and code in the reason. */
    assert_int_equal(dead_take(f, &reasons), 1);
    assert_non_null(strstr(reasons, "400 ERROR_GLPI_ADD"));
    assert_non_null(strstr(reasons, idtxt));
    free(reasons);

    /* Once GLPI takes it, the event's replay mirrors it. */
    fake_post(f, "/_fake/faults", "{\"refuse_content\": \"\"}");
    publish(f, "message_created",
            th_cw_message(m[1], c, who, "outgoing", false, texts[1], 1790000011), NULL);
    confirm(f);
    settle(f, 60000);
    expect_mirrored(f, 1, 1, 4);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM glpi_messages WHERE hook_id = $1"
                                 " AND refused_at IS NOT NULL"),
                     0);
    assert_int_equal(dead_take(f, &reasons), 0);
    free(reasons);
    assert_int_equal(worker_stop(&f->w[0]), 0);
    json_decref(who);
    json_decref(c);
}

static void a_resolution_whose_reply_was_lost_is_not_said_twice_after_a_reopening(void **state)
{
    struct fixture *f = *state;
    long long cid = ++f->next_id, conv = ++f->next_id;
    json_t *who = th_cw_contact(cid, 5), *c = th_cw_conversation(conv, who, "open", 1790000000.0);
    char *reasons = NULL;

    worker_start(f, &f->w[0]);
    publish(f, "contact_created", json_deep_copy(who), NULL);
    publish(f, "conversation_created", json_deep_copy(c), NULL);
    confirm(f);
    settle(f, 30000);
    /* The resolution followup is made, but its answer is lost; before the retry comes, the
     * conversation is reopened and resolved again. */
    fake_post(f, "/_fake/faults",
              "{\"lost_reply\": 1, \"lost_reply_mode\": \"close\", "
              "\"lost_reply_itemtype\": \"ITILFollowup\"}");
    publish(f, "conversation_status_changed",
            th_cw_conversation(conv, who, "resolved", 1790000100.0), NULL);
    confirm(f);
    for (int64_t end = th_now_ms() + 20000;;) {
        json_t *s = fake_state(f);
        long long lost = counter(s, "lost_replies");

        json_decref(s);
        if (lost == 1)
            break;
        if (th_now_ms() > end)
            fail_msg("the resolution followup was not sent");
        th_sleep_ms(20);
    }
    publish(f, "conversation_status_changed", th_cw_conversation(conv, who, "open", 1790000200.0),
            NULL);
    publish(f, "conversation_status_changed",
            th_cw_conversation(conv, who, "resolved", 1790000300.0), NULL);
    confirm(f);
    settle(f, 60000);

    json_t *s = fake_state(f), *ticket = the_ticket(f, s);
    assert_int_equal(json_integer_value(json_object_get(ticket, "status")), 5);
    assert_int_equal(followups_with(s, json_integer_value(json_object_get(ticket, "id")),
                                    "resolved in Chatwoot"),
                     1);
    json_decref(s);
    assert_int_equal(dead_take(f, &reasons), 0);
    free(reasons);
    assert_int_equal(worker_stop(&f->w[0]), 0);
    json_decref(who);
    json_decref(c);
}

static void contact_sync_makes_contacts_and_a_changed_sync_type_relinks_people(void **state)
{
    struct fixture *f = *state;
    long long cid = ++f->next_id, conv = ++f->next_id;
    json_t *who = th_cw_contact(cid, 3), *c = th_cw_conversation(conv, who, "open", 1790000000.0);
    char *reasons = NULL, *link, want[64], marker[96];

    /* First mirrored as a User... */
    worker_start(f, &f->w[0]);
    publish(f, "contact_created", json_deep_copy(who), NULL);
    confirm(f);
    settle(f, 30000);
    json_t *s = fake_state(f);
    assert_int_equal(count_people(f, s, "users"), 1);
    json_decref(s);
    assert_int_equal(worker_stop(&f->w[0]), 0);

    /* ...then the hook is added again with --sync contact. */
    hook_add(f, true);
    worker_start(f, &f->w[0]);
    json_t *moved = json_deep_copy(who);
    json_object_set_new(moved, "name", json_string("Citizen Moved"));
    publish(f, "contact_updated", moved, NULL);
    publish(f, "conversation_created", json_deep_copy(c), NULL);
    confirm(f);
    settle(f, 30000);

    s = fake_state(f);
    assert_int_equal(count_people(f, s, "users"), 1);
    assert_int_equal(count_people(f, s, "contacts"), 1);
    json_t *contact = NULL, *it;
    size_t i;
    snprintf(marker, sizeof marker, "chatwoot-%s-%lld", f->hook, cid);
    json_array_foreach(json_object_get(s, "contacts"), i, it)
    {
        const char *reg = json_string_value(json_object_get(it, "registration_number"));
        if (reg && strcmp(reg, marker) == 0)
            contact = it;
    }
    assert_non_null(contact);
    long long contact_id = json_integer_value(json_object_get(contact, "id"));
    assert_string_equal(json_string_value(json_object_get(contact, "name")), "Moved");
    assert_string_equal(json_string_value(json_object_get(contact, "email")),
                        json_string_value(json_object_get(who, "email")));
    /* The link is the Contact's now. */
    snprintf(want, sizeof want, "Contact:%lld", contact_id);
    link =
        pg_text(f, "SELECT itemtype || ':' || glpi_id FROM glpi_people WHERE hook_id = $1", NULL);
    assert_string_equal(link, want);
    free(link);
    /* GLPI cannot make a Contact a requester: the contact's email is, and the ticket names the
     * Contact. */
    json_t *ticket = the_ticket(f, s);
    json_t *req = json_array_get(json_object_get(ticket, "requesters"), 0);
    assert_int_equal(json_integer_value(json_object_get(req, "users_id")), 0);
    assert_string_equal(json_string_value(json_object_get(req, "alternative_email")),
                        json_string_value(json_object_get(who, "email")));
    snprintf(want, sizeof want, "GLPI contact #%lld", contact_id);
    assert_non_null(strstr(json_string_value(json_object_get(ticket, "content")), want));
    json_decref(s);
    assert_int_equal(dead_take(f, &reasons), 0);
    free(reasons);
    assert_int_equal(worker_stop(&f->w[0]), 0);
    json_decref(who);
    json_decref(c);
}

/* The hook's link of Chatwoot contact as "<glpi id>:<created>" (malloc'd). */
static char *person_link(struct fixture *f, long long contact)
{
    char idtxt[24];

    snprintf(idtxt, sizeof idtxt, "%lld", contact);
    return pg_text(f,
                   "SELECT glpi_id || ':' || created FROM glpi_people WHERE hook_id = $1"
                   " AND contact_id = $2::bigint",
                   idtxt);
}

static void people_glpi_already_has_are_linked_and_near_misses_are_not(void **state)
{
    struct fixture *f = *state;
    long long a = ++f->next_id, b = ++f->next_id, p = ++f->next_id;
    char body[512], email[96], near[96], phone[32], *reasons = NULL, *link, want[64];

    snprintf(email, sizeof email, "ann-%s@x.org", f->run);
    snprintf(near, sizeof near, "j_ann-%s@x.org", f->run);
    snprintf(phone, sizeof phone, "+4420%08lld", p % 100000000);
    /* Staff GLPI knows: one by email, one by phone; and joann, whom GLPI's LIKE finds for
     * j_ann (an underscore is a wildcard there) but who is somebody else. */
    snprintf(body, sizeof body,
             "{\"itemtype\": \"User\", \"input\": {\"name\": \"staff-ann-%s\","
             " \"_useremails\": {\"-1\": \"%s\"}}}",
             f->run, email);
    long long u_ann = fake_create(f, body);
    snprintf(
        body, sizeof body,
        "{\"itemtype\": \"User\", \"input\": {\"name\": \"staff-phone-%s\", \"phone\": \"%s\"}}",
        f->run, phone);
    long long u_phone = fake_create(f, body);
    snprintf(body, sizeof body,
             "{\"itemtype\": \"User\", \"input\": {\"name\": \"staff-joann-%s\","
             " \"_useremails\": {\"-1\": \"joann-%s@x.org\"}}}",
             f->run, f->run);
    long long u_joann = fake_create(f, body);

    json_t *ca = th_cw_contact(a, 6), *cb = th_cw_contact(b, 7), *cp = th_cw_contact(p, 8);
    json_object_set_new(ca, "email", json_string(email));
    json_object_set_new(cb, "email", json_string(near));
    json_object_set_new(cp, "email", json_null());
    json_object_set_new(cp, "phone_number", json_string(phone));
    worker_start(f, &f->w[0]);
    publish(f, "contact_created", ca, NULL);
    publish(f, "contact_created", cb, NULL);
    publish(f, "contact_created", cp, NULL);
    confirm(f);
    settle(f, 30000);

    link = person_link(f, a);
    snprintf(want, sizeof want, "%lld:false", u_ann);
    assert_string_equal(link, want);
    free(link);
    link = person_link(f, p);
    snprintf(want, sizeof want, "%lld:false", u_phone);
    assert_string_equal(link, want);
    free(link);
    /* j_ann is not joann: a User of its own was made. */
    link = person_link(f, b);
    snprintf(want, sizeof want, "%lld:", u_joann);
    assert_true(strncmp(link, want, strlen(want)) != 0);
    assert_non_null(strstr(link, ":true"));
    free(link);
    json_t *s = fake_state(f);
    assert_int_equal(count_people(f, s, "users"), 1);
    json_decref(s);
    assert_int_equal(dead_take(f, &reasons), 0);
    free(reasons);
    assert_int_equal(worker_stop(&f->w[0]), 0);

    /* The hook has links: remove keeps them unless told, --purge forgets them. */
    char *out = NULL, *err = NULL;
    const char *rm[] = {"glpi", "hook", "remove", f->hook, NULL};
    assert_int_equal(syctl(f, rm, &out, &err), 1);
    assert_non_null(strstr(err, "--purge"));
    free(out);
    free(err);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM glpi_people WHERE hook_id = $1"), 3);
    const char *purge[] = {"glpi", "hook", "remove", f->hook, "--purge", NULL};
    assert_int_equal(syctl(f, purge, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM glpi_hooks WHERE hook_id = $1"), 0);
    assert_int_equal(pg_count(f, "SELECT count(*) FROM glpi_people WHERE hook_id = $1"), 0);
    assert_int_equal(syctl(f, rm, &out, &err), 4);
    free(out);
    free(err);
}

static void
syctl_hook_add_refuses_plain_http_and_bad_tokens_and_warns_without_a_secret(void **state)
{
    struct fixture *f = *state;
    char id[64], url[128], *out = NULL, *err = NULL;

    snprintf(id, sizeof id, "%s-x", f->hook);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/apirest.php", f->fake_port);
    /* http:// without --allow-http. */
    const char *plain[] = {
        "glpi", "hook", "add", id, "--api-url", url, "--user-token", "env:IT_GLPI_TOKEN", NULL};
    assert_int_equal(syctl(f, plain, &out, &err), 3);
    assert_non_null(strstr(err, "api_url"));
    assert_non_null(strstr(err, "https://"));
    free(out);
    free(err);
    /* --allow-http to a host that is not this machine. */
    const char *far[] = {"glpi",         "hook",
                         "add",          id,
                         "--api-url",    "http://glpi.example.org/apirest.php",
                         "--user-token", "env:IT_GLPI_TOKEN",
                         "--allow-http", NULL};
    assert_int_equal(syctl(f, far, &out, &err), 3);
    assert_non_null(strstr(err, "loopback"));
    free(out);
    free(err);
    /* A token GLPI refuses: exit 1 with GLPI's code, the token never printed. */
    assert_int_equal(hook_add_try(f, id, false, true, "env:IT_GLPI_BAD_TOKEN", NULL, &out, &err),
                     1);
    assert_non_null(strstr(err, "ERROR_GLPI_LOGIN_USER_TOKEN"));
    free(out);
    free(err);
    const char *p[1] = {id};
    struct sy_pg_res *res = NULL;
    assert_int_equal(sy_pg_exec(f->pg, "SELECT 1 FROM glpi_hooks WHERE hook_id = $1", 1, p, &res),
                     0);
    assert_int_equal(sy_pg_res_rows(res), 0);
    sy_pg_res_free(res);
    /* Stored without a webhook secret: said plainly. */
    hook_add_as(f, id, false, false, NULL, &err);
    assert_non_null(strstr(err, "no webhook secret"));
    assert_non_null(strstr(err, "--webhook-secret"));
    free(err);
    const char *rm[] = {"glpi", "hook", "remove", id, NULL};
    assert_int_equal(syctl(f, rm, &out, &err), 0);
    free(out);
    free(err);
}

/* --- through the gateway ------------------------------------------------------------------ */

struct gateway {
    struct th_proc proc;
    bool running;
    int port, health_port;
    char file[1200]; /* its webhooks file */
};

/* A sy-gateway whose webhooks file names no Chatwoot hook: it knows the hook from PostgreSQL. */
static void gateway_start(struct fixture *f, struct gateway *g, const char *pg_url)
{
    char addr[64], health[64], hooks[1300], amqp[512], pg[512], redis[512];
    char *file = g->file;

    snprintf(g->file, sizeof g->file, "%s/Testing/glpi-webhooks-%s.yaml",
             th_need_env("SY_BUILD_DIR"), f->run);
    assert_int_equal(th_write_file(file, "# no Chatwoot hook here: they come from glpi_hooks\n"),
                     0);
    g->port = th_free_port();
    g->health_port = th_free_port();
    snprintf(addr, sizeof addr, "SY_GATEWAY_ADDR=127.0.0.1:%d", g->port);
    snprintf(health, sizeof health, "SY_HTTP_ADDR=127.0.0.1:%d", g->health_port);
    snprintf(hooks, sizeof hooks, "SY_GATEWAY_WEBHOOKS=%s", file);
    snprintf(amqp, sizeof amqp, "SY_AMQP_URL=%s", th_need_env("SY_AMQP_URL"));
    snprintf(pg, sizeof pg, "SY_PG_URL=%s", pg_url);
    snprintf(redis, sizeof redis, "SY_REDIS_URL=%s", th_need_env("SY_REDIS_URL"));
    const char *env[] = {addr, health, hooks, amqp, pg, redis, "SY_LOG_LEVEL=info", NULL};
    assert_int_equal(th_proc_spawn(&g->proc, th_need_env("SY_GATEWAY_BIN"), env), 0);
    g->running = true;
    th_wait_answer(&g->proc, &g->running, "sy-gateway", g->health_port, "/readyz", 200,
                   START_MAX_MS);
}

/* POSTs a Chatwoot delivery of `event` to hook through the gateway, signed with secret (NULL:
 * unsigned); payload is consumed. */
static struct th_reply deliver(struct gateway *g, const char *hook, const char *secret,
                               const char *delivery, const char *event, json_t *payload)
{
    char path[128], ts[32], h_ts[64], h_sig[128], h_del[160], sig[2 * SY_SHA256_LEN + 1];
    const char *headers[4] = {NULL};
    uint8_t mac[SY_SHA256_LEN];
    size_t n = 0;

    json_object_set_new(payload, "event", json_string(event));
    char *body = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    assert_non_null(body);
    snprintf(path, sizeof path, "/webhooks/chatwoot/%s", hook);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    snprintf(h_ts, sizeof h_ts, "X-Chatwoot-Timestamp: %s", ts);
    headers[n++] = h_ts;
    if (secret) {
        strcat(ts, ".");
        sy_hmac_sha256_2(secret, strlen(secret), ts, strlen(ts), body, strlen(body), mac);
        sy_hex_encode(mac, sizeof mac, sig);
        snprintf(h_sig, sizeof h_sig, "X-Chatwoot-Signature: sha256=%s", sig);
        headers[n++] = h_sig;
    }
    snprintf(h_del, sizeof h_del, "X-Chatwoot-Delivery: %s", delivery);
    headers[n++] = h_del;
    struct th_reply r = th_http(g->port, "POST", path, headers, body);
    free(body);
    return r;
}

static void expect_status(struct th_reply r, long want, const char *what)
{
    if (r.status != want)
        fail_msg("%s: expected %ld, got %ld: %s", what, want, r.status, r.body);
    th_reply_free(&r);
}

static void deliveries_through_the_gateway_use_the_hook_syctl_stored(void **state)
{
    struct fixture *f = *state;
    struct gateway g = {0}, away = {0};
    long long cid = ++f->next_id, conv = ++f->next_id, m1 = ++f->next_id;
    json_t *who = th_cw_contact(cid, 1), *c = th_cw_conversation(conv, who, "open", 1790000000.0);
    char d[4][64], unknown[64];

    for (int i = 0; i < 4; i++)
        snprintf(d[i], sizeof d[i], "gw-%s-%d", f->run, i);
    gateway_start(f, &g, th_need_env("SY_PG_URL"));
    worker_start(f, &f->w[0]);

    expect_status(
        deliver(&g, f->hook, WEBHOOK_SECRET, d[0], "contact_created", json_deep_copy(who)), 202,
        "a signed contact_created");
    expect_status(
        deliver(&g, f->hook, WEBHOOK_SECRET, d[1], "conversation_created", json_deep_copy(c)), 202,
        "a signed conversation_created");
    expect_status(
        deliver(&g, f->hook, WEBHOOK_SECRET, d[2], "message_created",
                th_cw_message(m1, c, who, "incoming", false, "no water since Monday", 1790000010)),
        202, "a signed message_created");
    /* Chatwoot's redelivery of the same delivery is published once. */
    expect_status(
        deliver(&g, f->hook, WEBHOOK_SECRET, d[2], "message_created",
                th_cw_message(m1, c, who, "incoming", false, "no water since Monday", 1790000010)),
        200, "a redelivery");
    /* Forged, unsigned, and to a hook nobody stored. */
    struct th_reply r =
        deliver(&g, f->hook, "not-the-secret", d[3], "message_created",
                th_cw_message(++f->next_id, c, who, "incoming", false, "forged", 1));
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "X-Chatwoot-Signature"));
    th_reply_free(&r);
    expect_status(deliver(&g, f->hook, NULL, d[3], "message_created",
                          th_cw_message(++f->next_id, c, who, "incoming", false, "unsigned", 1)),
                  401, "an unsigned delivery");
    snprintf(unknown, sizeof unknown, "it-%s-nobody", f->run);
    expect_status(deliver(&g, unknown, WEBHOOK_SECRET, d[3], "message_created",
                          th_cw_message(++f->next_id, c, who, "incoming", false, "lost", 1)),
                  404, "an unknown hook");
    /* A hook stored without a webhook secret: its deliveries cannot be told from forgeries, so
     * none is taken, signed or not, and the answer says how to fix it. */
    char open_hook[64];
    snprintf(open_hook, sizeof open_hook, "%s-open", f->hook);
    hook_add_as(f, open_hook, false, false, NULL, NULL);
    r = deliver(&g, open_hook, NULL, d[3], "message_created",
                th_cw_message(++f->next_id, c, who, "incoming", false, "unsigned", 1));
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "no webhook secret"));
    th_reply_free(&r);
    expect_status(deliver(&g, open_hook, WEBHOOK_SECRET, d[3], "message_created",
                          th_cw_message(++f->next_id, c, who, "incoming", false, "signed", 1)),
                  401, "a signed delivery to a hook stored without a secret");
    const char *rm_open[] = {"glpi", "hook", "remove", open_hook, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(syctl(f, rm_open, &out, &err), 0);
    free(out);
    free(err);
    settle(f, 60000);

    expect_mirrored(f, 1, 1, 1);
    assert_int_equal(th_stop(&g.proc, &g.running), 0);
    assert_int_equal(th_log_count(&g.proc, WEBHOOK_SECRET), 0);
    assert_int_equal(th_log_count(&g.proc, USER_TOKEN), 0);

    /* A gateway that cannot reach the database and has not seen the hook yet asks Chatwoot to
     * come back, rather than saying the hook does not exist. */
    gateway_start(f, &away, "postgresql://postgres@127.0.0.1:1/switchyard?connect_timeout=2");
    r = deliver(&away, f->hook, WEBHOOK_SECRET, d[3], "message_created",
                th_cw_message(++f->next_id, c, who, "incoming", false, "later", 1));
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after > 0);
    th_reply_free(&r);
    assert_int_equal(th_stop(&away.proc, &away.running), 0);
    th_proc_cleanup(&g.proc);
    th_proc_cleanup(&away.proc);
    unlink(g.file);
    assert_int_equal(worker_stop(&f->w[0]), 0);
    json_decref(who);
    json_decref(c);
}

/* --- setup -------------------------------------------------------------------------------- */

static void forget_hook(struct fixture *f)
{
    char like[64];
    const char *p[1] = {f->hook}, *l[1] = {like};

    snprintf(like, sizeof like, "glpi:%s:%%", f->hook);
    sy_pg_exec(f->pg, "DELETE FROM glpi_hooks WHERE hook_id = $1", 1, p, NULL);
    sy_pg_exec(f->pg, "DELETE FROM sy_fences WHERE resource LIKE $1", 1, l, NULL);
}

/* Each test on a fresh fake and a hook of its own. */
static int test_setup(void **state)
{
    struct fixture *f = *state;
    static int k;

    th_fake_glpi_stop(&f->fake_pid);
    fake_start(f);
    if (f->hook[0])
        forget_hook(f);
    snprintf(f->hook, sizeof f->hook, "it-%s-%d", f->run, ++k);
    th_purge_worker(f->amqp, f->topo, WORKER);
    hook_add(f, false);
    return 0;
}

static int test_teardown(void **state)
{
    struct fixture *f = *state;

    for (int i = 0; i < REPLICAS; i++)
        if (f->w[i].running)
            worker_stop(&f->w[i]);
    return 0;
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[512] = "", path[1200];
    const char *build = th_need_env("SY_BUILD_DIR");

    assert_non_null(f);
    snprintf(f->src, sizeof f->src, "%s", th_need_env("SY_SOURCE_DIR"));
    snprintf(f->fake_bin, sizeof f->fake_bin, "%s", th_need_env("SY_FAKE_GLPI_BIN"));
    snprintf(f->syctl, sizeof f->syctl, "%s", th_need_env("SYCTL_BIN"));
    th_run_id(f->run);
    f->next_id = (long long)(strtoull(f->run + 8, NULL, 16) % 100000) * 1000000LL;
    snprintf(f->bin, sizeof f->bin, "%s/workers/glpi/sy-glpi", build);
    if (access(f->bin, X_OK) != 0)
        fail_msg("sy-glpi is not built: %s: %s", f->bin, strerror(errno));
    snprintf(path, sizeof path, "%s/Testing", build);
    mkdir(path, 0755);

    snprintf(path, sizeof path, "%s/schemas/topology.yaml", f->src);
    assert_int_equal(setenv("SY_TOPOLOGY", path, 1), 0);
    snprintf(path, sizeof path, "%s/schemas/messages", f->src);
    assert_int_equal(setenv("SY_SCHEMA_DIR", path, 1), 0);
    f->topo = sy_topology_load(getenv("SY_TOPOLOGY"), err, sizeof err);
    if (!f->topo)
        fail_msg("topology: %s", err);
    f->amqp = sy_amqp_connect(th_need_env("SY_AMQP_URL"), "it-glpi", 0, err, sizeof err);
    if (!f->amqp)
        fail_msg("amqp connect: %s", err);
    if (sy_amqp_declare(f->amqp, f->topo, WORKER) != 0)
        fail_msg("amqp declare: %s", sy_amqp_error(f->amqp));
    f->pg = sy_pg_connect(th_need_env("SY_PG_URL"), err, sizeof err);
    if (!f->pg)
        fail_msg("pg: %s", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", f->src);
    if (sy_pg_migrate(f->pg, path, NULL, NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;

    for (int i = 0; i < REPLICAS; i++) {
        if (f->w[i].running)
            worker_stop(&f->w[i]);
        th_proc_cleanup(&f->w[i].proc);
    }
    th_fake_glpi_stop(&f->fake_pid);
    if (f->hook[0])
        forget_hook(f);
    if (f->amqp) {
        th_purge_worker(f->amqp, f->topo, WORKER);
        sy_amqp_destroy(f->amqp);
    }
    sy_topology_destroy(f->topo);
    sy_pg_destroy(f->pg);
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            full_flow_mirrors_contact_conversation_messages_and_resolution, test_setup,
            test_teardown),
        cmocka_unit_test_setup_teardown(
            storm_of_shuffled_duplicated_events_to_three_replicas_is_exactly_once, test_setup,
            test_teardown),
        cmocka_unit_test_setup_teardown(expired_sessions_and_lost_replies_still_mirror_exactly_once,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(
            glpi_failing_for_half_a_minute_and_asking_to_wait_loses_nothing, test_setup,
            test_teardown),
        cmocka_unit_test_setup_teardown(
            a_refused_followup_is_recorded_and_the_rest_of_the_conversation_goes_on, test_setup,
            test_teardown),
        cmocka_unit_test_setup_teardown(
            a_resolution_whose_reply_was_lost_is_not_said_twice_after_a_reopening, test_setup,
            test_teardown),
        cmocka_unit_test_setup_teardown(
            contact_sync_makes_contacts_and_a_changed_sync_type_relinks_people, test_setup,
            test_teardown),
        cmocka_unit_test_setup_teardown(people_glpi_already_has_are_linked_and_near_misses_are_not,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(
            syctl_hook_add_refuses_plain_http_and_bad_tokens_and_warns_without_a_secret, test_setup,
            test_teardown),
        cmocka_unit_test_setup_teardown(deliveries_through_the_gateway_use_the_hook_syctl_stored,
                                        test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
