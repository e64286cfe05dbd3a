/* chatwoot.h - Chatwoot's webhook payloads as sy-gateway hands them to sy-glpi, published
 * straight into the exchange, and the fake GLPI of tests/fakes/glpi run as a child process:
 * for sy-glpi's integration test and its benchmark. */
#ifndef SY_TEST_CHATWOOT_H
#define SY_TEST_CHATWOOT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct sy_amqp;

/* A contact "Citizen <n>" with an email and a phone derived from id. */
json_t *th_cw_contact(long long id, int n);
/* A conversation of sender (borrowed) in status, created at ts (Unix seconds). */
json_t *th_cw_conversation(long long id, json_t *sender, const char *status, double ts);
/* A message of conv by sender (both borrowed), created at `at` (Unix seconds), as Chatwoot
 * writes it; type "incoming" (the contact's) or "outgoing" (an agent's). */
json_t *th_cw_message(long long id, json_t *conv, json_t *sender, const char *type, bool private,
                      const char *content, long long at);

/* Publishes chatwoot.<event> for hook into exchange as sy-gateway would, without waiting for the
 * broker's confirm (sy_amqp_wait_confirms does). payload is consumed; id NULL: a fresh one.
 * 0, or negative (sy/err.h). */
int th_cw_publish(struct sy_amqp *a, const char *exchange, const char *hook, const char *event,
                  json_t *payload, const char *id);

/* The fake GLPI: argv[0] its binary, then its options (--app-token, --user-token; NULL-ended),
 * on a port it picks and announces (*port). 0, or -1 when it did not start. */
int th_fake_glpi_start(const char *const *argv, pid_t *pid, int *port);
void th_fake_glpi_stop(pid_t *pid); /* SIGTERM and reap; *pid becomes 0 */
/* POSTs a control body to /_fake/<what> (faults, reset): the HTTP status. */
long th_fake_glpi_post(int port, const char *what, const char *body);
/* GET /_fake/state: everything it holds and its counters; NULL when it did not answer. */
json_t *th_fake_glpi_state(int port);

#endif
