/* bench_drain.c - how fast and how small the runtime is, against a bare librabbitmq consumer
 * measured in the same run on the same broker:
 *   1. a bare consumer (prefetch 1000, multiple acks) drains N pre-filled messages, and
 *   2. sy-probe with a no-op handler (prefetch 1000; it still decodes and schema-checks
 *      every message) drains N pre-filled messages, in rounds B R1 R4 R4 R1 B
 *      (R1: one handler thread, R4: the default four);
 *   3. the idle RSS of a worker consuming an empty queue;
 *   4. the time from process start to the first message handled (median of 7).
 * N defaults to 200000 (SY_BENCH_N). Prints figures and ratios; always exits 0 when it ran. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bare_consumer.h"
#include "harness.h"
#include "sy/amqp.h"
#include "sy/topology.h"

static void prefill(struct sy_amqp *a, const char *run, long n)
{
    double t0 = th_mono_s();
    for (long i = 0; i < n; i++) {
        if (th_publish_probe(a, "sy.events", "probe.work", run, i, "ack", -1, -1, NULL) != 0) {
            fprintf(stderr, "bench: publish failed: %s\n", sy_amqp_error(a));
            exit(1);
        }
        if ((i + 1) % 2000 == 0 && sy_amqp_wait_confirms(a, 60000) != 0) {
            fprintf(stderr, "bench: confirms failed: %s\n", sy_amqp_error(a));
            exit(1);
        }
    }
    if (sy_amqp_wait_confirms(a, 60000) != 0)
        exit(1);
    fprintf(stderr, "bench: prefilled %ld messages in %.2f s\n", n, th_mono_s() - t0);
}

/* Reads one counter from the worker's /metrics (sum over its label sets); -1 on failure. */
static long long metric(int port, const char *name)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    const char *req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    static char buf[1 << 20];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    long long total = -1;
    size_t nlen = strlen(name);
    for (char *line = buf; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, nlen) == 0 && (line[nlen] == ' ' || line[nlen] == '{')) {
            char *sp = strchr(line, ' ');
            if (sp)
                total = (total < 0 ? 0 : total) + strtoll(sp + 1, NULL, 10);
        }
    }
    return total;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    long n = getenv("SY_BENCH_N") ? atol(getenv("SY_BENCH_N")) : 200000;
    const char *url = th_need_env("SY_AMQP_URL");
    const char *bin = th_need_env("SY_PROBE_BIN");
    struct sy_topology *topo = NULL;
    struct sy_amqp *a = th_amqp(&topo);
    th_purge_worker(a, topo, "probe");
    char run[17];
    th_run_id(run);

    /* Baseline and runtime alternate B R1 R4 R4 R1 B: the broker's state drifts over a run
     * (quorum queue logs grow, memory is reclaimed), and this order cancels a linear drift.
     * R1 runs one handler thread, R4 the default four: with a no-op handler on a small machine
     * the extra threads only compete with the broker for CPU, and the figures show how much. */
    int port = free_port();
    char http[64];
    snprintf(http, sizeof http, "SY_HTTP_ADDR=127.0.0.1:%d", port);
    struct th_proc w;
    double bare = 0, rt1 = 0, rt4 = 0, cpu_bare = 0, cpu1 = 0, cpu4 = 0;
    for (const char *round = "B1441B"; *round; round++) {
        prefill(a, run, n);
        if (*round == 'B') {
            double cpu;
            double t = th_bare_drain(url, "sy.probe", n, &cpu);
            cpu_bare += cpu;
            printf("baseline  bare librabbitmq consumer: %ld msgs in %.3f s = %.0f msg/s\n", n, t,
                   n / t);
            bare += t;
            continue;
        }
        const char *threads = *round == '1' ? "SY_HANDLER_THREADS=1" : "SY_HANDLER_THREADS=4";
        const char *env[] = {
            "SY_PROBE_NOOP=1", "SY_PREFETCH=1000", "SY_LOG_LEVEL=warn", http, threads, NULL};
        double t0 = th_mono_s();
        th_proc_spawn(&w, bin, env);
        while (metric(port, "sy_acked_total") < n && th_mono_s() - t0 < 600)
            th_sleep_ms(2);
        double t = th_mono_s() - t0;
        *(*round == '1' ? &cpu1 : &cpu4) += th_cpu_s(w.pid);
        printf("runtime   sy-probe no-op, %c thread%s: %ld msgs in %.3f s = %.0f msg/s\n", *round,
               *round == '1' ? " " : "s", n, t, n / t);
        *(*round == '1' ? &rt1 : &rt4) += t;
        th_proc_signal(&w, SIGTERM);
        th_proc_wait(&w, 30000);
    }
    printf("ratio     runtime / baseline rate:  %.2f with 1 handler thread, %.2f with 4 "
           "(target >= 0.90)\n",
           bare / rt1, bare / rt4);
    /* CPU per message does not depend on how the broker and the worker share the cores. */
    printf("cpu       per message: bare %.2f us, runtime %.2f us (1 thread), %.2f us (4 threads)\n",
           cpu_bare * 1e6 / (2.0 * n), cpu1 * 1e6 / (2.0 * n), cpu4 * 1e6 / (2.0 * n));

    /* Idle: a worker with default settings, connected and consuming an empty queue. */
    const char *idle_env[] = {"SY_PROBE_NOOP=1", "SY_LOG_LEVEL=warn", http, NULL};
    th_proc_spawn(&w, bin, idle_env);
    th_sleep_ms(1000);
    long kb = rss_kb(w.pid);
    printf("idle RSS  of a worker:              %.1f MB (target <= 5 MB)\n", kb / 1024.0);
    th_proc_signal(&w, SIGTERM);
    th_proc_wait(&w, 30000);

    /* Start-up: one message waiting, then time from fork to the handler's first call. */
    enum { RUNS = 7 };
    double lat[RUNS];
    char stamp_path[300], stamp_env[340];
    snprintf(stamp_path, sizeof stamp_path, "%s/bench-stamp-%d",
             getenv("SY_BUILD_DIR") ? getenv("SY_BUILD_DIR") : ".", (int)getpid());
    snprintf(stamp_env, sizeof stamp_env, "SY_PROBE_STAMP_FILE=%s", stamp_path);
    for (int i = 0; i < RUNS; i++) {
        unlink(stamp_path);
        th_publish_probe(a, "sy.events", "probe.work", run, i, "ack", -1, -1, NULL);
        sy_amqp_wait_confirms(a, 10000);
        const char *env1[] = {"SY_PROBE_NOOP=1", "SY_LOG_LEVEL=warn", stamp_env, NULL};
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        th_proc_spawn(&w, bin, env1);
        int64_t first_ns = 0;
        for (int tries = 0; tries < 5000 && first_ns == 0; tries++) {
            FILE *f = fopen(stamp_path, "r");
            if (f) {
                if (fscanf(f, "%" SCNd64, &first_ns) != 1)
                    first_ns = 0;
                fclose(f);
            }
            if (!first_ns)
                th_sleep_ms(1);
        }
        lat[i] = (double)(first_ns - start_ns) / 1e6;
        th_proc_signal(&w, SIGTERM);
        th_proc_wait(&w, 30000);
    }
    unlink(stamp_path);
    qsort(lat, RUNS, sizeof lat[0], cmp_double);
    printf("startup   process start to first message: median %.1f ms, max %.1f ms "
           "(target <= 50 ms)\n",
           lat[RUNS / 2], lat[RUNS - 1]);
    sy_amqp_destroy(a);
    sy_topology_destroy(topo);
    return 0;
}
