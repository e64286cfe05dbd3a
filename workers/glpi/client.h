/* client.h - GLPI's REST API v1 (apirest.php) as sy-glpi and `syctl glpi hook add` use it: a
 * hook's settings, one session per hook shared by every thread of the process, calls that
 * re-open an expired session once, and answers classified into what the handler does next.
 *
 * GLPI's formats (errors as ["CODE", "message"], searches keyed by option ids, no "data" key
 * without hits, text HTML-encoded unless asked otherwise) stay in client.c; the rest of the
 * worker sees JSON objects and a verdict. */
#ifndef GLPI_CLIENT_H
#define GLPI_CLIENT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

struct sy_http;

/* A row of glpi_hooks (migration 0006). */
struct glpi_hook {
    char *id;
    char *api_url;        /* up to and including apirest.php, no trailing slash */
    char *app_token;      /* NULL when the API client has none */
    char *user_token;     /* secret */
    char *webhook_secret; /* secret, NULL when deliveries are not signed */
    int entity_id;
    int ticket_type;     /* 1 incident, 2 request */
    int category_id;     /* 0: none */
    int default_user_id; /* 0: none */
    bool contact_sync;   /* sync_type contact: Contacts instead of Users */
    bool allow_http;
};
void glpi_hook_clear(struct glpi_hook *h);

/* What to do after a call. */
enum glpi_rc {
    GLPI_OK = 0,     /* an answer to use */
    GLPI_RETRY = 1,  /* GLPI away, busy, slow, or the answer was lost: try later */
    GLPI_REJECT = 2, /* GLPI refused the request's data: trying again will not help */
};

/* The answer of one call. json: the parsed body (NULL when empty); code and msg: GLPI's error
 * (or the transport's) when not GLPI_OK; retry_after_s: from Retry-After, -1 when absent. */
struct glpi_res {
    long status;
    json_t *json;
    char code[64];
    char msg[256];
    int retry_after_s;
};
void glpi_res_clear(struct glpi_res *r);

/* A hook's session: the token is made on first use and kept until GLPI says it is no longer
 * valid (401 ERROR_SESSION_TOKEN_INVALID), then made again once for that call. Thread-safe:
 * the calls themselves run in parallel (GLPI's sessions are read-only for them). */
struct glpi_session;
struct glpi_session *glpi_session_new(const struct glpi_hook *h);
/* Ends the session at GLPI (killSession) when one is open, so sessions do not pile up on the
 * server, and frees s. http may be NULL: then the session is only forgotten. */
void glpi_session_free(struct glpi_session *s, struct sy_http *http);
const struct glpi_hook *glpi_session_hook(const struct glpi_session *s);
/* initSession now (for a check of the settings): GLPI_OK or what went wrong in r. */
enum glpi_rc glpi_session_open(struct glpi_session *s, struct sy_http *http, struct glpi_res *r);
/* How many times this process opened a session for s (for tests and metrics). */
unsigned glpi_session_opens(const struct glpi_session *s);

/* One call: method, a path below apirest.php ("Ticket/", "search/User?...") and an optional
 * body ({"input": ...} for writes). Text comes back decoded (X-GLPI-Sanitized-Content: false).
 * A 2xx whose body is not JSON (a login page served by a misrouted URL, the empty 200 that
 * some GLPI versions give for a create) is GLPI_RETRY: for a create the item may exist, and
 * the caller searches for it before creating again. */
enum glpi_rc glpi_call(struct glpi_session *s, struct sy_http *http, const char *method,
                       const char *path, const json_t *body, struct glpi_res *r);

/* POST itemtype/ with {"input": input}: *id gets the new item's id. */
enum glpi_rc glpi_create(struct glpi_session *s, struct sy_http *http, const char *itemtype,
                         const json_t *input, long long *id, struct glpi_res *r);
/* PUT itemtype/id with {"input": input}. */
enum glpi_rc glpi_update(struct glpi_session *s, struct sy_http *http, const char *itemtype,
                         long long id, const json_t *input, struct glpi_res *r);

/* search/itemtype for rows whose option `field` equals `value` (case-insensitively): GLPI is
 * asked for a "contains ^value$", which still treats % and _ as wildcards, so every row is
 * checked here again. *ids (caller frees) gets the ids of the rows that truly match, in
 * GLPI's order, *n their count (0 without hits). For User and Contact option 2 is the id;
 * for Ticket too. A multi-valued column (a User's emails) matches when one value does. With
 * suffix, a row matches when its value ends with `value` instead (markers in titles). */
enum glpi_rc glpi_search_eq(struct glpi_session *s, struct sy_http *http, const char *itemtype,
                            int field, const char *value, bool suffix, long long **ids, size_t *n,
                            struct glpi_res *r);

/* Text for GLPI's HTML fields: &, <, >, " and ' escaped, line breaks as <br>. Caller frees. */
char *glpi_html_escape(const char *s);

#endif
