/* test_syctl_args.c - syctl's pieces that need no service: option parsing, number and input
 * limits, exit-code mapping, base64, and reading why a message was dead-lettered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* syctl is an executable, not a library: its service-free sources are compiled in here. */
#include "../../tools/syctl/args.c"
#include "../../tools/syctl/dead_info.c"

enum { O_ID, O_LIMIT, O_ALL };
static const struct syctl_optspec specs[] = {
    [O_ID] = {"id", true},
    [O_LIMIT] = {"limit", true},
    [O_ALL] = {"all", false},
    {NULL, false},
};

static int parse(struct syctl_args *a, char *err, size_t errlen, int argc, ...)
{
    char *argv[16];
    va_list ap;

    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return syctl_args_parse(argc, argv, specs, a, err, errlen);
}

static void test_args_positionals_and_options_in_any_order(void **state)
{
    struct syctl_args a;
    char err[128];

    assert_int_equal(parse(&a, err, sizeof(err), 5, "list", "--limit", "5", "probe", "--all"), 0);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "list");
    assert_string_equal(a.pos[1], "probe");
    assert_true(a.set[O_LIMIT]);
    assert_string_equal(a.val[O_LIMIT], "5");
    assert_true(a.set[O_ALL]);
    assert_false(a.set[O_ID]);
    assert_null(a.val[O_ID]);
    assert_false(a.help);
}

static void test_args_equals_form_and_empty_value(void **state)
{
    struct syctl_args a;
    char err[128];

    assert_int_equal(parse(&a, err, sizeof(err), 2, "--id=abc=def", "--limit="), 0);
    assert_string_equal(a.val[O_ID], "abc=def");
    assert_string_equal(a.val[O_LIMIT], "");
}

static void test_args_dash_is_stdin_and_double_dash_ends_options(void **state)
{
    struct syctl_args a;
    char err[128];

    assert_int_equal(parse(&a, err, sizeof(err), 4, "-", "--", "--all", "-h"), 0);
    assert_int_equal(a.npos, 3);
    assert_string_equal(a.pos[0], "-");
    assert_string_equal(a.pos[1], "--all");
    assert_string_equal(a.pos[2], "-h");
    assert_false(a.set[O_ALL]);
    assert_false(a.help);
}

static void test_args_help_anywhere(void **state)
{
    struct syctl_args a;
    char err[128];

    assert_int_equal(parse(&a, err, sizeof(err), 2, "show", "-h"), 0);
    assert_true(a.help);
    assert_int_equal(parse(&a, err, sizeof(err), 1, "--help"), 0);
    assert_true(a.help);
}

static void test_args_errors_name_the_option(void **state)
{
    struct syctl_args a;
    char err[128];

    assert_int_equal(parse(&a, err, sizeof(err), 1, "--nope"), -SY_EINVAL);
    assert_string_equal(err, "unknown option '--nope'");
    assert_int_equal(parse(&a, err, sizeof(err), 1, "--nope=3"), -SY_EINVAL);
    assert_string_equal(err, "unknown option '--nope'");
    assert_int_equal(parse(&a, err, sizeof(err), 1, "-x"), -SY_EINVAL);
    assert_string_equal(err, "unknown option '-x'");
    assert_int_equal(parse(&a, err, sizeof(err), 2, "probe", "--id"), -SY_EINVAL);
    assert_string_equal(err, "option '--id' needs a value");
    assert_int_equal(parse(&a, err, sizeof(err), 1, "--all=yes"), -SY_EINVAL);
    assert_string_equal(err, "option '--all' takes no value");
    /* A prefix of an option is not that option. */
    assert_int_equal(parse(&a, err, sizeof(err), 2, "--li", "3"), -SY_EINVAL);
}

static void test_args_too_many_positionals(void **state)
{
    struct syctl_args a;
    char err[128];

    assert_int_equal(parse(&a, err, sizeof(err), 9, "1", "2", "3", "4", "5", "6", "7", "8", "9"),
                     -SY_EINVAL);
    assert_string_equal(err, "too many arguments");
}

static void test_parse_uint_bounds(void **state)
{
    unsigned long long v = 7;

    assert_int_equal(syctl_parse_uint("42", 1, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(syctl_parse_uint("100", 1, 100, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(syctl_parse_uint("101", 1, 100, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint("0", 1, 100, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint("9", 1, 5, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint("", 0, 100, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint("-1", 0, 100, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint("1x", 0, 100, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint(" 1", 0, 100, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint("99999999999999999999999", 0, ~0ull, &v), -SY_EINVAL);
    assert_int_equal(syctl_parse_uint("18446744073709551615", 0, ~0ull, &v), 0);
    assert_true(v == ~0ull);
}

static void test_read_input_literal_and_limit(void **state)
{
    char *out = NULL, err[256];
    size_t len = 0;

    assert_int_equal(syctl_read_input("{\"a\":1}", 100, &out, &len, err, sizeof(err)), 0);
    assert_string_equal(out, "{\"a\":1}");
    assert_int_equal(len, 7);
    free(out);
    out = NULL;
    assert_int_equal(syctl_read_input("{\"a\":1}", 6, &out, &len, err, sizeof(err)), -SY_ETOOBIG);
    assert_null(out);
}

static void test_read_input_missing_file_names_it(void **state)
{
    char *out = NULL, err[256];
    size_t len = 0;

    assert_true(
        syctl_read_input("@no-such-dir-for-syctl/x.json", 100, &out, &len, err, sizeof(err)) < 0);
    assert_null(out);
    assert_non_null(strstr(err, "no-such-dir-for-syctl/x.json"));
}

static void test_exit_codes_for_runtime_errors(void **state)
{
    assert_int_equal(syctl_exit_for(0), 0);
    assert_int_equal(syctl_exit_for(-SY_ECONN), 69);
    assert_int_equal(syctl_exit_for(-SY_ECONFIG), 78);
    assert_int_equal(syctl_exit_for(-SY_ENOTFOUND), 4);
    assert_int_equal(syctl_exit_for(-SY_EUNROUTABLE), 4);
    assert_int_equal(syctl_exit_for(-SY_ESCHEMA), 3);
    assert_int_equal(syctl_exit_for(-SY_EDECODE), 3);
    assert_int_equal(syctl_exit_for(-SY_ENACK), 1);
    assert_int_equal(syctl_exit_for(-SY_EDB), 1);
    assert_int_equal(syctl_exit_for(-SY_ETIMEOUT), 1);
}

static void test_base64_rfc4648_vectors(void **state)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char *b = syctl_base64(in[i], strlen(in[i]));
        assert_non_null(b);
        assert_string_equal(b, want[i]);
        free(b);
    }
    const unsigned char bin[] = {0xff, 0x00, 0xfe};
    char *b = syctl_base64(bin, sizeof(bin));
    assert_string_equal(b, "/wD+");
    free(b);
}

static json_t *headers_from(const char *text)
{
    json_error_t e;
    json_t *h = json_loads(text, 0, &e);
    assert_non_null(h);
    return h;
}

static void test_dead_info_from_runtime_headers(void **state)
{
    struct syctl_dead_info d;
    json_t *h = headers_from("{\"x-sy-reason\": \"data.n: required\", \"x-sy-attempts\": 3,"
                             " \"x-sy-dead-at\": \"2026-11-22T04:00:00Z\","
                             " \"x-sy-routing-key\": \"probe.work\", \"x-sy-worker\": \"probe\"}");

    syctl_dead_info(h, &d);
    assert_string_equal(d.reason, "data.n: required");
    assert_int_equal(d.attempts, 3);
    assert_string_equal(d.dead_at, "2026-11-22T04:00:00Z");
    assert_string_equal(d.routing_key, "probe.work");
    assert_int_equal(d.replayed, 0);
    json_decref(h);
}

static void test_dead_info_broker_delivery_limit_beats_stale_retry_reason(void **state)
{
    struct syctl_dead_info d;
    /* Retried once by the runtime (x-sy-reason of that retry), then crashed the worker until
     * the quorum queue's delivery limit moved it: the broker's reason is the true one. */
    json_t *h = headers_from(
        "{\"x-sy-reason\": \"timeout talking to glpi\", \"x-sy-attempts\": 1,"
        " \"x-delivery-count\": 6,"
        " \"x-death\": [{\"count\": 1, \"reason\": \"delivery_limit\", \"queue\": \"sy.probe\","
        "   \"time\": 1795320000, \"exchange\": \"sy.events\", \"routing-keys\": [\"probe.work\"]},"
        "  {\"count\": 1, \"reason\": \"expired\", \"queue\": \"sy.probe.retry.0\","
        "   \"time\": 1795310000, \"exchange\": \"\", \"routing-keys\": [\"sy.probe.retry.0\"]}]}");

    syctl_dead_info(h, &d);
    assert_string_equal(d.reason, "delivery_limit (sy.probe)");
    assert_int_equal(d.attempts, -1);
    assert_string_equal(d.dead_at, "2026-11-22T04:00:00Z");
    assert_string_equal(d.routing_key, "probe.work");
    json_decref(h);
}

static void test_dead_info_first_death_headers_alone(void **state)
{
    struct syctl_dead_info d;
    json_t *h = headers_from("{\"x-first-death-reason\": \"rejected\","
                             " \"x-first-death-queue\": \"sy.glpi\"}");

    syctl_dead_info(h, &d);
    assert_string_equal(d.reason, "rejected (sy.glpi)");
    assert_int_equal(d.attempts, -1);
    assert_string_equal(d.dead_at, "");
    json_decref(h);
}

static void test_dead_info_runtime_reject_after_broker_retry_keeps_runtime_reason(void **state)
{
    struct syctl_dead_info d;
    /* x-death from the retry ladder travels along; x-sy-dead-at says the runtime decided. */
    json_t *h =
        headers_from("{\"x-sy-reason\": \"attempts exhausted (4): 503\", \"x-sy-attempts\": 4,"
                     " \"x-sy-dead-at\": \"2026-11-22T05:00:00Z\", \"x-sy-replayed\": 2,"
                     " \"x-death\": [{\"reason\": \"expired\", \"queue\": \"sy.probe.retry.2\"}]}");

    syctl_dead_info(h, &d);
    assert_string_equal(d.reason, "attempts exhausted (4): 503");
    assert_int_equal(d.attempts, 4);
    assert_int_equal(d.replayed, 2);
    assert_string_equal(d.routing_key, "");
    json_decref(h);
}

static void test_dead_info_without_headers(void **state)
{
    struct syctl_dead_info d;
    json_t *h = json_object();

    syctl_dead_info(NULL, &d);
    assert_string_equal(d.reason, "");
    assert_int_equal(d.attempts, -1);
    syctl_dead_info(h, &d);
    assert_string_equal(d.reason, "");
    assert_string_equal(d.routing_key, "");
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_positionals_and_options_in_any_order),
        cmocka_unit_test(test_args_equals_form_and_empty_value),
        cmocka_unit_test(test_args_dash_is_stdin_and_double_dash_ends_options),
        cmocka_unit_test(test_args_help_anywhere),
        cmocka_unit_test(test_args_errors_name_the_option),
        cmocka_unit_test(test_args_too_many_positionals),
        cmocka_unit_test(test_parse_uint_bounds),
        cmocka_unit_test(test_read_input_literal_and_limit),
        cmocka_unit_test(test_read_input_missing_file_names_it),
        cmocka_unit_test(test_exit_codes_for_runtime_errors),
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_dead_info_from_runtime_headers),
        cmocka_unit_test(test_dead_info_broker_delivery_limit_beats_stale_retry_reason),
        cmocka_unit_test(test_dead_info_first_death_headers_alone),
        cmocka_unit_test(test_dead_info_runtime_reject_after_broker_retry_keeps_runtime_reason),
        cmocka_unit_test(test_dead_info_without_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
