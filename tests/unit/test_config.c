/* test_config.c - settings tables: every type, bounds, defaults, files, and secrets kept out
 * of error text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sy/config.h"
#include "sy/err.h"
#include "sy/log.h"

struct settings {
    char *name;
    char *token;
    char *amqp_url;
    long long prefetch;
    long long offset;
    bool verbose;
    long long timeout_ms;
    long long any_ms;
};

static const struct sy_conf_key keys[] = {
    {"SYT_NAME", SY_CONF_STR, "fleet", 0, 0, offsetof(struct settings, name), 0, "a name"},
    {"SYT_TOKEN", SY_CONF_SECRET, NULL, 0, 0, offsetof(struct settings, token), 0, "API token"},
    {"SYT_AMQP_URL", SY_CONF_URL, NULL, 0, 0, offsetof(struct settings, amqp_url), SY_CONF_REQUIRED,
     "broker"},
    {"SYT_PREFETCH", SY_CONF_INT, "50", 1, 2000, offsetof(struct settings, prefetch), 0, "window"},
    {"SYT_OFFSET", SY_CONF_INT, NULL, 0, 0, offsetof(struct settings, offset), 0, "unbounded"},
    {"SYT_VERBOSE", SY_CONF_BOOL, "off", 0, 0, offsetof(struct settings, verbose), 0, "chatty"},
    {"SYT_TIMEOUT", SY_CONF_MS, "5s", 100, 60000, offsetof(struct settings, timeout_ms), 0,
     "timeout"},
    {"SYT_ANY_MS", SY_CONF_MS, NULL, 0, 0, offsetof(struct settings, any_ms), 0, "unbounded"},
    {NULL, 0, NULL, 0, 0, 0, 0, NULL},
};

static const char *const all_vars[] = {"SYT_NAME",     "SYT_TOKEN",         "SYT_TOKEN_FILE",
                                       "SYT_AMQP_URL", "SYT_AMQP_URL_FILE", "SYT_PREFETCH",
                                       "SYT_OFFSET",   "SYT_VERBOSE",       "SYT_TIMEOUT",
                                       "SYT_ANY_MS",   "SYT_NAME_FILE"};

static int clean_env(void **state)
{
    for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
        unsetenv(all_vars[i]);
    setenv("SYT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", 1);
    return 0;
}

/* Loads the table and returns the result code; err holds the message. */
static int load(struct settings *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    err[0] = '\0';
    return sy_conf_load(keys, s, err, errlen);
}

/* Expects a failure whose message is exactly `want`. */
static void expect_error(const char *want)
{
    struct settings s;
    char err[512];

    assert_int_equal(load(&s, err, sizeof(err)), -SY_ECONFIG);
    assert_string_equal(err, want);
    /* Nothing is left allocated, and every string field is cleared. */
    assert_null(s.name);
    assert_null(s.token);
    assert_null(s.amqp_url);
}

static void redacts(const char *text)
{
    char out[256];

    sy_log_redact(text, out, sizeof(out));
    if (strcmp(out, "[redacted]") != 0)
        fail_msg("'%s' is not redacted in logs: '%s'", text, out);
}

static char *temp_file(const char *content, size_t len)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    char *path = malloc(512);
    int fd;

    assert_non_null(path);
    snprintf(path, 512, "%s/test_config_XXXXXX", dir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static void defaults_fill_what_is_unset(void **state)
{
    struct settings s;
    char err[256];

    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.name, "fleet");
    assert_null(s.token);
    assert_string_equal(s.amqp_url, "amqp://guest:guest@127.0.0.1:5672/");
    assert_int_equal(s.prefetch, 50);
    assert_int_equal(s.offset, 0);
    assert_false(s.verbose);
    assert_int_equal(s.timeout_ms, 5000);
    assert_int_equal(s.any_ms, 0);
    sy_conf_free(keys, &s);
    assert_null(s.name);
    assert_null(s.amqp_url);
    /* Freeing twice, or a struct never loaded, is harmless. */
    sy_conf_free(keys, &s);
    memset(&s, 0, sizeof(s));
    sy_conf_free(keys, &s);

    /* An empty variable counts as unset. */
    setenv("SYT_PREFETCH", "", 1);
    setenv("SYT_NAME", "", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_int_equal(s.prefetch, 50);
    assert_string_equal(s.name, "fleet");
    sy_conf_free(keys, &s);
}

static void every_type_reads_from_the_environment(void **state)
{
    struct settings s;
    char err[256];

    setenv("SYT_NAME", "grievance worker", 1);
    setenv("SYT_TOKEN", "tok-abcdef-123", 1);
    setenv("SYT_AMQP_URL", "amqps://svc@[::1]:5671/vhost", 1);
    setenv("SYT_PREFETCH", "2000", 1);
    setenv("SYT_OFFSET", "-9223372036854775808", 1);
    setenv("SYT_VERBOSE", "YES", 1);
    setenv("SYT_TIMEOUT", "1m", 1);
    setenv("SYT_ANY_MS", "1500", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.name, "grievance worker");
    assert_string_equal(s.token, "tok-abcdef-123");
    assert_string_equal(s.amqp_url, "amqps://svc@[::1]:5671/vhost");
    assert_int_equal(s.prefetch, 2000);
    assert_true(s.offset == LLONG_MIN);
    assert_true(s.verbose);
    assert_int_equal(s.timeout_ms, 60000);
    assert_int_equal(s.any_ms, 1500);
    sy_conf_free(keys, &s);
}

static void integers_are_decimal_whole_and_bounded(void **state)
{
    static const char *const bad[] = {
        "abc", "0", "2001", "12x", " 12", "12 ", "0x10", "1e3", "+", "-5", "99999999999999999999"};
    struct settings s;
    char err[256];

    setenv("SYT_PREFETCH", "1", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_int_equal(s.prefetch, 1);
    sy_conf_free(keys, &s);
    setenv("SYT_PREFETCH", "+0300", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_int_equal(s.prefetch, 300);
    sy_conf_free(keys, &s);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[256];

        setenv("SYT_PREFETCH", bad[i], 1);
        snprintf(want, sizeof(want), "SYT_PREFETCH: expected an integer from 1 to 2000, got '%s'",
                 bad[i]);
        expect_error(want);
    }
    /* Long bad text is echoed cut to 64 characters. */
    char longtext[200];
    memset(longtext, '7', sizeof(longtext) - 2);
    longtext[sizeof(longtext) - 2] = 'x';
    longtext[sizeof(longtext) - 1] = '\0';
    setenv("SYT_PREFETCH", longtext, 1);
    expect_error("SYT_PREFETCH: expected an integer from 1 to 2000, got "
                 "'7777777777777777777777777777777777777777777777777777777777777777...'");

    unsetenv("SYT_PREFETCH");
    setenv("SYT_OFFSET", "9223372036854775808", 1);
    expect_error("SYT_OFFSET: expected an integer, got '9223372036854775808'");
}

static void booleans_accept_the_usual_words(void **state)
{
    static const char *const yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    static const char *const no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
    struct settings s;
    char err[256];

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        setenv("SYT_VERBOSE", yes[i], 1);
        assert_int_equal(load(&s, err, sizeof(err)), 0);
        assert_true(s.verbose);
        sy_conf_free(keys, &s);
        setenv("SYT_VERBOSE", no[i], 1);
        assert_int_equal(load(&s, err, sizeof(err)), 0);
        assert_false(s.verbose);
        sy_conf_free(keys, &s);
    }
    setenv("SYT_VERBOSE", "maybe", 1);
    expect_error("SYT_VERBOSE: expected a boolean (true/false, yes/no, on/off, 1/0), got 'maybe'");
    setenv("SYT_VERBOSE", "2", 1);
    expect_error("SYT_VERBOSE: expected a boolean (true/false, yes/no, on/off, 1/0), got '2'");
}

static void durations_take_units_and_bounds(void **state)
{
    static const struct {
        const char *text;
        long long ms;
    } good[] = {{"0", 0},        {"250", 250},     {"250ms", 250}, {"5s", 5000}, {"2m", 120000},
                {"1h", 3600000}, {"1d", 86400000}, {"5S", 5000},   {"10MS", 10}};
    static const char *const bad[] = {"",
                                      "5x",
                                      "-1s",
                                      "1.5s",
                                      " 5s",
                                      "5s ",
                                      "s",
                                      "5 s",
                                      "ms",
                                      "5sec",
                                      "99999999999999999999",
                                      "9223372036854775807s"};
    struct settings s;
    char err[256];
    long long v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = -1;
        assert_int_equal(sy_conf_parse_ms(good[i].text, &v), 0);
        assert_int_equal(v, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sy_conf_parse_ms(bad[i], &v) != -SY_EINVAL)
            fail_msg("'%s' was read as %lld ms", bad[i], v);
    }
    assert_int_equal(sy_conf_parse_ms("9223372036854775807", &v), 0);
    assert_true(v == LLONG_MAX);
    assert_int_equal(sy_conf_parse_ms(NULL, &v), -SY_EINVAL);

    setenv("SYT_TIMEOUT", "100ms", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_int_equal(s.timeout_ms, 100);
    sy_conf_free(keys, &s);
    setenv("SYT_TIMEOUT", "60s", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_int_equal(s.timeout_ms, 60000);
    sy_conf_free(keys, &s);

    setenv("SYT_TIMEOUT", "2m", 1);
    expect_error("SYT_TIMEOUT: expected a duration from 100ms to 1m (250ms, 5s, 2m, 1h, 1d or bare "
                 "milliseconds), got '2m'");
    setenv("SYT_TIMEOUT", "99", 1);
    expect_error("SYT_TIMEOUT: expected a duration from 100ms to 1m (250ms, 5s, 2m, 1h, 1d or bare "
                 "milliseconds), got '99'");
    setenv("SYT_TIMEOUT", "soon", 1);
    expect_error("SYT_TIMEOUT: expected a duration from 100ms to 1m (250ms, 5s, 2m, 1h, 1d or bare "
                 "milliseconds), got 'soon'");
    unsetenv("SYT_TIMEOUT");
    setenv("SYT_ANY_MS", "-5", 1);
    expect_error("SYT_ANY_MS: expected a duration of at least 0ms (250ms, 5s, 2m, 1h, 1d or bare "
                 "milliseconds), got '-5'");
}

static void urls_need_a_scheme_and_a_host_and_are_never_echoed(void **state)
{
    static const char *const good[] = {"amqp://guest:guest@127.0.0.1:5672/",
                                       "redis://127.0.0.1:6379/0",
                                       "redis://:pw@cache",
                                       "postgresql://postgres@127.0.0.1:5432/switchyard",
                                       "mysql://root@127.0.0.1:3306/",
                                       "mqtt://broker",
                                       "http://[fe80::1]:8080/x?y=z#f"};
    static const char *const bad[] = {"127.0.0.1:5672",
                                      "amqp//user:topsecret1@host",
                                      "://user:topsecret1@host",
                                      "amqp://user:topsecret1@",
                                      "amqp://user:topsecret1@:5672/",
                                      "amqp://user:topsecret1@host:port/",
                                      "amqp://user:topsecret1@host:99999/",
                                      "amqp://user:topsecret1@host:/",
                                      "am qp://user:topsecret1@host/",
                                      "amqp://user:top secret1@host/",
                                      "postgresql:///db",
                                      "http://[]/"};
    struct settings s;
    char err[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        setenv("SYT_AMQP_URL", good[i], 1);
        if (load(&s, err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", good[i], err);
        assert_string_equal(s.amqp_url, good[i]);
        sy_conf_free(keys, &s);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("SYT_AMQP_URL", bad[i], 1);
        expect_error("SYT_AMQP_URL: invalid URL (expected "
                     "scheme://[user[:password]@]host[:port][/path])");
    }
}

static void url_passwords_are_registered_for_redaction(void **state)
{
    struct settings s;
    char err[256], out[256];

    setenv("SYT_AMQP_URL", "amqp://svc:Url-Pass%2Fword@broker:5672/", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    sy_conf_free(keys, &s);
    /* Both as written in the URL and decoded, as a client library may print it. */
    redacts("Url-Pass%2Fword");
    redacts("Url-Pass/word");
    /* The user name is not a secret. */
    sy_log_redact("svc", out, sizeof(out));
    assert_string_equal(out, "svc");
}

static void secrets_are_registered_and_read_from_files(void **state)
{
    struct settings s;
    char err[512], want[700];
    char *path;

    setenv("SYT_TOKEN", "env-token-value", 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.token, "env-token-value");
    sy_conf_free(keys, &s);
    redacts("env-token-value");
    unsetenv("SYT_TOKEN");

    /* One trailing newline is cut, LF or CRLF; anything before it is kept. */
    path = temp_file("file-token-1\n", 13);
    setenv("SYT_TOKEN_FILE", path, 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.token, "file-token-1");
    sy_conf_free(keys, &s);
    redacts("file-token-1");
    unlink(path);
    free(path);

    path = temp_file("file-token-2\r\n", 14);
    setenv("SYT_TOKEN_FILE", path, 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.token, "file-token-2");
    sy_conf_free(keys, &s);
    unlink(path);
    free(path);

    path = temp_file("two\nlines\n\n", 11);
    setenv("SYT_TOKEN_FILE", path, 1);
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.token, "two\nlines\n");
    sy_conf_free(keys, &s);
    unlink(path);
    free(path);

    /* A URL from a file. */
    unsetenv("SYT_TOKEN_FILE");
    path = temp_file("redis://:file-url-pass@cache:6379/0\n", 36);
    setenv("SYT_AMQP_URL_FILE", path, 1);
    unsetenv("SYT_AMQP_URL");
    assert_int_equal(load(&s, err, sizeof(err)), 0);
    assert_string_equal(s.amqp_url, "redis://:file-url-pass@cache:6379/0");
    sy_conf_free(keys, &s);
    redacts("file-url-pass");
    unlink(path);
    free(path);

    /* A file URL that is not one is not echoed either. */
    path = temp_file("not a url with file-secret-9\n", 29);
    setenv("SYT_AMQP_URL_FILE", path, 1);
    expect_error("SYT_AMQP_URL_FILE: invalid URL (expected "
                 "scheme://[user[:password]@]host[:port][/path])");
    unlink(path);
    free(path);

    /* Missing file: the path is named (it is not secret), with the reason. */
    setenv("SYT_AMQP_URL_FILE", "no-such-dir/none", 1);
    expect_error("SYT_AMQP_URL_FILE: cannot read 'no-such-dir/none': No such file or directory");
    unsetenv("SYT_AMQP_URL_FILE");
    setenv("SYT_AMQP_URL", "amqp://h/", 1);

    /* A file larger than 64 KiB is refused. */
    char *big = malloc(65 * 1024);
    assert_non_null(big);
    memset(big, 'k', 65 * 1024);
    path = temp_file(big, 65 * 1024);
    setenv("SYT_TOKEN_FILE", path, 1);
    snprintf(want, sizeof(want), "SYT_TOKEN_FILE: file '%s' is larger than 65536 bytes", path);
    expect_error(want);
    unlink(path);
    free(path);
    free(big);
    unsetenv("SYT_TOKEN_FILE");
}

static void name_and_name_file_together_are_refused(void **state)
{
    char *path = temp_file("from-file-secret", 16);

    setenv("SYT_TOKEN", "from-env-secret", 1);
    setenv("SYT_TOKEN_FILE", path, 1);
    expect_error("SYT_TOKEN and SYT_TOKEN_FILE are both set: use one of them");
    unsetenv("SYT_TOKEN");
    unsetenv("SYT_TOKEN_FILE");
    unlink(path);
    free(path);
}

static void required_and_unset_is_an_error(void **state)
{
    unsetenv("SYT_AMQP_URL");
    expect_error("SYT_AMQP_URL: required but not set");
    setenv("SYT_AMQP_URL", "", 1);
    expect_error("SYT_AMQP_URL: required but not set");
}

static void an_error_frees_what_was_loaded(void **state)
{
    /* SYT_NAME and SYT_TOKEN load before SYT_PREFETCH fails: the sanitizer's leak check and
     * expect_error's NULL checks prove they were freed. */
    setenv("SYT_NAME", "loaded-first", 1);
    setenv("SYT_TOKEN", "loaded-token", 1);
    setenv("SYT_PREFETCH", "nope", 1);
    expect_error("SYT_PREFETCH: expected an integer from 1 to 2000, got 'nope'");
}

struct one_int {
    long long v;
};

struct one_str {
    char *v;
};

static void bad_defaults_are_reported_by_name(void **state)
{
    const struct sy_conf_key bad_int[] = {
        {"SYT_DEF", SY_CONF_INT, "lots", 1, 10, offsetof(struct one_int, v), 0, NULL},
        {NULL, 0, NULL, 0, 0, 0, 0, NULL}};
    const struct sy_conf_key bad_url[] = {{"SYT_DEF", SY_CONF_URL, "nohost-default-secret", 0, 0,
                                           offsetof(struct one_str, v), 0, NULL},
                                          {NULL, 0, NULL, 0, 0, 0, 0, NULL}};
    const struct sy_conf_key out_of_range[] = {
        {"SYT_DEF", SY_CONF_MS, "2h", 0, 60000, offsetof(struct one_int, v), 0, NULL},
        {NULL, 0, NULL, 0, 0, 0, 0, NULL}};
    struct one_int i = {0};
    struct one_str s = {0};
    char err[256];

    unsetenv("SYT_DEF");
    assert_int_equal(sy_conf_load(bad_int, &i, err, sizeof(err)), -SY_ECONFIG);
    assert_string_equal(err, "SYT_DEF (default): expected an integer from 1 to 10, got 'lots'");
    assert_int_equal(sy_conf_load(bad_url, &s, err, sizeof(err)), -SY_ECONFIG);
    assert_null(strstr(err, "nohost"));
    assert_non_null(strstr(err, "SYT_DEF (default): invalid URL"));
    assert_null(s.v);
    assert_int_equal(sy_conf_load(out_of_range, &i, err, sizeof(err)), -SY_ECONFIG);
    assert_non_null(strstr(err, "SYT_DEF (default): expected a duration from 0ms to 1m"));
}

static void secrets_never_appear_in_error_text(void **state)
{
    const struct sy_conf_key secret_row[] = {{"SYT_DEF", SY_CONF_SECRET, NULL, 0, 0,
                                              offsetof(struct one_str, v), SY_CONF_REQUIRED, NULL},
                                             {NULL, 0, NULL, 0, 0, 0, 0, NULL}};
    struct one_str s = {0};
    char err[256];
    char *path = temp_file("\n", 1);

    /* An empty secret file for a required secret: named, without content. */
    unsetenv("SYT_DEF");
    setenv("SYT_DEF_FILE", path, 1);
    assert_int_equal(sy_conf_load(secret_row, &s, err, sizeof(err)), -SY_ECONFIG);
    assert_non_null(strstr(err, "SYT_DEF_FILE: file '"));
    assert_non_null(strstr(err, "' is empty"));
    unlink(path);
    free(path);

    setenv("SYT_DEF", "pa55-in-env", 1);
    path = temp_file("pa55-in-file", 12);
    setenv("SYT_DEF_FILE", path, 1);
    assert_int_equal(sy_conf_load(secret_row, &s, err, sizeof(err)), -SY_ECONFIG);
    assert_null(strstr(err, "pa55"));
    unsetenv("SYT_DEF");
    unsetenv("SYT_DEF_FILE");
    unlink(path);
    free(path);

    /* Every URL failure above was checked for the exact text; here the password too. */
    setenv("SYT_AMQP_URL", "amqp://user:hunter2-xyz@host:bad/", 1);
    struct settings st;
    assert_int_equal(load(&st, err, sizeof(err)), -SY_ECONFIG);
    assert_null(strstr(err, "hunter2"));
}

static void read_file_bounds_its_size(void **state)
{
    char *path = temp_file("12345678", 8), *text = NULL;
    size_t len = 0;

    assert_int_equal(sy_read_file(path, 8, &text, &len), 0);
    assert_int_equal(len, 8);
    assert_string_equal(text, "12345678");
    free(text);
    text = NULL;
    assert_int_equal(sy_read_file(path, 7, &text, &len), -SY_ETOOBIG);
    assert_null(text);
    unlink(path);
    free(path);

    path = temp_file("", 0);
    assert_int_equal(sy_read_file(path, 8, &text, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    unlink(path);
    free(path);

    assert_int_equal(sy_read_file("no-such-file-here", 8, &text, &len), -SY_EIO);
    assert_null(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_fill_what_is_unset, clean_env),
        cmocka_unit_test_setup(every_type_reads_from_the_environment, clean_env),
        cmocka_unit_test_setup(integers_are_decimal_whole_and_bounded, clean_env),
        cmocka_unit_test_setup(booleans_accept_the_usual_words, clean_env),
        cmocka_unit_test_setup(durations_take_units_and_bounds, clean_env),
        cmocka_unit_test_setup(urls_need_a_scheme_and_a_host_and_are_never_echoed, clean_env),
        cmocka_unit_test_setup(url_passwords_are_registered_for_redaction, clean_env),
        cmocka_unit_test_setup(secrets_are_registered_and_read_from_files, clean_env),
        cmocka_unit_test_setup(name_and_name_file_together_are_refused, clean_env),
        cmocka_unit_test_setup(required_and_unset_is_an_error, clean_env),
        cmocka_unit_test_setup(an_error_frees_what_was_loaded, clean_env),
        cmocka_unit_test_setup(bad_defaults_are_reported_by_name, clean_env),
        cmocka_unit_test_setup(secrets_never_appear_in_error_text, clean_env),
        cmocka_unit_test_setup(read_file_bounds_its_size, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
