/* it_health.c - the health server on a real socket: probes, readiness, metrics, 404 and 405. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sy/metrics.h"

struct http_reply {
    int status;
    char head[2048]; /* status line and headers */
    char body[65536];
    size_t body_len;
};

/* One HTTP/1.0 request over a fresh connection; the server closes after the reply. */
static int http_do(int port, const char *method, const char *path, struct http_reply *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[512];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    static char buf[sizeof out->head + sizeof out->body];
    size_t len = 0;
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || write(fd, req, (size_t)n) != n)
        goto out;
    for (;;) {
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        len += (size_t)got;
        if (len == sizeof buf - 1)
            goto out;
    }
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1)
        goto out;
    size_t head_len = (size_t)(sep - buf);
    if (head_len >= sizeof out->head)
        goto out;
    memcpy(out->head, buf, head_len);
    out->body_len = len - head_len - 4;
    memcpy(out->body, sep + 4, out->body_len);
    rc = 0;
out:
    close(fd);
    return rc;
}

static int http_get(int port, const char *path, struct http_reply *out)
{
    return http_do(port, "GET", path, out);
}

struct readiness {
    atomic_int ready;
    atomic_int calls;
};

static int ready_fn(void *ud, char *why, size_t whylen)
{
    struct readiness *r = ud;
    atomic_fetch_add(&r->calls, 1);
    if (atomic_load(&r->ready))
        return 0;
    snprintf(why, whylen, "broker connection lost");
    return -1;
}

static struct sy_health *start(sy_ready_fn fn, void *ud)
{
    char err[256] = "";
    struct sy_health *h = sy_health_start("127.0.0.1:0", fn, ud, err, sizeof err);
    if (!h)
        fprintf(stderr, "sy_health_start: %s\n", err);
    assert_non_null(h);
    int port = sy_health_port(h);
    assert_true(port > 0 && port < 65536);
    return h;
}

static void healthz_answers_ok_on_a_kernel_chosen_port(void **state)
{
    struct sy_health *h = start(NULL, NULL);
    int port = sy_health_port(h);
    struct http_reply r;
    assert_int_equal(http_get(port, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    sy_health_stop(h);
    /* Stopped means the port no longer answers. */
    assert_int_not_equal(http_get(port, "/healthz", &r), 0);
}

static void readyz_follows_the_ready_function(void **state)
{
    struct readiness rd = {0};
    struct sy_health *h = start(ready_fn, &rd);
    int port = sy_health_port(h);
    struct http_reply r;

    assert_int_equal(http_get(port, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "broker connection lost"));

    atomic_store(&rd.ready, 1);
    assert_int_equal(http_get(port, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ready\n");

    atomic_store(&rd.ready, 0);
    assert_int_equal(http_get(port, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(atomic_load(&rd.calls), 3);

    /* Liveness does not depend on readiness. */
    assert_int_equal(http_get(port, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    sy_health_stop(h);
}

static void readyz_without_a_function_is_ready(void **state)
{
    struct sy_health *h = start(NULL, NULL);
    struct http_reply r;
    assert_int_equal(http_get(sy_health_port(h), "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    sy_health_stop(h);
}

static int leaky_ready_fn(void *ud, char *why, size_t whylen)
{
    snprintf(why, whylen, "cannot reach amqp://guest:hunter2secret@127.0.0.1:5672/");
    return -1;
}

static void readyz_reason_is_redacted(void **state)
{
    struct sy_health *h = start(leaky_ready_fn, NULL);
    struct http_reply r;
    assert_int_equal(http_get(sy_health_port(h), "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "cannot reach amqp://"));
    assert_null(strstr(r.body, "hunter2secret"));
    sy_health_stop(h);
}

static void metrics_are_served_as_prometheus_text(void **state)
{
    struct sy_counter *c = sy_counter_get("it_health_probe_total", "Probes in the test.", NULL);
    assert_non_null(c);
    sy_counter_add(c, 42);
    struct sy_health *h = start(NULL, NULL);
    struct http_reply r;
    assert_int_equal(http_get(sy_health_port(h), "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "\r\nContent-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "# TYPE it_health_probe_total counter\n"
                                   "it_health_probe_total 42\n"));
    sy_health_stop(h);
}

static void unknown_paths_are_404_and_other_methods_405(void **state)
{
    struct sy_health *h = start(NULL, NULL);
    int port = sy_health_port(h);
    struct http_reply r;
    assert_int_equal(http_get(port, "/nope", &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(http_get(port, "/healthz/", &r), 0);
    assert_int_equal(r.status, 404);

    assert_int_equal(http_do(port, "POST", "/healthz", &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strcasestr(r.head, "\r\nAllow: GET, HEAD"));
    assert_int_equal(http_do(port, "DELETE", "/metrics", &r), 0);
    assert_int_equal(r.status, 405);

    /* HEAD is allowed and carries no body. */
    assert_int_equal(http_do(port, "HEAD", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    sy_health_stop(h);
}

static void bad_addresses_are_refused_with_a_reason(void **state)
{
    char err[256];
    assert_null(sy_health_start("no-port", NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "no-port"));
    assert_null(sy_health_start("127.0.0.1:70000", NULL, NULL, err, sizeof err));
    assert_true(err[0] != '\0');

    /* A port already taken is an error at start, not a silent second listener. */
    struct sy_health *h = start(NULL, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", sy_health_port(h));
    assert_null(sy_health_start(addr, NULL, NULL, err, sizeof err));
    assert_true(err[0] != '\0');
    sy_health_stop(h);
    sy_health_stop(NULL);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void oversized_request_is_refused_with_431(void **state)
{
    struct sy_health *h = start(NULL, NULL);
    int fd = connect_to(sy_health_port(h));
    static char big[8192];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /healthz HTTP/1.0\r\nX-Long: ", 32);
    assert_int_equal(write(fd, big, sizeof big), (ssize_t)sizeof big);
    char buf[256] = "";
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_true(read(fd, buf, sizeof buf - 1) > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 431 "));
    close(fd);
    sy_health_stop(h);
}

static void a_silent_client_does_not_stop_the_probes(void **state)
{
    struct sy_health *h = start(NULL, NULL);
    int port = sy_health_port(h);
    int idle = connect_to(port); /* connects and never sends a byte */
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    struct http_reply r;
    assert_int_equal(http_get(port, "/healthz", &r), 0);
    gettimeofday(&t1, NULL);
    assert_int_equal(r.status, 200);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    assert_true(ms < 4000); /* at most the per-request deadline (2 s) behind the idle one */
    close(idle);
    sy_health_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(healthz_answers_ok_on_a_kernel_chosen_port),
        cmocka_unit_test(oversized_request_is_refused_with_431),
        cmocka_unit_test(a_silent_client_does_not_stop_the_probes),
        cmocka_unit_test(readyz_follows_the_ready_function),
        cmocka_unit_test(readyz_without_a_function_is_ready),
        cmocka_unit_test(readyz_reason_is_redacted),
        cmocka_unit_test(metrics_are_served_as_prometheus_text),
        cmocka_unit_test(unknown_paths_are_404_and_other_methods_405),
        cmocka_unit_test(bad_addresses_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
