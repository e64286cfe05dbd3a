/* test_http.c - the runtime's HTTP client against a small server on loopback: methods, bodies
 * and headers arrive; statuses, Retry-After (seconds and dates) and redirects come back as the
 * verdict rule says; size caps (announced or not), timeouts, refused connections and plain
 * http:// fail with their codes; GETs share one kept-alive connection while a POST gets its
 * own; and no error text carries a header value, a query token or a URL password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sy/err.h"
#include "sy/http.h"

#define HDR_SECRET "hdr-secret-4711"
#define QS_SECRET  "qs-secret-0815"
#define PW_SECRET  "pw-secret-2342"

/* --- the server ------------------------------------------------------------------------------ */

static struct MHD_Daemon *daemon_;
static unsigned short port_;
static atomic_int connections_; /* TCP connections accepted */
static atomic_int requests_;    /* requests answered, of any path */
static atomic_int echoes_;      /* requests answered by /echo */
static atomic_long produced_;   /* body bytes /big and /stream handed to the server */
static atomic_int stall_ms_;    /* how long /big and /stream wait before their first byte */

struct upload {
    char *p;
    size_t len;
};

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    (void)socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&connections_, 1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_ctx,
                         enum MHD_RequestTerminationCode code)
{
    struct upload *u = *req_ctx;

    (void)cls;
    (void)c;
    (void)code;
    if (u) {
        free(u->p);
        free(u);
        *req_ctx = NULL;
    }
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static long arg_long(struct MHD_Connection *c, const char *name, long dflt)
{
    const char *v = arg(c, name);
    return v ? strtol(v, NULL, 10) : dflt;
}

/* Filler bytes for /big and /stream, counted so a test can tell how much the client took. */
static ssize_t fill(void *cls, uint64_t pos, char *buf, size_t max)
{
    uint64_t total = (uint64_t)(uintptr_t)cls;
    size_t n;

    if (pos >= total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (pos == 0 && atomic_load(&stall_ms_) > 0)
        usleep((useconds_t)atomic_load(&stall_ms_) * 1000);
    n = total - pos < max ? (size_t)(total - pos) : max;
    memset(buf, 'x', n);
    atomic_fetch_add(&produced_, (long)n);
    return (ssize_t)n;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body,
                              const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* {"method","body","probe","content_type","expect","ua"}: what arrived. */
static enum MHD_Result echo(struct MHD_Connection *c, const char *method, const struct upload *u)
{
    const char *probe = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Probe");
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
    const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    const char *hdrs[] = {"Content-Type", "application/json", NULL};
    json_t *o =
        json_pack("{s:s, s:s#, s:s?, s:s?, s:s?, s:s?}", "method", method, "body", u->p ? u->p : "",
                  (int)u->len, "probe", probe, "content_type", ctype, "expect", expect, "ua", ua);
    char *text = json_dumps(o, JSON_COMPACT);
    enum MHD_Result ret = answer(c, 200, text, hdrs);

    free(text);
    json_decref(o);
    atomic_fetch_add(&echoes_, 1);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **req_ctx)
{
    struct upload *u = *req_ctx;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    (void)cls;
    (void)version;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return MHD_NO;
        *req_ctx = u;
        return MHD_YES;
    }
    if (*data_size > 0) {
        char *p = realloc(u->p, u->len + *data_size + 1);
        if (!p)
            return MHD_NO;
        memcpy(p + u->len, data, *data_size);
        u->p = p;
        u->len += *data_size;
        u->p[u->len] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&requests_, 1);

    if (strcmp(url, "/echo") == 0)
        return echo(c, method, u);
    if (strcmp(url, "/status") == 0) {
        /* ?code=N[&retry=<Retry-After as sent>][&retry_in=<seconds, sent as an HTTP date>]
         * [&body=<text>] */
        const char *retry = arg(c, "retry"), *body = arg(c, "body");
        char date[64];
        const char *hdrs[3] = {NULL};

        if (arg(c, "retry_in")) {
            time_t t = time(NULL) + arg_long(c, "retry_in", 0);
            struct tm tm;

            gmtime_r(&t, &tm);
            strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            retry = date;
        }
        if (retry) {
            hdrs[0] = "Retry-After";
            hdrs[1] = retry;
        }
        return answer(c, (unsigned)arg_long(c, "code", 200), body ? body : "", hdrs);
    }
    if (strcmp(url, "/redirect") == 0) {
        const char *hdrs[] = {"Location", "/echo", NULL};
        return answer(c, 302, "moved", hdrs);
    }
    if (strcmp(url, "/big") == 0 || strcmp(url, "/stream") == 0) {
        /* ?n=<bytes>: /big announces them in Content-Length, /stream sends them chunked. */
        uint64_t n = (uint64_t)arg_long(c, "n", 0);

        resp = MHD_create_response_from_callback(url[1] == 'b' ? n : MHD_SIZE_UNKNOWN, 16 * 1024,
                                                 fill, (void *)(uintptr_t)n, NULL);
        ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (strcmp(url, "/slow") == 0) {
        /* Each connection has its own thread here, so this holds up only this answer. */
        usleep((useconds_t)arg_long(c, "ms", 0) * 1000);
        return answer(c, 200, "late", NULL);
    }
    return answer(c, 404, "{\"error\":\"no such path\"}", NULL);
}

static int server_start(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    const union MHD_DaemonInfo *info;

    (void)state;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                               NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
                               (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
                               NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                               MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!daemon_ || !(info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT)))
        return -1;
    port_ = info->port;
    return 0;
}

static int server_stop(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    return 0;
}

/* --- helpers -----------------------------------------------------------------------------------
 */

static const char *url(const char *path_and_query)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%u%s", port_, path_and_query);
    return buf;
}

/* A client for loopback http://, with a small cap and a short timeout for the failure cases. */
static struct sy_http *client(void)
{
    struct sy_http_opts o = {.insecure_http = 1, .body_max = 1024, .timeout_ms = 2000};
    struct sy_http *h = sy_http_new(&o);
    assert_non_null(h);
    return h;
}

/* One request whose answer must have come: the verdict and delay it gets. */
static int verdict_of(struct sy_http *h, const char *path, long status, int *delay)
{
    struct sy_http_resp r = {0};
    char err[256] = "";
    int rc = sy_http_do(h, "GET", url(path), NULL, NULL, 0, &r, err, sizeof err);
    int v;

    if (rc != 0)
        fail_msg("GET %s: %d %s", path, rc, err);
    assert_int_equal(r.status, status);
    v = sy_http_verdict(rc, &r, delay);
    sy_http_resp_free(&r);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void assert_err_clean(const char *err)
{
    assert_true(err[0] != '\0');
    assert_null(strstr(err, HDR_SECRET));
    assert_null(strstr(err, QS_SECRET));
    assert_null(strstr(err, PW_SECRET));
}

/* --- cases ------------------------------------------------------------------------------------ */

static void json_echo_carries_method_body_and_headers(void **state)
{
    struct sy_http *h = client();
    const char *headers[] = {"X-Probe: probe-value", NULL};
    json_t *body = json_pack("{s:s, s:i}", "name", "pump 7", "n", 3), *out = NULL, *sent;
    struct sy_http_resp r = {0};
    char err[256] = "";
    int delay = 0;

    (void)state;
    assert_int_equal(
        sy_http_json(h, "PATCH", url("/echo"), headers, body, &r, &out, err, sizeof err), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(r.content_type);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.retry_after_s, -1);
    assert_int_equal(sy_http_verdict(0, &r, &delay), 0);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "method")), "PATCH");
    assert_string_equal(json_string_value(json_object_get(out, "probe")), "probe-value");
    assert_string_equal(json_string_value(json_object_get(out, "content_type")),
                        "application/json");
    /* No 100-continue round trip before a body. */
    assert_null(json_string_value(json_object_get(out, "expect")));
    assert_non_null(strstr(json_string_value(json_object_get(out, "ua")), "switchyard/"));
    sent = json_loads(json_string_value(json_object_get(out, "body")), 0, NULL);
    assert_non_null(sent);
    assert_true(json_equal(sent, body));
    json_decref(sent);
    json_decref(out);
    sy_http_resp_free(&r);
    sy_http_resp_free(&r); /* a second free is harmless */

    /* A GET has no body; a DELETE goes out as DELETE. */
    assert_int_equal(sy_http_json(h, "GET", url("/echo"), NULL, NULL, &r, &out, err, sizeof err),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(out, "body")), "");
    json_decref(out);
    sy_http_resp_free(&r);
    assert_int_equal(sy_http_do(h, "DELETE", url("/echo"), NULL, NULL, 0, &r, err, sizeof err), 0);
    assert_non_null(strstr(r.body, "\"method\":\"DELETE\""));
    assert_int_equal((int)strlen(r.body), (int)r.len);
    sy_http_resp_free(&r);
    json_decref(body);
    sy_http_destroy(h);
}

static void created_with_empty_body_gives_no_json(void **state)
{
    struct sy_http *h = client();
    json_t *body = json_pack("{s:s}", "a", "b"), *out = (json_t *)1;
    struct sy_http_resp r = {0};
    char err[256] = "";
    int delay = 0;

    (void)state;
    assert_int_equal(
        sy_http_json(h, "POST", url("/status?code=201"), NULL, body, &r, &out, err, sizeof err), 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.len, 0);
    assert_non_null(r.body);
    assert_string_equal(r.body, "");
    assert_null(out);
    assert_int_equal(sy_http_verdict(0, &r, &delay), 0);
    sy_http_resp_free(&r);

    /* Not JSON: an answer all the same, and no parsed value. */
    assert_int_equal(sy_http_json(h, "GET", url("/status?code=200&body=%3Chtml%3E"), NULL, NULL, &r,
                                  &out, err, sizeof err),
                     0);
    assert_string_equal(r.body, "<html>");
    assert_null(out);
    sy_http_resp_free(&r);
    json_decref(body);
    sy_http_destroy(h);
}

static void too_many_requests_retries_after_the_seconds_given(void **state)
{
    struct sy_http *h = client();
    int delay = 0;

    (void)state;
    assert_int_equal(verdict_of(h, "/status?code=429&retry=7", 429, &delay), 1);
    assert_int_equal(delay, 7);
    /* A wait past an hour is the server's mistake: clamped. */
    assert_int_equal(verdict_of(h, "/status?code=429&retry=999999", 429, &delay), 1);
    assert_int_equal(delay, 3600);
    /* Unreadable: as if absent. */
    assert_int_equal(verdict_of(h, "/status?code=429&retry=soon", 429, &delay), 1);
    assert_int_equal(delay, -1);
    assert_int_equal(verdict_of(h, "/status?code=408", 408, &delay), 1);
    assert_int_equal(delay, -1);
    sy_http_destroy(h);
}

static void unavailable_retries_after_an_http_date(void **state)
{
    struct sy_http *h = client();
    int delay = 0;

    (void)state;
    assert_int_equal(verdict_of(h, "/status?code=503&retry_in=120", 503, &delay), 1);
    assert_in_range(delay, 110, 121);
    /* A date already past: retry now. */
    assert_int_equal(verdict_of(h, "/status?code=503&retry_in=-60", 503, &delay), 1);
    assert_int_equal(delay, 0);
    sy_http_destroy(h);
}

static void server_error_retries_without_a_delay(void **state)
{
    struct sy_http *h = client();
    int delay = 0;

    (void)state;
    assert_int_equal(verdict_of(h, "/status?code=500", 500, &delay), 1);
    assert_int_equal(delay, -1);
    sy_http_destroy(h);
}

static void not_found_is_the_requests_fault(void **state)
{
    struct sy_http *h = client();
    int delay = 0;

    (void)state;
    assert_int_equal(verdict_of(h, "/nowhere", 404, &delay), 2);
    assert_int_equal(delay, -1);
    assert_int_equal(verdict_of(h, "/status?code=422&retry=5", 422, &delay), 2);
    sy_http_destroy(h);
}

static void answer_over_the_cap_is_too_big_announced_or_not(void **state)
{
    struct sy_http *h = client();
    const char *headers[] = {"Authorization: Bearer " HDR_SECRET, NULL};
    struct sy_http_resp r = {0};
    char err[256] = "";
    int delay = 0;
    double t0;

    (void)state;
    /* Exactly the cap is allowed. */
    assert_int_equal(sy_http_do(h, "GET", url("/big?n=1024"), NULL, NULL, 0, &r, err, sizeof err),
                     0);
    assert_int_equal(r.len, 1024);
    sy_http_resp_free(&r);
    assert_int_equal(
        sy_http_do(h, "GET", url("/stream?n=1024"), NULL, NULL, 0, &r, err, sizeof err), 0);
    assert_int_equal(r.len, 1024);
    sy_http_resp_free(&r);

    /* Announced in Content-Length: refused from the headers alone. The body is held back past
     * the client's timeout, so only the headers can have decided. */
    atomic_store(&produced_, 0);
    atomic_store(&stall_ms_, 3000);
    t0 = now_s();
    assert_int_equal(sy_http_do(h, "GET",
                                url("/big?n=67108864&"
                                    "access_token=" QS_SECRET),
                                headers, NULL, 0, &r, err, sizeof err),
                     -SY_ETOOBIG);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_err_clean(err);
    atomic_store(&stall_ms_, 0);
    assert_true(now_s() - t0 < 1.5); /* not after the 2 s timeout */
    assert_int_equal(sy_http_verdict(-SY_ETOOBIG, &r, &delay), 2);

    /* Chunked, nothing announced: cut off once past the cap. */
    atomic_store(&produced_, 0);
    err[0] = '\0';
    assert_int_equal(
        sy_http_do(h, "GET", url("/stream?n=67108864"), NULL, NULL, 0, &r, err, sizeof err),
        -SY_ETOOBIG);
    assert_null(r.body);
    assert_err_clean(err);
    assert_true(atomic_load(&produced_) < 32L * 1024 * 1024);
    assert_int_equal(
        sy_http_do(h, "GET", url("/stream?n=1025"), NULL, NULL, 0, &r, err, sizeof err),
        -SY_ETOOBIG);

    /* The handle still works after an aborted transfer. */
    assert_int_equal(verdict_of(h, "/status?code=204", 204, &delay), 0);
    sy_http_destroy(h);
}

static void slow_answer_times_out(void **state)
{
    struct sy_http_opts o = {.insecure_http = 1, .timeout_ms = 200};
    struct sy_http *h = sy_http_new(&o);
    const char *headers[] = {"Authorization: Bearer " HDR_SECRET, NULL};
    struct sy_http_resp r = {0};
    char err[256] = "";
    int delay = 0;

    (void)state;
    assert_non_null(h);
    assert_int_equal(sy_http_do(h, "GET", url("/slow?ms=800&token=" QS_SECRET), headers, NULL, 0,
                                &r, err, sizeof err),
                     -SY_ETIMEOUT);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.retry_after_s, -1);
    assert_err_clean(err);
    assert_non_null(strstr(err, "/slow"));
    assert_int_equal(sy_http_verdict(-SY_ETIMEOUT, &r, &delay), 1);
    assert_int_equal(delay, -1);
    sy_http_destroy(h);
}

static void refused_port_is_a_connection_failure(void **state)
{
    /* A port bound but not listening refuses every connection, and no one else can take it. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    const char *headers[] = {"X-Api-Key: " HDR_SECRET, NULL};
    struct sy_http *h = client();
    struct sy_http_resp r = {0};
    char u[256], err[256] = "";
    int delay = 0;

    (void)state;
    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(u, sizeof u, "http://user:" PW_SECRET "@127.0.0.1:%u/x?key=" QS_SECRET "#f",
             ntohs(sa.sin_port));
    assert_int_equal(sy_http_do(h, "PUT", u, headers, "{}", 2, &r, err, sizeof err), -SY_ECONN);
    assert_int_equal(r.status, 0);
    assert_err_clean(err);
    assert_non_null(strstr(err, "127.0.0.1"));
    assert_int_equal(sy_http_verdict(-SY_ECONN, &r, &delay), 1);
    close(fd);
    sy_http_destroy(h);
}

static void plain_http_is_refused_unless_allowed(void **state)
{
    struct sy_http *h = sy_http_new(NULL);
    const char *headers[] = {"Authorization: Bearer " HDR_SECRET, NULL};
    struct sy_http_resp r = {0};
    char err[256] = "";
    int before = atomic_load(&requests_), conns = atomic_load(&connections_), delay = 0;

    (void)state;
    assert_non_null(h);
    assert_int_equal(
        sy_http_do(h, "GET", url("/echo?token=" QS_SECRET), headers, NULL, 0, &r, err, sizeof err),
        -SY_EINVAL);
    assert_err_clean(err);
    assert_int_equal(sy_http_verdict(-SY_EINVAL, &r, &delay), 2);
    assert_int_equal(sy_http_do(h, "GET", "ftp://127.0.0.1/x", NULL, NULL, 0, &r, err, sizeof err),
                     -SY_EINVAL);
    assert_int_equal(atomic_load(&requests_), before);
    assert_int_equal(atomic_load(&connections_), conns);
    sy_http_destroy(h);
}

static void redirect_is_returned_not_followed(void **state)
{
    struct sy_http *h = client();
    int echoes = atomic_load(&echoes_), delay = 0;

    (void)state;
    assert_int_equal(verdict_of(h, "/redirect", 302, &delay), 0);
    assert_int_equal(atomic_load(&echoes_), echoes);
    sy_http_destroy(h);
}

static void gets_share_a_connection_and_a_post_gets_its_own(void **state)
{
    struct sy_http *h = client();
    struct sy_http_resp r = {0};
    char err[256] = "";
    int conns = atomic_load(&connections_), delay = 0;

    (void)state;
    assert_int_equal(verdict_of(h, "/echo", 200, &delay), 0);
    assert_int_equal(verdict_of(h, "/status?code=500", 500, &delay), 1);
    assert_int_equal(verdict_of(h, "/echo", 200, &delay), 0);
    assert_int_equal(atomic_load(&connections_), conns + 1);
    /* A POST could be sent twice over a reused connection that died: it never reuses one. */
    assert_int_equal(sy_http_do(h, "POST", url("/echo"), NULL, "a", 1, &r, err, sizeof err), 0);
    sy_http_resp_free(&r);
    assert_int_equal(sy_http_do(h, "POST", url("/echo"), NULL, "b", 1, &r, err, sizeof err), 0);
    sy_http_resp_free(&r);
    assert_int_equal(atomic_load(&connections_), conns + 3);
    sy_http_destroy(h);
}

static void escape_encodes_all_but_unreserved(void **state)
{
    char *s = sy_http_escape("a b&c=d/é~-._Z9");

    (void)state;
    assert_non_null(s);
    assert_string_equal(s, "a%20b%26c%3Dd%2F%C3%A9~-._Z9");
    free(s);
    s = sy_http_escape("");
    assert_string_equal(s, "");
    free(s);
}

static void freeing_a_zeroed_response_is_harmless(void **state)
{
    struct sy_http_resp r = {0};

    (void)state;
    sy_http_resp_free(&r);
    sy_http_resp_free(NULL);
    assert_int_equal(r.retry_after_s, -1);
    sy_http_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_echo_carries_method_body_and_headers),
        cmocka_unit_test(created_with_empty_body_gives_no_json),
        cmocka_unit_test(too_many_requests_retries_after_the_seconds_given),
        cmocka_unit_test(unavailable_retries_after_an_http_date),
        cmocka_unit_test(server_error_retries_without_a_delay),
        cmocka_unit_test(not_found_is_the_requests_fault),
        cmocka_unit_test(answer_over_the_cap_is_too_big_announced_or_not),
        cmocka_unit_test(slow_answer_times_out),
        cmocka_unit_test(refused_port_is_a_connection_failure),
        cmocka_unit_test(plain_http_is_refused_unless_allowed),
        cmocka_unit_test(redirect_is_returned_not_followed),
        cmocka_unit_test(gets_share_a_connection_and_a_post_gets_its_own),
        cmocka_unit_test(escape_encodes_all_but_unreserved),
        cmocka_unit_test(freeing_a_zeroed_response_is_harmless),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
