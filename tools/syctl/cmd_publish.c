/* cmd_publish.c - `syctl publish`: JSON from the operator, checked against the type's schema
 * before anything reaches the broker, published with a confirm. */
#include "syctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/amqp.h"
#include "sy/config.h"
#include "sy/err.h"
#include "sy/json.h"
#include "sy/msg.h"
#include "sy/schema.h"
#include "sy/topology.h"

#define NEED               (SYCTL_NEED_TOPOLOGY | SYCTL_NEED_SCHEMAS | SYCTL_NEED_AMQP)
#define DEFAULT_TIMEOUT_MS 10000LL
#define MAX_TIMEOUT_MS     600000LL

static const char help[] =
    "Usage: syctl publish TYPE JSON|@FILE|- [--id ID] [--source NAME] [--timeout MS]\n"
    "\n"
    "Builds a message of TYPE whose data is the JSON object given inline, read from FILE\n"
    "(@FILE) or from stdin (- or @-), at most 8 MiB. The data is packed as msgpack, wrapped in\n"
    "the envelope {v, id, type, ts, source, data} and checked against TYPE's schema (an error\n"
    "names the field). It is then published to the topology's exchange with routing key TYPE\n"
    "and message_id = id, and syctl waits for the broker's confirm. A type no queue is bound\n"
    "for is refused (exit 4): the message would be lost. Prints the message id on stdout.\n"
    "\n"
    "Options:\n"
    "  --id ID          message id, the idempotency key (default: a new UUIDv4); publishing\n"
    "                   again with the same id is how to retry safely after a timeout\n"
    "  --source NAME    envelope source (default: syctl)\n"
    "  --timeout MS     how long to wait for the confirm: bare milliseconds or 250ms, 5s, 1m\n"
    "                   (default: 10s)\n"
    "  -h, --help       this help\n"
    "\n"
    "Examples:\n"
    "  syctl publish grievance.submitted @grievance.json\n"
    "  echo '{\"run\": \"r1\", \"n\": 1}' | syctl publish probe.work - --id job-42\n";

enum { OPT_ID, OPT_SOURCE, OPT_TIMEOUT };
static const struct syctl_optspec specs[] = {
    [OPT_ID] = {"id", true},
    [OPT_SOURCE] = {"source", true},
    [OPT_TIMEOUT] = {"timeout", true},
    {NULL, false},
};

static int check_len(const char *what, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return syctl_fail(SYCTL_EXIT_INPUT, "publish: %s must be 1 to %zu bytes", what, max);
    return 0;
}

static int publish_error(struct sy_amqp *amqp, int err, const char *type, const char *exchange,
                         const char *id, long long timeout_ms)
{
    const char *why = sy_amqp_error(amqp);

    switch (-err) {
    case SY_EUNROUTABLE:
        return syctl_fail(SYCTL_EXIT_NOTFOUND,
                          "no queue is bound for '%s' on exchange '%s'; nothing was delivered "
                          "(is the topology applied?)",
                          type, exchange);
    case SY_ENACK:
        return syctl_fail(SYCTL_EXIT_FAIL, "the broker refused message %s: %s", id, why);
    case SY_ETIMEOUT:
        return syctl_fail(SYCTL_EXIT_FAIL,
                          "no confirm for message %s within %lld ms; it may or may not be "
                          "queued (publish again with --id %s to be sure)",
                          id, timeout_ms, id);
    default:
        break;
    }
    /* The broker closes the channel with 404 when the exchange is missing. */
    if (why && strstr(why, "NOT_FOUND"))
        return syctl_fail(SYCTL_EXIT_NOTFOUND, "publish to '%s': %s", exchange, why);
    return syctl_fail(syctl_exit_for(err), "publish of message %s failed: %s%s%s", id,
                      sy_strerror(err), why && *why ? ": " : "", why ? why : "");
}

int syctl_cmd_publish(struct syctl *c, int argc, char **argv)
{
    struct syctl_args a;
    char err[1024];
    char *text = NULL;
    json_t *data = NULL;
    void *packed = NULL, *body = NULL;
    size_t text_len = 0, packed_len = 0, body_len = 0;
    struct sy_msg *msg = NULL;
    const struct sy_schemas *schemas;
    const struct sy_topology *topo;
    struct sy_amqp *amqp;
    long long timeout_ms = DEFAULT_TIMEOUT_MS;
    int rc;

    if (syctl_args_parse(argc - 1, argv + 1, specs, &a, err, sizeof(err)) < 0)
        return syctl_fail(SYCTL_EXIT_USAGE, "publish: %s (see 'syctl publish --help')", err);
    if (a.help) {
        syctl_help(help, NEED);
        return SYCTL_OK;
    }
    if (a.npos != 2)
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "publish: expected TYPE and JSON|@FILE|- (see 'syctl publish --help')");
    const char *type = a.pos[0];
    const char *id = a.val[OPT_ID];
    const char *source = a.val[OPT_SOURCE] ? a.val[OPT_SOURCE] : "syctl";
    if ((rc = check_len("TYPE", type, SY_MSG_TYPE_MAX)) != 0 ||
        (id && (rc = check_len("--id", id, SY_MSG_ID_MAX)) != 0) ||
        (rc = check_len("--source", source, SY_MSG_SOURCE_MAX)) != 0)
        return rc;
    if (a.val[OPT_TIMEOUT] && (sy_conf_parse_ms(a.val[OPT_TIMEOUT], &timeout_ms) < 0 ||
                               timeout_ms < 1 || timeout_ms > MAX_TIMEOUT_MS))
        return syctl_fail(SYCTL_EXIT_USAGE,
                          "publish: --timeout: expected 1 ms to 10 minutes, got '%s'",
                          a.val[OPT_TIMEOUT]);

    /* Everything about the input is settled before the broker is contacted. */
    if ((rc = syctl_schemas(c, &schemas)) != 0)
        goto out;
    if (!sy_schemas_has(schemas, type)) {
        rc = syctl_fail(SYCTL_EXIT_INPUT, "unknown type '%s': no schema for it in %s", type,
                        c->conf.schema_dir);
        goto out;
    }
    rc = syctl_read_input(a.pos[1], SYCTL_INPUT_MAX, &text, &text_len, err, sizeof(err));
    if (rc < 0) {
        rc = syctl_fail(SYCTL_EXIT_INPUT, "cannot read the data: %s", err);
        goto out;
    }
    json_error_t jerr;
    data = json_loadb(text, text_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!data) {
        rc = syctl_fail(SYCTL_EXIT_INPUT, "invalid JSON at line %d, column %d: %s", jerr.line,
                        jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(data)) {
        rc = syctl_fail(SYCTL_EXIT_INPUT, "the data must be a JSON object");
        goto out;
    }
    rc = sy_json_to_msgpack(data, &packed, &packed_len);
    if (rc < 0) {
        rc = syctl_fail(syctl_exit_for(rc), "cannot pack the data as msgpack: %s", sy_strerror(rc));
        goto out;
    }
    rc = sy_msg_encode(type, id, source, 0, packed, packed_len, &body, &body_len);
    if (rc < 0) {
        rc = syctl_fail(syctl_exit_for(rc), "cannot build the envelope: %s", sy_strerror(rc));
        goto out;
    }
    /* Check exactly the bytes a worker will receive, the way the runtime will. */
    rc = sy_msg_decode(body, body_len, &msg, err, sizeof(err));
    if (rc < 0) {
        rc = syctl_fail(SYCTL_EXIT_INPUT, "invalid message: %s", err);
        goto out;
    }
    rc = sy_schemas_check(schemas, msg, err, sizeof(err));
    if (rc < 0) {
        rc = syctl_fail(SYCTL_EXIT_INPUT, "schema violation: %s", err);
        goto out;
    }

    if ((rc = syctl_topology(c, &topo)) != 0 || (rc = syctl_amqp(c, &amqp)) != 0)
        goto out;
    const struct sy_publish p = {
        .exchange = topo->exchange,
        .routing_key = type,
        .body = body,
        .len = body_len,
        .message_id = sy_msg_id(msg),
        .type = type,
    };
    rc = sy_amqp_publish(amqp, &p, (int)timeout_ms);
    if (rc < 0) {
        rc = publish_error(amqp, rc, type, topo->exchange, sy_msg_id(msg), timeout_ms);
        goto out;
    }
    printf("%s\n", sy_msg_id(msg));
    rc = SYCTL_OK;
out:
    sy_msg_destroy(msg);
    free(body);
    free(packed);
    json_decref(data);
    free(text);
    return rc;
}
