/* test_metrics.c - the metrics registry and its Prometheus text rendering. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sy/metrics.h"

/* The registry is process-wide: each test uses names of its own and looks for its block. */
static void assert_rendered(const char *expected)
{
    char *text = sy_metrics_render();
    assert_non_null(text);
    if (!strstr(text, expected)) {
        fprintf(stderr, "expected block:\n%s\nnot found in:\n%s\n", expected, text);
        free(text);
        fail();
    }
    free(text);
}

static void counter_renders_help_type_and_value(void **state)
{
    struct sy_counter *c = sy_counter_get("t_counter_total", "Things counted.", NULL);
    assert_non_null(c);
    sy_counter_add(c, 3);
    sy_counter_add(c, 4);
    assert_rendered("# HELP t_counter_total Things counted.\n"
                    "# TYPE t_counter_total counter\n"
                    "t_counter_total 7\n");
}

static void label_sets_of_one_name_share_one_header(void **state)
{
    struct sy_counter *a = sy_counter_get("t_by_worker_total", "Per worker.", "worker=\"a\"");
    struct sy_counter *b =
        sy_counter_get("t_by_worker_total", "Per worker.", "worker=\"b\",queue=\"sy.b\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    sy_counter_add(a, 1);
    sy_counter_add(b, 2);
    assert_rendered("# HELP t_by_worker_total Per worker.\n"
                    "# TYPE t_by_worker_total counter\n"
                    "t_by_worker_total{worker=\"a\"} 1\n"
                    "t_by_worker_total{worker=\"b\",queue=\"sy.b\"} 2\n");
}

static void gauge_renders_signed_values(void **state)
{
    struct sy_gauge *g = sy_gauge_get("t_in_flight", "Messages being handled.", NULL);
    assert_non_null(g);
    sy_gauge_set(g, 5);
    sy_gauge_add(g, -7);
    assert_rendered("# HELP t_in_flight Messages being handled.\n"
                    "# TYPE t_in_flight gauge\n"
                    "t_in_flight -2\n");
}

static void histogram_renders_cumulative_buckets_sum_and_count(void **state)
{
    struct sy_histogram *h = sy_histogram_get("t_latency_seconds", "Handling time.", NULL);
    assert_non_null(h);
    sy_histogram_observe(h, 0.0003); /* first bucket */
    sy_histogram_observe(h, 0.0005); /* on a bound: le is inclusive */
    sy_histogram_observe(h, 0.2);    /* 0.25 */
    sy_histogram_observe(h, 100);    /* only +Inf */
    assert_rendered("# HELP t_latency_seconds Handling time.\n"
                    "# TYPE t_latency_seconds histogram\n"
                    "t_latency_seconds_bucket{le=\"0.0005\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.001\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.0025\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.005\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.01\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.025\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.05\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.1\"} 2\n"
                    "t_latency_seconds_bucket{le=\"0.25\"} 3\n"
                    "t_latency_seconds_bucket{le=\"0.5\"} 3\n"
                    "t_latency_seconds_bucket{le=\"1\"} 3\n"
                    "t_latency_seconds_bucket{le=\"2.5\"} 3\n"
                    "t_latency_seconds_bucket{le=\"5\"} 3\n"
                    "t_latency_seconds_bucket{le=\"10\"} 3\n"
                    "t_latency_seconds_bucket{le=\"30\"} 3\n"
                    "t_latency_seconds_bucket{le=\"60\"} 3\n"
                    "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                    "t_latency_seconds_sum 100.2008\n"
                    "t_latency_seconds_count 4\n");
}

static void histogram_labels_come_before_le(void **state)
{
    struct sy_histogram *h = sy_histogram_get("t_db_seconds", "Query time.", "store=\"pg\"");
    assert_non_null(h);
    sy_histogram_observe(h, 0.004);
    assert_rendered("t_db_seconds_bucket{store=\"pg\",le=\"0.0025\"} 0\n"
                    "t_db_seconds_bucket{store=\"pg\",le=\"0.005\"} 1\n");
    assert_rendered("t_db_seconds_bucket{store=\"pg\",le=\"+Inf\"} 1\n"
                    "t_db_seconds_sum{store=\"pg\"} 0.004\n"
                    "t_db_seconds_count{store=\"pg\"} 1\n");
}

static void help_text_is_escaped(void **state)
{
    assert_non_null(sy_gauge_get("t_escaped", "a \\ b\nsecond line", NULL));
    assert_rendered("# HELP t_escaped a \\\\ b\\nsecond line\n");
}

static void same_name_and_labels_return_the_same_metric(void **state)
{
    struct sy_counter *a = sy_counter_get("t_twice_total", "Registered twice.", "k=\"v\"");
    struct sy_counter *b = sy_counter_get("t_twice_total", "Registered twice.", "k=\"v\"");
    assert_non_null(a);
    assert_ptr_equal(a, b);
    struct sy_histogram *h1 = sy_histogram_get("t_twice_seconds", "x", NULL);
    assert_ptr_equal(h1, sy_histogram_get("t_twice_seconds", "x", NULL));
    sy_counter_add(a, 1);
    sy_counter_add(b, 1);
    /* One line for the one metric, not two. */
    char *text = sy_metrics_render();
    assert_non_null(text);
    const char *first = strstr(text, "t_twice_total{k=\"v\"} 2\n");
    assert_non_null(first);
    assert_null(strstr(first + 1, "t_twice_total{k=\"v\"}"));
    free(text);
}

static void bad_names_labels_and_kind_clashes_are_refused(void **state)
{
    assert_null(sy_counter_get("9starts_with_digit", "x", NULL));
    assert_null(sy_counter_get("has-dash", "x", NULL));
    assert_null(sy_counter_get("", "x", NULL));
    assert_null(sy_counter_get(NULL, "x", NULL));
    assert_null(sy_counter_get("t_bad_labels", "x", "worker=unquoted"));
    assert_null(sy_counter_get("t_bad_labels", "x", "worker=\"a\","));
    assert_null(sy_counter_get("t_bad_labels", "x", "worker=\"a\"b=\"c\""));
    assert_null(sy_counter_get("t_bad_labels", "x", "w=\"bad \\x escape\""));
    assert_null(sy_histogram_get("t_bad_labels", "x", "le=\"1\""));
    assert_non_null(sy_counter_get("t_bad_labels", "x", "w=\"quote \\\" ok\""));

    assert_non_null(sy_counter_get("t_kind_total", "x", NULL));
    assert_null(sy_gauge_get("t_kind_total", "x", NULL));
    assert_null(sy_histogram_get("t_kind_total", "x", "other=\"labels\""));

    /* Updates through a refused (NULL) metric are harmless no-ops. */
    sy_counter_add(NULL, 1);
    sy_gauge_set(NULL, 1);
    sy_gauge_add(NULL, 1);
    sy_histogram_observe(NULL, 1.0);
}

#define THREADS 8
#define ROUNDS  50000

struct hammer {
    struct sy_counter *c;
    struct sy_gauge *g;
    struct sy_histogram *h;
    struct sy_counter *registered; /* what this thread got back from registering */
};

static void *hammer_main(void *arg)
{
    struct hammer *hm = arg;
    hm->registered = sy_counter_get("t_raced_total", "Registered by every thread.", NULL);
    for (int i = 0; i < ROUNDS; i++) {
        sy_counter_add(hm->c, 1);
        sy_gauge_add(hm->g, 2);
        sy_gauge_add(hm->g, -1);
        sy_histogram_observe(hm->h, 0.5); /* exact in binary: the sum must be too */
    }
    return NULL;
}

static void concurrent_updates_add_up(void **state)
{
    struct hammer hm[THREADS];
    pthread_t tid[THREADS];
    struct sy_counter *c = sy_counter_get("t_concurrent_total", "From many threads.", NULL);
    struct sy_gauge *g = sy_gauge_get("t_concurrent_gauge", "From many threads.", NULL);
    struct sy_histogram *h = sy_histogram_get("t_concurrent_seconds", "Many threads.", NULL);
    for (int i = 0; i < THREADS; i++) {
        hm[i] = (struct hammer){c, g, h, NULL};
        assert_int_equal(pthread_create(&tid[i], NULL, hammer_main, &hm[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    for (int i = 1; i < THREADS; i++)
        assert_ptr_equal(hm[i].registered, hm[0].registered);
    assert_non_null(hm[0].registered);

    char want[256];
    snprintf(want, sizeof want, "t_concurrent_total %d\n", THREADS * ROUNDS);
    assert_rendered(want);
    snprintf(want, sizeof want, "t_concurrent_gauge %d\n", THREADS * ROUNDS);
    assert_rendered(want);
    snprintf(want, sizeof want,
             "t_concurrent_seconds_bucket{le=\"0.25\"} 0\n"
             "t_concurrent_seconds_bucket{le=\"0.5\"} %d\n",
             THREADS * ROUNDS);
    assert_rendered(want);
    snprintf(want, sizeof want, "t_concurrent_seconds_sum %d\nt_concurrent_seconds_count %d\n",
             THREADS * ROUNDS / 2, THREADS * ROUNDS);
    assert_rendered(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_renders_help_type_and_value),
        cmocka_unit_test(label_sets_of_one_name_share_one_header),
        cmocka_unit_test(gauge_renders_signed_values),
        cmocka_unit_test(histogram_renders_cumulative_buckets_sum_and_count),
        cmocka_unit_test(histogram_labels_come_before_le),
        cmocka_unit_test(help_text_is_escaped),
        cmocka_unit_test(same_name_and_labels_return_the_same_metric),
        cmocka_unit_test(bad_names_labels_and_kind_clashes_are_refused),
        cmocka_unit_test(concurrent_updates_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
