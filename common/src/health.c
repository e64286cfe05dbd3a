/* health.c - the health server: /healthz, /readyz and /metrics, served by one small thread so
 * probes keep answering while handler threads are busy.
 *
 * Three GET endpoints for probes and scrapers need no HTTP library: a general-purpose server
 * (libmicrohttpd brings GnuTLS and its dependencies) would more than double an idle worker's
 * resident memory. Requests are read with a deadline and a size limit, one connection at a
 * time, and every answer closes the connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sy/clock.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"

#define HEALTH_REQ_MAX     4096 /* request line and headers; a probe sends a few hundred bytes */
#define HEALTH_DEADLINE_MS 2000 /* to read a request and write its answer */
#define HEALTH_WHY_MAX     256
#define HEALTH_ADDR_MAX    255

struct sy_health {
    int fd;
    int stop_pipe[2];
    pthread_t tid;
    sy_ready_fn ready;
    void *ud;
    int port;
};

static const char text_plain[] = "text/plain; charset=utf-8";

/* Waits for fd to be ready for `events` until the deadline: 0, or -1 on timeout/error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - sy_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int write_all(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        if (wait_fd(fd, POLLOUT, deadline) != 0)
            return -1;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static void respond(int fd, int status, const char *ctype, const char *body, bool head,
                    int64_t deadline)
{
    char hdr[512];
    size_t len = strlen(body);
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                     status, status_text(status), ctype, len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (write_all(fd, hdr, (size_t)n, deadline) == 0 && !head)
        write_all(fd, body, len, deadline);
}

static void serve_ready(struct sy_health *h, int fd, bool head, int64_t deadline)
{
    char why[HEALTH_WHY_MAX] = "";
    int rc = h->ready ? h->ready(h->ud, why, sizeof why) : 0;
    if (rc == 0) {
        respond(fd, 200, text_plain, "ready\n", head, deadline);
        return;
    }
    /* The reason may quote a connection error; redact it as a log line would be. */
    char safe[HEALTH_WHY_MAX], body[HEALTH_WHY_MAX + 16];
    why[sizeof why - 1] = '\0';
    sy_log_redact(why[0] ? why : sy_strerror(rc), safe, sizeof safe);
    snprintf(body, sizeof body, "not ready: %s\n", safe);
    respond(fd, 503, text_plain, body, head, deadline);
}

static void serve_metrics(int fd, bool head, int64_t deadline)
{
    char *text = sy_metrics_render();
    if (!text) {
        respond(fd, 500, text_plain, "out of memory\n", head, deadline);
        return;
    }
    respond(fd, 200, "text/plain; version=0.0.4", text, head, deadline);
    free(text);
}

/* Reads one request head (up to the blank line) and answers it. */
static void serve_conn(struct sy_health *h, int fd)
{
    int64_t deadline = sy_mono_ms() + HEALTH_DEADLINE_MS;
    char req[HEALTH_REQ_MAX + 1];
    size_t len = 0;
    for (;;) {
        if (wait_fd(fd, POLLIN, deadline) != 0)
            return;
        ssize_t n = recv(fd, req + len, HEALTH_REQ_MAX - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
        if (len == HEALTH_REQ_MAX) {
            respond(fd, 431, text_plain, "request too large\n", false, deadline);
            return;
        }
    }
    /* "METHOD SP target SP HTTP/x.y" */
    char method[16], target[1024];
    if (sscanf(req, "%15[A-Z] %1023[^ \r\n] HTTP/", method, target) != 2) {
        respond(fd, 400, text_plain, "bad request\n", false, deadline);
        return;
    }
    target[strcspn(target, "?")] = '\0';
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0)
        respond(fd, 405, text_plain, "method not allowed\n", false, deadline);
    else if (strcmp(target, "/healthz") == 0)
        respond(fd, 200, text_plain, "ok\n", head, deadline);
    else if (strcmp(target, "/readyz") == 0)
        serve_ready(h, fd, head, deadline);
    else if (strcmp(target, "/metrics") == 0)
        serve_metrics(fd, head, deadline);
    else
        respond(fd, 404, text_plain, "not found\n", head, deadline);
}

static void *health_main(void *arg)
{
    struct sy_health *h = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = h->fd, .events = POLLIN},
                              {.fd = h->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            sy_log_error("health.poll", "poll failed: %s", strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
            continue; /* the client gave up, or fds ran out: the next probe tries again */
        serve_conn(h, c);
        close(c);
    }
    return NULL;
}

/* "host:port", "[v6]:port" or ":port" (all interfaces). Resolves to one socket address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                      size_t errlen)
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
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
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
    socklen_t sslen = 0;
    if (parse_addr(addr, &ss, &sslen, err, errlen) != 0)
        return NULL;
    struct sy_health *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->ready = ready;
    h->ud = ud;
    h->stop_pipe[0] = h->stop_pipe[1] = -1;
    int one = 1;
    h->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (h->fd < 0 || setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(h->fd, (struct sockaddr *)&ss, sslen) != 0 || listen(h->fd, 16) != 0) {
        snprintf(err, errlen, "health server: cannot listen on %.64s: %s", addr, strerror(errno));
        goto fail;
    }
    if (pipe2(h->stop_pipe, O_CLOEXEC) != 0 || pthread_create(&h->tid, NULL, health_main, h)) {
        snprintf(err, errlen, "health server: cannot start its thread");
        goto fail;
    }
    h->port = bound_port(h->fd);
    sy_log_info("health.start", "health server listening on port %d", h->port);
    return h;
fail:
    if (h->fd >= 0)
        close(h->fd);
    if (h->stop_pipe[0] >= 0) {
        close(h->stop_pipe[0]);
        close(h->stop_pipe[1]);
    }
    free(h);
    return NULL;
}

int sy_health_port(const struct sy_health *h)
{
    return h ? h->port : -1;
}

void sy_health_stop(struct sy_health *h)
{
    if (!h)
        return;
    char b = 1;
    if (write(h->stop_pipe[1], &b, 1) == 1)
        pthread_join(h->tid, NULL);
    close(h->fd);
    close(h->stop_pipe[0]);
    close(h->stop_pipe[1]);
    free(h);
}
