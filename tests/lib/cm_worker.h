/* cm_worker.h - a worker process an integration test started, and what it published into an
 * unconsumed probe queue; checks fail the running cmocka test (integration tests only:
 * benchmarks do not link cmocka). */
#ifndef SY_TEST_CM_WORKER_H
#define SY_TEST_CM_WORKER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/json.h"

/* One message read back from a probe queue. */
struct th_got {
    char *id;
    json_t *env; /* the envelope as JSON */
};

/* Waits until the worker (called name) answers GET path on port with `want` (any answer when want
 * is 0); fails the test, with the worker's log, when it exits or max_ms pass first. */
static inline void th_wait_answer(struct th_proc *p, bool *running, const char *name, int port,
                                  const char *path, long want, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;
    for (;;) {
        struct th_reply r = th_http(port, "GET", path, NULL, NULL);
        bool ok = r.status != 0 && (want == 0 || r.status == want);
        th_reply_free(&r);
        if (ok)
            return;
        if (th_proc_wait(p, 0) == 0) {
            *running = false;
            th_proc_dump_log(p, 30);
            fail_msg("%s exited with %d", name, p->exit_status);
        }
        if (th_now_ms() > end) {
            th_proc_dump_log(p, 30);
            fail_msg("%s did not answer %s with %ld", name, path, want);
        }
        th_sleep_ms(50);
    }
}

/* SIGTERM; the exit status (128 + 9 when it had to be killed), -1 when it was not running. */
static inline int th_stop(struct th_proc *p, bool *running)
{
    if (!*running)
        return -1;
    th_proc_signal(p, SIGTERM);
    if (th_proc_wait(p, 10000) != 0)
        th_proc_cleanup(p);
    *running = false;
    return p->exit_status;
}

/* Moves everything now in queue into msgs[*n .. max), acking it. */
static inline void th_drain(struct sy_amqp *a, const char *queue, struct th_got *msgs, size_t max,
                            size_t *n)
{
    for (;;) {
        struct sy_amqp_msg *m = NULL;
        char err[256];
        int rc = sy_amqp_get(a, queue, &m);
        if (rc == -SY_ENOTFOUND)
            return;
        if (rc != 0)
            fail_msg("get from %s: %s (%s)", queue, sy_strerror(rc), sy_amqp_error(a));
        assert_true(*n < max);
        json_t *env = sy_msgpack_to_json(m->body, m->len, err, sizeof err);
        if (!env)
            fail_msg("undecodable message: %s", err);
        msgs[*n].id = strdup(m->message_id ? m->message_id : "");
        msgs[*n].env = env;
        (*n)++;
        assert_int_equal(sy_amqp_settle(a, m, 1, 0), 0);
        sy_amqp_msg_free(m);
    }
}

/* How many of msgs[0 .. n) carry this id; *env_out (borrowed) is the last of them. */
static inline int th_got_count(const struct th_got *msgs, size_t n, const char *id,
                               json_t **env_out)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(msgs[i].id, id) == 0) {
            k++;
            if (env_out)
                *env_out = msgs[i].env;
        }
    return k;
}

#endif
