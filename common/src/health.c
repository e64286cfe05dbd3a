/* health.c - the health server: /healthz, /readyz and /metrics over libmicrohttpd, served by
 * one internal thread so probes keep answering while handler threads are busy. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"

#define HEALTH_CONN_LIMIT 16
#define HEALTH_TIMEOUT_S  10
#define HEALTH_WHY_MAX    256
#define HEALTH_ADDR_MAX   255

struct sy_health {
    struct MHD_Daemon *daemon;
    sy_ready_fn ready;
    void *ud;
    int port;
};

static const char text_plain[] = "text/plain; charset=utf-8";

/* Queues a response and drops our reference; MHD keeps its own until it is sent. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_static(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return reply(conn, status, text_plain, (void *)text, strlen(text), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result serve_ready(struct sy_health *h, struct MHD_Connection *conn)
{
    char why[HEALTH_WHY_MAX] = "";
    int rc = h->ready ? h->ready(h->ud, why, sizeof why) : 0;
    if (rc == 0)
        return reply_static(conn, MHD_HTTP_OK, "ready\n");
    /* The reason may quote a connection error; redact it as a log line would be. */
    char safe[HEALTH_WHY_MAX];
    why[sizeof why - 1] = '\0';
    sy_log_redact(why[0] ? why : sy_strerror(rc), safe, sizeof safe);
    char *body = NULL;
    int n = asprintf(&body, "not ready: %s\n", safe);
    if (n < 0)
        return reply_static(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
    return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text_plain, body, (size_t)n,
                 MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_metrics(struct MHD_Connection *conn)
{
    char *text = sy_metrics_render();
    if (!text)
        return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", text, strlen(text),
                 MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct sy_health *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/healthz") == 0)
        return reply_static(conn, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0)
        return serve_ready(h, conn);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(conn);
    return reply_static(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    sy_log_warn("health.http", "%s", line);
}

/* "host:port", "[v6]:port" or ":port" (all interfaces). Resolves to one socket address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon) {
        snprintf(err, errlen, "health address '%.64s' is not host:port", addr ? addr : "");
        return -SY_EINVAL;
    }
    char host[HEALTH_ADDR_MAX + 1];
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen > HEALTH_ADDR_MAX) {
        snprintf(err, errlen, "health address: host longer than %d bytes", HEALTH_ADDR_MAX);
        return -SY_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        snprintf(err, errlen, "health address '%.64s': port must be 0..65535", addr);
        return -SY_EINVAL;
    }

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "health address '%.64s': %s", addr, gai_strerror(gai));
        return -SY_EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* The port the kernel gave us when asked for port 0. */
static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        return info->port;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

struct sy_health *sy_health_start(const char *addr, sy_ready_fn ready, void *ud, char *err,
                                  size_t errlen)
{
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    struct sockaddr_storage ss = {0};
    if (parse_addr(addr, &ss, err, errlen) != 0)
        return NULL;
    struct sy_health *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->ready = ready;
    h->ud = ud;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first: MHD complains about options seen before it. */
    h->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                         NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)HEALTH_CONN_LIMIT,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HEALTH_TIMEOUT_S, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errlen, "health server: cannot listen on %.64s", addr);
        free(h);
        return NULL;
    }
    h->port = bound_port(h->daemon);
    sy_log_info("health.start", "health server listening on port %d", h->port);
    return h;
}

int sy_health_port(const struct sy_health *h)
{
    return h ? h->port : -1;
}

void sy_health_stop(struct sy_health *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
