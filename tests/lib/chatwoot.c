/* chatwoot.c - Chatwoot's payloads and the fake GLPI for tests (see chatwoot.h). */
#include "chatwoot.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "http.h"
#include "sy/amqp.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"

json_t *th_cw_contact(long long id, int n)
{
    char name[64], email[64], phone[24];

    snprintf(name, sizeof name, "Citizen %03d", n);
    snprintf(email, sizeof email, "citizen%lld@example.org", id);
    snprintf(phone, sizeof phone, "+9198%08lld", id % 100000000);
    return json_pack("{s:I, s:s, s:s, s:s, s:n, s:{}, s:{}, s:{s:i, s:s}, s:s}", "id",
                     (json_int_t)id, "name", name, "email", email, "phone_number", phone,
                     "identifier", "custom_attributes", "additional_attributes", "account", "id", 1,
                     "name", "Utility", "type", "contact");
}

json_t *th_cw_conversation(long long id, json_t *sender, const char *status, double ts)
{
    return json_pack("{s:I, s:i, s:s, s:s, s:[], s:{s:O, s:n}, s:f, s:f, s:{s:O}}", "id",
                     (json_int_t)id, "inbox_id", 1, "channel", "Channel::Api", "status", status,
                     "messages", "meta", "sender", sender, "assignee", "timestamp", ts,
                     "created_at", ts, "contact_inbox", "contact_id",
                     json_object_get(sender, "id"));
}

json_t *th_cw_message(long long id, json_t *conv, json_t *sender, const char *type, bool private,
                      const char *content, long long at)
{
    char stamp[40];
    time_t t = (time_t)at;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:{}, s:n, s:{s:O, s:O, s:s}, s:{s:i, s:s},"
                     " s:O, s:{s:i, s:s}}",
                     "id", (json_int_t)id, "content", content, "created_at", stamp, "message_type",
                     type, "content_type", "text", "private", private, "content_attributes",
                     "source_id", "sender", "id", json_object_get(sender, "id"), "name",
                     json_object_get(sender, "name"), "type",
                     strcmp(type, "incoming") == 0 ? "contact" : "user", "inbox", "id", 1, "name",
                     "Support", "conversation", conv, "account", "id", 1, "name", "Utility");
}

int th_cw_publish(struct sy_amqp *a, const char *exchange, const char *hook, const char *event,
                  json_t *payload, const char *id)
{
    char type[96];
    void *mp = NULL;
    size_t mlen = 0;
    json_t *data;
    int rc;

    json_object_set_new(payload, "event", json_string(event));
    data = json_pack("{s:s, s:n, s:o}", "hook", hook, "delivery", "payload", payload);
    if (!data)
        return -SY_ENOMEM;
    snprintf(type, sizeof type, "chatwoot.%s", event);
    rc = sy_json_to_msgpack(data, &mp, &mlen);
    json_decref(data);
    if (rc == 0)
        rc = th_publish_body(a, exchange, type, id, mp, mlen, NULL);
    free(mp);
    return rc;
}

int th_fake_glpi_start(const char *const *argv, pid_t *pid, int *port)
{
    int fds[2];
    char line[64] = "";
    size_t n = 0;

    if (pipe(fds) != 0)
        return -1;
    *pid = fork();
    if (*pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    /* Its first line says where it listens. */
    while (n < sizeof line - 1 && read(fds[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    close(fds[0]);
    line[n] = '\0';
    if (sscanf(line, "port=%d", port) != 1) {
        th_fake_glpi_stop(pid);
        return -1;
    }
    return 0;
}

void th_fake_glpi_stop(pid_t *pid)
{
    int st;

    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    waitpid(*pid, &st, 0);
    *pid = 0;
}

long th_fake_glpi_post(int port, const char *what, const char *body)
{
    char path[96];

    snprintf(path, sizeof path, "/_fake/%s", what);
    struct th_reply r = th_http(port, "POST", path, NULL, body);
    long st = r.status;

    th_reply_free(&r);
    return st;
}

json_t *th_fake_glpi_state(int port)
{
    struct th_reply r = th_http(port, "GET", "/_fake/state", NULL, NULL);
    json_t *s = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;

    th_reply_free(&r);
    return s;
}
