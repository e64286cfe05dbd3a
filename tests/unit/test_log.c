/* test_log.c - log lines as JSON: fields, order, escaping, redaction, levels, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sy/err.h"
#include "sy/log.h"

/* stderr is pointed at a pipe while a test logs; a thread drains it. A pipe, unlike a file,
 * interleaves concurrent writes above PIPE_BUF, so the thread test means something. */
struct capture {
    int saved;
    int rd;
    pthread_t reader;
    char *text;
    size_t len, cap;
};

static void *drain(void *arg)
{
    struct capture *c = arg;

    for (;;) {
        ssize_t n;

        if (c->cap - c->len < 65536) {
            c->cap = c->cap * 2 + 65536;
            c->text = realloc(c->text, c->cap + 1);
            if (!c->text)
                abort();
        }
        n = read(c->rd, c->text + c->len, c->cap - c->len);
        if (n <= 0)
            break;
        c->len += (size_t)n;
    }
    c->text[c->len] = '\0';
    return NULL;
}

static void cap_start(struct capture *c)
{
    int fds[2];

    memset(c, 0, sizeof(*c));
    assert_int_equal(pipe(fds), 0);
    /* The smallest pipe: a line longer than it is written in pieces, as the reader drains. */
    fcntl(fds[1], F_SETPIPE_SZ, 4096);
    c->rd = fds[0];
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    assert_int_equal(pthread_create(&c->reader, NULL, drain, c), 0);
}

/* Returns everything written since cap_start (malloc'd). */
static char *cap_end(struct capture *c)
{
    fflush(stderr);
    /* Closing the last write end lets the reader see the end of the stream. */
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    pthread_join(c->reader, NULL);
    close(c->rd);
    return c->text;
}

/* Splits captured text into lines, each of which must be one JSON object. */
static json_t *parse_lines(const char *text)
{
    json_t *lines = json_array();
    const char *p = text;

    while (*p) {
        const char *nl = strchr(p, '\n');
        json_error_t jerr;
        json_t *obj;

        if (!nl)
            fail_msg("line without newline: %s", p);
        obj = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        if (!obj || !json_is_object(obj))
            fail_msg("not a JSON object (%s): %.*s", jerr.text, (int)(nl - p), p);
        json_array_append_new(lines, obj);
        p = nl + 1;
    }
    return lines;
}

static const char *str_of(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void fields_come_in_the_documented_order(void **state)
{
    static const char *const order[] = {"ts",     "level", "worker",      "instance", "event",
                                        "msg_id", "type",  "duration_ms", "error",    "msg"};
    struct capture c;
    json_t *lines, *obj;
    const char *key, *ts;
    size_t i = 0;
    char *text;

    sy_log_init("glpi", "glpi-7", SY_LOG_DEBUG);
    sy_log_set_msg("4f1c-id", "chatwoot.contact_created");
    cap_start(&c);
    sy_log_write(SY_LOG_WARN, "glpi.ticket", 12.5, "HTTP 503", "ticket %d not created", 42);
    sy_log_set_msg(NULL, NULL);
    text = cap_end(&c);

    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), 1);
    obj = json_array_get(lines, 0);
    /* jansson keeps insertion order, which is the order the fields were written in. */
    void *it = json_object_iter(obj);
    for (; it; it = json_object_iter_next(obj, it), i++) {
        key = json_object_iter_key(it);
        assert_true(i < sizeof(order) / sizeof(order[0]));
        assert_string_equal(key, order[i]);
    }
    assert_int_equal(i, 10);
    assert_string_equal(str_of(obj, "level"), "warn");
    assert_string_equal(str_of(obj, "worker"), "glpi");
    assert_string_equal(str_of(obj, "instance"), "glpi-7");
    assert_string_equal(str_of(obj, "event"), "glpi.ticket");
    assert_string_equal(str_of(obj, "msg_id"), "4f1c-id");
    assert_string_equal(str_of(obj, "type"), "chatwoot.contact_created");
    assert_true(json_real_value(json_object_get(obj, "duration_ms")) == 12.5);
    assert_string_equal(str_of(obj, "error"), "HTTP 503");
    assert_string_equal(str_of(obj, "msg"), "ticket 42 not created");

    /* RFC 3339 UTC with milliseconds: 2026-01-02T03:04:05.678Z */
    ts = str_of(obj, "ts");
    assert_int_equal(strlen(ts), 24);
    for (i = 0; i < 24; i++) {
        char want = "dddd-dd-ddTdd:dd:dd.dddZ"[i];

        if (want == 'd')
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        else
            assert_int_equal(ts[i], want);
    }
    /* One object per line: the text ends with exactly one newline. */
    assert_int_equal(text[strlen(text) - 1], '\n');
    assert_ptr_equal(strchr(text, '\n') + 1, text + strlen(text));
    json_decref(lines);
    free(text);
}

static void optional_fields_are_left_out(void **state)
{
    struct capture c;
    json_t *lines, *obj;
    char *text;

    sy_log_init("sched", "s-1", SY_LOG_INFO);
    cap_start(&c);
    sy_log_info("scheduler.tick", "plain");
    sy_log_write(SY_LOG_ERROR, NULL, 0, NULL, "zero duration");
    sy_log_write(SY_LOG_ERROR, "x", -1, NULL, "%s", "");
    text = cap_end(&c);
    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), 3);
    obj = json_array_get(lines, 0);
    assert_int_equal(json_object_size(obj), 6);
    assert_null(json_object_get(obj, "msg_id"));
    assert_null(json_object_get(obj, "type"));
    assert_null(json_object_get(obj, "duration_ms"));
    assert_null(json_object_get(obj, "error"));
    assert_string_equal(str_of(obj, "level"), "info");
    obj = json_array_get(lines, 1);
    assert_string_equal(str_of(obj, "event"), "");
    assert_true(json_number_value(json_object_get(obj, "duration_ms")) == 0.0);
    assert_string_equal(str_of(json_array_get(lines, 2), "msg"), "");
    json_decref(lines);
    free(text);
}

static void lines_below_the_level_are_dropped(void **state)
{
    struct capture c;
    json_t *lines;
    char *text;

    sy_log_init("w", "i", SY_LOG_WARN);
    cap_start(&c);
    sy_log_debug("a", "debug dropped");
    sy_log_info("a", "info dropped");
    sy_log_warn("a", "warn kept");
    sy_log_error("a", "error kept");
    text = cap_end(&c);
    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), 2);
    assert_string_equal(str_of(json_array_get(lines, 0), "msg"), "warn kept");
    assert_string_equal(str_of(json_array_get(lines, 1), "level"), "error");
    json_decref(lines);
    free(text);

    sy_log_init("w", "i", SY_LOG_DEBUG);
    cap_start(&c);
    sy_log_debug("a", "debug kept");
    text = cap_end(&c);
    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), 1);
    assert_string_equal(str_of(json_array_get(lines, 0), "level"), "debug");
    json_decref(lines);
    free(text);
}

static void level_names_parse(void **state)
{
    enum sy_log_level l = SY_LOG_ERROR;

    assert_int_equal(sy_log_level_parse("debug", &l), 0);
    assert_int_equal(l, SY_LOG_DEBUG);
    assert_int_equal(sy_log_level_parse("INFO", &l), 0);
    assert_int_equal(l, SY_LOG_INFO);
    assert_int_equal(sy_log_level_parse("warn", &l), 0);
    assert_int_equal(l, SY_LOG_WARN);
    assert_int_equal(sy_log_level_parse("warning", &l), 0);
    assert_int_equal(l, SY_LOG_WARN);
    assert_int_equal(sy_log_level_parse("error", &l), 0);
    assert_int_equal(l, SY_LOG_ERROR);
    assert_int_equal(sy_log_level_parse("verbose", &l), -SY_EINVAL);
    assert_int_equal(sy_log_level_parse("", &l), -SY_EINVAL);
    assert_int_equal(sy_log_level_parse(NULL, &l), -SY_EINVAL);
}

static void *log_from_other_thread(void *arg)
{
    (void)arg;
    sy_log_info("t.other", "from another thread");
    return NULL;
}

static void message_id_is_per_thread_and_clears(void **state)
{
    struct capture c;
    pthread_t t;
    json_t *lines;
    char *text;

    sy_log_init("w", "i", SY_LOG_INFO);
    cap_start(&c);
    sy_log_set_msg("id-1", "grievance.submitted");
    sy_log_info("t.main", "while handling");
    assert_int_equal(pthread_create(&t, NULL, log_from_other_thread, NULL), 0);
    pthread_join(t, NULL);
    sy_log_set_msg(NULL, NULL);
    sy_log_info("t.main", "after");
    sy_log_set_msg("id-2", NULL);
    sy_log_info("t.main", "id only");
    sy_log_set_msg(NULL, NULL);
    text = cap_end(&c);

    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), 4);
    assert_string_equal(str_of(json_array_get(lines, 0), "msg_id"), "id-1");
    assert_string_equal(str_of(json_array_get(lines, 0), "type"), "grievance.submitted");
    assert_null(json_object_get(json_array_get(lines, 1), "msg_id"));
    assert_string_equal(str_of(json_array_get(lines, 1), "msg"), "from another thread");
    assert_null(json_object_get(json_array_get(lines, 2), "msg_id"));
    assert_null(json_object_get(json_array_get(lines, 2), "type"));
    assert_string_equal(str_of(json_array_get(lines, 3), "msg_id"), "id-2");
    assert_null(json_object_get(json_array_get(lines, 3), "type"));
    json_decref(lines);
    free(text);
}

static void control_characters_and_invalid_utf8_are_escaped(void **state)
{
    struct capture c;
    json_t *lines, *obj;
    char *text;

    sy_log_init("w\"orker", "i\n1", SY_LOG_INFO);
    cap_start(&c);
    sy_log_info("esc", "a\x01"
                       "b\tc\nd\"e\\f\x7fg");
    /* Bad bytes: a lone 0xff, a cut 3-byte sequence, an overlong '/', a surrogate. */
    sy_log_info("utf8",
                "x\xffy \xe2\x82 z \xc0\xaf w \xed\xa0\x80 ok \xe2\x82\xac \xf0\x9f\x98\x80");
    sy_log_write(SY_LOG_ERROR, "e\x02vt", -1, "err\x1f\xfe", "m");
    text = cap_end(&c);

    /* Raw text: control characters as \u00XX, no raw control byte anywhere but the newline. */
    assert_non_null(strstr(text, "a\\u0001b\\u0009c\\u000ad\\\"e\\\\f\\u007fg"));
    for (const char *p = text; *p; p++) {
        if (*p != '\n')
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    lines = parse_lines(text); /* jansson refuses invalid UTF-8 */
    assert_int_equal(json_array_size(lines), 3);
    obj = json_array_get(lines, 0);
    assert_string_equal(str_of(obj, "worker"), "w\"orker");
    assert_string_equal(str_of(obj, "instance"), "i\n1");
    assert_string_equal(str_of(obj, "msg"), "a\x01"
                                            "b\tc\nd\"e\\f\x7fg");
    obj = json_array_get(lines, 1);
    assert_string_equal(str_of(obj, "msg"),
                        "x\xef\xbf\xbdy \xef\xbf\xbd\xef\xbf\xbd z \xef\xbf\xbd\xef\xbf\xbd w "
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok \xe2\x82\xac \xf0\x9f\x98\x80");
    obj = json_array_get(lines, 2);
    assert_string_equal(str_of(obj, "event"), "e\x02vt");
    assert_string_equal(str_of(obj, "error"), "err\x1f\xef\xbf\xbd");
    json_decref(lines);
    free(text);
}

static void long_lines_are_cut_and_stay_valid_json(void **state)
{
    size_t n = 40 * 1024;
    char *big = malloc(n + 1);
    struct capture c;
    json_t *lines;
    const char *msg;
    char *text;

    assert_non_null(big);
    /* Quotes expand when escaped, so the cut lands inside escapes too. */
    for (size_t i = 0; i < n; i++)
        big[i] = i % 3 == 0 ? '"' : 'x';
    big[n] = '\0';
    sy_log_init("w", "i", SY_LOG_INFO);
    cap_start(&c);
    sy_log_write(SY_LOG_INFO, "big", -1, big, "%s", big);
    sy_log_info("big", "next line");
    text = cap_end(&c);
    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), 2);
    assert_true(strchr(text, '\n') - text + 1 <= 16 * 1024);
    msg = str_of(json_array_get(lines, 0), "msg");
    assert_true(strlen(msg) > 1000);
    assert_memory_equal(msg, big, strlen(msg));
    assert_true(strlen(str_of(json_array_get(lines, 0), "error")) <= 4096);
    assert_string_equal(str_of(json_array_get(lines, 1), "msg"), "next line");
    json_decref(lines);
    free(text);
    free(big);
}

static void redact(const char *in, const char *want)
{
    char out[1024];

    sy_log_redact(in, out, sizeof(out));
    if (strcmp(out, want) != 0)
        fail_msg("redact(\"%s\")\n  got  \"%s\"\n  want \"%s\"", in, out, want);
}

static void url_passwords_are_redacted(void **state)
{
    redact("connect amqp://guest:guest@127.0.0.1:5672/ failed",
           "connect amqp://guest:[redacted]@127.0.0.1:5672/ failed");
    redact("redis://:s3cr3t@cache:6379/0", "redis://:[redacted]@cache:6379/0");
    redact("postgresql://app:p%40ss@db/x?sslmode=require and mysql://root:pw@h/",
           "postgresql://app:[redacted]@db/x?sslmode=require and mysql://root:[redacted]@h/");
    redact("\"url\":\"amqp://u:p@h\"", "\"url\":\"amqp://u:[redacted]@h\"");
    /* A password holding '@' unencoded: the last '@' of the authority ends it. */
    redact("amqp://u:a@b@host/v", "amqp://u:[redacted]@host/v");
    /* No password, or no user information: unchanged. */
    redact("amqp://guest@127.0.0.1:5672/", "amqp://guest@127.0.0.1:5672/");
    redact("http://host:8080/path?mail=a@b", "http://host:8080/path?mail=a@b");
    redact("see https://example.org/a:b@c", "see https://example.org/a:b@c");
}

static void password_style_values_are_redacted(void **state)
{
    redact("token=abc123 next", "token=[redacted] next");
    redact("login password=hunter2&user=x", "login password=[redacted]&user=x");
    redact("PASSWD=x,y", "PASSWD=[redacted],y");
    redact("pwd = spaced out", "pwd = [redacted] out");
    redact("client_secret=zz", "client_secret=[redacted]");
    redact("?access_token=t0k&x=1", "?access_token=[redacted]&x=1");
    redact("api_key: k1 apikey=k2", "api_key: [redacted] apikey=[redacted]");
    redact("{\"token\":\"a b c\",\"user\":\"bob\"}", "{\"token\":\"[redacted]\",\"user\":\"bob\"}");
    redact("{\"password\": \"p\\\"q\"}", "{\"password\": \"[redacted]\"}");
    redact("Secret='quoted value' rest", "Secret='[redacted]' rest");
    redact("Authorization: Bearer eyJhbGciOi.x.y then", "Authorization: Bearer [redacted] then");
    /* The gateway's API keys, in either header. */
    redact("Authorization: Api-Key sy_0123456789ab_c2VjcmV0 then",
           "Authorization: Api-Key [redacted] then");
    redact("X-API-Key: sy_0123456789ab_c2VjcmV0 then", "X-API-Key: [redacted] then");
    redact("authorization: Basic dXNlcjpwYXNz", "authorization: Basic [redacted]");
    redact("authorization=rawkey", "authorization=[redacted]");
    /* Not a key/value: left alone. */
    redact("tokens: 5, password reset sent", "tokens: 5, password reset sent");
    redact("token=", "token=");
    redact("", "");
}

static void registered_secrets_are_redacted_everywhere(void **state)
{
    struct capture c;
    json_t *lines, *obj;
    char *text, out[64];

    sy_log_add_secret("Zq9-very-secret");
    sy_log_add_secret("Zq9-very-secret-but-longer");
    sy_log_add_secret("abc"); /* too short: would redact ordinary words */
    sy_log_add_secret(NULL);
    redact("key is Zq9-very-secret.", "key is [redacted].");
    redact("Zq9-very-secret-but-longer!", "[redacted]!");
    redact("abc is fine", "abc is fine");
    /* A line cut in the middle of a secret does not show its beginning. */
    redact("tail Zq9-very-se", "tail [redacted]");
    /* The output is bounded by its buffer and always terminated. */
    sy_log_redact("0123456789 Zq9-very-secret 0123456789", out, 16);
    assert_string_equal(out, "0123456789 [red");

    sy_log_init("w", "i", SY_LOG_INFO);
    cap_start(&c);
    sy_log_write(SY_LOG_ERROR, "db.connect", -1, "auth failed for Zq9-very-secret",
                 "using Zq9-very-secret and postgresql://u:pgpass@h/db, token=t0ken");
    text = cap_end(&c);
    assert_null(strstr(text, "Zq9-very-secret"));
    assert_null(strstr(text, "pgpass"));
    assert_null(strstr(text, "t0ken"));
    lines = parse_lines(text);
    obj = json_array_get(lines, 0);
    assert_string_equal(str_of(obj, "error"), "auth failed for [redacted]");
    assert_string_equal(str_of(obj, "msg"),
                        "using [redacted] and postgresql://u:[redacted]@h/db, token=[redacted]");
    json_decref(lines);
    free(text);
}

#define THREADS    8
#define PER_THREAD 300

static void *log_many(void *arg)
{
    char payload[6000];
    int id = (int)(intptr_t)arg;

    /* Longer than PIPE_BUF, so only whole-line writes keep lines apart. */
    memset(payload, 'a' + id, sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    for (int i = 0; i < PER_THREAD; i++)
        sy_log_info("t.many", "%d %d %s", id, i, payload);
    return NULL;
}

static void lines_from_threads_never_interleave(void **state)
{
    pthread_t t[THREADS];
    int count[THREADS] = {0};
    struct capture c;
    json_t *lines;
    char *text;

    sy_log_init("w", "i", SY_LOG_INFO);
    cap_start(&c);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    text = cap_end(&c);
    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), THREADS * PER_THREAD);
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const char *msg = str_of(json_array_get(lines, i), "msg");
        int id = atoi(msg), seq = atoi(strchr(msg, ' ') + 1);

        assert_true(id >= 0 && id < THREADS);
        /* Each thread's lines arrive whole and in its own order. */
        assert_int_equal(seq, count[id]);
        count[id]++;
        assert_int_equal(strspn(strrchr(msg, ' ') + 1, (char[]){(char)('a' + id), 0}), 5999);
    }
    json_decref(lines);
    free(text);
}

static void at_most_64_secrets_are_kept(void **state)
{
    char secret[32], in[64], out[64];
    struct capture c;
    json_t *lines;
    char *text;
    int kept = 0;

    sy_log_init("w", "i", SY_LOG_INFO);
    cap_start(&c);
    for (int i = 0; i < 80; i++) {
        snprintf(secret, sizeof(secret), "many-secret-%03d", i);
        sy_log_add_secret(secret);
        sy_log_add_secret(secret); /* again: not counted twice */
    }
    text = cap_end(&c);
    for (int i = 0; i < 80; i++) {
        snprintf(in, sizeof(in), "many-secret-%03d", i);
        sy_log_redact(in, out, sizeof(out));
        kept += strcmp(out, "[redacted]") == 0;
    }
    /* Two were registered by the earlier test; the rest of the 64 slots went to these. */
    assert_int_equal(kept, 62);
    /* Running out is said once, as a warning, without the secret. */
    lines = parse_lines(text);
    assert_int_equal(json_array_size(lines), 1);
    assert_string_equal(str_of(json_array_get(lines, 0), "event"), "log.secrets_full");
    assert_null(strstr(text, "many-secret"));
    json_decref(lines);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_come_in_the_documented_order),
        cmocka_unit_test(optional_fields_are_left_out),
        cmocka_unit_test(lines_below_the_level_are_dropped),
        cmocka_unit_test(level_names_parse),
        cmocka_unit_test(message_id_is_per_thread_and_clears),
        cmocka_unit_test(control_characters_and_invalid_utf8_are_escaped),
        cmocka_unit_test(long_lines_are_cut_and_stay_valid_json),
        cmocka_unit_test(url_passwords_are_redacted),
        cmocka_unit_test(password_style_values_are_redacted),
        cmocka_unit_test(registered_secrets_are_redacted_everywhere),
        cmocka_unit_test(lines_from_threads_never_interleave),
        /* Last: it fills the process-wide secret table. */
        cmocka_unit_test(at_most_64_secrets_are_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
