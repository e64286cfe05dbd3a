/* child.c - fork, limits and signals in the child, the framed pipe between the two, and the
 * parent's deadlines. */
#include "optimizer/child.h"

#include "optimizer/plan.h"
#include "optimizer/result.h"
#include "optimizer/solve_int.h"
#include "sy/clock.h"
#include "sy/err.h"

#include <errno.h>
#include <fcntl.h>
#include <glpk.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define HDR 5

struct op_child {
    pid_t pid;
    int fd;
    double deadline; /* monotonic seconds */
    bool cancelled, killed, reaped;
    bool closed; /* the pipe reached EOF */
    bool done;   /* the end was reported by op_child_poll */
    int wstatus;
    char *buf; /* frames read, not yet handed out */
    size_t len, cap;
    json_t *result;
};

/* ---- the child ---- */

static volatile sig_atomic_t child_cancel;
static jmp_buf child_jmp;
static int child_fd = -1;

static void on_usr1(int sig)
{
    (void)sig;
    child_cancel = 1;
}

/* GLPK calls this on a fatal error; returning would abort the process. */
static void on_glpk_error(void *info)
{
    (void)info;
    longjmp(child_jmp, 1);
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static void header(char *h, char type, size_t len)
{
    h[0] = type;
    h[1] = (char)(len >> 24);
    h[2] = (char)(len >> 16);
    h[3] = (char)(len >> 8);
    h[4] = (char)len;
}

static void fmt_num(char *out, size_t n, double v)
{
    if (isfinite(v))
        snprintf(out, n, "%.17g", v);
    else
        snprintf(out, n, "null");
}

/* Progress without malloc, in one write no longer than PIPE_BUF: all of it or nothing. */
static void send_progress(const struct op_progress *p, void *arg)
{
    char frame[512], inc[32], bnd[32], gap[32];
    (void)arg;

    fmt_num(inc, sizeof inc, p->incumbent);
    fmt_num(bnd, sizeof bnd, p->bound);
    fmt_num(gap, sizeof gap, p->gap);
    int n = snprintf(frame + HDR, sizeof frame - HDR,
                     "{\"incumbent\":%s,\"bound\":%s,\"gap\":%s,\"seconds\":%.3f,\"nodes\":%d}",
                     inc, bnd, gap, p->seconds, p->nodes);
    if (n <= 0 || (size_t)n >= sizeof frame - HDR)
        return;
    header(frame, 'P', (size_t)n);
    (void)!write(child_fd, frame, HDR + (size_t)n); /* EAGAIN: this report is dropped */
}

static void send_result(int fd, const char *json)
{
    char h[HDR];
    int fl = fcntl(fd, F_GETFL);

    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    header(h, 'R', strlen(json));
    if (write_all(fd, h, HDR))
        write_all(fd, json, strlen(json));
}

/* A result the child can send without allocating: after a failed allocation there may be no
 * memory for jansson. */
static void send_error(int fd, const char *status, const char *why)
{
    char out[512], clean[300];
    size_t k = 0;

    for (const char *s = why; *s && k < sizeof clean - 2; s++)
        clean[k++] = (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) ? '\'' : *s;
    clean[k] = '\0';
    snprintf(out, sizeof out,
             "{\"status\":\"%s\",\"reason\":\"%s\",\"objective\":null,\"bound\":null,"
             "\"gap\":null,\"seconds\":null}",
             status, clean);
    send_result(fd, out);
}

static void set_limits(size_t mb)
{
    if (!mb)
        return;
    glp_mem_limit((int)mb);
#ifndef UNDER_ASAN
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    /* The solve may grow the address space by the limit, plus slack for stacks and libraries
     * mapped late; GLPK's own limit above normally trips first, with a clean message. */
    rlim_t as = (rlim_t)pages * (rlim_t)page + ((rlim_t)mb + OP_CHILD_AS_SLACK_MB) * 1048576u;
    struct rlimit rl = {as, as};
    setrlimit(RLIMIT_AS, &rl);
#endif
}

static struct op_result child_result; /* static: survives the longjmp intact */

static void child_main(int fd, const struct op_job *job, const struct op_options *opt)
{
    struct op_ctl ctl = {.cancel = &child_cancel, .progress = send_progress, .progress_ms = 500};
    struct sigaction sa = {.sa_handler = on_usr1};
    sigset_t set;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaction(SIGUSR1, &sa, NULL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    child_fd = fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    op_glpk_capture();
    glp_error_hook(on_glpk_error, NULL);
    set_limits(opt->mem_limit_mb);
    if (setjmp(child_jmp)) {
        char why[OP_REASON_MAX + 64];
        const char *line = op_glpk_error_line();
        bool mem = op_glpk_error_in("alloc.c") || strstr(line, "memory") != NULL;
        snprintf(why, sizeof why, "%s%s",
                 mem ? "memory limit reached: " : "GLPK fatal error: ", line);
        glp_free_env(); /* the manual's rule after a fatal error: drop every GLPK object */
        send_error(fd, "error", why);
        _exit(3);
    }
    if (job->scenario)
        op_plan_solve(job->scenario, opt, &ctl, &child_result);
    else
        op_model_solve(job->format, job->text, job->len, opt, &ctl, &child_result);
    glp_error_hook(NULL, NULL);
    json_t *j = op_result_json(&child_result, job->scenario);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text && strlen(text) <= OP_CHILD_RESULT_MAX)
        send_result(fd, text);
    else
        send_error(fd, "error",
                   text ? "result too large" : "memory limit reached: writing the result");
    _exit(0);
}

/* ---- the parent ---- */

int op_child_start(const struct op_job *job, const struct op_options *opt, struct op_child **out,
                   char *err, size_t errlen)
{
    struct op_child *c = NULL;
    int fds[2] = {-1, -1}, rc;

    *out = NULL;
    if ((rc = op_options_check(opt, err, errlen)) < 0)
        goto out;
    if (!job->scenario && (!job->text || job->len > OP_MODEL_TEXT_MAX)) {
        sy_errf(err, errlen, "model: text missing or above %zu bytes", OP_MODEL_TEXT_MAX);
        rc = -SY_EINVAL;
        goto out;
    }
    if (!(c = calloc(1, sizeof *c))) {
        rc = -SY_ENOMEM;
        goto out;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        sy_errf(err, errlen, "pipe: %s", strerror(errno));
        rc = -SY_EIO;
        goto out;
    }
    double limit = opt->time_limit_s > 0 ? opt->time_limit_s : OP_CHILD_DEFAULT_S;
    struct op_options copt = *opt;
    copt.time_limit_s = limit;
    c->deadline = sy_mono_s() + limit + OP_CHILD_GRACE_S;
    /* SIGUSR1 stays blocked until the child has its handler: an early cancel must not kill it
     * with the default action. */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);
    c->pid = fork();
    if (c->pid != 0)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (c->pid < 0) {
        sy_errf(err, errlen, "fork: %s", strerror(errno));
        rc = -SY_EIO;
        goto out;
    }
    if (c->pid == 0) {
        close(fds[0]);
        child_main(fds[1], job, &copt);
        _exit(4);
    }
    close(fds[1]);
    fds[1] = -1;
    c->fd = fds[0];
    fds[0] = -1;
    *out = c;
    c = NULL;
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(c);
    return rc;
}

pid_t op_child_pid(const struct op_child *c)
{
    return c->pid;
}

void op_child_cancel(struct op_child *c)
{
    if (c->cancelled || c->reaped)
        return;
    c->cancelled = true;
    kill(c->pid, SIGUSR1);
    if (sy_mono_s() + OP_CHILD_GRACE_S < c->deadline)
        c->deadline = sy_mono_s() + OP_CHILD_GRACE_S;
}

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static double num_or_nan(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* 1 progress, 2 result taken, 0 no whole frame yet, -1 a bad frame. */
static int take_frame(struct op_child *c, struct op_progress *p)
{
    if (c->len < HDR)
        return 0;
    size_t n = be32(c->buf + 1);
    if (n > OP_CHILD_RESULT_MAX || (c->buf[0] != 'P' && c->buf[0] != 'R'))
        return -1;
    if (c->len < HDR + n)
        return 0;
    json_t *j = json_loadb(c->buf + HDR, n, 0, NULL);
    char type = c->buf[0];
    memmove(c->buf, c->buf + HDR + n, c->len - HDR - n);
    c->len -= HDR + n;
    if (!j)
        return -1;
    if (type == 'R') {
        json_decref(c->result);
        c->result = j;
        return 2;
    }
    *p = (struct op_progress){num_or_nan(j, "incumbent"), num_or_nan(j, "bound"),
                              num_or_nan(j, "gap"), num_or_nan(j, "seconds"),
                              (int)json_integer_value(json_object_get(j, "nodes"))};
    json_decref(j);
    return 1;
}

static void kill_child(struct op_child *c)
{
    if (!c->reaped && !c->killed) {
        kill(c->pid, SIGKILL);
        c->killed = true;
    }
}

static int read_some(struct op_child *c)
{
    if (c->cap - c->len < 65536) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        if (cap > OP_CHILD_RESULT_MAX + 2 * 65536 + HDR)
            return -1;
        char *b = realloc(c->buf, cap);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

int op_child_poll(struct op_child *c, int timeout_ms, struct op_progress *p)
{
    double until = timeout_ms < 0 ? INFINITY : sy_mono_s() + timeout_ms / 1000.0;

    for (;;) {
        if (c->done)
            return 2;
        int f = take_frame(c, p);
        if (f == 1)
            return 1;
        if (f == 2 || f < 0 || c->closed) { /* the result is the last frame */
            c->done = true;
            return 2;
        }
        double now = sy_mono_s();
        if (now >= c->deadline)
            kill_child(c); /* the pipe then reaches EOF */
        if (now >= until)
            return 0;
        double wait = fmin(until, c->killed ? now + 1 : c->deadline) - now;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int ms = (int)ceil(fmax(wait, 0) * 1000);
        if (poll(&pfd, 1, ms > 0 ? ms : 1) > 0 && read_some(c) < 0)
            c->closed = true;
    }
}

static json_t *died(struct op_child *c)
{
    char why[256];
    const char *status = c->cancelled ? "cancelled" : "error";

    if (c->killed)
        snprintf(why, sizeof why, "%s",
                 c->cancelled ? "cancelled; the solver did not stop in time"
                              : "killed: wall-clock limit exceeded");
    else if (WIFSIGNALED(c->wstatus))
        snprintf(why, sizeof why, "solver process died of signal %d%s", WTERMSIG(c->wstatus),
                 WTERMSIG(c->wstatus) == SIGKILL ? " (memory?)" : "");
    else
        snprintf(why, sizeof why, "solver process exited %d without a result",
                 WEXITSTATUS(c->wstatus));
    return json_pack("{s:s,s:s,s:n,s:n,s:n,s:n}", "status", status, "reason", why, "objective",
                     "bound", "gap", "seconds");
}

json_t *op_child_wait(struct op_child *c)
{
    struct op_progress p;

    while (op_child_poll(c, -1, &p) != 2)
        ;
    if (!c->reaped) {
        while (waitpid(c->pid, &c->wstatus, 0) < 0 && errno == EINTR)
            ;
        c->reaped = true;
    }
    if (c->result)
        return json_incref(c->result);
    return died(c);
}

void op_child_destroy(struct op_child *c)
{
    if (!c)
        return;
    if (!c->reaped) {
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, &c->wstatus, 0) < 0 && errno == EINTR)
            ;
    }
    close(c->fd);
    free(c->buf);
    json_decref(c->result);
    free(c);
}
