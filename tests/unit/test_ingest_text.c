/* test_ingest_text.c - sy-ingest's language and department of a document, on the labelled
 * sample set tests/data/ingest/labelled.json against the fleet's own departments.yaml, and the
 * rules' edges: script counting over invalid UTF-8, whole words and plurals, Malayalam stems,
 * ties, and files the loader must refuse naming the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ingest/classify.h"
#include "ingest/lang.h"

static const char *lang_of(const char *a, const char *b)
{
    struct lang_count c = {0};

    lang_count_add(&c, a, strlen(a));
    if (b)
        lang_count_add(&c, b, strlen(b));
    return lang_name(lang_decide(&c));
}

static void labelled_samples_get_their_language_and_department(void **state)
{
    char path[1200], err[512] = "";
    json_error_t jerr;
    json_t *set, *s;
    size_t i, wrong = 0;

    (void)state;
    snprintf(path, sizeof path, "%s/deploy/config/departments.yaml", th_need_env("SY_SOURCE_DIR"));
    struct classify_rules *r = classify_load(path, err, sizeof err);
    if (!r)
        fail_msg("departments.yaml: %s", err);
    assert_int_equal(classify_departments(r), 6);
    snprintf(path, sizeof path, "%s/tests/data/ingest/labelled.json", th_need_env("SY_SOURCE_DIR"));
    if (!(set = json_load_file(path, 0, &jerr)))
        fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    assert_true(json_array_size(set) >= 20);
    json_array_foreach(set, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *title = json_string_value(json_object_get(s, "title"));
        const char *body = json_string_value(json_object_get(s, "body"));
        const char *want_lang = json_string_value(json_object_get(s, "language"));
        const char *want_dept = json_string_value(json_object_get(s, "department"));
        struct classify_score sc;

        classify_begin(&sc, r);
        classify_add(&sc, title, strlen(title), 3);
        classify_add(&sc, body, strlen(body), 1);
        const char *dept = classify_result(&sc);
        const char *lang = lang_of(title, body);

        if (strcmp(lang, want_lang) != 0 ||
            (want_dept ? !dept || strcmp(dept, want_dept) != 0 : dept != NULL)) {
            fprintf(stderr, "%s: language %s (want %s), department %s (want %s)\n", name, lang,
                    want_lang, dept ? dept : "none", want_dept ? want_dept : "none");
            wrong++;
        }
    }
    fprintf(stderr, "labelled set: %zu of %zu right\n", json_array_size(set) - wrong,
            json_array_size(set));
    assert_int_equal(wrong, 0);
    json_decref(set);
    classify_free(r);
}

static void scripts_are_counted_and_junk_bytes_skipped(void **state)
{
    (void)state;
    /* Too few letters say nothing; digits (Malayalam ones too) and punctuation count for none. */
    assert_string_equal(lang_of("Invoice 2291", NULL), "unknown");
    assert_string_equal(lang_of("൧൨൩൪൫൬൭൮൯൦ 1234567890 ,.;:!? -- ()", NULL), "unknown");
    assert_string_equal(lang_of("The quick brown fox jumps over the lazy dog", NULL), "en");
    assert_string_equal(lang_of("മലയാളം ഒരു ദ്രാവിഡ ഭാഷയാണ് കേരളത്തിൽ", NULL), "ml");
    /* Accented Latin counts as Latin; invalid UTF-8, overlong forms and surrogates are skipped. */
    assert_string_equal(lang_of("Àéîõü çñ ÀÉÎÕÜ ÇÑ àéîõü çñ", NULL), "en");
    const char junk[] = "\xff\xfe\xc0\xaf\xed\xa0\x80\xe0\xb4"
                        "abcdefghij\xe0\xb4\x95\xe0\xb4\x95";
    struct lang_count c = {0};
    lang_count_add(&c, junk, sizeof junk - 1);
    assert_int_equal(c.latin, 10);
    assert_int_equal(c.ml, 2);
    /* Four in five letters of one script make that language. */
    struct lang_count edge = {.ml = 16, .latin = 4};
    assert_int_equal(lang_decide(&edge), LANG_ML);
    edge = (struct lang_count){.ml = 15, .latin = 5};
    assert_int_equal(lang_decide(&edge), LANG_MIXED);
}

static const char *dept_of(struct classify_rules *r, const char *text)
{
    struct classify_score sc;

    classify_begin(&sc, r);
    classify_add(&sc, text, strlen(text), 1);
    return classify_result(&sc);
}

static void keywords_match_words_plurals_and_malayalam_stems(void **state)
{
    char err[256] = "";
    struct classify_rules *r = classify_load_mem("rules.yaml",
                                                 "departments:\n"
                                                 "  A: [fare, tax, track, \"ബജറ്റ്\", \"സ്റ്റേഷൻ\"]\n"
                                                 "  B: [fare, ticket machine]\n",
                                                 err, sizeof err);

    (void)state;
    if (!r)
        fail_msg("%s", err);
    assert_string_equal(dept_of(r, "FARES and Taxes"), "A");
    assert_null(dept_of(r, "farewell, taxing, trackside, sidetrack"));
    assert_string_equal(dept_of(r, "ബജറ്റിൽ"), "A");
    assert_string_equal(dept_of(r, "സ്റ്റേഷനിൽ"), "A");
    /* A tie goes to the department listed first; more hits win. */
    assert_string_equal(dept_of(r, "fare"), "A");
    assert_string_equal(dept_of(r, "ticket machines, ticket machine"), "B");
    /* Weight and a cap per keyword and text. */
    struct classify_score sc;
    classify_begin(&sc, r);
    classify_add(&sc, "fare fare fare fare fare fare fare fare", 39, 2);
    assert_int_equal(sc.score[0], 2 * CLASSIFY_HITS_MAX);
    classify_free(r);

    r = classify_load_mem("min.yaml", "min_score: 3\ndepartments:\n  A: [fare]\n", err, sizeof err);
    assert_non_null(r);
    assert_null(dept_of(r, "fare fare"));
    assert_string_equal(dept_of(r, "fare fare fare"), "A");
    classify_free(r);
}

static void bad_rules_are_refused_naming_the_line(void **state)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"departments: []\n", "expected a map of 1 to"},
        {"departments:\n  A: fare\n", "bad.yaml:2: departments.A: expected a list"},
        {"departments:\n  A: [fare, \"\"]\n", "bad.yaml:2: departments.A[1]: a keyword must"},
        {"departments:\n  A: [fare, [x]]\n", "departments.A[1]: expected text"},
        {"departments:\n  A: [fare]\nmin_score: 0\n", "min_score"},
        {"departments:\n  A: [fare]\nthreshold: 2\n", "unknown key 'threshold'"},
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        struct classify_rules *r = classify_load_mem("bad.yaml", cases[i].yaml, err, sizeof err);
        if (r || !strstr(err, cases[i].want))
            fail_msg("case %zu: expected an error with '%s', got '%s'", i, cases[i].want, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labelled_samples_get_their_language_and_department),
        cmocka_unit_test(scripts_are_counted_and_junk_bytes_skipped),
        cmocka_unit_test(keywords_match_words_plurals_and_malayalam_stems),
        cmocka_unit_test(bad_rules_are_refused_naming_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
