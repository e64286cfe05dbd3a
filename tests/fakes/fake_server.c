/* fake_server.c - the HTTP plumbing the fakes share (see fake_server.h). */
#include "fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct server {
    size_t body_max;
    fake_route route;
    fake_too_big too_big;
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    const struct server *s = cls;
    struct req *rq = *con_cls;
    enum MHD_Result ok;
    int delay = 0;

    (void)version;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->len + *upload_size > s->body_max) {
            rq->too_big = true;
        } else {
            char *p = realloc(rq->body, rq->len + *upload_size + 1);

            if (!p)
                return MHD_NO;
            memcpy(p + rq->len, upload, *upload_size);
            rq->body = p;
            rq->len += *upload_size;
            rq->body[rq->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return s->too_big(c);
    ok = s->route(c, url, method, rq, &delay);
    /* The answer is queued; a slow server holds it back. */
    if (delay > 0)
        usleep((useconds_t)delay * 1000u);
    return ok;
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode why)
{
    struct req *rq = *con_cls;

    (void)cls;
    (void)c;
    (void)why;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

int fake_serve(const char *name, int *port, size_t body_max, fake_route route, fake_too_big too_big)
{
    struct server s = {body_max, route, too_big};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;
    sigset_t set;
    int sig;

    /* Blocked before the server's threads start, so only sigwait below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, handle, &s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                         done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d\n", name, *port);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    /* Answers that name the fake's own URLs need the port clients reach it on. */
    *port = info ? info->port : *port;
    printf("port=%d\n", *port);
    fflush(stdout);
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}

/* --- one-shot faults ------------------------------------------------------------------------ */

int fake_once_add(struct fake_once *o, const json_t *list, const char *const *names, char *err,
                  size_t errlen)
{
    const json_t *it;
    size_t i;

    if (list && !json_is_array(list)) {
        snprintf(err, errlen, "once: expected a list");
        return -1;
    }
    json_array_foreach(list, i, it)
    {
        const char *on = json_string_value(json_object_get(it, "on"));
        json_int_t status = json_integer_value(json_object_get(it, "status"));
        json_int_t delay = json_integer_value(json_object_get(it, "delay_ms"));
        int k = 0;

        while (names[k] && (!on || strcmp(names[k], on) != 0))
            k++;
        if (o->n == FAKE_ONCE_MAX) {
            snprintf(err, errlen, "once: more than %d faults waiting", FAKE_ONCE_MAX);
            return -1;
        }
        if (!names[k] || (status && (status < 400 || status > 599)) || delay < 0 ||
            delay > 600000 || !status == !delay) {
            size_t n = (size_t)snprintf(err, errlen, "once: each {\"on\": ");

            for (k = 0; names[k] && n < errlen; k++)
                n += (size_t)snprintf(err + n, errlen - n, "%s%s", k ? "|" : "", names[k]);
            if (n < errlen)
                snprintf(err + n, errlen - n, "} with a \"status\" of 400-599 or a \"delay_ms\"");
            return -1;
        }
        o->f[o->n].on = k;
        o->f[o->n].status = (int)status;
        o->f[o->n].delay_ms = (int)delay;
        o->n++;
    }
    return 0;
}

int fake_once_take(struct fake_once *o, int k, int covers, int *delay_ms)
{
    for (int i = 0; i < o->n; i++) {
        int on = o->f[i].on, status = o->f[i].status;

        if (on != 0 && on != k && on != covers)
            continue;
        if (!status && o->f[i].delay_ms > *delay_ms)
            *delay_ms = o->f[i].delay_ms;
        memmove(&o->f[i], &o->f[i + 1], (size_t)(o->n - i - 1) * sizeof o->f[0]);
        o->n--;
        return status;
    }
    return -1;
}
