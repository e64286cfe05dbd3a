/* bench_glpi.c - how many Chatwoot events per second sy-glpi mirrors into GLPI (the fake of
 * tests/fakes/glpi), with one replica and with three, against two baselines measured in the same
 * run on the same broker and the same fake:
 *   B. the round's events pre-filled into sy.glpi and drained by a bare librabbitmq consumer
 *      (prefetch 1000, multiple acks): what the broker delivers at best;
 *   H. a bare GLPI client: as many threads as one replica has handler threads, each with one
 *      session and a kept-alive connection, sending only the creates the events come to (a
 *      User per contact, a Ticket per conversation, a followup per message), with no search,
 *      no database, no mutex: what the fake answers at best;
 *   1, 3. that many sy-glpi replicas (SY_HANDLER_THREADS each, the runtime's default unless
 *      set) started and ready, then the round's events published; the clock runs from the
 *      first publish until PostgreSQL links every contact, conversation and message of the
 *      round's hook. Then the fake must hold exactly that many Users, Tickets and followups of
 *      the hook, and nothing may be dead-lettered.
 * A round's events: SY_BENCH_CONTACTS contacts (default 500), each with contact_created, one
 * conversation_created and SY_BENCH_MESSAGES message_created (default 8), interleaved across
 * conversations the way many chats at once arrive (every contact's first event, then every
 * conversation, then each conversation's first message, ...). Rounds: SY_BENCH_ROUNDS
 * (default "BH13HB"). SY_BENCH_DELAY_MS (default 0) makes the fake answer every API call that
 * much later, as a real GLPI does (tens to hundreds of ms): then the worker waits on GLPI rather
 * than on the machine, and what replicas add shows. Each worker round has a hook of its own on a
 * freshly reset fake; the run removes its hooks, links and fences at the end. Prints figures and
 * ratios; exits 0 when it ran and every round verified, 1 otherwise (77: a service it needs is not
 * configured). */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bare_consumer.h"
#include "chatwoot.h"
#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define WORKER        "glpi"
#define APP_TOKEN     "bench-app-token-4c1d"
#define USER_TOKEN    "bench-user-token-9e07"
#define REPLICAS_MAX  3
#define CONFIRM_EVERY 2000
#define POLL_MS       100
#define ROUND_MAX_MS  (30 * 60 * 1000)
#define START_MAX_MS  20000
#define ROUNDS_MAX    10
#define BARE_THREADS  4 /* the runtime's default handler threads */

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_glpi: %s: %s\n", what, why);
    exit(1);
}

struct bench {
    char run[17];
    struct sy_amqp *a;
    struct sy_topology *topo;
    struct sy_pg *pg;
    char queue[256], dead[256];
    const char *glpi_bin, *fake_bin;
    pid_t fake_pid;
    int fake_port;
    int contacts, msgs;
    long events;
    int threads;  /* handler threads per replica */
    int delay_ms; /* the fake's answer delay */
};

/* A fresh fake for a round: nothing stored, every API answer delay_ms late. */
static void fake_reset(struct bench *b)
{
    char faults[64];

    snprintf(faults, sizeof faults, "{\"delay_ms\": %d}", b->delay_ms);
    if (th_fake_glpi_post(b->fake_port, "reset", "{}") != 200 ||
        th_fake_glpi_post(b->fake_port, "faults", faults) != 200)
        die("fake-glpi", "reset refused");
}

/* --- the events ---------------------------------------------------------------------------- */

/* Publishes a round's events for hook, interleaved across conversations, and waits for the
 * broker's confirms. Chatwoot's ids repeat across rounds: each round has a hook of its own. */
static void publish_round(struct bench *b, const char *hook)
{
    json_t **who = calloc((size_t)b->contacts, sizeof *who);
    json_t **conv = calloc((size_t)b->contacts, sizeof *conv);
    long sent = 0;

    if (!who || !conv)
        die("events", "out of memory");
    for (int k = 0; k < b->contacts; k++) {
        who[k] = th_cw_contact(1 + k, k);
        conv[k] = th_cw_conversation(100000 + k, who[k], "open", 1790000000.0 + k);
    }
    for (int step = 0; step < b->msgs + 2; step++)
        for (int k = 0; k < b->contacts; k++) {
            const char *event;
            json_t *payload;
            char text[160];
            int rc;

            if (step == 0) {
                event = "contact_created";
                payload = json_deep_copy(who[k]);
            } else if (step == 1) {
                event = "conversation_created";
                payload = json_deep_copy(conv[k]);
            } else {
                int j = step - 2;

                snprintf(text, sizeof text,
                         "Message %d of conversation %d: the supply on our street has been low "
                         "since Monday.",
                         j, k);
                event = "message_created";
                payload = th_cw_message(1000000LL + (long long)k * b->msgs + j, conv[k], who[k],
                                        j % 2 ? "outgoing" : "incoming", false, text,
                                        1790000000LL + k * 100 + j);
            }
            if ((rc = th_cw_publish(b->a, b->topo->exchange, hook, event, payload, NULL)) != 0)
                die("publish", sy_amqp_error(b->a));
            if (++sent % CONFIRM_EVERY == 0 && sy_amqp_wait_confirms(b->a, 60000) != 0)
                die("publish", "not confirmed");
        }
    if (sy_amqp_wait_confirms(b->a, 60000) != 0)
        die("publish", "not confirmed");
    for (int k = 0; k < b->contacts; k++) {
        json_decref(who[k]);
        json_decref(conv[k]);
    }
    free(who);
    free(conv);
}

/* --- the bare GLPI client ------------------------------------------------------------------ */

struct bare {
    const struct bench *b;
    int first, step; /* the contacts k = first, first + step, ... */
    char base[128];
    long calls, failed;
};

struct buf {
    char *p;
    size_t len, cap;
};

static size_t keep(char *p, size_t size, size_t n, void *ud)
{
    struct buf *out = ud;
    size_t len = size * n;

    if (out->len + len >= out->cap)
        return 0;
    memcpy(out->p + out->len, p, len);
    out->len += len;
    out->p[out->len] = '\0';
    return len;
}

/* One request over the thread's connection; the answer's "id" (or session_token into tok). */
static long long call(CURL *c, struct bare *t, const char *method, const char *path,
                      const char *session, json_t *body, char *tok, size_t toklen)
{
    char url[256], h_app[96], h_auth[96], h_sess[160], buf[65536];
    struct buf out = {buf, 0, sizeof buf};
    struct curl_slist *h = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long st = 0;
    long long id = 0;

    buf[0] = '\0';
    snprintf(url, sizeof url, "%s/%s", t->base, path);
    snprintf(h_app, sizeof h_app, "App-Token: %s", APP_TOKEN);
    h = curl_slist_append(h, h_app);
    if (session) {
        snprintf(h_sess, sizeof h_sess, "Session-Token: %s", session);
        h = curl_slist_append(h, h_sess);
    } else {
        snprintf(h_auth, sizeof h_auth, "Authorization: user_token %s", USER_TOKEN);
        h = curl_slist_append(h, h_auth);
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "");
    else
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    t->calls++;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(h);
    free(text);
    json_t *v = st >= 200 && st < 300 ? json_loads(buf, 0, NULL) : NULL;
    if (v && tok) {
        const char *s = json_string_value(json_object_get(v, "session_token"));

        snprintf(tok, toklen, "%s", s ? s : "");
        id = s ? 1 : 0;
    } else if (v) {
        id = (long long)json_integer_value(json_object_get(v, "id"));
    }
    json_decref(v);
    if (id <= 0)
        t->failed++;
    return id;
}

static void *bare_thread(void *arg)
{
    struct bare *t = arg;
    const struct bench *b = t->b;
    CURL *c = curl_easy_init();
    char session[128];

    if (!c || call(c, t, "GET", "initSession", NULL, NULL, session, sizeof session) <= 0) {
        t->failed++;
        if (c)
            curl_easy_cleanup(c);
        return NULL;
    }
    for (int k = t->first; k < b->contacts; k += t->step) {
        char name[64], title[128], text[160];
        json_t *in;

        snprintf(name, sizeof name, "bare-%s-%d", b->run, k);
        in = json_pack("{s:{s:s, s:s, s:s, s:i}}", "input", "name", name, "realname", "Citizen",
                       "firstname", name, "entities_id", 0);
        long long user = call(c, t, "POST", "User/", session, in, NULL, 0);
        json_decref(in);
        snprintf(title, sizeof title, "Chatwoot #%d: Citizen %03d", 100000 + k, k);
        in = json_pack("{s:{s:s, s:s, s:i, s:i, s:I}}", "input", "name", title, "content",
                       "<p>Conversation in Chatwoot.</p>", "type", 1, "entities_id", 0,
                       "_users_id_requester", (json_int_t)user);
        long long ticket = call(c, t, "POST", "Ticket/", session, in, NULL, 0);
        json_decref(in);
        for (int j = 0; j < b->msgs; j++) {
            snprintf(text, sizeof text,
                     "<p>Message %d of conversation %d: the supply on our street has been low "
                     "since Monday.</p>",
                     j, k);
            in = json_pack("{s:{s:s, s:I, s:s, s:i}}", "input", "itemtype", "Ticket", "items_id",
                           (json_int_t)ticket, "content", text, "is_private", 0);
            call(c, t, "POST", "ITILFollowup/", session, in, NULL, 0);
            json_decref(in);
        }
    }
    /* killSession answers true, not an id: not counted. */
    long failed = t->failed;
    call(c, t, "GET", "killSession", session, NULL, NULL, 0);
    t->failed = failed;
    curl_easy_cleanup(c);
    return NULL;
}

/* Seconds for the bare client to make the round's items; *failed counts calls that did not. */
static double run_bare(struct bench *b, long *calls, long *failed)
{
    struct bare t[BARE_THREADS];
    pthread_t th[BARE_THREADS];
    double t0 = th_mono_s();

    *calls = *failed = 0;
    for (int i = 0; i < BARE_THREADS; i++) {
        t[i] = (struct bare){.b = b, .first = i, .step = BARE_THREADS};
        snprintf(t[i].base, sizeof t[i].base, "http://127.0.0.1:%d/apirest.php", b->fake_port);
        if (pthread_create(&th[i], NULL, bare_thread, &t[i]) != 0)
            die("bare client", "cannot start a thread");
    }
    for (int i = 0; i < BARE_THREADS; i++) {
        pthread_join(th[i], NULL);
        *calls += t[i].calls;
        *failed += t[i].failed;
    }
    return th_mono_s() - t0;
}

/* --- sy-glpi ------------------------------------------------------------------------------- */

struct worker {
    struct th_proc proc;
    int port;
};

static void worker_start(struct bench *b, struct worker *w, int r, int i)
{
    char addr[64], inst[96], amqp[512], pg[512], redis[512], threads[64];

    w->port = th_free_port();
    snprintf(addr, sizeof addr, "SY_HTTP_ADDR=127.0.0.1:%d", w->port);
    snprintf(inst, sizeof inst, "SY_INSTANCE=bench-glpi-%s-%d-%d", b->run, r, i);
    snprintf(amqp, sizeof amqp, "SY_AMQP_URL=%s", th_need_env("SY_AMQP_URL"));
    snprintf(pg, sizeof pg, "SY_PG_URL=%s", th_need_env("SY_PG_URL"));
    snprintf(redis, sizeof redis, "SY_REDIS_URL=%s", th_need_env("SY_REDIS_URL"));
    snprintf(threads, sizeof threads, "SY_HANDLER_THREADS=%d", b->threads);
    const char *env[] = {addr, inst, amqp, pg, redis, threads, "SY_LOG_LEVEL=warn", NULL};
    if (th_proc_spawn(&w->proc, b->glpi_bin, env) != 0)
        die("sy-glpi", "cannot start");
    int64_t end = th_now_ms() + START_MAX_MS;
    for (;;) {
        struct th_reply rep = th_http(w->port, "GET", "/readyz", NULL, NULL);
        long st = rep.status;

        th_reply_free(&rep);
        if (st == 200)
            return;
        if (th_proc_wait(&w->proc, 0) == 0 || th_now_ms() > end) {
            th_proc_dump_log(&w->proc, 30);
            die("sy-glpi", "not ready");
        }
        th_sleep_ms(50);
    }
}

static void hook_add(struct bench *b, const char *hook)
{
    char url[128];
    const char *p[3] = {hook, url, USER_TOKEN};

    snprintf(url, sizeof url, "http://127.0.0.1:%d/apirest.php", b->fake_port);
    if (sy_pg_exec(b->pg,
                   "INSERT INTO glpi_hooks (hook_id, api_url, app_token, user_token, allow_http)"
                   " VALUES ($1, $2, '" APP_TOKEN "', $3, true)",
                   3, p, NULL) != 0)
        die("glpi_hooks", sy_pg_error(b->pg));
}

/* People, tickets and messages of hook that PostgreSQL links to GLPI. */
static void linked(struct bench *b, const char *hook, long long n[3])
{
    struct sy_pg_res *res = NULL;

    if (sy_pg_exec(b->pg,
                   "SELECT (SELECT count(*) FROM glpi_people WHERE hook_id = $1 AND glpi_id IS NOT"
                   " NULL), (SELECT count(*) FROM glpi_tickets WHERE hook_id = $1 AND ticket_id"
                   " IS NOT NULL), (SELECT count(*) FROM glpi_messages WHERE hook_id = $1 AND"
                   " followup_id IS NOT NULL)",
                   1, &hook, &res) != 0)
        die("counting links", sy_pg_error(b->pg));
    for (int i = 0; i < 3; i++)
        n[i] = atoll(sy_pg_res_get(res, 0, i));
    sy_pg_res_free(res);
}

/* What the fake holds of hook: Users, Tickets, and followups of those tickets. */
static void held(struct bench *b, const char *hook, long long n[3])
{
    json_t *s = th_fake_glpi_state(b->fake_port), *it, *ids = json_object();
    char prefix[96], marker[96];
    size_t i;

    if (!s)
        die("fake-glpi", "no state");
    snprintf(prefix, sizeof prefix, "chatwoot-%s-", hook);
    snprintf(marker, sizeof marker, "[chatwoot %s/", hook);
    n[0] = n[1] = n[2] = 0;
    json_array_foreach(json_object_get(s, "users"), i, it)
    {
        const char *reg = json_string_value(json_object_get(it, "registration_number"));

        n[0] += reg && strncmp(reg, prefix, strlen(prefix)) == 0;
    }
    json_array_foreach(json_object_get(s, "tickets"), i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        char key[32];

        if (name && strstr(name, marker)) {
            n[1]++;
            snprintf(key, sizeof key, "%lld",
                     (long long)json_integer_value(json_object_get(it, "id")));
            json_object_set_new(ids, key, json_true());
        }
    }
    json_array_foreach(json_object_get(s, "followups"), i, it)
    {
        char key[32];

        snprintf(key, sizeof key, "%lld",
                 (long long)json_integer_value(json_object_get(it, "items_id")));
        n[2] += json_object_get(ids, key) != NULL;
    }
    json_decref(ids);
    json_decref(s);
}

struct round {
    char kind;
    double s, cpu_s;
    bool ok;
};

static void run_worker(struct bench *b, int r, int replicas, struct round *o)
{
    struct worker w[REPLICAS_MAX];
    char hook[64];
    long long n[3] = {0}, want[3] = {b->contacts, b->contacts, (long long)b->contacts * b->msgs};
    const char *h = hook;

    snprintf(hook, sizeof hook, "bench-%s-%d", b->run, r);
    fake_reset(b);
    hook_add(b, hook);
    for (int i = 0; i < replicas; i++)
        worker_start(b, &w[i], r, i);
    double t0 = th_mono_s();
    publish_round(b, hook);
    int64_t end = th_now_ms() + ROUND_MAX_MS;
    for (;;) {
        linked(b, h, n);
        if (n[0] >= want[0] && n[1] >= want[1] && n[2] >= want[2])
            break;
        if (th_now_ms() > end)
            break;
        th_sleep_ms(POLL_MS);
    }
    o->s = th_mono_s() - t0;
    o->cpu_s = 0;
    for (int i = 0; i < replicas; i++)
        o->cpu_s += th_cpu_s(w[i].proc.pid);
    long long got[3];
    held(b, hook, got);
    uint32_t dead = th_queue_depth(b->a, b->dead);
    int bad_exit = 0;
    for (int i = 0; i < replicas; i++) {
        th_proc_signal(&w[i].proc, SIGTERM);
        if (th_proc_wait(&w[i].proc, 20000) != 0)
            th_proc_cleanup(&w[i].proc);
        if (w[i].proc.exit_status != 0) {
            bad_exit++;
            th_proc_dump_log(&w[i].proc, 20);
        }
    }
    o->ok = n[0] == want[0] && n[1] == want[1] && n[2] == want[2] && got[0] == want[0] &&
            got[1] == want[1] && got[2] == want[2] && dead == 0 && bad_exit == 0;
    printf("          check: linked %lld/%lld/%lld, in GLPI %lld users %lld tickets %lld "
           "followups (want %lld/%lld/%lld), dead letters %u, bad exits %d\n",
           n[0], n[1], n[2], got[0], got[1], got[2], want[0], want[1], want[2], dead, bad_exit);
}

static void cleanup(struct bench *b)
{
    char like[64], fences[80];
    const char *p[1] = {like}, *f[1] = {fences};

    snprintf(like, sizeof like, "bench-%s-%%", b->run);
    snprintf(fences, sizeof fences, "glpi:bench-%s-%%", b->run);
    if (sy_pg_exec(b->pg, "DELETE FROM glpi_hooks WHERE hook_id LIKE $1", 1, p, NULL) != 0 ||
        sy_pg_exec(b->pg, "DELETE FROM sy_fences WHERE resource LIKE $1", 1, f, NULL) != 0)
        fprintf(stderr, "bench_glpi: cleanup: %s\n", sy_pg_error(b->pg));
    th_purge_worker(b->a, b->topo, WORKER);
}

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    int n = v ? atoi(v) : def;

    if (n < lo || n > hi) {
        fprintf(stderr, "bench_glpi: %s: not a number from %d to %d\n", name, lo, hi);
        exit(1);
    }
    return n;
}

int main(void)
{
    const char *url = th_need_env("SY_AMQP_URL");
    const char *pg_url = th_need_env("SY_PG_URL");
    const char *src = th_need_env("SY_SOURCE_DIR");
    const char *rounds = getenv("SY_BENCH_ROUNDS") ? getenv("SY_BENCH_ROUNDS") : "BH13HB";
    struct bench *b = calloc(1, sizeof *b);
    char path[1200], err[512];

    th_need_env("SY_REDIS_URL");
    if (!b)
        die("bench", "out of memory");
    b->glpi_bin = th_need_env("SY_GLPI_BIN");
    b->fake_bin = th_need_env("SY_FAKE_GLPI_BIN");
    b->contacts = env_int("SY_BENCH_CONTACTS", 500, 1, 20000);
    b->msgs = env_int("SY_BENCH_MESSAGES", 8, 0, 100);
    b->threads = env_int("SY_HANDLER_THREADS", BARE_THREADS, 1, 64);
    b->delay_ms = env_int("SY_BENCH_DELAY_MS", 0, 0, 10000);
    b->events = (long)b->contacts * (b->msgs + 2);
    if (strlen(rounds) > ROUNDS_MAX || strspn(rounds, "BH13") != strlen(rounds))
        die("SY_BENCH_ROUNDS", "at most 10 of B (bare drain), H (bare GLPI client), 1, 3");
    th_run_id(b->run);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    b->a = th_fleet_amqp(WORKER, "bench-glpi", &b->topo, b->queue, b->dead);
    uint32_t queued = 0, consumers = 0;
    if (sy_amqp_queue_info(b->a, b->queue, &queued, &consumers) != 0 || consumers > 0)
        die(b->queue, "another consumer takes from it (a fleet of workers is running here: "
                      "./fleet down, then ./fleet bench)");
    if (!(b->pg = sy_pg_connect(pg_url, err, sizeof err)))
        die("postgresql", err);
    snprintf(path, sizeof path, "%s/schemas/sql/postgres", src);
    if (sy_pg_migrate(b->pg, path, NULL, NULL, err, sizeof err) != 0)
        die("migrate", err);
    const char *fake_argv[] = {b->fake_bin,    "--app-token", APP_TOKEN,
                               "--user-token", USER_TOKEN,    NULL};
    if (th_fake_glpi_start(fake_argv, &b->fake_pid, &b->fake_port) != 0)
        die("fake-glpi", "did not start");

    printf("events    %ld a round: %d contacts, each with a conversation of %d messages; "
           "%d handler threads a replica; GLPI answers after %d ms; rounds %s\n",
           b->events, b->contacts, b->msgs, b->threads, b->delay_ms, rounds);
    fflush(stdout);

    struct round res[ROUNDS_MAX];
    int nres = 0, nbare = 0, nhttp = 0;
    double bare_s = 0, http_s = 0;
    bool all_ok = true;
    for (int r = 0; rounds[r]; r++) {
        char kind = rounds[r];

        if (kind == 'B') {
            char hook[64];
            double cpu;

            snprintf(hook, sizeof hook, "bench-%s-drain", b->run);
            publish_round(b, hook);
            double t = th_bare_drain(url, b->queue, b->events, &cpu);
            printf("baseline  bare librabbitmq consumer: %ld msgs in %.3f s = %.0f msg/s\n",
                   b->events, t, b->events / t);
            bare_s += t;
            nbare++;
        } else if (kind == 'H') {
            long calls, failed;

            fake_reset(b);
            double t = run_bare(b, &calls, &failed);
            printf("baseline  bare GLPI client, %d threads: %ld creates in %.3f s = %.0f "
                   "events/s (%.0f calls/s)%s\n",
                   BARE_THREADS, calls - 2L * BARE_THREADS, t, b->events / t, calls / t,
                   failed ? " [CALLS FAILED]" : "");
            all_ok = all_ok && failed == 0;
            http_s += t;
            nhttp++;
        } else {
            struct round *o = &res[nres++];
            int replicas = kind - '0';

            o->kind = kind;
            run_worker(b, r, replicas, o);
            all_ok = all_ok && o->ok;
            printf("glpi      sy-glpi x%d: %ld events in %.2f s = %.0f events/s; CPU %.1f s "
                   "(%.0f us per event)%s\n",
                   replicas, b->events, o->s, b->events / o->s, o->cpu_s,
                   o->cpu_s * 1e6 / (double)b->events, o->ok ? "" : " [VERIFY FAILED]");
            th_purge_worker(b->a, b->topo, WORKER);
        }
        fflush(stdout);
    }
    double bare = nbare ? b->events * nbare / bare_s : 0;
    double http = nhttp ? b->events * nhttp / http_s : 0;
    for (int i = 0; i < nres; i++) {
        double rate = b->events / res[i].s;

        if (http > 0)
            printf("ratio     sy-glpi x%c events/s / bare GLPI client (%.0f events/s): %.3f\n",
                   res[i].kind, http, rate / http);
        if (bare > 0)
            printf("ratio     sy-glpi x%c events/s / bare drain (%.0f msg/s): %.4f\n", res[i].kind,
                   bare, rate / bare);
    }
    double one = 0, three = 0;
    for (int i = 0; i < nres; i++) {
        double rate = b->events / res[i].s;

        if (res[i].kind == '1' && rate > one)
            one = rate;
        if (res[i].kind == '3' && rate > three)
            three = rate;
    }
    if (one > 0 && three > 0)
        printf("scaling   3 replicas / 1 replica: %.2f\n", three / one);
    cleanup(b);
    th_fake_glpi_stop(&b->fake_pid);
    sy_pg_destroy(b->pg);
    sy_amqp_destroy(b->a);
    sy_topology_destroy(b->topo);
    curl_global_cleanup();
    free(b);
    return all_ok ? 0 : 1;
}
