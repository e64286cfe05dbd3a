/* test_doc.c - YAML documents: tree shape, order, lines, limits and the errors users see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sy/doc.h"
#include "sy/err.h"

static struct sy_doc *load(const char *text, char *err, size_t errlen)
{
    return sy_doc_load_mem("t.yaml", text, strlen(text), err, errlen);
}

static void nested_maps_and_sequences_keep_order_text_and_lines(void **state)
{
    const char *text = "# comment\n"
                       "exchange: sy.events\n"
                       "zeta: 1\n"
                       "alpha: 'quoted # not a comment'\n"
                       "workers:\n"
                       "  grievance:\n"
                       "    routes: [grievance.#, grm.pull]\n"
                       "  glpi:\n"
                       "    routes:\n"
                       "      - chatwoot.#\n"
                       "    retry: {max_attempts: 5}\n"
                       "text: |\n"
                       "  two\n"
                       "  lines\n";
    char err[256] = "";
    struct sy_doc *doc = load(text, err, sizeof(err));
    const struct sy_node *root, *workers, *g, *routes;
    const char *key = NULL;

    assert_non_null(doc);
    assert_string_equal(sy_doc_name(doc), "t.yaml");
    root = sy_doc_root(doc);
    assert_int_equal(sy_node_kind(root), SY_NODE_MAP);
    assert_int_equal(sy_node_len(root), 5);
    assert_int_equal(sy_node_line(root), 2);

    /* Document order, not key order. */
    assert_string_equal(sy_node_str(sy_node_at(root, 0, &key)), "sy.events");
    assert_string_equal(key, "exchange");
    sy_node_at(root, 1, &key);
    assert_string_equal(key, "zeta");
    sy_node_at(root, 2, &key);
    assert_string_equal(key, "alpha");
    sy_node_at(root, 3, &key);
    assert_string_equal(key, "workers");
    assert_null(sy_node_at(root, 5, &key));
    assert_null(key);

    assert_string_equal(sy_node_str(sy_node_get(root, "alpha")), "quoted # not a comment");
    assert_int_equal(sy_node_line(sy_node_get(root, "alpha")), 4);
    assert_string_equal(sy_node_str(sy_node_get(root, "text")), "two\nlines\n");

    workers = sy_node_get(root, "workers");
    assert_int_equal(sy_node_kind(workers), SY_NODE_MAP);
    assert_null(sy_node_str(workers));
    assert_int_equal(sy_node_line(workers), 6);
    g = sy_node_get(workers, "grievance");
    routes = sy_node_get(g, "routes");
    assert_int_equal(sy_node_kind(routes), SY_NODE_SEQ);
    assert_int_equal(sy_node_len(routes), 2);
    assert_string_equal(sy_node_str(sy_node_at(routes, 0, NULL)), "grievance.#");
    assert_string_equal(sy_node_str(sy_node_at(routes, 1, &key)), "grm.pull");
    assert_null(key);
    assert_int_equal(sy_node_line(sy_node_at(routes, 1, NULL)), 7);

    routes = sy_node_get(sy_node_get(workers, "glpi"), "routes");
    assert_int_equal(sy_node_len(routes), 1);
    assert_int_equal(sy_node_line(sy_node_at(routes, 0, NULL)), 10);
    assert_string_equal(sy_node_str(sy_node_get(sy_node_get(sy_node_get(workers, "glpi"), "retry"),
                                                "max_attempts")),
                        "5");

    /* Missing keys chain to NULL instead of crashing. */
    assert_null(sy_node_get(root, "nope"));
    assert_null(sy_node_get(sy_node_get(root, "nope"), "deeper"));
    assert_int_equal(sy_node_len(sy_node_get(root, "nope")), 0);
    assert_null(sy_node_get(routes, "0"));
    assert_int_equal(sy_node_len(sy_node_get(root, "zeta")), 0);
    sy_doc_destroy(doc);
}

static void lookup_works_in_a_large_map(void **state)
{
    char *text = malloc(64 * 1024);
    size_t used = 0;
    char err[256] = "";
    struct sy_doc *doc;

    assert_non_null(text);
    for (int i = 0; i < 2000; i++)
        used += (size_t)snprintf(text + used, 64 * 1024 - used, "k%d: v%d\n", 1999 - i, i);
    doc = sy_doc_load_mem("big.yaml", text, used, err, sizeof(err));
    assert_non_null(doc);
    assert_int_equal(sy_node_len(sy_doc_root(doc)), 2000);
    assert_string_equal(sy_node_str(sy_node_get(sy_doc_root(doc), "k0")), "v1999");
    assert_string_equal(sy_node_str(sy_node_get(sy_doc_root(doc), "k1999")), "v0");
    assert_string_equal(sy_node_str(sy_node_get(sy_doc_root(doc), "k1000")), "v999");
    assert_null(sy_node_get(sy_doc_root(doc), "k2000"));
    sy_doc_destroy(doc);
    free(text);
}

static void nulls_are_text_and_empty_documents_have_no_root(void **state)
{
    char err[256] = "";
    struct sy_doc *doc = load("a: ~\nb: null\nc:\nd: 'null'\ne: \"\"\n", err, sizeof(err));
    const struct sy_node *root;

    assert_non_null(doc);
    root = sy_doc_root(doc);
    assert_string_equal(sy_node_str(sy_node_get(root, "a")), "~");
    assert_string_equal(sy_node_str(sy_node_get(root, "b")), "null");
    assert_string_equal(sy_node_str(sy_node_get(root, "c")), "");
    assert_true(sy_node_is_null(sy_node_get(root, "a")));
    assert_true(sy_node_is_null(sy_node_get(root, "b")));
    assert_true(sy_node_is_null(sy_node_get(root, "c")));
    assert_false(sy_node_is_null(sy_node_get(root, "d")));
    assert_false(sy_node_is_null(sy_node_get(root, "e")));
    assert_true(sy_node_is_null(sy_node_get(root, "missing")));
    assert_false(sy_node_is_null(root));
    sy_doc_destroy(doc);

    doc = load("", err, sizeof(err));
    assert_non_null(doc);
    assert_null(sy_doc_root(doc));
    sy_doc_destroy(doc);
    doc = load("# only a comment\n", err, sizeof(err));
    assert_non_null(doc);
    assert_null(sy_doc_root(doc));
    sy_doc_destroy(doc);
    doc = load("---\n", err, sizeof(err));
    assert_non_null(doc);
    assert_null(sy_doc_root(doc));
    sy_doc_destroy(doc);
    doc = load("just text\n", err, sizeof(err));
    assert_non_null(doc);
    assert_string_equal(sy_node_str(sy_doc_root(doc)), "just text");
    sy_doc_destroy(doc);
}

static void expect_error(const char *text, const char *want)
{
    char err[512] = "";
    struct sy_doc *doc = load(text, err, sizeof(err));

    if (doc || !strstr(err, want))
        fail_msg("for %s: wanted error containing \"%s\", got \"%s\"", text, want, err);
    sy_doc_destroy(doc);
}

static void bad_yaml_is_reported_with_its_line(void **state)
{
    char err[512] = "";
    struct sy_doc *doc = load("a: 1\nb: 2\nc: [1, 2\nd: 4\n", err, sizeof(err));

    assert_null(doc);
    assert_true(strncmp(err, "t.yaml:", 7) == 0);
    /* The flow sequence opened on line 3 never closes: the error names line 3 or later. */
    assert_true(atoi(err + 7) >= 3);

    expect_error("a: 1\n  b: 2\n", "t.yaml:2: ");
    expect_error("a: 1\nb: \"unterminated\n", "t.yaml:");
    expect_error("key: value\n\tbad: tab\n", "t.yaml:2: ");
    /* Invalid UTF-8 is a reader error: libyaml gives an offset, reported as a line. */
    expect_error("a: 1\nb: \xff\xfe\n", "t.yaml:2: ");
}

static void duplicate_keys_are_refused_with_both_lines(void **state)
{
    expect_error("a: 1\nb: 2\na: 3\n", "t.yaml:3: duplicate key 'a' (first at line 1)");
    expect_error("top:\n  x: 1\n  y: 2\n  x: 3\n", "t.yaml:4: duplicate key 'x' (first at line 2)");
    expect_error("{b: 1, c: 2, b: 3}\n", "duplicate key 'b'");
    /* The earliest repetition is the one reported. */
    expect_error("z: 1\na: 1\nz: 2\na: 2\n", "t.yaml:3: duplicate key 'z'");
    /* Same key in different maps is fine. */
    char err[256] = "";
    struct sy_doc *doc = load("a: {x: 1}\nb: {x: 2}\n", err, sizeof(err));
    assert_non_null(doc);
    sy_doc_destroy(doc);
}

static void anchors_and_aliases_are_refused(void **state)
{
    expect_error("base: &b {x: 1}\nother: *b\n", "t.yaml:1: anchors (&b) are not supported");
    expect_error("a: &x 1\n", "anchors (&x) are not supported");
    expect_error("a: [&s 1]\n", "anchors");
    expect_error("a: *nothing\n", "t.yaml:1: aliases (*nothing) are not supported");
    expect_error("a: 1\n<<: *nothing\n", "t.yaml:2: aliases");
}

static void structure_errors(void **state)
{
    expect_error("a: 1\n---\nb: 2\n", "t.yaml:2: only one document is allowed");
    expect_error("? [a, b]\n: c\n", "t.yaml:1: a map key must be a scalar");
    expect_error("{? {a: 1}: c}\n", "a map key must be a scalar");
    expect_error("a: \"x\\0y\"\n", "t.yaml:1: NUL character in a scalar");
}

static void depth_is_limited_to_32(void **state)
{
    char text[256], err[256] = "";
    struct sy_doc *doc;
    const struct sy_node *n;
    int depth = 0;

    /* 32 nested sequences load; the innermost holds a scalar. */
    memset(text, '[', 32);
    strcpy(text + 32, "1");
    memset(text + 33, ']', 32);
    text[65] = '\0';
    doc = load(text, err, sizeof(err));
    assert_non_null(doc);
    for (n = sy_doc_root(doc); sy_node_kind(n) == SY_NODE_SEQ; n = sy_node_at(n, 0, NULL))
        depth++;
    assert_int_equal(depth, 32);
    assert_string_equal(sy_node_str(n), "1");
    sy_doc_destroy(doc);

    memset(text, '[', 33);
    strcpy(text + 33, "1");
    memset(text + 34, ']', 33);
    text[67] = '\0';
    expect_error(text, "t.yaml:1: nested deeper than 32 levels");

    /* Block maps count the same way. */
    size_t used = 0;
    char block[8192];
    for (int i = 0; i < 33; i++)
        used += (size_t)snprintf(block + used, sizeof(block) - used, "%*sk%d:\n", 2 * i, "", i);
    snprintf(block + used, sizeof(block) - used, "%*sleaf: 1\n", 66, "");
    expect_error(block, "t.yaml:33: nested deeper than 32 levels");
}

static void node_count_and_size_are_limited(void **state)
{
    size_t n = SY_DOC_MAX_NODES + 1, len = 0;
    char *text = malloc(4 * n + 8), err[256] = "";
    struct sy_doc *doc;

    assert_non_null(text);
    /* A sequence of n - 1 scalars plus the sequence itself: exactly the limit, accepted. */
    text[len++] = '[';
    for (size_t i = 0; i < n - 2; i++) {
        memcpy(text + len, "0,", 2);
        len += 2;
    }
    text[len - 1] = ']';
    doc = sy_doc_load_mem("n.yaml", text, len, err, sizeof(err));
    assert_non_null(doc);
    assert_int_equal(sy_node_len(sy_doc_root(doc)), SY_DOC_MAX_NODES - 1);
    sy_doc_destroy(doc);

    /* One more scalar is one too many. */
    memcpy(text + len - 1, ",0]", 3);
    len += 2;
    doc = sy_doc_load_mem("n.yaml", text, len, err, sizeof(err));
    assert_null(doc);
    assert_non_null(strstr(err, "n.yaml:1: too many nodes (limit 100000)"));
    free(text);

    /* Keys count too. */
    text = malloc(16 * n);
    assert_non_null(text);
    len = 0;
    for (size_t i = 0; i < n / 2 + 1; i++)
        len += (size_t)sprintf(text + len, "k%zu: 1\n", i);
    doc = sy_doc_load_mem("k.yaml", text, len, err, sizeof(err));
    assert_null(doc);
    assert_non_null(strstr(err, "too many nodes"));
    free(text);

    text = malloc(SY_DOC_MAX_BYTES + 1);
    assert_non_null(text);
    memset(text, ' ', SY_DOC_MAX_BYTES + 1);
    doc = sy_doc_load_mem("s.yaml", text, SY_DOC_MAX_BYTES + 1, err, sizeof(err));
    assert_null(doc);
    assert_string_equal(err, "s.yaml: larger than 1048576 bytes");
    free(text);
}

static void files_load_and_missing_files_say_why(void **state)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    char path[512], err[512] = "";
    int fd;
    const char *text = "a:\n  b: 1\n  b: 2\n";
    struct sy_doc *doc;
    char want[600];

    snprintf(path, sizeof(path), "%s/test_doc_XXXXXX", dir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x: [1, 2]\n", 10), 10);
    close(fd);
    doc = sy_doc_load_file(path, err, sizeof(err));
    assert_non_null(doc);
    assert_string_equal(sy_doc_name(doc), path);
    assert_int_equal(sy_node_len(sy_node_get(sy_doc_root(doc), "x")), 2);
    sy_doc_destroy(doc);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    doc = sy_doc_load_file(path, err, sizeof(err));
    assert_null(doc);
    snprintf(want, sizeof(want), "%s:3: duplicate key 'b' (first at line 2)", path);
    assert_string_equal(err, want);
    unlink(path);

    doc = sy_doc_load_file(path, err, sizeof(err));
    assert_null(doc);
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
    assert_string_equal(err, want);
}

static void check_keys_lists_the_allowed_keys(void **state)
{
    static const char *const allowed[] = {"routes", "retry", "delivery_limit", NULL};
    char err[512] = "";
    struct sy_doc *doc = load("w:\n  routes: [a]\n  retyr: {}\n", err, sizeof(err));
    const struct sy_node *w;

    assert_non_null(doc);
    w = sy_node_get(sy_doc_root(doc), "w");
    assert_int_equal(sy_node_check_keys(doc, w, allowed, err, sizeof(err)), -SY_ECONFIG);
    assert_string_equal(err,
                        "t.yaml:3: unknown key 'retyr' (allowed: routes, retry, delivery_limit)");
    assert_int_equal(sy_node_check_keys(doc, sy_doc_root(doc), (const char *const[]){"w", NULL},
                                        err, sizeof(err)),
                     0);
    /* Not a map at all. */
    assert_int_equal(sy_node_check_keys(doc, sy_node_get(w, "routes"), allowed, err, sizeof(err)),
                     -SY_ECONFIG);
    assert_string_equal(err, "t.yaml:2: expected a map, got a sequence");
    /* An absent section has no unknown keys. */
    assert_int_equal(sy_node_check_keys(doc, NULL, allowed, err, sizeof(err)), 0);
    sy_doc_destroy(doc);
}

static const struct sy_node *value_of(struct sy_doc **doc, const char *yaml)
{
    char err[256] = "";

    sy_doc_destroy(*doc);
    *doc = load(yaml, err, sizeof(err));
    assert_non_null(*doc);
    return sy_node_get(sy_doc_root(*doc), "v");
}

static void int_reader_edge_cases(void **state)
{
    static const struct {
        const char *yaml;
        long long want;
    } good[] = {{"v: 0", 0},
                {"v: 42", 42},
                {"v: -7", -7},
                {"v: +7", 7},
                {"v: 007", 7},
                {"v: '12'", 12},
                {"v: 9223372036854775807", LLONG_MAX},
                {"v: -9223372036854775808", LLONG_MIN}};
    static const char *const bad[] = {"v: ''",
                                      "v: ' 1'",
                                      "v: '1 '",
                                      "v: 0x10",
                                      "v: 1e3",
                                      "v: 1.0",
                                      "v: 12abc",
                                      "v: '-'",
                                      "v: 9223372036854775808",
                                      "v: -9223372036854775809",
                                      "v: [1]",
                                      "v: {a: 1}",
                                      "v: ~"};
    struct sy_doc *doc = NULL;
    char err[256];
    long long v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err[0] = '\0';
        v = 99;
        if (sy_node_int(value_of(&doc, good[i].yaml), LLONG_MIN, LLONG_MAX, &v, err, sizeof(err)) !=
                0 ||
            v != good[i].want)
            fail_msg("%s: got %lld (%s)", good[i].yaml, v, err);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 99;
        if (sy_node_int(value_of(&doc, bad[i]), LLONG_MIN, LLONG_MAX, &v, err, sizeof(err)) !=
                -SY_EINVAL ||
            v != 99)
            fail_msg("%s was accepted as %lld", bad[i], v);
    }
    assert_int_equal(
        sy_node_int(value_of(&doc, "v: 12abc"), LLONG_MIN, LLONG_MAX, &v, err, sizeof(err)),
        -SY_EINVAL);
    assert_string_equal(err, "line 1: v: expected an integer, got '12abc'");
    assert_int_equal(
        sy_node_int(value_of(&doc, "v: {a: 1}"), LLONG_MIN, LLONG_MAX, &v, err, sizeof(err)),
        -SY_EINVAL);
    assert_string_equal(err, "line 1: v: expected an integer, got a map");

    /* Bounds are inclusive and named in the message, with the path to the value. */
    value_of(&doc, "v: 1\nretry:\n  delays: [1, 2, 101]\n");
    const struct sy_node *d = sy_node_get(sy_node_get(sy_doc_root(doc), "retry"), "delays");
    assert_int_equal(sy_node_int(sy_node_at(d, 1, NULL), 2, 100, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 2);
    assert_int_equal(sy_node_int(sy_node_at(d, 2, NULL), 2, 100, &v, err, sizeof(err)), -SY_EINVAL);
    assert_string_equal(err,
                        "line 3: retry.delays[2]: expected an integer from 2 to 100, got '101'");
    assert_int_equal(sy_node_int(sy_node_at(d, 0, NULL), 2, 100, &v, err, sizeof(err)), -SY_EINVAL);
    assert_int_equal(sy_node_int(NULL, 0, 1, &v, err, sizeof(err)), -SY_EINVAL);
    sy_doc_destroy(doc);
}

static void double_reader_edge_cases(void **state)
{
    static const struct {
        const char *yaml;
        double want;
    } good[] = {{"v: 0", 0},    {"v: 1.5", 1.5}, {"v: -0.25", -0.25}, {"v: 1e3", 1000},
                {"v: .5", 0.5}, {"v: 2.", 2},    {"v: '0.2'", 0.2},   {"v: 1e-320", 1e-320}};
    static const char *const bad[] = {"v: ''",  "v: abc",  "v: 1.5x", "v: ' 1.5'", "v: '1.5 '",
                                      "v: nan", "v: inf",  "v: -inf", "v: 1e999",  "v: .inf",
                                      "v: [1]", "v: null", "v: 1,5"};
    struct sy_doc *doc = NULL;
    char err[256];
    double v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err[0] = '\0';
        if (sy_node_double(value_of(&doc, good[i].yaml), &v, err, sizeof(err)) != 0 ||
            v != good[i].want)
            fail_msg("%s: got %g (%s)", good[i].yaml, v, err);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 99;
        if (sy_node_double(value_of(&doc, bad[i]), &v, err, sizeof(err)) != -SY_EINVAL || v != 99)
            fail_msg("%s was accepted as %g", bad[i], v);
    }
    sy_node_double(value_of(&doc, "x: 1\nv: 1.5x\n"), &v, err, sizeof(err));
    assert_string_equal(err, "line 2: v: expected a finite number, got '1.5x'");
    sy_doc_destroy(doc);
}

static void bool_reader_edge_cases(void **state)
{
    static const char *const yes[] = {"v: true", "v: True", "v: TRUE", "v: yes",
                                      "v: Yes",  "v: on",   "v: ON",   "v: 'true'"};
    static const char *const no[] = {"v: false", "v: FALSE", "v: no", "v: No", "v: off", "v: Off"};
    static const char *const bad[] = {"v: 1",  "v: 0",       "v: y",      "v: maybe",
                                      "v: ''", "v: ' true'", "v: [true]", "v: ~"};
    struct sy_doc *doc = NULL;
    char err[256];
    bool v;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        v = false;
        if (sy_node_bool(value_of(&doc, yes[i]), &v, err, sizeof(err)) != 0 || !v)
            fail_msg("%s not read as true", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        v = true;
        if (sy_node_bool(value_of(&doc, no[i]), &v, err, sizeof(err)) != 0 || v)
            fail_msg("%s not read as false", no[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sy_node_bool(value_of(&doc, bad[i]), &v, err, sizeof(err)) != -SY_EINVAL)
            fail_msg("%s was accepted", bad[i]);
    }
    sy_node_bool(value_of(&doc, "v: maybe"), &v, err, sizeof(err));
    assert_string_equal(err, "line 1: v: expected true/false, yes/no or on/off, got 'maybe'");
    sy_doc_destroy(doc);
}

static void expand_env_takes_values_defaults_and_keeps_other_dollars(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain", "plain"},
        {"${DOCT_SET}", "five"},
        {"${DOCT_SET}m and ${DOCT_SET}", "fivem and five"},
        {"${DOCT_UNSET:-true}", "true"},
        {"${DOCT_SET:-true}", "five"},
        {"${DOCT_EMPTY:-30s}", "30s"}, /* as in the shell: "" takes the default */
        {"${DOCT_EMPTY}", ""},         /* set to "" without a default: "" */
        {"${DOCT_UNSET:-}", ""},
        {"${DOCT_UNSET:-a:-b $x}", "a:-b $x"}, /* the default is literal up to the first '}' */
        {"$5 costs $ and $DOCT_SET {}", "$5 costs $ and $DOCT_SET {}"},
        {"", ""},
    };
    char out[64], why[256];

    assert_int_equal(setenv("DOCT_SET", "five", 1), 0);
    assert_int_equal(setenv("DOCT_EMPTY", "", 1), 0);
    unsetenv("DOCT_UNSET");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        if (sy_doc_expand_env(cases[i].in, out, sizeof(out), why, sizeof(why)) != 0)
            fail_msg("'%s': %s", cases[i].in, why);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("'%s' gave '%s', not '%s'", cases[i].in, out, cases[i].want);
    }
}

static void expand_env_refuses_unset_names_unclosed_and_overlong(void **state)
{
    static const struct {
        const char *in, *why;
    } cases[] = {
        {"${DOCT_UNSET}", "environment variable DOCT_UNSET is not set (and has no default)"},
        {"x ${DOCT_UNSET} y", "environment variable DOCT_UNSET is not set (and has no default)"},
        {"${1X:-5}", "'${' must be followed by a variable name ([A-Za-z_][A-Za-z0-9_]*, at most "
                     "128 characters)"},
        {"${}", "'${' must be followed by a variable name ([A-Za-z_][A-Za-z0-9_]*, at most "
                "128 characters)"},
        {"${DOCT_OPEN", "'${DOCT_OPEN' is not closed (expected '}' or ':-default}')"},
        {"${DOCT_OPEN:-5m", "'${DOCT_OPEN' is not closed (expected '}' or ':-default}')"},
        {"${DOCT_A-B}", "'${DOCT_A' is not closed (expected '}' or ':-default}')"},
        {"0123456789", "longer than 7 bytes after expansion"},
        {"${DOCT_LONG}", "longer than 7 bytes after expansion"},
    };
    char out[8], why[256], name[SY_DOC_VAR_NAME_MAX + 9];

    unsetenv("DOCT_UNSET");
    assert_int_equal(setenv("DOCT_LONG", "12345678", 1), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        if (sy_doc_expand_env(cases[i].in, out, sizeof(out), why, sizeof(why)) != -SY_ECONFIG)
            fail_msg("'%s' was accepted", cases[i].in);
        if (strcmp(why, cases[i].why) != 0)
            fail_msg("'%s': got '%s'", cases[i].in, why);
    }
    /* A name of 128 characters is read; 129 is refused. */
    memset(name, 'N', sizeof(name));
    memcpy(name, "${", 2);
    memcpy(name + 2 + SY_DOC_VAR_NAME_MAX, ":-ok}", 6);
    assert_int_equal(sy_doc_expand_env(name, out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, "ok");
    memset(name, 'N', sizeof(name));
    memcpy(name, "${", 2);
    memcpy(name + 3 + SY_DOC_VAR_NAME_MAX, ":-ok}", 6);
    assert_int_equal(sy_doc_expand_env(name, out, sizeof(out), why, sizeof(why)), -SY_ECONFIG);
    /* The exact fit: 7 bytes and the NUL. */
    assert_int_equal(sy_doc_expand_env("1234567", out, sizeof(out), why, sizeof(why)), 0);
    assert_int_equal(sy_doc_expand_env("x", out, 0, why, sizeof(why)), -SY_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nested_maps_and_sequences_keep_order_text_and_lines),
        cmocka_unit_test(lookup_works_in_a_large_map),
        cmocka_unit_test(nulls_are_text_and_empty_documents_have_no_root),
        cmocka_unit_test(bad_yaml_is_reported_with_its_line),
        cmocka_unit_test(duplicate_keys_are_refused_with_both_lines),
        cmocka_unit_test(anchors_and_aliases_are_refused),
        cmocka_unit_test(structure_errors),
        cmocka_unit_test(depth_is_limited_to_32),
        cmocka_unit_test(node_count_and_size_are_limited),
        cmocka_unit_test(files_load_and_missing_files_say_why),
        cmocka_unit_test(check_keys_lists_the_allowed_keys),
        cmocka_unit_test(int_reader_edge_cases),
        cmocka_unit_test(double_reader_edge_cases),
        cmocka_unit_test(bool_reader_edge_cases),
        cmocka_unit_test(expand_env_takes_values_defaults_and_keeps_other_dollars),
        cmocka_unit_test(expand_env_refuses_unset_names_unclosed_and_overlong),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
