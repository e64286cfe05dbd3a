/* harness.c - see harness.h. Test code: failures print a reason and exit the test. */
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/msg.h"
#include "sy/redis.h"
#include "sy/topology.h"

static void die(const char *what, const char *why)
{
    fprintf(stderr, "harness: %s: %s\n", what, why ? why : "");
    exit(1);
}

const char *th_need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "skipped: %s is not set (run through ./fleet test)\n", name);
        exit(77);
    }
    return v;
}

int th_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    if (port <= 0) {
        fprintf(stderr, "no free loopback port\n");
        abort();
    }
    return port;
}

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

void th_run_id(char buf[17])
{
    unsigned char b[8];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        die("getrandom", strerror(errno));
    for (int i = 0; i < 8; i++)
        snprintf(buf + 2 * i, 3, "%02x", b[i]);
}

int th_proc_spawn(struct th_proc *p, const char *bin, const char *const *env)
{
    static int seq;
    memset(p, 0, sizeof *p);
    const char *dir = getenv("SY_BUILD_DIR");
    snprintf(p->log_path, sizeof p->log_path, "%s/Testing/proc-%d-%d.log", dir ? dir : ".",
             (int)getpid(), ++seq);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    return 0;
}

void th_proc_signal(struct th_proc *p, int sig)
{
    if (p->pid > 0 && !p->exited)
        kill(p->pid, sig);
}

int th_proc_wait(struct th_proc *p, int timeout_ms)
{
    if (p->exited)
        return 0;
    int64_t end = th_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->exited = true;
            p->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return 0;
        }
        if (th_now_ms() >= end)
            return -1;
        th_sleep_ms(10);
    }
}

void th_proc_dump_log(const struct th_proc *p, int max_lines)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return;
    char **ring = calloc((size_t)max_lines, sizeof *ring);
    char line[4096];
    int n = 0;
    while (ring && fgets(line, sizeof line, f)) {
        free(ring[n % max_lines]);
        ring[n % max_lines] = strdup(line);
        n++;
    }
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", p->log_path);
    for (int i = n > max_lines ? n - max_lines : 0; ring && i < n; i++)
        fputs(ring[i % max_lines], stderr);
    for (int i = 0; ring && i < max_lines; i++)
        free(ring[i]);
    free(ring);
}

void th_proc_cleanup(struct th_proc *p)
{
    if (p->pid > 0 && !p->exited) {
        kill(p->pid, SIGKILL);
        th_proc_wait(p, 5000);
    }
}

int th_log_count(const struct th_proc *p, const char *needle)
{
    FILE *fp = fopen(p->log_path, "r");
    if (!fp)
        return 0;
    char line[16384];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        if (strstr(line, needle))
            n++;
    fclose(fp);
    return n;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void th_rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int th_write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    int rc = fputs(text, fp) >= 0 ? 0 : -1;
    if (fclose(fp) != 0)
        rc = -1;
    return rc;
}

struct sy_amqp *th_amqp(struct sy_topology **topo)
{
    const char *url = th_need_env("SY_AMQP_URL");
    char err[256];
    struct sy_topology *t = sy_topology_load(th_need_env("SY_TOPOLOGY"), err, sizeof err);
    if (!t)
        die("topology", err);
    struct sy_amqp *a = sy_amqp_connect(url, "sy-test", 30, err, sizeof err);
    if (!a)
        die("amqp connect", err);
    if (sy_amqp_declare(a, t, NULL) != 0)
        die("amqp declare", sy_amqp_error(a));
    *topo = t;
    return a;
}

void th_purge_worker(struct sy_amqp *a, const struct sy_topology *t, const char *worker)
{
    const struct sy_topo_worker *w = sy_topology_worker(t, worker);
    if (!w)
        die("no such worker in topology", worker);
    char q[256];
    uint32_t n;
    sy_topo_queue_name(w, q, sizeof q);
    sy_amqp_queue_purge(a, q, &n);
    sy_topo_dead_name(w, q, sizeof q);
    sy_amqp_queue_purge(a, q, &n);
    for (size_t i = 0; i < w->ndelays; i++) {
        sy_topo_retry_name(w, i, q, sizeof q);
        sy_amqp_queue_purge(a, q, &n);
    }
}

uint32_t th_queue_depth(struct sy_amqp *a, const char *queue)
{
    uint32_t messages = 0, consumers = 0;
    if (sy_amqp_queue_info(a, queue, &messages, &consumers) != 0)
        die("queue info", sy_amqp_error(a));
    return messages;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int th_publish_probe(struct sy_amqp *a, const char *exchange, const char *type, const char *run,
                     int64_t n, const char *action, int64_t sleep_ms, int64_t fail_times,
                     char *id_out)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3 + (sleep_ms >= 0) + (fail_times >= 0));
    pack_str(&pk, "run");
    pack_str(&pk, run);
    pack_str(&pk, "n");
    msgpack_pack_int64(&pk, n);
    pack_str(&pk, "action");
    pack_str(&pk, action);
    if (sleep_ms >= 0) {
        pack_str(&pk, "sleep_ms");
        msgpack_pack_int64(&pk, sleep_ms);
    }
    if (fail_times >= 0) {
        pack_str(&pk, "fail_times");
        msgpack_pack_int64(&pk, fail_times);
    }
    int rc = th_publish_body(a, exchange, type, NULL, sb.data, sb.size, id_out);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int th_publish_body(struct sy_amqp *a, const char *exchange, const char *type, const char *id,
                    const void *mp, size_t mlen, char *id_out)
{
    char fresh[37];
    if (!id) {
        sy_uuid4(fresh);
        id = fresh;
    }
    void *body = NULL;
    size_t len = 0;
    int rc = sy_msg_encode(type, id, "sy-test", 0, mp, mlen, &body, &len);
    if (rc != 0)
        return rc;
    struct sy_publish p = {.exchange = exchange,
                           .routing_key = type,
                           .body = body,
                           .len = len,
                           .message_id = id,
                           .type = type};
    rc = sy_amqp_publish_nowait(a, &p);
    free(body);
    if (rc == 0 && id_out)
        snprintf(id_out, 37, "%s", id);
    return rc;
}

struct sy_amqp *th_fleet_amqp(const char *worker, const char *name, struct sy_topology **topo,
                              char *queue, char *dead)
{
    const char *src = th_need_env("SY_SOURCE_DIR");
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/schemas/topology.yaml", src);
    setenv("SY_TOPOLOGY", path, 1);
    snprintf(path, sizeof path, "%s/schemas/messages", src);
    setenv("SY_SCHEMA_DIR", path, 1);
    if (!(*topo = sy_topology_load(getenv("SY_TOPOLOGY"), err, sizeof err)))
        die("topology", err);
    struct sy_amqp *a = sy_amqp_connect(th_need_env("SY_AMQP_URL"), name, 0, err, sizeof err);
    if (!a)
        die("amqp connect", err);
    if (sy_amqp_declare(a, *topo, worker) != 0)
        die("amqp declare", sy_amqp_error(a));
    const struct sy_topo_worker *tw = sy_topology_worker(*topo, worker);
    if (!tw)
        die("topology", worker);
    sy_topo_queue_name(tw, queue, 256);
    sy_topo_dead_name(tw, dead, 256);
    th_purge_worker(a, *topo, worker);
    return a;
}

struct redisContext *th_redis(void)
{
    const char *url = th_need_env("SY_REDIS_URL");
    char host[128] = "127.0.0.1";
    int port = 6379;
    /* redis://host:port/db as exported by ./fleet test; the tests need nothing fancier. */
    if (sscanf(url, "redis://%127[^:/]:%d", host, &port) < 1)
        die("SY_REDIS_URL", "expected redis://host:port/db");
    struct timeval tv = {5, 0};
    redisContext *r = redisConnectWithTimeout(host, port, tv);
    if (!r || r->err)
        die("redis connect", r ? r->errstr : "out of memory");
    int db = 0;
    if (sscanf(url, "redis://%*[^/]/%d", &db) == 1 && db != 0) {
        redisReply *rep = redisCommand(r, "SELECT %d", db);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            die("redis SELECT", rep ? rep->str : r->errstr);
        freeReplyObject(rep);
    }
    return r;
}

struct sy_redis *th_sy_redis(int timeout_ms)
{
    char err[256] = "";
    struct sy_redis *r = sy_redis_connect(th_need_env("SY_REDIS_URL"), timeout_ms, err, sizeof err);
    if (!r)
        die("sy_redis_connect", err);
    return r;
}

static long long reply_int(redisReply *rep)
{
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    else if (rep && rep->type == REDIS_REPLY_STRING)
        v = atoll(rep->str);
    else if (rep && rep->type == REDIS_REPLY_NIL)
        v = 0;
    freeReplyObject(rep);
    return v;
}

long long th_probe_done_count(struct redisContext *r, const char *run)
{
    return reply_int(redisCommand(r, "SCARD sy:probe:%s:done", run));
}

bool th_probe_is_done(struct redisContext *r, const char *run, const char *id)
{
    return reply_int(redisCommand(r, "SISMEMBER sy:probe:%s:done %s", run, id)) == 1;
}

long long th_probe_seen(struct redisContext *r, const char *run, const char *id)
{
    return reply_int(redisCommand(r, "HGET sy:probe:%s:seen %s", run, id));
}

size_t th_probe_times(struct redisContext *r, const char *run, const char *id, int64_t *out,
                      size_t max)
{
    redisReply *rep = redisCommand(r, "LRANGE sy:probe:%s:t:%s 0 -1", run, id);
    size_t n = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < rep->elements && n < max; i++)
            out[n++] = atoll(rep->element[i]->str);
    freeReplyObject(rep);
    return n;
}

bool th_wait_until(bool (*cond)(void *ud), void *ud, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ud))
            return true;
        if (th_now_ms() >= end)
            return cond(ud);
        th_sleep_ms(20);
    }
}

struct done_cond {
    redisContext *redis;
    const char *run;
    long long want;
};

static bool done_reached(void *ud)
{
    struct done_cond *c = ud;
    return th_probe_done_count(c->redis, c->run) >= c->want;
}

bool th_probe_wait_done(struct redisContext *r, const char *run, long long want, int timeout_ms)
{
    struct done_cond c = {r, run, want};
    return th_wait_until(done_reached, &c, timeout_ms);
}

/* The whole of a capture file, removed afterwards; NULL on failure. */
static char *take_file(FILE *f)
{
    long n;
    char *text = NULL;

    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    if (!(text = malloc((size_t)n + 1)))
        goto out;
    if (fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
        goto out;
    }
    text[n] = '\0';
out:
    fclose(f);
    return text;
}

int th_run(const char *bin, const char *const *args, const char *const *env, int timeout_ms,
           char **out, char **err)
{
    FILE *cap[2] = {tmpfile(), tmpfile()};
    const char *argv[64] = {bin};
    int st = 0, rc = -1;
    pid_t pid;

    *out = *err = NULL;
    if (!cap[0] || !cap[1])
        goto fail;
    for (size_t i = 0; args && args[i] && i < 62; i++)
        argv[i + 1] = args[i];
    fflush(NULL);
    if ((pid = fork()) < 0)
        goto fail;
    if (pid == 0) {
        dup2(fileno(cap[0]), 1);
        dup2(fileno(cap[1]), 2);
        for (size_t i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            char name[128];

            if (!eq) {
                unsetenv(env[i]);
                continue;
            }
            snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
            setenv(name, eq + 1, 1);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int64_t end = th_now_ms() + timeout_ms;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);

        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            goto fail;
        if (th_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            goto fail;
        }
        th_sleep_ms(10);
    }
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    *out = take_file(cap[0]);
    *err = take_file(cap[1]);
    if (!*out || !*err) {
        free(*out);
        free(*err);
        *out = *err = NULL;
        return -1;
    }
    return rc;
fail:
    for (int i = 0; i < 2; i++)
        if (cap[i])
            fclose(cap[i]);
    return -1;
}

char *th_read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf;

    if (!fp)
        return NULL;
    buf = take_file(fp);
    return buf;
}

/* Blanks SQL comments (outside quotes), so statements can be split at ';'. */
static void blank_comments(char *p)
{
    while (*p) {
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                *p++ = ' ';
        } else if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
        } else {
            p++;
        }
    }
}

char *th_grm_ddl(const char *src, const char *qtable)
{
    char path[1200], *text, *out = NULL;

    snprintf(path, sizeof path, "%s/schemas/sql/grm-mysql/0001_grm.sql", src);
    if (!(text = th_read_file(path)))
        return NULL;
    blank_comments(text);
    for (char *stmt = text, *end; stmt && *stmt && !out; stmt = end ? end + 1 : NULL) {
        char *create, *name;
        size_t len;

        if ((end = strchr(stmt, ';')))
            *end = '\0';
        create = strcasestr(stmt, "CREATE TABLE");
        if (!create || !strstr(stmt, "chatbot_ref"))
            continue;
        name = create + strlen("CREATE TABLE");
        name += strspn(name, " \t\n");
        if (strncasecmp(name, "IF NOT EXISTS", 13) == 0)
            name += 13 + strspn(name + 13, " \t\n");
        if (*name == '`') {
            if (!(name = strchr(name + 1, '`')))
                break;
            name++;
        } else {
            name += strcspn(name, " (\n\t");
        }
        len = strlen(name) + strlen(qtable) + 32;
        if ((out = malloc(len)))
            snprintf(out, len, "CREATE TABLE %s %s", qtable, name);
    }
    free(text);
    return out;
}
