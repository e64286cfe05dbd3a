/* bench_gateway.c - how many grievances sy-gateway accepts per second over loopback, each
 * answered 202 only once the broker confirmed its message, against two ceilings measured in the
 * same run on the same machine:
 *   H. a bare libmicrohttpd server in this process with the gateway's flags and options (a
 *      thread per connection), answering every POST with a fixed 202 at once: what HTTP costs
 *      here with the same connections;
 *   P. a bare librabbitmq publisher with confirms on one channel publishing messages of the
 *      gateway's size to the same exchange: what the broker takes with 64 and with 256
 *      messages in flight;
 *   G. sy-gateway's POST /api/grievances/ with its default settings, a fresh process per round,
 *      authenticated by an API key made for the run.
 * One load generator drives H and G: C keep-alive connections, one request in flight on each,
 * for SY_BENCH_SECONDS (10) after a 1 s warm-up, with C 16, 64 and 256 in turn (SY_BENCH_CONNS:
 * that one count only); every request a grievance of its own (~600 bytes of JSON). A second set
 * of rounds sends one 8 KiB attachment with each. Only 202 counts as accepted; other answers are
 * counted by status, the first one printed. Prints rates, p50/p99 latency, the ratios, the
 * gateway's peak RSS and thread count within the window and its CPU per 1000 requests; always
 * exits 0 when it ran (77: a service it needs is not configured).
 *
 * The fleet's topology routes grievance.# to sy.grievance on a shared broker, so the gateway
 * here publishes to an exchange of its own (sy.gwbench) whose one queue, sy.gw_bench, nothing
 * consumes: it is purged after every round and deleted with the exchange at the end. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/auth.h"
#include "harness.h"
#include "sy/amqp.h"
#include "sy/crypto.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/pg.h"
#include "sy/topology.h"

#define EXCHANGE       "sy.gwbench"
#define WORKER         "gw_bench"
#define PATH           "/api/grievances/"
#define FILE_BYTES     8192
#define ID_DIGITS      10  /* the per-request counter in each grievance id */
#define PUB_WINDOW     256 /* bare publisher: messages awaiting their confirm */
#define PUB_WINDOW_LOW 64
#define SAMPLE_S       0.1 /* how often the target's RSS and threads are read in the window */
#define HTTP_STACK     (1u << 20) /* the gateway's thread stacks (workers/gateway/http.c) */
#define NCONNS_MAX     3          /* client connection counts of a run */
#define WARMUP_S       1.0
#define DRAIN_S        10.0 /* at most this long for requests still in flight at the end */
#define START_MAX_MS   20000
#define IN_MAX         16384 /* bytes of one response */
#define TOPOLOGY                                                                                   \
    "# bench_gateway: what sy-gateway publishes lands in sy.gw_bench, which nothing consumes;\n"   \
    "# a private exchange keeps it away from the fleet's queues.\n"                                \
    "exchange: " EXCHANGE "\n"                                                                     \
    "defaults:\n"                                                                                  \
    "  delivery_limit: 5\n"                                                                        \
    "  retry: {max_attempts: 4, delays: [1s, 2s, 4s], jitter: 0.2}\n"                              \
    "workers:\n"                                                                                   \
    "  " WORKER ":\n"                                                                              \
    "    routes: [grievance.#]\n"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User plus system CPU seconds process pid has used so far. */
static double cpu_s(pid_t pid)
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

/* Process pid's resident memory in KiB and its thread count now (-1 each when unknown). */
static void proc_status(pid_t pid, long *rss_kb, long *threads)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    *rss_kb = *threads = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "Threads:", 8) == 0)
            *threads = strtol(line + 8, NULL, 10);
    }
    if (f)
        fclose(f);
}

__attribute__((noreturn)) static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench: %s: %s\n", what, why ? why : "failed");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double env_num(const char *name, double def)
{
    const char *v = getenv(name);
    return v && *v ? atof(v) : def;
}

/* --- what is sent ------------------------------------------------------------------------- */

/* One request's bytes; the grievance id sits at id_at (ID_DIGITS digits rewritten per
 * request), so every request is a grievance of its own without rebuilding the body. */
struct request {
    char *bytes;
    size_t len;
    size_t id_at;
};

static const char DESCRIPTION[] =
    "The drainage ditch along the new road section near the school was left open after the "
    "contractor finished the culvert. Rainwater now floods three houses on the lower side and "
    "children walk through standing water to reach the school gate. We asked the site engineer "
    "twice last month; he said it would be closed within a week. Please send someone to inspect "
    "the ditch and tell us when it will be covered.";

/* The grievance's JSON with id prefix pfx and a zero counter; file_b64 NULL for none. */
static char *grievance_json(const char *pfx, const char *file_b64)
{
    char gid[96];
    snprintf(gid, sizeof gid, "%s%0*d", pfx, ID_DIGITS, 0);
    json_t *body = json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s}", "grievance_id", gid, "user_info",
                             "phone_number", "+9779841000001", "name", "Sita Sharma",
                             "project_type", "Road construction", "description", DESCRIPTION,
                             "location", "Ward 4, Birtamod Municipality, Jhapa, Koshi Province");
    if (body && file_b64)
        json_object_set_new(body, "files",
                            json_pack("[{s:s, s:s, s:s}]", "file_id", "photo-1.jpg", "file_type",
                                      "image/jpeg", "file_data", file_b64));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        die("grievance body", "out of memory");
    return text;
}

static void request_make(struct request *rq, int port, const char *key, const char *pfx,
                         const char *file_b64)
{
    char *body = grievance_json(pfx, file_b64);
    size_t blen = strlen(body);
    char head[512];
    int hlen = snprintf(head, sizeof head,
                        "POST " PATH " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-API-Key: %s\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                        port, key, blen);
    rq->len = (size_t)hlen + blen;
    rq->bytes = malloc(rq->len + 1);
    if (!rq->bytes)
        die("request", "out of memory");
    memcpy(rq->bytes, head, (size_t)hlen);
    memcpy(rq->bytes + hlen, body, blen + 1);
    /* The prefix is unique in the body: the id is its first occurrence. */
    rq->id_at = (size_t)(strstr(rq->bytes + hlen, pfx) - rq->bytes) + strlen(pfx);
    free(body);
}

/* --- the load generator ------------------------------------------------------------------- */

struct conn {
    int fd;
    char *out; /* this connection's copy of the request */
    size_t sent;
    bool busy; /* a request is in flight */
    double t0; /* when it was sent */
    char in[IN_MAX + 1];
    size_t in_len;
};

struct result {
    long accepted;         /* 202 within the window */
    long status[600];      /* every answer within the window, by status */
    long broken;           /* connections closed or reset by the server */
    double seconds;        /* the window */
    double p50_ms, p99_ms; /* of the answers within the window */
    double target_cpu;     /* CPU seconds the target process used within the window */
    long peak_rss_kb;      /* the target's largest RSS seen within the window */
    long peak_threads;     /* and its most threads */
    char first_other[600]; /* the first answer that was not 202 */
};

static long next_id; /* grievance ids never repeat within a run */

static int conn_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Writes what is left of the request; false when the connection failed. */
static bool conn_flush(struct conn *c, const struct request *rq, int ep)
{
    while (c->sent < rq->len) {
        ssize_t n = write(c->fd, c->out + c->sent, rq->len - c->sent);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return true;
        }
        if (n <= 0)
            return false;
        c->sent += (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return true;
}

static bool conn_send(struct conn *c, const struct request *rq, int ep)
{
    char digits[ID_DIGITS + 1];
    snprintf(digits, sizeof digits, "%0*ld", ID_DIGITS, next_id++);
    memcpy(c->out + rq->id_at, digits, ID_DIGITS);
    c->sent = 0;
    c->in_len = 0;
    c->busy = true;
    c->t0 = mono_s();
    return conn_flush(c, rq, ep);
}

/* The length of a whole response at the start of in (0: not whole yet, -1: not HTTP as
 * expected), its status and whether the server will close the connection. */
static long response_len(const char *in, size_t len, int *status, bool *closing)
{
    const char *end = memmem(in, len, "\r\n\r\n", 4);
    if (!end)
        return len >= IN_MAX ? -1 : 0;
    size_t hlen = (size_t)(end - in) + 4;
    if (len < 12 || strncmp(in, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(in + 9);
    long cl = -1;
    *closing = false;
    for (const char *l = strstr(in, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
            cl = strtol(l + 17, NULL, 10);
        else if (strncasecmp(l + 2, "Connection: close", 17) == 0)
            *closing = true;
    }
    if (cl < 0 || hlen + (size_t)cl > IN_MAX)
        return -1;
    return len >= hlen + (size_t)cl ? (long)(hlen + (size_t)cl) : 0;
}

/* Drives port with nconn connections for WARMUP_S + seconds; target_pid (0: none) has its CPU
 * sampled over the measured window, its RSS and threads every SAMPLE_S within it. */
static struct result load_run(int port, const struct request *rq, int nconn, double seconds,
                              pid_t target_pid)
{
    struct result r = {0};
    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    size_t lat_cap = 1 << 16, nlat = 0;
    double *lat = malloc(lat_cap * sizeof *lat);
    int ep = epoll_create1(0);
    if (!cs || !lat || ep < 0)
        die("load", "out of memory");

    for (int i = 0; i < nconn; i++) {
        cs[i].out = malloc(rq->len);
        if (!cs[i].out || (cs[i].fd = conn_open(port)) < 0)
            die("load", "cannot connect");
        memcpy(cs[i].out, rq->bytes, rq->len);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    double t_start = mono_s() + WARMUP_S, t_end = t_start + seconds;
    double cpu0 = 0, cpu1 = 0, t_sample = t_start;
    bool in_window = false, past_window = false;
    for (int i = 0; i < nconn; i++)
        if (!conn_send(&cs[i], rq, ep))
            die("load", "cannot send");

    int inflight = nconn;
    struct epoll_event evs[64];
    while (inflight > 0) {
        double now = mono_s();
        if (!in_window && now >= t_start) {
            in_window = true;
            cpu0 = target_pid ? cpu_s(target_pid) : 0;
        }
        if (!past_window && now >= t_end) {
            past_window = true;
            cpu1 = target_pid ? cpu_s(target_pid) : 0;
        }
        if (target_pid && in_window && !past_window && now >= t_sample) {
            long kb, nth;
            proc_status(target_pid, &kb, &nth);
            r.peak_rss_kb = kb > r.peak_rss_kb ? kb : r.peak_rss_kb;
            r.peak_threads = nth > r.peak_threads ? nth : r.peak_threads;
            t_sample = now + SAMPLE_S;
        }
        if (now > t_end + DRAIN_S)
            break;
        int n = epoll_wait(ep, evs, 64, 10);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c->busy)
                continue;
            if ((evs[k].events & EPOLLOUT) && c->sent < rq->len && !conn_flush(c, rq, ep))
                goto broken;
            if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t got = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (got <= 0)
                goto broken;
            c->in_len += (size_t)got;
            c->in[c->in_len] = '\0';
            int status = 0;
            bool closing = false;
            long whole = response_len(c->in, c->in_len, &status, &closing);
            if (whole == 0)
                continue;
            if (whole < 0)
                goto broken;
            double done = mono_s();
            if (done >= t_start && done <= t_end) {
                if (status == 202)
                    r.accepted++;
                if (status >= 100 && status < 600)
                    r.status[status]++;
                if (status != 202 && !r.first_other[0])
                    snprintf(r.first_other, sizeof r.first_other, "%.*s", (int)whole, c->in);
                if (nlat == lat_cap) {
                    double *grown = realloc(lat, 2 * lat_cap * sizeof *lat);
                    if (!grown)
                        die("load", "out of memory");
                    lat = grown;
                    lat_cap *= 2;
                }
                lat[nlat++] = (done - c->t0) * 1e3;
            }
            c->busy = false;
            inflight--;
            if (closing) {
                /* The server closes after this answer: a fresh connection carries on. */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                if ((c->fd = conn_open(port)) < 0)
                    die("load", "cannot reconnect");
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            }
            if (done < t_end) {
                inflight++;
                if (!conn_send(c, rq, ep))
                    goto broken;
            }
            continue;
        broken:
            r.broken++;
            if (c->busy)
                inflight--;
            c->busy = false;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            if (mono_s() < t_end && (c->fd = conn_open(port)) >= 0) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                if (conn_send(c, rq, ep))
                    inflight++;
                else
                    c->busy = false;
            }
        }
    }
    r.seconds = seconds;
    r.target_cpu = cpu1 - cpu0;
    qsort(lat, nlat, sizeof *lat, cmp_double);
    if (nlat) {
        r.p50_ms = lat[nlat / 2];
        r.p99_ms = lat[(size_t)((double)nlat * 0.99)];
    }
    for (int i = 0; i < nconn; i++) {
        if (cs[i].fd >= 0)
            close(cs[i].fd);
        free(cs[i].out);
    }
    close(ep);
    free(cs);
    free(lat);
    return r;
}

static void result_print(const char *label, const struct result *r)
{
    printf("%-52s %7.0f req/s  p50 %6.2f ms  p99 %7.2f ms\n", label, r->accepted / r->seconds,
           r->p50_ms, r->p99_ms);
    long other = 0;
    for (int s = 0; s < 600; s++)
        if (s != 202 && r->status[s]) {
            printf("          %ld answered %d\n", r->status[s], s);
            other += r->status[s];
        }
    if (r->broken)
        printf("          %ld connection(s) closed by the server mid-request\n", r->broken);
    if (other)
        printf("          the first of them:\n%s\n", r->first_other);
}

/* --- baseline H: bare HTTP ---------------------------------------------------------------- */

static struct MHD_Response *bare_reply;

static enum MHD_Result bare_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload_data;
    if (!*con_cls) {
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, 202, bare_reply);
}

/* A server with the gateway's flags and options (workers/gateway/http.c): a thread per
 * connection, its default connection limit and timeout, 1 MiB thread stacks. */
static struct MHD_Daemon *bare_http_start(int *port)
{
    static const char body[] = "{\"id\":\"00000000-0000-4000-8000-000000000000\","
                               "\"status\":\"accepted\",\"grievance_id\":\"gb-0000000000\"}";
    if (!bare_reply) {
        bare_reply =
            MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(bare_reply, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(bare_reply, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    *port = th_free_port();
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, (uint16_t)*port, NULL, NULL, bare_request, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 1024u,
                         MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTP_STACK, MHD_OPTION_END);
    if (!d)
        die("bare HTTP server", "cannot listen");
    return d;
}

/* --- baseline P: bare publisher ----------------------------------------------------------- */

static void check_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        die(what, "the broker refused");
}

static amqp_connection_state_t bare_connect(const char *url_in)
{
    char *url = strdup(url_in);
    struct amqp_connection_info ci;
    if (!url || amqp_parse_url(url, &ci) != AMQP_STATUS_OK)
        die("amqp url", "cannot parse");
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK)
        die("amqp", "cannot connect");
    /* "amqp://host:port/" names the empty vhost in the URL grammar; brokers mean "/". */
    const char *vhost = ci.vhost && *ci.vhost ? ci.vhost : "/";
    check_reply(amqp_login(conn, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password),
                "login");
    amqp_channel_open(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "channel");
    free(url);
    return conn;
}

/* Publishes msg for WARMUP_S + seconds with window unconfirmed at most, mandatory and
 * persistent as the runtime publishes; the confirms per second within the window. */
static double bare_publish(amqp_connection_state_t conn, const void *msg, size_t len,
                           double seconds, uint64_t window)
{
    /* Delivery tags count on along the channel from one call to the next. */
    static uint64_t sent, confirmed;
    if (sent == 0) {
        amqp_confirm_select(conn, 1);
        check_reply(amqp_get_rpc_reply(conn), "confirm.select");
    }
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG;
    props.delivery_mode = 2;
    props.content_type = amqp_cstring_bytes("application/msgpack");
    props.type = amqp_cstring_bytes("grievance.submitted");
    amqp_bytes_t body = {.len = len, .bytes = (void *)msg};

    long in_window = 0, nacked = 0;
    double t_start = mono_s() + WARMUP_S, t_end = t_start + seconds;
    for (;;) {
        double now = mono_s();
        if (now >= t_end && confirmed == sent)
            break;
        while (now < t_end && sent - confirmed < window) {
            char id[37];
            sy_uuid4(id);
            props.message_id = amqp_cstring_bytes(id);
            if (amqp_basic_publish(conn, 1, amqp_cstring_bytes(EXCHANGE),
                                   amqp_cstring_bytes("grievance.submitted"), 1, 0, &props,
                                   body) != AMQP_STATUS_OK)
                die("bare publish", "publish failed");
            sent++;
        }
        amqp_frame_t f;
        struct timeval tv = {.tv_sec = 5};
        int st = amqp_simple_wait_frame_noblock(conn, &f, &tv);
        if (st != AMQP_STATUS_OK)
            die("bare publish", amqp_error_string2(st));
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        uint64_t tag;
        bool multiple;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            amqp_basic_nack_t *a = f.payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple;
            nacked++;
        } else if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
            die("bare publish", "returned unroutable: is " EXCHANGE " bound?");
        } else {
            continue;
        }
        /* One queue behind one channel confirms in publish order: a multiple ack settles
         * everything up to its tag, a single one the next message. */
        long newly = multiple ? (tag > confirmed ? (long)(tag - confirmed) : 0) : 1;
        confirmed += (uint64_t)newly;
        double t = mono_s();
        if (t >= t_start && t <= t_end)
            in_window += newly;
    }
    if (nacked)
        printf("          %ld publish(es) nacked by the broker\n", nacked);
    return (double)in_window / seconds;
}

/* --- the gateway -------------------------------------------------------------------------- */

struct gateway {
    struct th_proc proc;
    int port, health_port;
    char env[5][1300];
};

/* The status of GET path on port, 0 when nothing answered. */
static int http_status(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[256], buf[64] = {0};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    ssize_t got = write(fd, req, (size_t)n) == n ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    return got > 12 ? atoi(buf + 9) : 0;
}

/* A fresh sy-gateway with its default settings but for its addresses, files and log level. */
static void gateway_start(struct gateway *g, const char *bin, const char *hooks,
                          const char *schemas)
{
    g->port = th_free_port();
    g->health_port = th_free_port();
    snprintf(g->env[0], sizeof g->env[0], "SY_GATEWAY_ADDR=127.0.0.1:%d", g->port);
    snprintf(g->env[1], sizeof g->env[1], "SY_HTTP_ADDR=127.0.0.1:%d", g->health_port);
    snprintf(g->env[2], sizeof g->env[2], "SY_GATEWAY_WEBHOOKS=%s", hooks);
    snprintf(g->env[3], sizeof g->env[3], "SY_SCHEMA_DIR=%s", schemas);
    snprintf(g->env[4], sizeof g->env[4], "SY_LOG_LEVEL=warn");
    const char *env[] = {g->env[0], g->env[1], g->env[2], g->env[3], g->env[4], NULL};
    if (th_proc_spawn(&g->proc, bin, env) != 0)
        die("sy-gateway", "cannot spawn");
    int64_t end = th_now_ms() + START_MAX_MS;
    while (http_status(g->health_port, "/readyz") != 200) {
        if (th_proc_wait(&g->proc, 0) == 0 || th_now_ms() > end) {
            th_proc_dump_log(&g->proc, 30);
            die("sy-gateway", "did not become ready");
        }
        th_sleep_ms(50);
    }
}

static void gateway_stop(struct gateway *g)
{
    th_proc_signal(&g->proc, SIGTERM);
    if (th_proc_wait(&g->proc, 15000) != 0)
        th_proc_cleanup(&g->proc);
}

/* --- set-up ------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die(path, strerror(errno));
}

/* A chatbot key stored in sy_api_keys under name; key receives it whole. */
static void make_key(struct sy_pg *pg, const char *name, char key[GW_APIKEY_LEN + 1],
                     char id[GW_APIKEY_ID_LEN + 1])
{
    uint8_t hash[SY_SHA256_LEN];
    char hex[2 * SY_SHA256_LEN + 1];
    if (gw_apikey_new(GW_ROLE_CHATBOT, name, key, GW_APIKEY_LEN + 1, id, GW_APIKEY_ID_LEN + 1,
                      hash) != 0)
        die("api key", "cannot make one");
    sy_hex_encode(hash, sizeof hash, hex);
    const char *params[] = {id, name, "chatbot", hex};
    if (sy_pg_exec(pg,
                   "INSERT INTO sy_api_keys (id, name, role, key_hash)"
                   " VALUES ($1, $2, $3, decode($4, 'hex'))",
                   4, params, NULL) != 0)
        die("api key", sy_pg_error(pg));
}

/* The envelope sy-gateway publishes for one request's body, for the bare publisher. */
static void *envelope_of(const struct request *rq, const char *key_id, size_t *len)
{
    const char *body = strstr(rq->bytes, "\r\n\r\n") + 4;
    json_t *data = json_loads(body, 0, NULL);
    char actor[64];
    void *mp = NULL, *env = NULL;
    size_t mplen = 0;
    snprintf(actor, sizeof actor, "apikey:%s", key_id);
    if (!data || json_object_set_new(data, "actor", json_string(actor)) != 0 ||
        sy_json_to_msgpack(data, &mp, &mplen) != 0 ||
        sy_msg_encode("grievance.submitted", NULL, "gateway", 0, mp, mplen, &env, len) != 0)
        die("envelope", "cannot build");
    json_decref(data);
    free(mp);
    return env;
}

static void purge(struct sy_amqp *a, const char *queue)
{
    uint32_t n = 0;
    if (sy_amqp_queue_purge(a, queue, &n) != 0)
        die("purge", sy_amqp_error(a));
}

struct variant {
    const char *name;
    const char *file_b64;
    char pfx[64];
    void *msg;
    size_t msg_len;
};

int main(void)
{
    const char *url = th_need_env("SY_AMQP_URL");
    const char *pg_url = th_need_env("SY_PG_URL");
    const char *bin = th_need_env("SY_GATEWAY_BIN");
    const char *src = th_need_env("SY_SOURCE_DIR");
    const char *build = th_need_env("SY_BUILD_DIR");
    /* Client connections per round; the gateway's default limit (1024) bounds an override. */
    int conns[NCONNS_MAX] = {16, 64, 256}, nc = NCONNS_MAX;
    const char *only = getenv("SY_BENCH_CONNS");
    if (only && *only) {
        conns[0] = atoi(only);
        nc = 1;
        if (conns[0] < 1 || conns[0] > 1024)
            die("SY_BENCH_CONNS", "not a connection count from 1 to 1024");
    }
    double seconds = env_num("SY_BENCH_SECONDS", 10);
    char run[17], dir[1024], topo_path[1100], hooks[1100], schemas[1100], err[512];
    th_run_id(run);
    signal(SIGPIPE, SIG_IGN);

    /* Files of the run: a private topology (the gateway inherits SY_TOPOLOGY) and no webhooks. */
    snprintf(dir, sizeof dir, "%s/Testing", build);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/Testing/gwbench-%s", build, run);
    if (mkdir(dir, 0755) != 0)
        die(dir, strerror(errno));
    snprintf(topo_path, sizeof topo_path, "%s/topology.yaml", dir);
    snprintf(hooks, sizeof hooks, "%s/webhooks.yaml", dir);
    snprintf(schemas, sizeof schemas, "%s/schemas/messages", src);
    write_file(topo_path, TOPOLOGY);
    write_file(hooks, "# bench_gateway: no webhooks\n");
    setenv("SY_TOPOLOGY", topo_path, 1);

    struct sy_topology *topo = sy_topology_load(topo_path, err, sizeof err);
    if (!topo)
        die("topology", err);
    /* No heartbeat: this connection idles while a round runs. */
    struct sy_amqp *a = sy_amqp_connect(url, "bench-gateway", 0, err, sizeof err);
    if (!a)
        die("amqp connect", err);
    if (sy_amqp_declare(a, topo, WORKER) != 0)
        die("amqp declare", sy_amqp_error(a));
    const struct sy_topo_worker *w = sy_topology_worker(topo, WORKER);
    char queue[256];
    sy_topo_queue_name(w, queue, sizeof queue);
    purge(a, queue);

    struct sy_pg *pg = sy_pg_connect(pg_url, err, sizeof err);
    if (!pg)
        die("postgresql", err);
    char migrations[1100], key_name[64], key[GW_APIKEY_LEN + 1], key_id[GW_APIKEY_ID_LEN + 1];
    snprintf(migrations, sizeof migrations, "%s/schemas/sql/postgres", src);
    if (sy_pg_migrate(pg, migrations, NULL, NULL, err, sizeof err) != 0)
        die("migrate", err);
    snprintf(key_name, sizeof key_name, "bench-%s", run);
    make_key(pg, key_name, key, key_id);

    uint8_t *file = malloc(FILE_BYTES);
    char *file_b64 = malloc(sy_base64_encoded_len(FILE_BYTES) + 1);
    if (!file || !file_b64 || sy_random_bytes(file, FILE_BYTES) != 0)
        die("attachment", "cannot make one");
    sy_base64_encode(file, FILE_BYTES, false, file_b64);

    struct variant vs[2] = {{.name = "no file"}, {.name = "8 KiB file", .file_b64 = file_b64}};
    for (int v = 0; v < 2; v++) {
        snprintf(vs[v].pfx, sizeof vs[v].pfx, "gb-%s-%d-", run, v);
        struct request rq;
        request_make(&rq, 1, key, vs[v].pfx, vs[v].file_b64);
        vs[v].msg = envelope_of(&rq, key_id, &vs[v].msg_len);
        size_t blen = strlen(strstr(rq.bytes, "\r\n\r\n") + 4);
        printf("request   %-10s body %zu bytes, message %zu bytes\n", vs[v].name, blen,
               vs[v].msg_len);
        free(rq.bytes);
    }
    char counts[64] = "";
    for (int c = 0; c < nc; c++) {
        const char *sep = c == 0 ? "" : c == nc - 1 ? " and " : ", ";
        snprintf(counts + strlen(counts), sizeof counts - strlen(counts), "%s%d", sep, conns[c]);
    }
    printf("load      %s connection(s) in turn, one request in flight each, %.0f s after a %.0f s "
           "warm-up\n",
           counts, seconds, WARMUP_S);
    fflush(stdout);

    amqp_connection_state_t pub = bare_connect(url);

    /* Per variant: P, then H and G for each connection count, then P again. P opens and
     * closes the variant, averaging out the broker's drift over a run (its quorum-queue log
     * grows and is compacted); H runs just before the G with its connection count, so the two
     * see the machine in the same state. */
    double gw_rate[2][NCONNS_MAX] = {{0}};
    for (int v = 0; v < 2; v++) {
        char label[128];
        double p_wide = bare_publish(pub, vs[v].msg, vs[v].msg_len, seconds, PUB_WINDOW) / 2;
        purge(a, queue);
        double p_low = bare_publish(pub, vs[v].msg, vs[v].msg_len, seconds, PUB_WINDOW_LOW) / 2;
        purge(a, queue);
        for (int c = 0; c < nc; c++) {
            /* H: bare HTTP, the same connections. */
            int hport;
            struct MHD_Daemon *d = bare_http_start(&hport);
            struct request rq;
            request_make(&rq, hport, key, vs[v].pfx, vs[v].file_b64);
            struct result h = load_run(hport, &rq, conns[c], seconds, 0);
            MHD_stop_daemon(d);
            free(rq.bytes);
            snprintf(label, sizeof label, "baseline  bare HTTP, %3d connections, %s:", conns[c],
                     vs[v].name);
            result_print(label, &h);

            /* G: the gateway, a fresh process. */
            struct gateway g;
            gateway_start(&g, bin, hooks, schemas);
            request_make(&rq, g.port, key, vs[v].pfx, vs[v].file_b64);
            struct result r = load_run(g.port, &rq, conns[c], seconds, g.proc.pid);
            gateway_stop(&g);
            free(rq.bytes);
            purge(a, queue);
            snprintf(label, sizeof label, "gateway   sy-gateway, %3d connections, %s:", conns[c],
                     vs[v].name);
            result_print(label, &r);
            gw_rate[v][c] = r.accepted / r.seconds;
            printf("          at peak RSS %.1f MB and %ld threads, CPU %.2f s per 1000 accepted; "
                   "gateway / bare HTTP %.2f\n",
                   r.peak_rss_kb / 1024.0, r.peak_threads,
                   r.accepted ? r.target_cpu * 1000.0 / (double)r.accepted : 0,
                   h.accepted ? (double)r.accepted / (double)h.accepted : 0);
            fflush(stdout);
        }
        p_low += bare_publish(pub, vs[v].msg, vs[v].msg_len, seconds, PUB_WINDOW_LOW) / 2;
        purge(a, queue);
        p_wide += bare_publish(pub, vs[v].msg, vs[v].msg_len, seconds, PUB_WINDOW) / 2;
        purge(a, queue);
        printf("baseline  bare publisher, %s, mean of two rounds: window %d %.0f msg/s, window "
               "%d %.0f msg/s\n",
               vs[v].name, PUB_WINDOW_LOW, p_low, PUB_WINDOW, p_wide);
        for (int c = 0; c < nc; c++)
            printf("ratio     gateway / bare publisher, %3d connections, %s: %.2f (window %d), "
                   "%.2f (window %d)\n",
                   conns[c], vs[v].name, p_low > 0 ? gw_rate[v][c] / p_low : 0, PUB_WINDOW_LOW,
                   p_wide > 0 ? gw_rate[v][c] / p_wide : 0, PUB_WINDOW);
        fflush(stdout);
    }
    char reached[64] = "";
    for (int c = 0; c < nc; c++)
        if (gw_rate[0][c] >= 5000)
            snprintf(reached + strlen(reached), sizeof reached - strlen(reached), "%s%d",
                     reached[0] ? ", " : "", conns[c]);
    if (reached[0])
        printf("target    >= 5000 accepted req/s without files: reached with %s client "
               "connection(s)\n",
               reached);
    else
        printf("target    >= 5000 accepted req/s without files: not reached here\n");

    /* Nothing of the run stays behind: queues, exchange, key, files. */
    char q[300];
    sy_amqp_queue_delete(a, queue);
    if (sy_topo_dead_name(w, q, sizeof q) == 0)
        sy_amqp_queue_delete(a, q);
    for (size_t i = 0; i < w->ndelays && sy_topo_retry_name(w, i, q, sizeof q) == 0; i++)
        sy_amqp_queue_delete(a, q);
    amqp_exchange_delete(pub, 1, amqp_cstring_bytes(EXCHANGE), 0);
    amqp_get_rpc_reply(pub);
    amqp_channel_close(pub, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(pub, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(pub);
    const char *params[] = {key_id};
    sy_pg_exec(pg, "DELETE FROM sy_api_keys WHERE id = $1", 1, params, NULL);
    sy_pg_destroy(pg);
    unlink(topo_path);
    unlink(hooks);
    rmdir(dir);
    for (int v = 0; v < 2; v++)
        free(vs[v].msg);
    free(file);
    free(file_b64);
    sy_amqp_destroy(a);
    sy_topology_destroy(topo);
    return 0;
}
