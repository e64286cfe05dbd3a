/* worker.c - sy_worker_main: settings, logging, schemas, topology, health, the handler's init
 * and threads, the broker, then wait for SIGTERM/SIGINT, drain, and take everything down in
 * reverse order. */
#include "sy/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "broker_int.h"
#include "sy/amqp.h"
#include "sy/clock.h"
#include "sy/config.h"
#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/msg.h"
#include "sy/schema.h"
#include "sy/topology.h"

#ifndef SY_VERSION /* set from the project version by common/CMakeLists.txt */
#define SY_VERSION "0.0.0"
#endif
#ifndef SY_DEFAULT_ROOT
#define SY_DEFAULT_ROOT "."
#endif

#define EXIT_CONFIG 78 /* sysexits' EX_CONFIG */
#define EXIT_USAGE  64

struct settings {
    char *amqp_url, *redis_url, *pg_url, *mysql_url, *mqtt_url;
    char *instance, *log_level, *http_addr, *schema_dir, *topology;
    long long prefetch, threads, grace_ms, heartbeat_s, reconnect_max_ms;
};

#define S_(field) offsetof(struct settings, field)
static const struct sy_conf_key settings_keys[] = {
    {"SY_AMQP_URL", SY_CONF_URL, "amqp://guest:guest@127.0.0.1:5672/", 0, 0, S_(amqp_url), 0,
     "RabbitMQ: amqp://user:password@host:port/vhost"},
    {"SY_REDIS_URL", SY_CONF_URL, NULL, 0, 0, S_(redis_url), 0, "Redis, for handlers that use it"},
    {"SY_PG_URL", SY_CONF_URL, NULL, 0, 0, S_(pg_url), 0, "PostgreSQL, for handlers that use it"},
    {"SY_GRM_MYSQL_URL", SY_CONF_URL, NULL, 0, 0, S_(mysql_url), 0,
     "the legacy GRM MySQL/MariaDB, for handlers that use it"},
    {"SY_MQTT_URL", SY_CONF_URL, NULL, 0, 0, S_(mqtt_url), 0, "MQTT, for handlers that use it"},
    {"SY_INSTANCE", SY_CONF_STR, NULL, 0, 0, S_(instance), 0,
     "this process in logs and dead letters (default <hostname>-<pid>)"},
    {"SY_LOG_LEVEL", SY_CONF_STR, "info", 0, 0, S_(log_level), 0, "debug, info, warn or error"},
    {"SY_HTTP_ADDR", SY_CONF_STR, "127.0.0.1:0", 0, 0, S_(http_addr), 0,
     "host:port of /healthz, /readyz and /metrics (port 0: any free port)"},
    {"SY_PREFETCH", SY_CONF_INT, "256", 1, 2000, S_(prefetch), 0,
     "deliveries held at once (basic.qos); unset for a batch handler: enough for a full batch "
     "per handler thread (at most 2000)"},
    {"SY_HANDLER_THREADS", SY_CONF_INT, "4", 1, 256, S_(threads), 0, "handler threads"},
    {"SY_SCHEMA_DIR", SY_CONF_STR, SY_DEFAULT_ROOT "/schemas/messages", 0, 0, S_(schema_dir), 0,
     "message schemas (<type>.yaml)"},
    {"SY_TOPOLOGY", SY_CONF_STR, SY_DEFAULT_ROOT "/schemas/topology.yaml", 0, 0, S_(topology), 0,
     "exchanges, queues and retry ladders"},
    {"SY_SHUTDOWN_GRACE", SY_CONF_MS, "30s", 0, 3600000, S_(grace_ms), 0,
     "how long SIGTERM waits for in-flight work before closing anyway"},
    {"SY_HEARTBEAT", SY_CONF_INT, "15", 0, 600, S_(heartbeat_s), 0,
     "AMQP heartbeat in seconds (0: off)"},
    {"SY_RECONNECT_MAX", SY_CONF_MS, "30s", 100, 3600000, S_(reconnect_max_ms), 0,
     "longest wait between reconnection attempts"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef S_

struct sy_worker {
    const struct sy_handler *h;
    struct settings s;
    char instance[160];
    void *conf;
    struct sy_schemas *schemas;
    struct sy_topology *topo;
    const struct sy_topo_worker *tw;
    struct sy_broker *broker;
    struct sy_health *health;
    void *state;
    atomic_bool init_ok;  /* the handler's init succeeded: ready() and exit() may be called */
    atomic_bool running;  /* the broker thread runs: publishes go through it */
    atomic_bool stopping; /* SIGTERM/SIGINT received */
    /* sy_worker_sleep waits on stop_cv; `stopping` is set under stop_mu. */
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    /* The handler's own loop (handlers with run): its thread, and an eventfd written when it
     * returns, so the main thread wakes for it as for a signal. */
    pthread_t run_tid;
    bool run_started;
    int run_efd;
    atomic_int run_rc;
    /* Publishes made from init, before the broker runs, use a connection of their own. */
    pthread_mutex_t init_mu;
    struct sy_amqp *init_amqp;
};

/* --- accessors for handlers ------------------------------------------------------------------ */

const void *sy_worker_conf(const struct sy_worker *w)
{
    return w ? w->conf : NULL;
}

const char *sy_worker_name(const struct sy_worker *w)
{
    return w ? w->h->name : NULL;
}

const char *sy_worker_instance(const struct sy_worker *w)
{
    return w ? w->instance : NULL;
}

const struct sy_schemas *sy_worker_schemas(const struct sy_worker *w)
{
    return w ? w->schemas : NULL;
}

const struct sy_topology *sy_worker_topology(const struct sy_worker *w)
{
    return w ? w->topo : NULL;
}

const char *sy_worker_url(const struct sy_worker *w, const char *which)
{
    if (!w || !which)
        return NULL;
    if (strcmp(which, "amqp") == 0)
        return w->s.amqp_url;
    if (strcmp(which, "redis") == 0)
        return w->s.redis_url;
    if (strcmp(which, "pg") == 0)
        return w->s.pg_url;
    if (strcmp(which, "mysql") == 0)
        return w->s.mysql_url;
    if (strcmp(which, "mqtt") == 0)
        return w->s.mqtt_url;
    return NULL;
}

int sy_worker_stopping(const struct sy_worker *w)
{
    return w && atomic_load(&w->stopping);
}

int sy_worker_sleep(struct sy_worker *w, long long ms)
{
    struct timespec until;
    int stopping;

    if (!w)
        return 1;
    until = sy_cond_at(sy_mono_ms() + (ms > 0 ? ms : 0));
    pthread_mutex_lock(&w->stop_mu);
    while (!atomic_load(&w->stopping) &&
           pthread_cond_timedwait(&w->stop_cv, &w->stop_mu, &until) != ETIMEDOUT) {
    }
    stopping = atomic_load(&w->stopping) ? 1 : 0;
    pthread_mutex_unlock(&w->stop_mu);
    return stopping;
}

static void set_stopping(struct sy_worker *w)
{
    pthread_mutex_lock(&w->stop_mu);
    atomic_store(&w->stopping, true);
    pthread_cond_broadcast(&w->stop_cv);
    pthread_mutex_unlock(&w->stop_mu);
}

static void *run_main(void *arg)
{
    struct sy_worker *w = arg;
    uint64_t one = 1;

    atomic_store(&w->run_rc, w->h->run(w->state));
    if (write(w->run_efd, &one, sizeof one) < 0) {
        /* an eventfd counter cannot overflow from one write */
    }
    return NULL;
}

/* Before the broker thread runs (from init): a connection of the worker's own, kept until
 * init returns. */
static int init_publish(struct sy_worker *w, const struct sy_publish *p, int timeout_ms)
{
    char err[512];
    int rc;

    pthread_mutex_lock(&w->init_mu);
    if (!w->init_amqp) {
        char name[300];

        snprintf(name, sizeof name, "sy-%s %s (init)", w->h->name, w->instance);
        w->init_amqp = sy_amqp_connect(w->s.amqp_url, name, (int)w->s.heartbeat_s, err, sizeof err);
        if (!w->init_amqp) {
            sy_log_write(SY_LOG_WARN, "worker.publish", -1, err, "cannot connect to publish");
            rc = -SY_ECONN;
            goto out;
        }
        /* The exchange may not exist yet on a fresh broker. A publishing-only worker declares
         * every queue, as its broker connection will. */
        rc = sy_amqp_declare(w->init_amqp, w->topo, w->h->run ? NULL : w->h->name);
        if (rc != 0) {
            sy_log_write(SY_LOG_WARN, "worker.publish", -1, sy_amqp_error(w->init_amqp),
                         "cannot declare the topology");
            goto out;
        }
    }
    rc = sy_amqp_publish(w->init_amqp, p, timeout_ms);
    if (rc != 0)
        sy_log_write(SY_LOG_WARN, "worker.publish", -1, sy_amqp_error(w->init_amqp),
                     "publish of %s failed", p->type ? p->type : "a message");
out:
    pthread_mutex_unlock(&w->init_mu);
    return rc;
}

int sy_worker_publish(struct sy_worker *w, const char *type, const char *id,
                      const void *data_msgpack, size_t data_len, int timeout_ms, char *id_out)
{
    struct sy_msg *msg = NULL;
    void *body = NULL;
    size_t len = 0;
    char err[512];
    int rc;

    if (!w || !type || (!data_msgpack && data_len))
        return -SY_EINVAL;
    rc = sy_msg_encode(type, id, w->h->name, 0, data_msgpack, data_len, &body, &len);
    if (rc != 0)
        goto out;
    /* What is published is checked exactly as a consumer will check it. */
    rc = sy_msg_decode(body, len, &msg, err, sizeof err);
    if (rc == 0 && sy_schemas_check(w->schemas, msg, err, sizeof err) != 0)
        rc = -SY_ESCHEMA;
    if (rc != 0) {
        sy_log_write(SY_LOG_WARN, "worker.publish", -1, err, "refusing to publish %s", type);
        goto out;
    }
    if (id_out)
        snprintf(id_out, SY_MSG_ID_MAX + 1, "%s", sy_msg_id(msg));
    struct sy_publish p = {.exchange = w->topo->exchange,
                           .routing_key = type,
                           .body = body,
                           .len = len,
                           .message_id = sy_msg_id(msg),
                           .type = type};
    if (atomic_load(&w->running))
        rc = sy_broker_publish(w->broker, &p, timeout_ms);
    else
        rc = init_publish(w, &p, timeout_ms);
out:
    sy_msg_destroy(msg);
    free(body);
    return rc;
}

/* --- start-up ------------------------------------------------------------------------------ */

static void print_table(FILE *f, const struct sy_conf_key *keys)
{
    for (size_t i = 0; keys && keys[i].name; i++)
        fprintf(f, "  %-20s %-40s %s\n", keys[i].name, keys[i].def ? keys[i].def : "(unset)",
                keys[i].help ? keys[i].help : "");
}

/* Markdown of a settings table, for the README's configuration reference. The text cells are
 * escaped so a `|` cannot split a row nor a `<` start HTML; defaults under the source tree the
 * binary was built from are shown as <root>/..., so the output is the same in every checkout. */
static void md_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (strchr("|<>*`\\", *s))
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void md_default(FILE *f, const char *def)
{
    size_t root = strlen(SY_DEFAULT_ROOT);

    if (!def) {
        fputs("*unset*", f);
        return;
    }
    fputc('`', f);
    if (strncmp(def, SY_DEFAULT_ROOT, root) == 0 && def[root] == '/') {
        fputs("<root>", f);
        def += root;
    }
    for (; *def; def++) {
        if (*def == '|')
            fputc('\\', f);
        fputc(*def, f);
    }
    fputc('`', f);
}

static void md_row(FILE *f, const struct sy_conf_key *k)
{
    fprintf(f, "| `%s` | ", k->name);
    md_default(f, k->def);
    fputs(" | ", f);
    if (k->flags & SY_CONF_REQUIRED)
        fputs("**required**; ", f);
    md_text(f, k->help);
    if (k->type == SY_CONF_SECRET)
        fprintf(f, " (secret; also `%s_FILE`)", k->name);
    else if (k->type == SY_CONF_URL)
        fprintf(f, " (also `%s_FILE`)", k->name);
    fputs(" |\n", f);
}

static void print_markdown(FILE *f, const struct sy_conf_key *keys)
{
    if (!keys || !keys[0].name) {
        fputs("No settings of its own.\n", f);
        return;
    }
    fputs("| setting | default | meaning |\n|---|---|---|\n", f);
    for (size_t i = 0; keys[i].name; i++)
        md_row(f, &keys[i]);
}

static void print_help(const struct sy_handler *h)
{
    if (h->run)
        printf("sy-%s - the Switchyard worker '%s'. Publishes; stops cleanly on SIGTERM.\n",
               h->name, h->name);
    else
        printf("sy-%s - the Switchyard worker '%s'. Consumes queue sy.%s; stops cleanly on "
               "SIGTERM.\n",
               h->name, h->name, h->name);
    printf("\nSettings (environment variables; a URL may also come from NAME_FILE):\n");
    printf("  %-20s %-40s %s\n", "NAME", "DEFAULT", "MEANING");
    print_table(stdout, settings_keys);
    if (h->conf && h->conf[0].name) {
        printf("\nSettings of %s:\n", h->name);
        print_table(stdout, h->conf);
    }
    printf("\nOptions:\n"
           "  --help, -h                  this text\n"
           "  --version                   the version\n"
           "  --config-markdown           the settings of %s as a Markdown table\n"
           "  --config-markdown=runtime   the settings every worker has, as a Markdown table\n",
           h->name);
    printf("\nExit codes: 0 clean stop, 78 bad configuration, 1 fatal error.\n");
}

static int ready_fn(void *ud, char *why, size_t whylen)
{
    struct sy_worker *w = ud;

    if (sy_broker_ready(w->broker, why, whylen) != 0)
        return -1;
    if (!atomic_load(&w->init_ok)) {
        snprintf(why, whylen, "handler: starting");
        return -1;
    }
    if (w->h->ready && w->h->ready(w->state) != 0) {
        snprintf(why, whylen, "handler: its stores are not reachable");
        return -1;
    }
    return 0;
}

static const char *signal_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
}

int sy_worker_main(const struct sy_handler *h, int argc, char **argv)
{
    struct sy_worker w = {.h = h, .run_efd = -1};
    struct sy_broker_stats stats = {0};
    struct signalfd_siginfo si;
    enum sy_log_level level = SY_LOG_INFO;
    sigset_t sigs;
    int code = 1, sfd = -1, rc;
    bool shut_down = false;
    char err[512];

    if (!h || !h->name) {
        fprintf(stderr, "sy_worker_main: the handler has no name\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(h);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("sy-%s (switchyard) %s\n", h->name, SY_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--config-markdown") == 0) {
            print_markdown(stdout, h->conf);
            return 0;
        }
        if (strcmp(argv[i], "--config-markdown=runtime") == 0) {
            print_markdown(stdout, settings_keys);
            return 0;
        }
        fprintf(stderr,
                "sy-%s: unknown argument '%s' (settings come from the environment; "
                "see --help)\n",
                h->name, argv[i]);
        return EXIT_USAGE;
    }
    pthread_mutex_init(&w.init_mu, NULL);
    pthread_mutex_init(&w.stop_mu, NULL);
    sy_cond_init(&w.stop_cv);

    /* Only the signalfd sees SIGTERM/SIGINT: blocked before any thread exists, every thread
     * inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sfd < 0) {
        sy_log_error("worker.start", "signalfd: %s", strerror(errno));
        goto out;
    }

    /* Settings first: a bad one stops the process with one line naming it. */
    if (sy_conf_load(settings_keys, &w.s, err, sizeof err) != 0) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "bad setting");
        code = EXIT_CONFIG;
        goto out;
    }
    if (w.s.instance && *w.s.instance) {
        snprintf(w.instance, sizeof w.instance, "%s", w.s.instance);
    } else {
        char host[128] = "localhost";

        gethostname(host, sizeof host - 1);
        snprintf(w.instance, sizeof w.instance, "%s-%d", host, (int)getpid());
    }
    if (sy_log_level_parse(w.s.log_level, &level) != 0) {
        snprintf(err, sizeof err, "SY_LOG_LEVEL: expected debug, info, warn or error, got '%.32s'",
                 w.s.log_level);
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "bad setting");
        code = EXIT_CONFIG;
        goto out;
    }
    sy_log_init(h->name, w.instance, level);
    if (h->conf) {
        w.conf = calloc(1, h->conf_size ? h->conf_size : 1);
        if (!w.conf)
            goto out;
        if (sy_conf_load(h->conf, w.conf, err, sizeof err) != 0) {
            sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "bad setting");
            code = EXIT_CONFIG;
            goto out;
        }
    }

    w.schemas = sy_schemas_load(w.s.schema_dir, err, sizeof err);
    if (!w.schemas) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_SCHEMA_DIR: cannot load schemas");
        code = EXIT_CONFIG;
        goto out;
    }
    w.topo = sy_topology_load(w.s.topology, err, sizeof err);
    if (!w.topo) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_TOPOLOGY: cannot load");
        code = EXIT_CONFIG;
        goto out;
    }
    w.tw = sy_topology_worker(w.topo, h->name);
    if (!w.tw && !h->run) {
        sy_log_error("worker.config", "SY_TOPOLOGY: no worker '%s' in %s", h->name, w.s.topology);
        code = EXIT_CONFIG;
        goto out;
    }

    /* A batch handler fills its batches only if the window holds one per thread. */
    const char *pf = getenv("SY_PREFETCH");

    if (h->handle_batch && h->batch_max && (!pf || !*pf)) {
        long long want = w.s.threads * (long long)h->batch_max;

        w.s.prefetch = want > 2000 ? 2000 : want < w.s.prefetch ? w.s.prefetch : want;
    }
    struct sy_broker_opts bo = {
        .url = w.s.amqp_url,
        .instance = w.instance,
        .topo = w.topo,
        .tw = w.tw,
        .schemas = w.schemas,
        .handler = h,
        .prefetch = (unsigned)w.s.prefetch,
        .threads = (unsigned)w.s.threads,
        .heartbeat_s = (int)w.s.heartbeat_s,
        .reconnect_max_ms = w.s.reconnect_max_ms,
        .shutdown_grace_ms = w.s.grace_ms,
    };
    w.broker = sy_broker_new(&bo, err, sizeof err);
    if (!w.broker) {
        sy_log_write(SY_LOG_ERROR, "worker.start", -1, err, "cannot set up the broker");
        goto out;
    }
    w.health = sy_health_start(w.s.http_addr, ready_fn, &w, err, sizeof err);
    if (!w.health) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_HTTP_ADDR: cannot serve health");
        code = EXIT_CONFIG;
        goto out;
    }

    if (h->init && (rc = h->init(&w, &w.state)) != 0) {
        sy_log_write(SY_LOG_ERROR, "worker.init", -1, sy_strerror(rc), "the handler's init failed");
        code = EXIT_CONFIG;
        goto out;
    }
    atomic_store(&w.init_ok, true);
    pthread_mutex_lock(&w.init_mu);
    sy_amqp_destroy(w.init_amqp);
    w.init_amqp = NULL;
    pthread_mutex_unlock(&w.init_mu);

    /* The broker takes the handler's state only now that init produced it. */
    sy_broker_set_state(w.broker, w.state);
    if (sy_broker_start_handlers(w.broker, err, sizeof err) != 0) {
        sy_log_write(SY_LOG_ERROR, "worker.start", -1, err, "cannot start the handler threads");
        goto out;
    }
    if (sy_broker_start(w.broker, err, sizeof err) != 0) {
        sy_log_write(SY_LOG_ERROR, "worker.start", -1, err, "cannot start the broker thread");
        goto out;
    }
    atomic_store(&w.running, true);
    if (h->run) {
        int prc;

        w.run_efd = eventfd(0, EFD_CLOEXEC);
        if (w.run_efd < 0 || (prc = pthread_create(&w.run_tid, NULL, run_main, &w)) != 0) {
            sy_log_error("worker.start", "cannot start the handler's loop: %s",
                         strerror(w.run_efd < 0 ? errno : prc));
            goto out;
        }
        w.run_started = true;
        sy_log_info("worker.start",
                    "sy-%s %s started: health on port %d; amqp %s; publishing only; heartbeat "
                    "%lld s; grace %lld ms; reconnect max %lld ms; %zu schema(s) from %s; "
                    "topology %s",
                    h->name, SY_VERSION, sy_health_port(w.health), w.s.amqp_url, w.s.heartbeat_s,
                    w.s.grace_ms, w.s.reconnect_max_ms, sy_schemas_count(w.schemas), w.s.schema_dir,
                    w.s.topology);
    } else {
        sy_log_info("worker.start",
                    "sy-%s %s started: health on port %d; amqp %s; queue sy.%s; prefetch %lld; "
                    "%lld handler thread(s); heartbeat %lld s; grace %lld ms; reconnect max %lld "
                    "ms; %zu schema(s) from %s; topology %s",
                    h->name, SY_VERSION, sy_health_port(w.health), w.s.amqp_url, h->name,
                    w.s.prefetch, w.s.threads, w.s.heartbeat_s, w.s.grace_ms, w.s.reconnect_max_ms,
                    sy_schemas_count(w.schemas), w.s.schema_dir, w.s.topology);
    }

    /* Until a signal, or until the handler's own loop returns by itself. */
    bool by_signal = false;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = w.run_efd, .events = POLLIN}};

        if (poll(pfd, w.run_efd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            sy_log_error("worker.stop", "waiting for signals: %s", strerror(errno));
            break;
        }
        if (pfd[0].revents & POLLIN) {
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                by_signal = true;
                break;
            }
            if (errno != EINTR && errno != EAGAIN) {
                sy_log_error("worker.stop", "reading signals: %s", strerror(errno));
                break;
            }
        }
        if (w.run_efd >= 0 && (pfd[1].revents & POLLIN))
            break;
    }
    set_stopping(&w);
    if (by_signal)
        sy_log_info("worker.drain", "%s received: draining (grace %lld ms)",
                    signal_name((int)si.ssi_signo), w.s.grace_ms);
    if (w.run_started) {
        /* The loop finishes its publishes while the broker still runs. */
        struct timespec abs;

        clock_gettime(CLOCK_REALTIME, &abs);
        abs.tv_sec += (time_t)(w.s.grace_ms / 1000) + 1;
        if (pthread_timedjoin_np(w.run_tid, NULL, &abs) != 0) {
            sy_log_warn("worker.stop",
                        "the handler's loop outlived the grace of %lld ms; "
                        "leaving without cleanup",
                        w.s.grace_ms);
            _exit(1);
        }
        w.run_started = false;
        rc = atomic_load(&w.run_rc);
        if (!by_signal)
            sy_log_write(rc ? SY_LOG_ERROR : SY_LOG_INFO, "worker.stop", -1,
                         rc ? sy_strerror(rc) : NULL, "the handler's loop ended by itself");
    }
    sy_broker_shutdown(w.broker, &stats);
    shut_down = true;
    atomic_store(&w.running, false);
    if (stats.stuck) {
        /* Handler calls that outlived the grace cannot be joined: leave without cleanup. The
         * broker already closed the connection, so their messages are back in the queue. */
        sy_log_warn("worker.stop",
                    "stopped with %u handler call(s) still running and %u deliveries in flight "
                    "(requeued by the broker); consumed %llu, acked %llu, retried %llu, "
                    "dead-lettered %llu, published %llu, reconnects %llu",
                    stats.stuck, stats.in_flight, (unsigned long long)stats.consumed,
                    (unsigned long long)stats.acked, (unsigned long long)stats.retried,
                    (unsigned long long)stats.dead_lettered, (unsigned long long)stats.published,
                    (unsigned long long)stats.reconnects);
        _exit(0);
    }
    code = atomic_load(&w.run_rc) != 0 ? 1 : 0;
    sy_log_info("worker.stop",
                "stopped: consumed %llu, acked %llu, retried %llu, dead-lettered %llu, "
                "published %llu, reconnects %llu%s",
                (unsigned long long)stats.consumed, (unsigned long long)stats.acked,
                (unsigned long long)stats.retried, (unsigned long long)stats.dead_lettered,
                (unsigned long long)stats.published, (unsigned long long)stats.reconnects,
                stats.in_flight ? " (grace passed: the rest was requeued)" : "");
out:
    if (w.run_started) {
        set_stopping(&w);
        pthread_join(w.run_tid, NULL);
    }
    if (w.broker && !shut_down) {
        /* Start-up failed after some threads ran: stop them (thread_exit runs in each). */
        sy_broker_shutdown(w.broker, &stats);
        if (stats.stuck)
            _exit(code);
    }
    sy_broker_destroy(w.broker);
    /* No more ready() calls into the handler's state once it is torn down. */
    sy_health_stop(w.health);
    if (atomic_load(&w.init_ok) && h->exit)
        h->exit(w.state);
    sy_amqp_destroy(w.init_amqp);
    sy_topology_destroy(w.topo);
    sy_schemas_destroy(w.schemas);
    if (h->conf && w.conf)
        sy_conf_free(h->conf, w.conf);
    free(w.conf);
    sy_conf_free(settings_keys, &w.s);
    if (sfd >= 0)
        close(sfd);
    if (w.run_efd >= 0)
        close(w.run_efd);
    pthread_cond_destroy(&w.stop_cv);
    pthread_mutex_destroy(&w.stop_mu);
    pthread_mutex_destroy(&w.init_mu);
    return code;
}
