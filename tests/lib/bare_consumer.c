/* bare_consumer.c - the baseline consumer of the benchmarks (see bare_consumer.h). */
#include "bare_consumer.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PREFETCH  1000
#define ACK_EVERY 250

double th_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double th_cpu_s(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long ut = 0, st = 0;
    /* Fields 14 and 15; the command name (field 2) has no spaces here. */
    if (!f ||
        fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        ut = st = 0;
    if (f)
        fclose(f);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long th_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            kb = strtol(line + klen + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void check_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "bare consumer: %s failed (%d)\n", what, (int)r.reply_type);
        exit(1);
    }
}

double th_bare_drain(const char *url_in, const char *queue, long n, double *cpu)
{
    double cpu0 = th_cpu_s(getpid());
    char *url = strdup(url_in);
    struct amqp_connection_info ci;
    if (!url || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
        fprintf(stderr, "bare consumer: bad AMQP URL\n");
        exit(1);
    }
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    double t0 = th_mono_s();
    if (amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK) {
        fprintf(stderr, "bare consumer: cannot connect to %s:%d\n", ci.host, ci.port);
        exit(1);
    }
    /* "amqp://host:port/" names the empty vhost in the URL grammar; brokers mean "/". */
    const char *vhost = ci.vhost && *ci.vhost ? ci.vhost : "/";
    check_reply(
        amqp_login(conn, vhost, 0, 131072, 15, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password),
        "login");
    amqp_channel_open(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "channel");
    amqp_basic_qos(conn, 1, 0, PREFETCH, 0);
    check_reply(amqp_get_rpc_reply(conn), "qos");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    check_reply(amqp_get_rpc_reply(conn), "consume");
    long got = 0;
    uint64_t last_tag = 0;
    while (got < n) {
        amqp_envelope_t env;
        amqp_maybe_release_buffers(conn);
        check_reply(amqp_consume_message(conn, &env, NULL, 0), "consume_message");
        got++;
        last_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        if (got % ACK_EVERY == 0 || got == n)
            amqp_basic_ack(conn, 1, last_tag, 1);
    }
    double took = th_mono_s() - t0;
    *cpu = th_cpu_s(getpid()) - cpu0;
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(url);
    return took;
}
