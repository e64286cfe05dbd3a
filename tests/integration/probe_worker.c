/* probe_worker.c - the worker the integration tests and benchmarks drive. Each probe.work
 * message says what to do (ack, retry, reject, sleep); every handling is recorded in Redis:
 *   sy:probe:<run>:seen   hash id -> number of handlings
 *   sy:probe:<run>:done   set of ids finished with ACK
 *   sy:probe:<run>:t:<id> list of handling times (ms since the epoch)
 * Environment: SY_PROBE_WORKER (topology worker name, default "probe"), SY_PROBE_BATCH
 * (1 = batch handler), SY_PROBE_BATCH_MAX, SY_PROBE_NOOP (1 = ack without touching Redis, for
 * benchmarks), SY_PROBE_STAMP_FILE (write the wall-clock ns of the first message there).
 * SY_PROBE_PUBLISH=N makes it a publishing-only worker instead (a `run` loop, no queue): it
 * publishes N probe.work messages with ids "<SY_PROBE_RUN>-<i>", then waits for SIGTERM, or
 * returns a failure at once with SY_PROBE_RUN_FAIL=1. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "sy/err.h"
#include "sy/log.h"
#include "sy/msg.h"
#include "sy/worker.h"

struct probe {
    const char *redis_url;
    bool noop;
    const char *stamp_file;
    atomic_bool stamped;
};

struct probe_thread {
    struct probe *probe;
    redisContext *redis;
};

static struct probe probe_state;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stamp_first(struct probe *p)
{
    if (!p->stamp_file || atomic_exchange(&p->stamped, true))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    FILE *f = fopen(p->stamp_file, "w");
    if (f) {
        fprintf(f, "%" PRId64 "\n", (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
        fclose(f);
    }
}

static int probe_init(struct sy_worker *w, void **state)
{
    struct probe *p = &probe_state;
    p->redis_url = sy_worker_url(w, "redis");
    const char *noop = getenv("SY_PROBE_NOOP");
    p->noop = noop && strcmp(noop, "1") == 0;
    p->stamp_file = getenv("SY_PROBE_STAMP_FILE");
    if (!p->noop && !p->redis_url) {
        sy_log_error("probe.init", "SY_REDIS_URL is required unless SY_PROBE_NOOP=1");
        return -SY_ECONFIG;
    }
    *state = p;
    return 0;
}

static int probe_thread_init(void *state, void **tstate)
{
    struct probe *p = state;
    struct probe_thread *t = calloc(1, sizeof *t);
    if (!t)
        return -SY_ENOMEM;
    t->probe = p;
    if (!p->noop) {
        char host[128] = "127.0.0.1";
        int port = 6379;
        sscanf(p->redis_url, "redis://%127[^:/]:%d", host, &port);
        struct timeval tv = {5, 0};
        t->redis = redisConnectWithTimeout(host, port, tv);
        if (!t->redis || t->redis->err) {
            sy_log_error("probe.redis", "cannot connect: %s",
                         t->redis ? t->redis->errstr : "out of memory");
            redisFree(t->redis);
            free(t);
            return -SY_ECONN;
        }
    }
    *tstate = t;
    return 0;
}

static void probe_thread_exit(void *state, void *tstate)
{
    struct probe_thread *t = tstate;
    if (t)
        redisFree(t->redis);
    free(t);
}

/* Queues the Redis commands recording one handling; the caller reads the replies. */
static int record(struct probe_thread *t, struct sy_msg *msg, const char *run, bool done)
{
    const char *id = sy_msg_id(msg);
    int n = 0;
    redisAppendCommand(t->redis, "HINCRBY sy:probe:%s:seen %s 1", run, id);
    redisAppendCommand(t->redis, "RPUSH sy:probe:%s:t:%s %lld", run, id, (long long)now_ms());
    n += 2;
    if (done) {
        redisAppendCommand(t->redis, "SADD sy:probe:%s:done %s", run, id);
        n++;
    }
    return n;
}

static int read_replies(struct probe_thread *t, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(t->redis, (void **)&rep) != REDIS_OK) {
            rc = -SY_ECONN;
            break;
        }
        if (rep->type == REDIS_REPLY_ERROR)
            rc = -SY_EIO;
        freeReplyObject(rep);
    }
    return rc;
}

/* Decides the verdict of one message from its action; *done says whether it finished. */
static enum sy_verdict decide(struct sy_msg *msg, bool *done)
{
    const char *action = "ack";
    size_t alen = 3;
    sy_msg_get_str(msg, "action", &action, &alen);
    int64_t v = 0;
    *done = false;
    if (alen == 5 && memcmp(action, "retry", 5) == 0) {
        int64_t fail_times = INT64_MAX;
        sy_msg_get_int(msg, "fail_times", &fail_times);
        if ((int64_t)sy_msg_attempt(msg) <= fail_times)
            return sy_msg_fail(msg, SY_RETRY, "probe retry, attempt %u", sy_msg_attempt(msg));
    } else if (alen == 6 && memcmp(action, "reject", 6) == 0) {
        return sy_msg_fail(msg, SY_REJECT, "probe reject");
    } else if (alen == 5 && memcmp(action, "sleep", 5) == 0) {
        if (sy_msg_get_int(msg, "sleep_ms", &v) == 0 && v > 0) {
            struct timespec ts = {v / 1000, (v % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    } else if (alen == 5 && memcmp(action, "crash", 5) == 0) {
        abort();
    }
    *done = true;
    return SY_ACK;
}

static enum sy_verdict probe_handle(void *tstate, struct sy_msg *msg)
{
    struct probe_thread *t = tstate;
    stamp_first(t->probe);
    if (t->probe->noop)
        return SY_ACK;
    char run[65];
    if (sy_msg_copy_str(msg, "run", run, sizeof run) != 0)
        return sy_msg_fail(msg, SY_REJECT, "run: unreadable");
    bool done;
    enum sy_verdict v = decide(msg, &done);
    int rc = read_replies(t, record(t, msg, run, done));
    if (rc != 0)
        return sy_msg_fail(msg, SY_RETRY, "redis: %s", sy_strerror(rc));
    return v;
}

/* The batch form: all recordings of the batch go to Redis in one pipeline, one verdict each. */
static void probe_handle_batch(void *tstate, struct sy_msg **msgs, size_t n)
{
    struct probe_thread *t = tstate;
    stamp_first(t->probe);
    if (t->probe->noop)
        return;
    int pending = 0;
    for (size_t i = 0; i < n; i++) {
        char run[65];
        if (sy_msg_copy_str(msgs[i], "run", run, sizeof run) != 0) {
            sy_msg_fail(msgs[i], SY_REJECT, "run: unreadable");
            continue;
        }
        bool done;
        decide(msgs[i], &done);
        pending += record(t, msgs[i], run, done);
    }
    int rc = read_replies(t, pending);
    for (size_t i = 0; rc != 0 && i < n; i++)
        sy_msg_fail(msgs[i], SY_RETRY, "redis: %s", sy_strerror(rc));
}

static int publisher_init(struct sy_worker *w, void **state)
{
    *state = w;
    return 0;
}

static int publisher_run(void *state)
{
    struct sy_worker *w = state;
    const char *n_txt = getenv("SY_PROBE_PUBLISH"), *run = getenv("SY_PROBE_RUN");
    const char *fail = getenv("SY_PROBE_RUN_FAIL");
    long n = n_txt ? strtol(n_txt, NULL, 10) : 0;

    if (!run || !*run)
        run = "publisher";
    for (long i = 0; i < n && !sy_worker_stopping(w); i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char id[SY_MSG_ID_MAX + 1];
        int rc;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "run", 3);
        msgpack_pack_str_with_body(&pk, run, strlen(run));
        msgpack_pack_str_with_body(&pk, "n", 1);
        msgpack_pack_long(&pk, i);
        msgpack_pack_str_with_body(&pk, "action", 6);
        msgpack_pack_str_with_body(&pk, "ack", 3);
        snprintf(id, sizeof id, "%s-%ld", run, i);
        /* The broker connection may still be coming up: retry until it confirms. */
        while ((rc = sy_worker_publish(w, "probe.work", id, sb.data, sb.size, 5000, NULL)) != 0 &&
               sy_err_retriable(rc) && !sy_worker_sleep(w, 100)) {
        }
        msgpack_sbuffer_destroy(&sb);
        if (rc != 0) {
            sy_log_error("probe.publish", "publish %s failed: %s", id, sy_strerror(rc));
            return rc;
        }
    }
    if (fail && strcmp(fail, "1") == 0)
        return -SY_EINTERNAL;
    while (!sy_worker_sleep(w, 60000)) {
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (getenv("SY_PROBE_PUBLISH")) {
        static const struct sy_handler ph = {
            .name = "publisher",
            .init = publisher_init,
            .run = publisher_run,
        };
        return sy_worker_main(&ph, argc, argv);
    }
    struct sy_handler h = {
        .name = "probe",
        .init = probe_init,
        .thread_init = probe_thread_init,
        .thread_exit = probe_thread_exit,
        .handle = probe_handle,
    };
    const char *name = getenv("SY_PROBE_WORKER");
    if (name && *name)
        h.name = name;
    const char *batch = getenv("SY_PROBE_BATCH");
    if (batch && strcmp(batch, "1") == 0) {
        const char *max = getenv("SY_PROBE_BATCH_MAX");
        h.handle = NULL;
        h.handle_batch = probe_handle_batch;
        h.batch_max = max ? (unsigned)atoi(max) : 50;
        h.batch_wait_ms = 20;
    }
    return sy_worker_main(&h, argc, argv);
}
