/* test_topology.c - the topology loader: the fleet's file, defaults merged key by key, every
 * error named with its file and line, queue names, and retry delays that are never early. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/topology.h"

static const char *source_dir(void)
{
    const char *d = getenv("SY_SOURCE_DIR");
    return d && *d ? d : ".";
}

static void fixture_path(char *buf, size_t sz, const char *name)
{
    snprintf(buf, sz, "%s/tests/unit/data/topology/%s", source_dir(), name);
}

static struct sy_topology *load_fixture(const char *name, char *err, size_t errlen)
{
    char path[1024];
    fixture_path(path, sizeof path, name);
    return sy_topology_load(path, err, errlen);
}

static void test_fleet_topology_loads_every_worker_with_the_fleet_defaults(void **state)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/schemas/topology.yaml", source_dir());
    struct sy_topology *t = sy_topology_load(path, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_string_equal(t->exchange, "sy.events");
    assert_int_equal(t->nworkers, 9);
    static const char *const names[] = {"grievance", "chatbot",   "glpi",    "ingest", "knowledge",
                                        "alerts",    "optimizer", "planner", "fleet"};
    for (size_t i = 0; i < 9; i++) {
        const struct sy_topo_worker *w = sy_topology_worker(t, names[i]);
        assert_non_null(w);
        assert_int_equal(w->delivery_limit, 20);
        assert_int_equal(w->max_attempts, 8);
        assert_int_equal(w->ndelays, 6);
        static const long long want[] = {1000, 5000, 30000, 120000, 600000, 3600000};
        for (size_t d = 0; d < 6; d++)
            assert_int_equal(w->delays_ms[d], want[d]);
        assert_true(w->jitter > 0.199 && w->jitter < 0.201);
    }
    const struct sy_topo_worker *g = sy_topology_worker(t, "grievance");
    assert_int_equal(g->nroutes, 6);
    assert_string_equal(g->routes[0], "grievance.submitted");
    assert_string_equal(g->routes[5], "grm.pull");
    assert_null(g->routes[6]);
    /* What sy-grievance announces goes to the chatbot's queue, not back to its own. */
    assert_string_equal(sy_topology_worker(t, "chatbot")->routes[0], "grievance.status_changed");
    const struct sy_topo_worker *o = sy_topology_worker(t, "optimizer");
    assert_int_equal(o->nroutes, 3);
    assert_string_equal(o->routes[1], "optimizer.solve_model");
    assert_string_equal(o->routes[2], "optimizer.cancel");
    /* What sy-optimizer publishes goes to the planning UI's queue. */
    assert_string_equal(sy_topology_worker(t, "planner")->routes[0], "optimizer.result");
    assert_null(sy_topology_worker(t, "nobody"));
    sy_topology_destroy(t);
}

static void test_integration_topology_overrides_only_what_it_names(void **state)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/tests/data/topology.yaml", source_dir());
    struct sy_topology *t = sy_topology_load(path, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    const struct sy_topo_worker *p = sy_topology_worker(t, "probe");
    const struct sy_topo_worker *b = sy_topology_worker(t, "probe_batch");
    assert_non_null(p);
    assert_non_null(b);
    assert_int_equal(p->max_attempts, 4);
    assert_int_equal(b->max_attempts, 3);
    /* probe_batch overrides max_attempts only: the rest of defaults.retry still applies. */
    assert_int_equal(b->ndelays, 3);
    assert_int_equal(b->delays_ms[2], 4000);
    assert_int_equal(b->delivery_limit, 5);
    sy_topology_destroy(t);
}

static void test_defaults_merge_key_by_key_over_builtins(void **state)
{
    char err[512] = "";
    struct sy_topology *t = load_fixture("overrides.yaml", err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_string_equal(t->exchange, "test.events");

    /* w1: defaults from the file (limit 7, delays) and builtins for the rest. */
    const struct sy_topo_worker *w1 = sy_topology_worker(t, "w1");
    assert_non_null(w1);
    assert_int_equal(w1->delivery_limit, 7);
    assert_int_equal(w1->max_attempts, 8);
    assert_int_equal(w1->ndelays, 2);
    assert_int_equal(w1->delays_ms[0], 250);
    assert_int_equal(w1->delays_ms[1], 2000);
    assert_true(w1->jitter > 0.199 && w1->jitter < 0.201);

    /* w2: its own limit, attempts and jitter; the delays of defaults. */
    const struct sy_topo_worker *w2 = sy_topology_worker(t, "w2");
    assert_non_null(w2);
    assert_int_equal(w2->delivery_limit, 3);
    assert_int_equal(w2->max_attempts, 2);
    assert_true(w2->jitter == 0.0);
    assert_int_equal(w2->ndelays, 2);
    assert_int_equal(w2->delays_ms[1], 2000);
    assert_int_equal(w2->nroutes, 3);
    assert_string_equal(w2->routes[1], "b.x.#");

    /* A worker's own ladder replaces the inherited one entirely. */
    const struct sy_topo_worker *w3 = sy_topology_worker(t, "w-3_x");
    assert_non_null(w3);
    assert_int_equal(w3->ndelays, 1);
    assert_int_equal(w3->delays_ms[0], 3600000);
    assert_string_equal(w3->routes[0], "#");
    sy_topology_destroy(t);
}

/* Each broken file fails with "<path>:<line>: ..." naming what is wrong. */
struct bad_case {
    const char *file;
    int line;
    const char *needle;
};

static void test_errors_name_file_line_and_cause(void **state)
{
    static const struct bad_case cases[] = {
        {"bad_unknown_key.yaml", 5, "unknown key 'retries'"},
        {"bad_worker_name.yaml", 6, "'Not.Valid' is not a worker name"},
        {"bad_route.yaml", 6, "'a..b' is not a topic binding key"},
        {"bad_route_word.yaml", 4, "'grievance.#x' is not a topic binding key"},
        {"bad_max_attempts.yaml", 4, "max_attempts"},
        {"bad_jitter.yaml", 6, "jitter"},
        {"bad_delay.yaml", 6, "'5 minutes'"},
        {"bad_no_routes.yaml", 4, "routes: required"},
        {"bad_no_exchange.yaml", 1, "exchange: required"},
        {"bad_duplicate_route.yaml", 4, "duplicate route 'a.#'"},
        {"bad_delivery_limit.yaml", 3, "delivery_limit"},
        {"bad_empty_delays.yaml", 5, "expected 1 to 16 durations"},
        {"bad_exchange.yaml", 1, "'amq.topic'"},
        {"bad_syntax.yaml", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024], err[512] = "", prefix[1100];
        fixture_path(path, sizeof path, cases[i].file);
        struct sy_topology *t = sy_topology_load(path, err, sizeof err);
        if (t)
            fail_msg("%s: loaded although it is invalid", cases[i].file);
        if (cases[i].line > 0) {
            snprintf(prefix, sizeof prefix, "%s:%d: ", path, cases[i].line);
            if (strncmp(err, prefix, strlen(prefix)) != 0)
                fail_msg("%s: error '%s' does not start with '%s'", cases[i].file, err, prefix);
        } else {
            /* Syntax errors come from the YAML layer, still naming the file. */
            if (strncmp(err, path, strlen(path)) != 0)
                fail_msg("%s: error '%s' does not name the file", cases[i].file, err);
        }
        if (cases[i].needle && !strstr(err, cases[i].needle))
            fail_msg("%s: error '%s' does not mention '%s'", cases[i].file, err, cases[i].needle);
    }
}

static void test_missing_file_is_an_error(void **state)
{
    char err[512] = "";
    assert_null(sy_topology_load("no/such/topology.yaml", err, sizeof err));
    assert_non_null(strstr(err, "no/such/topology.yaml"));
    sy_topology_destroy(NULL);
}

static void test_queue_names_follow_the_convention_and_never_truncate(void **state)
{
    char err[512] = "", buf[64];
    struct sy_topology *t = load_fixture("overrides.yaml", err, sizeof err);
    assert_non_null(t);
    const struct sy_topo_worker *w = sy_topology_worker(t, "w2");
    assert_int_equal(sy_topo_queue_name(w, buf, sizeof buf), 0);
    assert_string_equal(buf, "sy.w2");
    assert_int_equal(sy_topo_dead_name(w, buf, sizeof buf), 0);
    assert_string_equal(buf, "sy.w2.dead");
    assert_int_equal(sy_topo_retry_name(w, 1, buf, sizeof buf), 0);
    assert_string_equal(buf, "sy.w2.retry.1");
    char tiny[8];
    assert_int_equal(sy_topo_dead_name(w, tiny, sizeof tiny), -SY_ETOOBIG);
    assert_string_equal(tiny, "");
    assert_int_equal(sy_topo_queue_name(w, tiny, 5), -SY_ETOOBIG);
    sy_topology_destroy(t);
}

static void test_retry_delay_picks_the_step_of_the_attempt(void **state)
{
    struct sy_topo_worker w = {
        .name = "x", .ndelays = 3, .jitter = 0.0, .delays_ms = {1000, 5000, 30000}};
    size_t step = 99;
    assert_int_equal(sy_topo_retry_delay(&w, 2, 0.5, &step), 1000);
    assert_int_equal(step, 0);
    assert_int_equal(sy_topo_retry_delay(&w, 3, 0.5, &step), 5000);
    assert_int_equal(step, 1);
    assert_int_equal(sy_topo_retry_delay(&w, 4, 0.5, &step), 30000);
    assert_int_equal(step, 2);
    /* Past the ladder's end the last step repeats. */
    assert_int_equal(sy_topo_retry_delay(&w, 40, 0.5, &step), 30000);
    assert_int_equal(step, 2);
    /* Attempt numbers below the first retry use the first step. */
    assert_int_equal(sy_topo_retry_delay(&w, 1, 0.0, &step), 1000);
    assert_int_equal(step, 0);
    assert_int_equal(sy_topo_retry_delay(&w, 0, 0.0, NULL), 1000);
}

static void test_retry_after_moves_up_the_ladder_never_down(void **state)
{
    struct sy_topo_worker w = {
        .name = "x", .ndelays = 4, .jitter = 0.0, .delays_ms = {1000, 5000, 30000, 120000}};
    size_t step = 99;
    /* A server's Retry-After of 7 s skips the steps that would come back sooner. */
    assert_int_equal(sy_topo_retry_delay_min(&w, 2, 7000, 0.0, &step), 30000);
    assert_int_equal(step, 2);
    /* One a step already covers changes nothing. */
    assert_int_equal(sy_topo_retry_delay_min(&w, 3, 5000, 0.0, &step), 5000);
    assert_int_equal(step, 1);
    assert_int_equal(sy_topo_retry_delay_min(&w, 4, 1000, 0.0, &step), 30000);
    assert_int_equal(step, 2);
    /* Longer than every step: the last one, not a delay queue of its own. */
    assert_int_equal(sy_topo_retry_delay_min(&w, 2, 3600000, 0.0, &step), 120000);
    assert_int_equal(step, 3);
    assert_int_equal(sy_topo_retry_delay_min(&w, 2, -5, 0.0, &step), 1000);
    assert_int_equal(step, 0);
}

static void test_retry_jitter_stretches_but_never_shortens(void **state)
{
    struct sy_topo_worker w = {
        .name = "x", .ndelays = 4, .jitter = 0.2, .delays_ms = {1, 1000, 7, 3600000}};
    srand(12345);
    for (unsigned attempt = 2; attempt < 8; attempt++) {
        size_t step;
        long long lo = LLONG_MAX, hi = 0;
        for (int i = 0; i < 20000; i++) {
            double u = (double)rand() / ((double)RAND_MAX + 1.0);
            long long d = sy_topo_retry_delay(&w, attempt, u, &step);
            long long base = w.delays_ms[step];
            assert_true(d >= base);
            assert_true((double)d <= (double)base * 1.2);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* And the jitter really spreads the larger steps. */
        if (w.delays_ms[step] >= 1000)
            assert_true(hi - lo > w.delays_ms[step] / 10);
    }
    /* Out-of-range u is clamped, not trusted. */
    assert_int_equal(sy_topo_retry_delay(&w, 3, -1.0, NULL), 1000);
    long long top = sy_topo_retry_delay(&w, 3, 5.0, NULL);
    assert_true(top >= 1000 && top <= 1200);
    assert_int_equal(sy_topo_retry_delay(&w, 3, NAN, NULL), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fleet_topology_loads_every_worker_with_the_fleet_defaults),
        cmocka_unit_test(test_integration_topology_overrides_only_what_it_names),
        cmocka_unit_test(test_defaults_merge_key_by_key_over_builtins),
        cmocka_unit_test(test_errors_name_file_line_and_cause),
        cmocka_unit_test(test_missing_file_is_an_error),
        cmocka_unit_test(test_queue_names_follow_the_convention_and_never_truncate),
        cmocka_unit_test(test_retry_delay_picks_the_step_of_the_attempt),
        cmocka_unit_test(test_retry_after_moves_up_the_ladder_never_down),
        cmocka_unit_test(test_retry_jitter_stretches_but_never_shortens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
