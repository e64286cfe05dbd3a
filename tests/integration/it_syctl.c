/* it_syctl.c - syctl run as an operator runs it (fork/exec, stdout, stderr, exit code) against
 * the real broker and database: help, usage and input errors, publish, topology, queues, the
 * dead-letter round trip, migrations, and the exit codes for unreachable services and bad
 * configuration. No worker runs here: whatever lands in sy.probe stays there to be checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/topology.h"

#define RUN_TIMEOUT_MS 60000

static const char *syctl_bin;
static struct sy_amqp *amqp;
static struct sy_topology *topo;

/* --- Running syctl ------------------------------------------------------------------------ */

struct run {
    int code; /* exit status, or 128 + signal */
    char *out;
    char *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    assert_non_null(nb);
    memcpy(nb + *len, p, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
}

/* Runs syctl with args (NULL-terminated). env: "K=V" sets, "K" alone unsets, in the child
 * only. input, when not NULL, is written to its stdin. */
static struct run run_syctl_v(const char *input, const char *const *env, const char *const *args)
{
    int in[2], out[2], err[2];
    struct run r = {0};
    size_t outlen = 0, errlen = 0;

    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        for (size_t i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq) {
                char name[128];
                snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
                setenv(name, eq + 1, 1);
            } else {
                unsetenv(env[i]);
            }
        }
        const char *argv[32] = {syctl_bin};
        for (size_t i = 0; args[i] && i < 30; i++)
            argv[i + 1] = args[i];
        execv(syctl_bin, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (input) {
        /* Test inputs are small: they fit the pipe without reading concurrently. */
        size_t n = strlen(input);
        assert_int_equal(write(in[1], input, n), (ssize_t)n);
    }
    close(in[1]);

    append(&r.out, &outlen, "", 0);
    append(&r.err, &errlen, "", 0);
    struct pollfd fds[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    int open_fds = 2;
    int64_t end = th_now_ms() + RUN_TIMEOUT_MS;
    while (open_fds > 0) {
        int left = (int)(end - th_now_ms());
        if (left <= 0) {
            kill(pid, SIGKILL);
            fail_msg("syctl did not finish within %d ms", RUN_TIMEOUT_MS);
        }
        int n = poll(fds, 2, left);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(fds[i].fd, buf, sizeof(buf));
            if (got > 0) {
                if (i == 0)
                    append(&r.out, &outlen, buf, (size_t)got);
                else
                    append(&r.err, &errlen, buf, (size_t)got);
            } else if (got == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

#define ARGS(...)                ((const char *const[]){__VA_ARGS__, NULL})
#define run_syctl(...)           run_syctl_v(NULL, NULL, ARGS(__VA_ARGS__))
#define run_syctl_env(env, ...)  run_syctl_v(NULL, env, ARGS(__VA_ARGS__))
#define run_syctl_in(input, ...) run_syctl_v(input, NULL, ARGS(__VA_ARGS__))

/* Asserts the exit code, printing what syctl said when it differs. */
static void expect_code(const struct run *r, int code)
{
    if (r->code != code)
        fail_msg("exit %d, expected %d\n--- stdout\n%s--- stderr\n%s", r->code, code, r->out,
                 r->err);
}

/* An error is one line on stderr starting with "syctl: ", and nothing else is printed there. */
static void expect_error_line(const struct run *r, const char *needle)
{
    assert_true(strncmp(r->err, "syctl: ", 7) == 0);
    const char *nl = strchr(r->err, '\n');
    assert_non_null(nl);
    if (nl[1] != '\0')
        fail_msg("more than one line on stderr:\n%s", r->err);
    if (needle && !strstr(r->err, needle))
        fail_msg("stderr lacks '%s': %s", needle, r->err);
}

/* --- Broker helpers ------------------------------------------------------------------------ */

static void purge_probe(void)
{
    th_purge_worker(amqp, topo, "probe");
}

static bool is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static void *envelope(const char *type, const char *id, const char *run, int64_t n, size_t *len)
{
    json_t *data = json_pack("{s:s, s:I}", "run", run, "n", (json_int_t)n);
    void *packed = NULL, *body = NULL;
    size_t plen = 0;

    assert_non_null(data);
    assert_int_equal(sy_json_to_msgpack(data, &packed, &plen), 0);
    assert_int_equal(sy_msg_encode(type, id, "it-syctl", 0, packed, plen, &body, len), 0);
    free(packed);
    json_decref(data);
    return body;
}

/* Puts a message straight into sy.probe.dead, the way the runtime dead-letters. */
static void put_dead(const char *id, const void *body, size_t len, const char *reason,
                     int64_t attempts)
{
    const struct sy_header hdrs[] = {
        {.key = "x-sy-reason", .kind = SY_HDR_STR, .str = reason},
        {.key = "x-sy-attempts", .kind = SY_HDR_INT, .i = attempts},
        {.key = "x-sy-worker", .kind = SY_HDR_STR, .str = "probe"},
        {.key = "x-sy-dead-at", .kind = SY_HDR_STR, .str = "2026-11-22T04:05:06Z"},
        {.key = "x-sy-routing-key", .kind = SY_HDR_STR, .str = "probe.work"},
        {.key = "x-sy-exchange", .kind = SY_HDR_STR, .str = "sy.events"},
    };
    const struct sy_publish p = {
        .exchange = "",
        .routing_key = "sy.probe.dead",
        .body = body,
        .len = len,
        .message_id = id,
        .headers = hdrs,
        .nheaders = sizeof(hdrs) / sizeof(hdrs[0]),
    };
    int rc = sy_amqp_publish(amqp, &p, 10000);
    if (rc != 0)
        fail_msg("publish to sy.probe.dead: %s: %s", sy_strerror(rc), sy_amqp_error(amqp));
}

static uint32_t depth(const char *queue)
{
    return th_queue_depth(amqp, queue);
}

/* The depth once it reached `want`, or whatever it is after 5 s. A syctl that looked at
 * messages with basic.get leaves them unacked until its connection closes; the broker puts
 * them back after the process exited, not at once. */
static uint32_t depth_settled(const char *queue, uint32_t want)
{
    uint32_t d = depth(queue);
    for (int i = 0; i < 250 && d != want; i++) {
        th_sleep_ms(20);
        d = depth(queue);
    }
    return d;
}

/* Takes the next message of a queue (acked), failing the test when there is none. */
static struct sy_amqp_msg *take(const char *queue)
{
    struct sy_amqp_msg *m = NULL;
    int rc = sy_amqp_get(amqp, queue, &m);
    if (rc != 0)
        fail_msg("get from %s: %s", queue, sy_strerror(rc));
    assert_int_equal(sy_amqp_settle(amqp, m, 1, 0), 0);
    return m;
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, text);
    return v;
}

static const json_t *find_by(const json_t *arr, const char *key, const char *value)
{
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *s = json_string_value(json_object_get(o, key));
        if (s && strcmp(s, value) == 0)
            return o;
    }
    return NULL;
}

/* A scratch directory of this test run under the build tree. */
static void scratch_path(char *buf, size_t bufsz, const char *name)
{
    const char *dir = getenv("SY_BUILD_DIR");
    snprintf(buf, bufsz, "%s/Testing", dir ? dir : ".");
    mkdir(buf, 0755);
    snprintf(buf, bufsz, "%s/Testing/it_syctl-%d-%s", dir ? dir : ".", (int)getpid(), name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* --- Help and usage ------------------------------------------------------------------------ */

static void test_help_of_every_command_exits_0(void **state)
{
    static const char *const cmds[][4] = {
        {"--help", NULL, NULL},       {"-h", NULL, NULL},           {"publish", "--help", NULL},
        {"topology", "--help", NULL}, {"topology", "apply", "-h"},  {"topology", "show", "--help"},
        {"queues", "--help", NULL},   {"dead", "--help", NULL},     {"dead", "list", "--help"},
        {"dead", "show", "--help"},   {"dead", "replay", "--help"}, {"migrate", "--help", NULL},
        {"help", "publish", NULL},    {"help", "dead", "list"},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        struct run r = run_syctl_v(NULL, NULL, cmds[i]);
        expect_code(&r, 0);
        assert_non_null(strstr(r.out, "Usage: syctl"));
        assert_non_null(strstr(r.out, "Exit codes:"));
        assert_non_null(strstr(r.out, "Environment:"));
        assert_string_equal(r.err, "");
        run_free(&r);
    }
    /* Each help names its own environment: publish never needs PostgreSQL. */
    struct run r = run_syctl("publish", "--help");
    assert_non_null(strstr(r.out, "SY_SCHEMA_DIR"));
    assert_null(strstr(r.out, "SY_PG_URL"));
    run_free(&r);
    r = run_syctl("migrate", "--help");
    assert_non_null(strstr(r.out, "SY_PG_URL"));
    assert_null(strstr(r.out, "SY_AMQP_URL"));
    run_free(&r);
}

static void test_version_prints_name_and_version(void **state)
{
    struct run r = run_syctl("--version");
    expect_code(&r, 0);
    assert_true(strncmp(r.out, "syctl ", 6) == 0);
    assert_true(isdigit((unsigned char)r.out[6]));
    run_free(&r);
}

static void test_usage_errors_exit_2(void **state)
{
    static const char *const cases[][6] = {
        {"frobnicate"},
        {"--bogus"},
        {"publish", "--nope", "probe.work", "{}"},
        {"publish", "probe.work"},
        {"publish", "probe.work", "{}", "--timeout"},
        {"publish", "probe.work", "{}", "--timeout", "forever"},
        {"topology"},
        {"topology", "remove"},
        {"queues", "extra"},
        {"dead"},
        {"dead", "bury", "probe"},
        {"dead", "list"},
        {"dead", "list", "probe", "--limit"},
        {"dead", "list", "probe", "--limit=0"},
        {"dead", "show", "probe"},
        {"dead", "replay", "probe"},
        {"dead", "replay", "probe", "--all", "--id=x"},
        {"migrate", "now"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const *args = cases[i];
        struct run r = run_syctl_v(NULL, NULL, args);
        if (r.code != 2)
            fail_msg("case %zu (%s %s): exit %d: %s", i, args[0], args[1] ? args[1] : "", r.code,
                     r.err);
        expect_error_line(&r, NULL);
        assert_string_equal(r.out, "");
        run_free(&r);
    }
    /* No command at all: usage on stderr, still exit 2. */
    struct run r = run_syctl_v(NULL, NULL, (const char *const[]){NULL});
    expect_code(&r, 2);
    assert_non_null(strstr(r.err, "Usage: syctl"));
    run_free(&r);
}

/* --- publish --------------------------------------------------------------------------------- */

static void test_publish_bad_json_exits_3(void **state)
{
    purge_probe();
    struct run r = run_syctl("publish", "probe.work", "{\"run\": \"x\", ");
    expect_code(&r, 3);
    expect_error_line(&r, "invalid JSON");
    run_free(&r);

    r = run_syctl("publish", "probe.work", "[1, 2]");
    expect_code(&r, 3);
    expect_error_line(&r, "JSON object");
    run_free(&r);

    r = run_syctl("publish", "probe.work", "{\"run\": \"x\", \"run\": \"y\", \"n\": 1}");
    expect_code(&r, 3);
    run_free(&r);
    assert_int_equal(depth("sy.probe"), 0);
}

static void test_publish_schema_violation_exits_3_naming_the_field(void **state)
{
    purge_probe();
    struct run r = run_syctl("publish", "probe.work", "{\"run\": \"r1\"}");
    expect_code(&r, 3);
    expect_error_line(&r, "data.n");
    run_free(&r);

    r = run_syctl("publish", "probe.work", "{\"run\": \"r1\", \"n\": \"seven\"}");
    expect_code(&r, 3);
    expect_error_line(&r, "data.n");
    run_free(&r);

    r = run_syctl("publish", "probe.work", "{\"run\": \"r1\", \"n\": 1, \"action\": \"dance\"}");
    expect_code(&r, 3);
    expect_error_line(&r, "data.action");
    run_free(&r);
    assert_int_equal(depth("sy.probe"), 0);
}

static void test_publish_unknown_type_exits_3(void **state)
{
    struct run r = run_syctl("publish", "no.such.type", "{}");
    expect_code(&r, 3);
    expect_error_line(&r, "no.such.type");
    run_free(&r);
}

static void test_publish_prints_uuid_and_the_message_is_in_sy_probe(void **state)
{
    char run_id[17], data[128];

    purge_probe();
    th_run_id(run_id);
    snprintf(data, sizeof(data), "{\"run\": \"%s\", \"n\": 7, \"action\": \"ack\"}", run_id);
    struct run r = run_syctl("publish", "probe.work", data);
    expect_code(&r, 0);
    size_t len = strlen(r.out);
    assert_true(len == 37 && r.out[36] == '\n');
    assert_true(is_uuid(r.out, 36));
    r.out[36] = '\0';

    assert_int_equal(depth("sy.probe"), 1);
    struct sy_amqp_msg *m = take("sy.probe");
    assert_string_equal(m->message_id, r.out);
    assert_string_equal(m->routing_key, "probe.work");
    assert_string_equal(m->exchange, "sy.events");
    struct sy_msg *msg = NULL;
    char err[256];
    assert_int_equal(sy_msg_decode(m->body, m->len, &msg, err, sizeof(err)), 0);
    assert_string_equal(sy_msg_id(msg), r.out);
    assert_string_equal(sy_msg_type(msg), "probe.work");
    assert_string_equal(sy_msg_source(msg), "syctl");
    char got_run[32];
    int64_t n = 0;
    assert_int_equal(sy_msg_copy_str(msg, "run", got_run, sizeof(got_run)), 0);
    assert_string_equal(got_run, run_id);
    assert_int_equal(sy_msg_get_int(msg, "n", &n), 0);
    assert_int_equal(n, 7);
    sy_msg_destroy(msg);
    sy_amqp_msg_free(m);
    run_free(&r);
}

static void test_publish_from_stdin_and_file_keeps_id_and_source(void **state)
{
    char run_id[17], id[40], data[128], path[512], arg[520];

    purge_probe();
    th_run_id(run_id);
    snprintf(id, sizeof(id), "op-%s", run_id);
    snprintf(data, sizeof(data), "{\"run\": \"%s\", \"n\": 1}", run_id);
    struct run r = run_syctl_in(data, "publish", "probe.work", "-", "--id", id, "--source=ops");
    expect_code(&r, 0);
    assert_string_equal(r.out, (snprintf(arg, sizeof(arg), "%s\n", id), arg));
    run_free(&r);

    scratch_path(path, sizeof(path), "data.json");
    write_file(path, data);
    snprintf(arg, sizeof(arg), "@%s", path);
    r = run_syctl("publish", "probe.work", arg, "--timeout", "5s");
    expect_code(&r, 0);
    assert_true(is_uuid(r.out, strlen(r.out) - 1));
    run_free(&r);
    unlink(path);

    r = run_syctl("publish", "probe.work", "@does-not-exist.json");
    expect_code(&r, 3);
    expect_error_line(&r, "does-not-exist.json");
    run_free(&r);

    assert_int_equal(depth("sy.probe"), 2);
    struct sy_amqp_msg *m = take("sy.probe");
    assert_string_equal(m->message_id, id);
    struct sy_msg *msg = NULL;
    char err[256];
    assert_int_equal(sy_msg_decode(m->body, m->len, &msg, err, sizeof(err)), 0);
    assert_string_equal(sy_msg_source(msg), "ops");
    sy_msg_destroy(msg);
    sy_amqp_msg_free(m);
    sy_amqp_msg_free(take("sy.probe"));
}

static void test_publish_unroutable_type_exits_4(void **state)
{
    char dir[512], file[600], env[620];

    /* A type with a schema that no worker's routes cover. */
    scratch_path(dir, sizeof(dir), "schemas");
    mkdir(dir, 0755);
    snprintf(file, sizeof(file), "%s/nobody.work.yaml", dir);
    write_file(file, "type: nobody.work\n"
                     "versions: [1]\n"
                     "description: no worker routes this type\n"
                     "data:\n"
                     "  fields:\n"
                     "    n: {type: int}\n");
    snprintf(env, sizeof(env), "SY_SCHEMA_DIR=%s", dir);
    struct run r = run_syctl_env(ARGS(env), "publish", "nobody.work", "{\"n\": 1}");
    expect_code(&r, 4);
    expect_error_line(&r, "no queue is bound");
    run_free(&r);
    unlink(file);
    rmdir(dir);
}

static void test_publish_never_touches_postgresql(void **state)
{
    char data[128], run_id[17];

    purge_probe();
    th_run_id(run_id);
    snprintf(data, sizeof(data), "{\"run\": \"%s\", \"n\": 2}", run_id);
    struct run r = run_syctl_env(ARGS("SY_PG_URL=not a url at all"), "publish", "probe.work", data);
    expect_code(&r, 0);
    run_free(&r);
    assert_int_equal(depth("sy.probe"), 1);
    purge_probe();
}

/* --- topology and queues ------------------------------------------------------------------ */

static void test_topology_apply_twice_declares_the_same(void **state)
{
    struct run first = run_syctl("topology", "apply");
    expect_code(&first, 0);
    assert_non_null(strstr(first.out, "declared exchange sy.events"));
    assert_non_null(strstr(first.out, "declared queue sy.probe "));
    assert_non_null(strstr(first.out, "declared queue sy.probe.retry.0 "));
    assert_non_null(strstr(first.out, "declared queue sy.probe.dead "));
    assert_non_null(strstr(first.out, "declared queue sy.probe_batch "));

    struct run second = run_syctl("topology", "apply");
    expect_code(&second, 0);
    assert_string_equal(first.out, second.out);
    run_free(&first);
    run_free(&second);

    struct run one = run_syctl("topology", "apply", "--worker", "probe");
    expect_code(&one, 0);
    assert_non_null(strstr(one.out, "sy.probe.dead"));
    assert_null(strstr(one.out, "sy.probe_batch"));
    run_free(&one);

    struct run none = run_syctl("topology", "apply", "--worker", "nosuch");
    expect_code(&none, 4);
    expect_error_line(&none, "nosuch");
    run_free(&none);
}

static void test_queues_json_shows_the_depths_created(void **state)
{
    char run_id[17];

    purge_probe();
    th_run_id(run_id);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            th_publish_probe(amqp, topo->exchange, "probe.work", run_id, i, "ack", -1, -1, NULL),
            0);
    assert_int_equal(sy_amqp_wait_confirms(amqp, 10000), 0);
    for (int i = 0; i < 2; i++) {
        size_t len;
        char id[37];
        sy_uuid4(id);
        void *body = envelope("probe.work", id, run_id, i, &len);
        put_dead(id, body, len, "handler said no", 1);
        free(body);
    }

    struct run r = run_syctl("queues", "--json");
    expect_code(&r, 0);
    json_t *root = parse_json(r.out);
    assert_string_equal(json_string_value(json_object_get(root, "exchange")), "sy.events");
    const json_t *w = find_by(json_object_get(root, "workers"), "worker", "probe");
    assert_non_null(w);
    assert_string_equal(json_string_value(json_object_get(w, "queue")), "sy.probe");
    assert_int_equal(json_integer_value(json_object_get(w, "messages")), 3);
    assert_int_equal(json_integer_value(json_object_get(w, "consumers")), 0);
    assert_int_equal(json_integer_value(json_object_get(w, "retry")), 0);
    assert_int_equal(json_integer_value(json_object_get(w, "dead")), 2);
    assert_non_null(find_by(json_object_get(root, "workers"), "worker", "probe_batch"));
    json_decref(root);
    run_free(&r);

    r = run_syctl("queues", "--worker", "probe");
    expect_code(&r, 0);
    assert_non_null(strstr(r.out, "WORKER"));
    assert_non_null(strstr(r.out, "sy.probe"));
    assert_null(strstr(r.out, "probe_batch"));
    run_free(&r);
    purge_probe();
}

/* --- dead letters ------------------------------------------------------------------------- */

static void test_dead_list_show_replay_round_trip(void **state)
{
    char run_id[17], id_a[37], id_b[37], id_c[37], err[256];
    size_t len_a, len_c;

    purge_probe();
    th_run_id(run_id);
    sy_uuid4(id_a);
    sy_uuid4(id_b);
    sy_uuid4(id_c);
    void *body_a = envelope("probe.work", id_a, run_id, 1, &len_a);
    void *body_c = envelope("probe.work", id_c, run_id, 3, &len_c);
    static const char garbage[] = "\xc1 this is not msgpack";
    put_dead(id_a, body_a, len_a, "schema: data.n: required", 4);
    put_dead(id_b, garbage, sizeof(garbage) - 1, "decode: not msgpack", 1);
    put_dead(id_c, body_c, len_c, "handler gave up", 2);
    assert_int_equal(depth_settled("sy.probe.dead", 3), 3);

    /* list: everything shown, nothing removed. */
    struct run r = run_syctl("dead", "list", "probe", "--json");
    expect_code(&r, 0);
    json_t *root = parse_json(r.out);
    assert_string_equal(json_string_value(json_object_get(root, "queue")), "sy.probe.dead");
    const json_t *msgs = json_object_get(root, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    const json_t *a = find_by(msgs, "id", id_a);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "type")), "probe.work");
    assert_string_equal(json_string_value(json_object_get(a, "reason")),
                        "schema: data.n: required");
    assert_int_equal(json_integer_value(json_object_get(a, "attempts")), 4);
    assert_string_equal(json_string_value(json_object_get(a, "dead_at")), "2026-11-22T04:05:06Z");
    assert_string_equal(json_string_value(json_object_get(a, "routing_key")), "probe.work");
    const json_t *b = find_by(msgs, "id", id_b);
    assert_non_null(b);
    assert_true(json_is_null(json_object_get(b, "type")));
    json_decref(root);
    run_free(&r);
    assert_int_equal(depth_settled("sy.probe.dead", 3), 3);

    r = run_syctl("dead", "list", "probe");
    expect_code(&r, 0);
    assert_non_null(strstr(r.out, id_a));
    assert_non_null(strstr(r.out, "handler gave up"));
    run_free(&r);

    r = run_syctl("dead", "list", "probe", "--limit", "1", "--json");
    expect_code(&r, 0);
    root = parse_json(r.out);
    assert_int_equal(json_array_size(json_object_get(root, "messages")), 1);
    assert_int_equal(json_integer_value(json_object_get(root, "total")), 3);
    json_decref(root);
    run_free(&r);
    assert_int_equal(depth_settled("sy.probe.dead", 3), 3);

    /* show: headers and the decoded body; a non-msgpack body as base64 with a note. */
    r = run_syctl("dead", "show", "probe", id_a);
    expect_code(&r, 0);
    assert_non_null(strstr(r.out, "schema: data.n: required"));
    assert_non_null(strstr(r.out, "x-sy-attempts"));
    assert_non_null(strstr(r.out, run_id));
    run_free(&r);

    r = run_syctl("dead", "show", "probe", id_a, "--json");
    expect_code(&r, 0);
    root = parse_json(r.out);
    const json_t *body = json_object_get(root, "body");
    assert_string_equal(json_string_value(json_object_get(body, "id")), id_a);
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "data"), "run")),
                        run_id);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(root, "headers"), "x-sy-worker")),
        "probe");
    json_decref(root);
    run_free(&r);

    r = run_syctl("dead", "show", "probe", id_b, "--json");
    expect_code(&r, 0);
    root = parse_json(r.out);
    assert_null(json_object_get(root, "body"));
    assert_string_equal(json_string_value(json_object_get(root, "body_base64")),
                        "wSB0aGlzIGlzIG5vdCBtc2dwYWNr");
    assert_non_null(strstr(json_string_value(json_object_get(root, "note")), "not msgpack"));
    json_decref(root);
    run_free(&r);

    r = run_syctl("dead", "show", "probe", "no-such-id");
    expect_code(&r, 4);
    expect_error_line(&r, "no-such-id");
    run_free(&r);
    assert_int_equal(depth_settled("sy.probe.dead", 3), 3);

    /* replay: only A goes back to sy.probe, with fresh headers; B and C stay. */
    r = run_syctl("dead", "replay", "probe", "--id", id_a);
    expect_code(&r, 0);
    assert_non_null(strstr(r.out, "replayed 1 "));
    run_free(&r);
    assert_int_equal(depth_settled("sy.probe", 1), 1);
    assert_int_equal(depth_settled("sy.probe.dead", 2), 2);
    struct sy_amqp_msg *m = take("sy.probe");
    assert_string_equal(m->message_id, id_a);
    assert_int_equal(m->len, len_a);
    assert_memory_equal(m->body, body_a, len_a);
    assert_int_equal(json_integer_value(json_object_get(m->headers, "x-sy-replayed")), 1);
    assert_null(json_object_get(m->headers, "x-sy-reason"));
    assert_null(json_object_get(m->headers, "x-sy-attempts"));
    struct sy_msg *msg = NULL;
    assert_int_equal(sy_msg_decode(m->body, m->len, &msg, err, sizeof(err)), 0);
    sy_msg_destroy(msg);
    sy_amqp_msg_free(m);

    r = run_syctl("dead", "list", "probe", "--json");
    expect_code(&r, 0);
    root = parse_json(r.out);
    assert_null(find_by(json_object_get(root, "messages"), "id", id_a));
    assert_non_null(find_by(json_object_get(root, "messages"), "id", id_c));
    json_decref(root);
    run_free(&r);

    r = run_syctl("dead", "replay", "probe", "--id", "no-such-id");
    expect_code(&r, 4);
    run_free(&r);
    assert_int_equal(depth_settled("sy.probe.dead", 2), 2);

    r = run_syctl("dead", "replay", "probe", "--all");
    expect_code(&r, 0);
    assert_non_null(strstr(r.out, "replayed 2 "));
    run_free(&r);
    assert_int_equal(depth_settled("sy.probe.dead", 0), 0);
    assert_int_equal(depth_settled("sy.probe", 2), 2);

    r = run_syctl("dead", "list", "probe");
    expect_code(&r, 0);
    assert_string_equal(r.out, "no dead letters in sy.probe.dead\n");
    run_free(&r);

    free(body_a);
    free(body_c);
    purge_probe();
}

struct dead_wait {
    const char *queue;
};

static bool dead_arrived(void *ud)
{
    const struct dead_wait *w = ud;
    return depth(w->queue) == 1;
}

static void test_dead_list_reports_the_broker_delivery_limit(void **state)
{
    char run_id[17], id[37];

    purge_probe();
    th_run_id(run_id);
    assert_int_equal(
        th_publish_probe(amqp, topo->exchange, "probe.work", run_id, 1, "crash", -1, -1, id), 0);
    assert_int_equal(sy_amqp_wait_confirms(amqp, 10000), 0);
    /* Hand the message back until the quorum queue's delivery limit moves it to .dead. */
    struct dead_wait w = {"sy.probe.dead"};
    for (int i = 0; i < 40 && depth("sy.probe.dead") == 0; i++) {
        struct sy_amqp_msg *m = NULL;
        if (sy_amqp_get(amqp, "sy.probe", &m) == 0) {
            assert_int_equal(sy_amqp_settle(amqp, m, 0, 1), 0);
            sy_amqp_msg_free(m);
        } else {
            th_sleep_ms(50);
        }
    }
    assert_true(th_wait_until(dead_arrived, &w, 10000));

    struct run r = run_syctl("dead", "list", "probe", "--json");
    expect_code(&r, 0);
    json_t *root = parse_json(r.out);
    const json_t *e = find_by(json_object_get(root, "messages"), "id", id);
    assert_non_null(e);
    const char *reason = json_string_value(json_object_get(e, "reason"));
    if (!strstr(reason, "delivery_limit"))
        fail_msg("reason '%s' does not name the delivery limit", reason);
    assert_string_equal(json_string_value(json_object_get(e, "routing_key")), "probe.work");
    assert_true(json_is_null(json_object_get(e, "attempts")));
    assert_true(json_is_string(json_object_get(e, "dead_at")));
    json_decref(root);
    run_free(&r);

    r = run_syctl("dead", "replay", "probe", "--limit", "1");
    expect_code(&r, 0);
    assert_non_null(strstr(r.out, "replayed 1 "));
    run_free(&r);
    struct sy_amqp_msg *m = take("sy.probe");
    assert_string_equal(m->message_id, id);
    assert_null(json_object_get(m->headers, "x-death"));
    sy_amqp_msg_free(m);
    purge_probe();
}

static void test_dead_of_unknown_worker_exits_4(void **state)
{
    struct run r = run_syctl("dead", "list", "nosuch");
    expect_code(&r, 4);
    expect_error_line(&r, "known: probe");
    run_free(&r);
}

/* --- migrate -------------------------------------------------------------------------------- */

static void test_migrate_twice_second_is_up_to_date(void **state)
{
    struct run r = run_syctl("migrate");
    expect_code(&r, 0);
    assert_true(strncmp(r.out, "applied ", 8) == 0 || strcmp(r.out, "up to date\n") == 0);
    run_free(&r);

    r = run_syctl("migrate");
    expect_code(&r, 0);
    assert_string_equal(r.out, "up to date\n");
    run_free(&r);

    r = run_syctl("migrate", "--dir", "no-such-migrations-dir");
    expect_code(&r, 4);
    expect_error_line(&r, "no-such-migrations-dir");
    run_free(&r);
}

/* --- services and configuration ----------------------------------------------------------- */

static void test_unreachable_broker_exits_69_without_the_password(void **state)
{
    struct run r = run_syctl_env(ARGS("SY_AMQP_URL=amqp://ops:s3cretpw@127.0.0.1:1/"), "queues");
    expect_code(&r, 69);
    expect_error_line(&r, NULL);
    assert_null(strstr(r.err, "s3cretpw"));
    run_free(&r);

    r = run_syctl_env(ARGS("SY_PG_URL=postgresql://ops:s3cretpw@127.0.0.1:1/x"), "migrate");
    expect_code(&r, 69);
    expect_error_line(&r, NULL);
    assert_null(strstr(r.err, "s3cretpw"));
    run_free(&r);
}

static void test_bad_configuration_exits_78(void **state)
{
    struct run r = run_syctl_env(ARGS("SY_TOPOLOGY=no-such-topology.yaml"), "queues");
    expect_code(&r, 78);
    expect_error_line(&r, "no-such-topology.yaml");
    run_free(&r);

    r = run_syctl_env(ARGS("SY_LOG_LEVEL=loud"), "queues");
    expect_code(&r, 78);
    expect_error_line(&r, "SY_LOG_LEVEL");
    run_free(&r);

    r = run_syctl_env(ARGS("SY_AMQP_URL=not-a-url"), "queues");
    expect_code(&r, 78);
    expect_error_line(&r, "SY_AMQP_URL");
    run_free(&r);

    r = run_syctl_env(ARGS("SY_PG_URL"), "migrate");
    expect_code(&r, 78);
    expect_error_line(&r, "SY_PG_URL");
    run_free(&r);
}

static int setup(void **state)
{
    th_need_env("SY_AMQP_URL");
    th_need_env("SY_PG_URL");
    syctl_bin = th_need_env("SYCTL_BIN");
    amqp = th_amqp(&topo);
    return 0;
}

static int teardown(void **state)
{
    sy_amqp_destroy(amqp);
    sy_topology_destroy(topo);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_of_every_command_exits_0),
        cmocka_unit_test(test_version_prints_name_and_version),
        cmocka_unit_test(test_usage_errors_exit_2),
        cmocka_unit_test(test_publish_bad_json_exits_3),
        cmocka_unit_test(test_publish_schema_violation_exits_3_naming_the_field),
        cmocka_unit_test(test_publish_unknown_type_exits_3),
        cmocka_unit_test(test_publish_prints_uuid_and_the_message_is_in_sy_probe),
        cmocka_unit_test(test_publish_from_stdin_and_file_keeps_id_and_source),
        cmocka_unit_test(test_publish_unroutable_type_exits_4),
        cmocka_unit_test(test_publish_never_touches_postgresql),
        cmocka_unit_test(test_topology_apply_twice_declares_the_same),
        cmocka_unit_test(test_queues_json_shows_the_depths_created),
        cmocka_unit_test(test_dead_list_show_replay_round_trip),
        cmocka_unit_test(test_dead_list_reports_the_broker_delivery_limit),
        cmocka_unit_test(test_dead_of_unknown_worker_exits_4),
        cmocka_unit_test(test_migrate_twice_second_is_up_to_date),
        cmocka_unit_test(test_unreachable_broker_exits_69_without_the_password),
        cmocka_unit_test(test_bad_configuration_exits_78),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
