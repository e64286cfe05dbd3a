/* fake_glpi.c - a fake of GLPI's REST API v1 (apirest.php) for sy-glpi's tests and benchmark:
 * sessions, User, Contact, Ticket (with its requesters), ITILFollowup, search, in the formats
 * GLPI 10 answers with (errors as ["CODE", "message"], created items as {"id", "message"},
 * searches keyed by option ids without a "data" key when nothing matched, text HTML-encoded
 * unless the request sends X-GLPI-Sanitized-Content: false). State lives in memory.
 *
 *   fake-glpi [--port N] [--app-token T] [--user-token T]...
 *
 * Listens on 127.0.0.1 (port 0 or none: any), prints "port=<n>" once listening, serves until
 * SIGTERM. Without --user-token any non-empty user_token logs in; with --app-token, App-Token
 * is required. The session user is User 2, "glpi".
 *
 * Control (no auth): POST /_fake/faults with any of (an "API call" is any /apirest.php/ call but
 * initSession, answered before its session is looked at)
 *   {"expire_sessions": true}                 every open session is invalid from now on
 *   {"fail_500": N}                           the next N API calls answer 500
 *   {"fail_429": N, "retry_after": S}         the next N API calls answer 429, Retry-After: S
 *   {"lost_reply": N, "lost_reply_mode": "close"|"empty200", "lost_reply_itemtype": T}
 *                                             the next N creates (of itemtype T alone, when
 *                                             given) are stored, then their answer is lost: the
 *                                             connection closes, or 200 with an empty body
 *                                             (GLPI's own bug, glpi#16177)
 *   {"delay_ms": M}                           every API answer waits M ms (0: off)
 *   {"fail_rate": p, "fail_status": 500|502|503|429}
 *                                             each API call fails so with probability p
 *                                             (a fixed seed: the same storm every run)
 *   {"refuse_content": "text"}                every create of an ITILFollowup whose content
 *                                             holds text is refused, 400 ERROR_GLPI_ADD (as a
 *                                             business rule or a plugin of GLPI may); "": off
 * POST /_fake/create {"itemtype": T, "input": {...}} stores an item as GLPI's own (staff, an
 * import) without a session, answers {"id": N}; POST /_fake/update {"itemtype": T, "id": N,
 * "input": {...}} changes one (e.g. {"status": 6}: a ticket closed in GLPI).
 * POST /_fake/reset empties everything: items, sessions, faults and counters; ids start again
 * at 1 (users after the seeded 2). GET /_fake/state dumps users (with "emails"), contacts,
 * tickets (with "requesters"), followups and counters, all text decoded.
 * With FAKE_GLPI_TRACE set, every API call is written to stderr: connection, method, path.
 *
 * Simplifications: text is kept decoded and encoded on the way out (GLPI keeps it encoded;
 * clients see the same); searches match the decoded text; "contains" is a case-insensitive
 * LIKE with ^ and $ anchors where % and _ are wildcards, as GLPI's is. */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fake_server.h"

#define BODY_MAX  (1024 * 1024)
#define TOKEN_LEN 26
#define MAX_CRIT  8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const char *app_token;
static const char **user_tokens;
static int nuser_tokens;

/* State: items per itemtype, in id order. */
static json_t *users, *contacts, *tickets, *followups, *ticket_users, *sessions;
static long long next_id[4], next_link_id, next_email_id;
static struct {
    long long init_session, kill_session, requests, creates, searches, lost_replies;
} counters;
static struct {
    int fail_500, fail_429, retry_after, lost_reply;
    bool lost_close;
    int lost_type; /* an itemtype's index, -1: creates of any */
    int delay_ms;
    double fail_rate;
    int fail_status;
    char refuse_content[256];
} faults;
/* Fixed, so a storm of random failures repeats run after run; session tokens draw from a seed
 * of their own so the number of logins does not shift that sequence. */
static unsigned seed = 20261122;
static unsigned token_seed;

enum { T_USER, T_CONTACT, T_TICKET, T_FOLLOWUP };
static const char *const type_names[] = {"User", "Contact", "Ticket", "ITILFollowup"};

static json_t **store_of(int t)
{
    return t == T_USER      ? &users
           : t == T_CONTACT ? &contacts
           : t == T_TICKET  ? &tickets
                            : &followups;
}

static void now_text(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static void reset(void)
{
    json_decref(users);
    json_decref(contacts);
    json_decref(tickets);
    json_decref(followups);
    json_decref(ticket_users);
    json_decref(sessions);
    users = json_array();
    contacts = json_array();
    tickets = json_array();
    followups = json_array();
    ticket_users = json_array();
    sessions = json_object();
    memset(next_id, 0, sizeof next_id);
    next_link_id = next_email_id = 0;
    memset(&counters, 0, sizeof counters);
    memset(&faults, 0, sizeof faults);
    faults.lost_type = -1;
    /* The session user. */
    next_id[T_USER] = 2;
    json_array_append_new(users, json_pack("{s:i, s:s, s:s, s:[], s:i}", "id", 2, "name", "glpi",
                                           "realname", "glpi", "emails", "is_active", 1));
}

/* --- text ------------------------------------------------------------------------------------ */

static char *encode(const char *s)
{
    size_t n = 0;
    char *out, *p;

    for (const char *c = s; *c; c++)
        n += strchr("&<>\"'", *c) ? 5 : 1;
    if (!(out = malloc(n + 1)))
        return NULL;
    p = out;
    for (const char *c = s; *c; c++)
        p += strchr("&<>\"'", *c) ? sprintf(p, "&#%d;", *c) : (*p = *c, 1);
    *p = '\0';
    return out;
}

/* A copy of v with every string encoded, as GLPI returns its stored text. */
static json_t *encoded(const json_t *v)
{
    if (json_is_string(v)) {
        char *e = encode(json_string_value(v));
        json_t *r = json_string(e ? e : "");

        free(e);
        return r;
    }
    if (json_is_object(v)) {
        json_t *o = json_object(), *x;
        const char *k;

        json_object_foreach((json_t *)v, k, x) json_object_set_new(o, k, encoded(x));
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array(), *x;
        size_t i;

        json_array_foreach(v, i, x) json_array_append_new(a, encoded(x));
        return a;
    }
    return json_deep_copy(v);
}

/* SQL LIKE, case-insensitive: % any run, _ one character. */
static bool like(const char *s, const char *p)
{
    for (; *p; p++, s++) {
        if (*p == '%') {
            while (*p == '%')
                p++;
            if (!*p)
                return true;
            for (; *s; s++)
                if (like(s, p))
                    return true;
            return false;
        }
        if (!*s || (*p != '_' && tolower((unsigned char)*p) != tolower((unsigned char)*s)))
            return false;
    }
    return !*s;
}

/* GLPI's "contains": %v%, where ^ and $ drop the wildcard on their side; ^$ is empty. */
static bool contains(const char *value, const char *v)
{
    char pat[1200];
    size_t n = strlen(v);
    bool start = n && v[0] == '^', end = n && v[n - 1] == '$' && !(n == 1 && start);

    if (n > 1000)
        return false;
    snprintf(pat, sizeof pat, "%s%.*s%s", start ? "" : "%", (int)(n - start - end), v + start,
             end ? "" : "%");
    return like(value, pat);
}

/* --- replies --------------------------------------------------------------------------------- */

/* Queues text as the JSON answer, with one extra header when hname is not NULL. */
static enum MHD_Result send_text_hdr(struct MHD_Connection *c, int status, const char *text,
                                     const char *hname, const char *hvalue)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json; charset=UTF-8");
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *text,
                                 const char *retry_after)
{
    return send_text_hdr(c, status, text, retry_after ? "Retry-After" : NULL, retry_after);
}

/* Answers v (taken), HTML-encoded when sanitize, with one extra header when hname is set. */
static enum MHD_Result send_json_hdr(struct MHD_Connection *c, int status, json_t *v, bool sanitize,
                                     const char *hname, const char *hvalue)
{
    json_t *out = sanitize ? encoded(v) : json_incref(v);
    char *text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    enum MHD_Result ok = send_text_hdr(c, status, text ? text : "null", hname, hvalue);

    free(text);
    json_decref(out);
    json_decref(v);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *v, bool sanitize)
{
    return send_json_hdr(c, status, v, sanitize, NULL, NULL);
}

static enum MHD_Result error(struct MHD_Connection *c, int status, const char *code,
                             const char *msg)
{
    return send_json(c, status, json_pack("[s, s]", code, msg), false);
}

/* --- items ----------------------------------------------------------------------------------- */

/* An id as clients send it: a number or a numeric string (PHP does not mind); 0 otherwise. */
static long long id_of(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v)) {
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);

        return *end ? 0 : n;
    }
    return 0;
}

static json_t *find(json_t *store, long long id)
{
    json_t *it;
    size_t i;

    json_array_foreach(store, i,
                       it) if (json_integer_value(json_object_get(it, "id")) == id) return it;
    return NULL;
}

static void add_requester(long long tid, long long uid, int notify, const char *email)
{
    json_t *l;
    size_t i;

    if (uid <= 0 && (!email || !*email))
        return;
    /* GLPI links a user once per role; email-only requesters may repeat. */
    json_array_foreach(ticket_users, i, l)
    {
        if (uid > 0 && json_integer_value(json_object_get(l, "tickets_id")) == tid &&
            json_integer_value(json_object_get(l, "users_id")) == uid)
            return;
    }
    json_array_append_new(
        ticket_users,
        json_pack("{s:I, s:I, s:I, s:i, s:i, s:s}", "id", (json_int_t)++next_link_id, "tickets_id",
                  (json_int_t)tid, "users_id", (json_int_t)(uid > 0 ? uid : 0), "type", 1,
                  "use_notification", notify, "alternative_email", email ? email : ""));
}

/* Element i of a list, or the value itself for i == 0 when it is not a list: the legacy actor
 * fields take either. */
static json_t *nth(json_t *v, size_t i)
{
    return json_is_array(v) ? json_array_get(v, i) : i == 0 ? v : NULL;
}

static int flag_of(const json_t *v, int def)
{
    if (!v)
        return def;
    return json_is_boolean(v) ? json_is_true(v) : id_of(v) != 0;
}

/* Ticket_User rows from a ticket's input. The legacy _users_id_requester_notif lists run in
 * step with _users_id_requester (id 0 with an address is an email-only requester). On update
 * GLPI 10 takes _actors.requester as the whole new list, so requesters left out are dropped. */
static void take_requesters(long long tid, json_t *in, bool update)
{
    json_t *ids = json_object_get(in, "_users_id_requester");
    json_t *notif = json_object_get(in, "_users_id_requester_notif");
    json_t *use = json_object_get(notif, "use_notification");
    json_t *alt = json_object_get(notif, "alternative_email");
    json_t *actors = json_object_get(json_object_get(in, "_actors"), "requester"), *v;
    size_t n = json_is_array(ids) ? json_array_size(ids) : ids ? 1 : 0, i;

    if (json_is_array(alt) && json_array_size(alt) > n)
        n = json_array_size(alt);
    for (i = 0; i < n; i++)
        add_requester(tid, id_of(nth(ids, i)), flag_of(nth(use, i), 1),
                      json_string_value(nth(alt, i)));
    if (!json_is_array(actors))
        return;
    if (update)
        for (i = json_array_size(ticket_users); i-- > 0;)
            if (json_integer_value(
                    json_object_get(json_array_get(ticket_users, i), "tickets_id")) == tid)
                json_array_remove(ticket_users, i);
    json_array_foreach(actors, i, v)
    {
        const char *type = json_string_value(json_object_get(v, "itemtype"));

        if (type && strcmp(type, "User") == 0)
            add_requester(tid, id_of(json_object_get(v, "items_id")),
                          flag_of(json_object_get(v, "use_notification"), 1),
                          json_string_value(json_object_get(v, "alternative_email")));
    }
}

static void user_emails(json_t *user, json_t *in, bool update)
{
    json_t *emails = json_object_get(user, "emails"), *v;
    const char *k, *def = json_string_value(json_object_get(in, "_default_email"));

    if (!emails) {
        emails = json_array();
        json_object_set_new(user, "emails", emails);
    }
    json_object_foreach(json_object_get(in, "_useremails"), k, v)
    {
        long long key = atoll(k);
        const char *addr = json_string_value(v);

        if (!addr)
            continue;
        if (update && key > 0) {
            json_t *e;
            size_t i;

            json_array_foreach(emails, i,
                               e) if (json_integer_value(json_object_get(e, "id")) == key)
            {
                if (*addr)
                    json_object_set_new(e, "email", json_string(addr));
                else
                    json_array_remove(emails, i);
                break;
            }
            continue;
        }
        if (!*addr)
            continue;
        bool is_def = def && strcmp(def, k) == 0;
        if (is_def) {
            json_t *e;
            size_t i;

            json_array_foreach(emails, i, e) json_object_set_new(e, "is_default", json_integer(0));
        }
        json_array_append_new(emails,
                              json_pack("{s:I, s:s, s:i}", "id", (json_int_t)++next_email_id,
                                        "email", addr, "is_default", is_def ? 1 : 0));
    }
}

/* Whether an input key is stored as is. Keys starting with _ are instructions to GLPI, the id is
 * GLPI's to give, and a user's "emails" is this fake's own list (fed by _useremails). */
static bool is_column(int t, const char *k)
{
    return k[0] != '_' && strcmp(k, "id") != 0 && !(t == T_USER && strcmp(k, "emails") == 0);
}

/* Whether a user other than `except` has this login (GLPI's FieldUnicity ignores case). */
static bool login_taken(const char *name, long long except)
{
    json_t *u;
    size_t i;

    json_array_foreach(users, i, u)
    {
        const char *other = json_string_value(json_object_get(u, "name"));

        if (other && strcasecmp(other, name) == 0 &&
            json_integer_value(json_object_get(u, "id")) != except)
            return true;
    }
    return false;
}

/* Why an update of user `id` may not rename it (an empty or taken login), or NULL. */
static const char *user_rename_refused(json_t *in, long long id)
{
    json_t *v = json_object_get(in, "name");

    if (!v)
        return NULL;
    if (!json_string_value(v) || !*json_string_value(v))
        return "The login is empty";
    return login_taken(json_string_value(v), id) ? "Unicity: a user with this login exists" : NULL;
}

/* Stores one create; 0 and *id, or an error message. */
static const char *create_one(int t, json_t *in, long long *id)
{
    json_t *item, *v;
    const char *k;
    char now[32];

    if (!json_is_object(in))
        return "input: expected an object";
    if (t == T_USER) {
        const char *name = json_string_value(json_object_get(in, "name"));

        if (!name || !*name)
            return "The login is empty";
        if (login_taken(name, 0))
            return "Unicity: a user with this login exists";
    } else if (t == T_CONTACT) {
        if (!json_string_value(json_object_get(in, "name")))
            return "name is required";
    } else if (t == T_TICKET) {
        const char *n = json_string_value(json_object_get(in, "name"));
        const char *c = json_string_value(json_object_get(in, "content"));

        if ((!n || !*n) && (!c || !*c))
            return "Title and description are empty";
    } else {
        const char *c = json_string_value(json_object_get(in, "content"));
        const char *it = json_string_value(json_object_get(in, "itemtype"));
        json_t *tk = find(tickets, id_of(json_object_get(in, "items_id")));

        if (!it || strcmp(it, "Ticket") != 0 || !tk)
            return "itemtype and items_id must name an existing Ticket";
        if (!c || !*c)
            return "The content is empty";
        if (id_of(json_object_get(tk, "status")) == 6)
            return "You cannot add a followup to a closed ticket";
        if (faults.refuse_content[0] && strstr(c, faults.refuse_content))
            return "A rule refused the followup";
    }
    item = json_object();
    json_object_foreach(in, k, v) if (is_column(t, k)) json_object_set(item, k, v);
    *id = ++next_id[t];
    json_object_set_new(item, "id", json_integer(*id));
    now_text(now, sizeof now);
    json_object_set_new(item, "date_creation", json_string(now));
    json_object_set_new(item, "date_mod", json_string(now));
    if (t == T_USER)
        user_emails(item, in, false);
    if (t == T_USER && !json_object_get(item, "is_active"))
        json_object_set_new(item, "is_active", json_integer(1));
    if (t == T_TICKET) {
        if (!json_object_get(item, "status"))
            json_object_set_new(item, "status", json_integer(1));
        if (!json_object_get(item, "type"))
            json_object_set_new(item, "type", json_integer(1));
        take_requesters(*id, in, false);
    }
    if (t == T_FOLLOWUP) {
        if (!json_object_get(item, "date"))
            json_object_set_new(item, "date", json_string(now));
        if (!json_object_get(item, "is_private"))
            json_object_set_new(item, "is_private", json_integer(0));
        json_object_set_new(item, "users_id", json_integer(2));
    }
    json_array_append_new(*store_of(t), item);
    counters.creates++;
    return NULL;
}

static json_t *with_requesters(json_t *ticket)
{
    json_t *o = json_deep_copy(ticket), *reqs = json_array(), *l;
    size_t i;

    json_array_foreach(ticket_users, i,
                       l) if (json_integer_value(json_object_get(l, "tickets_id")) ==
                              json_integer_value(json_object_get(ticket, "id")))
        json_array_append(reqs, l);
    json_object_set_new(o, "requesters", reqs);
    return o;
}

/* --- search ---------------------------------------------------------------------------------- */

static const char *field_of(int t, int opt)
{
    static const struct {
        int t, opt;
        const char *field;
    } map[] = {
        {T_USER, 1, "name"},
        {T_USER, 2, "id"},
        {T_USER, 5, "emails"},
        {T_USER, 6, "phone"},
        {T_USER, 10, "phone2"},
        {T_USER, 11, "mobile"},
        {T_USER, 9, "firstname"},
        {T_USER, 34, "realname"},
        {T_USER, 22, "registration_number"},
        {T_CONTACT, 1, "name"},
        {T_CONTACT, 2, "id"},
        {T_CONTACT, 6, "email"},
        {T_CONTACT, 3, "phone"},
        {T_CONTACT, 4, "phone2"},
        {T_CONTACT, 10, "mobile"},
        {T_CONTACT, 11, "firstname"},
        {T_CONTACT, 70, "registration_number"},
        {T_TICKET, 1, "name"},
        {T_TICKET, 2, "id"},
        {T_TICKET, 12, "status"},
        {T_TICKET, 21, "content"},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].t == t && map[i].opt == opt)
            return map[i].field;
    return NULL;
}

/* The search column of an item: emails as an array when more than one. */
static json_t *column(json_t *it, const char *field)
{
    if (strcmp(field, "emails") == 0) {
        json_t *e = json_object_get(it, "emails"), *x, *a;
        size_t i;

        if (json_array_size(e) == 0)
            return json_null();
        if (json_array_size(e) == 1)
            return json_incref(json_object_get(json_array_get(e, 0), "email"));
        a = json_array();
        json_array_foreach(e, i, x) json_array_append(a, json_object_get(x, "email"));
        return a;
    }
    json_t *v = json_object_get(it, field);
    return v ? json_incref(v) : json_null();
}

static bool col_matches(json_t *col, const char *type, const char *value)
{
    char num[32];
    const char *s;

    if (json_is_array(col)) {
        json_t *x;
        size_t i;

        json_array_foreach(col, i, x) if (col_matches(x, type, value)) return true;
        return false;
    }
    if (json_is_integer(col)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(col));
        s = num;
    } else {
        s = json_is_string(col) ? json_string_value(col) : "";
    }
    return strcmp(type, "equals") == 0 ? strcmp(s, value) == 0 : contains(s, value);
}

struct args {
    int nc;
    struct {
        int field;
        const char *type, *value, *link;
    } c[MAX_CRIT];
    int display[MAX_CRIT], nd;
    const char *range;
};

static enum MHD_Result collect(void *ud, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct args *a = ud;
    int i;
    char what[16];

    (void)kind;
    if (!value)
        return MHD_YES;
    if (sscanf(key, "criteria[%d][%15[a-z]]", &i, what) == 2 && i >= 0 && i < MAX_CRIT) {
        if (i >= a->nc)
            a->nc = i + 1;
        if (strcmp(what, "field") == 0)
            a->c[i].field = atoi(value);
        else if (strcmp(what, "searchtype") == 0)
            a->c[i].type = value;
        else if (strcmp(what, "value") == 0)
            a->c[i].value = value;
        else if (strcmp(what, "link") == 0)
            a->c[i].link = value;
    } else if (sscanf(key, "forcedisplay[%d]", &i) == 1 && a->nd < MAX_CRIT) {
        a->display[a->nd++] = atoi(value);
    } else if (strcmp(key, "range") == 0) {
        a->range = value;
    }
    return MHD_YES;
}

static void parse_range(const char *r, long long *a, long long *b, long long def_end)
{
    *a = 0;
    *b = def_end;
    if (r && sscanf(r, "%lld-%lld", a, b) != 2) {
        *a = 0;
        *b = def_end;
    }
}

static enum MHD_Result search(struct MHD_Connection *c, int t, bool sanitize)
{
    struct args a = {0};
    json_t *data = json_array(), *it, *out;
    long long from, to, total = 0;
    size_t i;
    char cr[64] = "";

    counters.searches++;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect, &a);
    for (int k = 0; k < a.nc; k++)
        if (!field_of(t, a.c[k].field) || !a.c[k].value) {
            json_decref(data);
            return error(c, 400, "ERROR", "Bad field ID in search criteria");
        }
    /* GLPI's default page is the user's list_limit, 20 out of the box. */
    parse_range(a.range, &from, &to, 19);
    json_array_foreach(*store_of(t), i, it)
    {
        bool ok = true;

        for (int k = 0; k < a.nc; k++) {
            json_t *col = column(it, field_of(t, a.c[k].field));
            bool m = col_matches(col, a.c[k].type ? a.c[k].type : "contains", a.c[k].value);
            const char *link = a.c[k].link ? a.c[k].link : "AND";
            bool or = strncasecmp(link, "OR", 2) == 0;

            json_decref(col);
            if (strstr(link, "NOT") || strstr(link, "not"))
                m = !m;
            ok = k == 0 ? m : or ? (ok || m) : (ok && m);
        }
        if (!ok)
            continue;
        if (total >= from && total <= to) {
            json_t *row = json_object();
            char key[16];
            int cols[2 + 2 * MAX_CRIT], nc = 0;

            cols[nc++] = 1;
            cols[nc++] = 2;
            for (int k = 0; k < a.nc; k++)
                cols[nc++] = a.c[k].field;
            for (int k = 0; k < a.nd; k++)
                cols[nc++] = a.display[k];
            for (int k = 0; k < nc; k++) {
                const char *f = field_of(t, cols[k]);

                if (!f)
                    continue;
                snprintf(key, sizeof key, "%d", cols[k]);
                json_object_set_new(row, key, column(it, f));
            }
            json_array_append_new(data, row);
        }
        total++;
    }
    if (total > 0 && from >= total) {
        json_decref(data);
        return error(c, 400, "ERROR_RANGE_EXCEED_TOTAL", "Provided range exceed total count");
    }
    out = json_pack("{s:I, s:I, s:[i], s:[s]}", "totalcount", (json_int_t)total, "count",
                    (json_int_t)json_array_size(data), "sort", 1, "order", "ASC");
    if (total > 0) {
        snprintf(cr, sizeof cr, "%lld-%lld/%lld", from, from + (long long)json_array_size(data) - 1,
                 total);
        json_object_set_new(out, "data", data);
        json_object_set_new(out, "content-range", json_string(cr));
    } else {
        json_decref(data);
    }
    /* GLPI sends Content-Range only when something matched. */
    return send_json_hdr(
        c, (long long)json_array_size(json_object_get(out, "data")) < total ? 206 : 200, out,
        sanitize, total > 0 ? "Content-Range" : NULL, cr);
}

/* --- the API --------------------------------------------------------------------------------- */

static int type_of(const char *name)
{
    for (int t = 0; t < 4; t++)
        if (strcmp(name, type_names[t]) == 0 ||
            (t == T_FOLLOWUP && strcmp(name, "TicketFollowup") == 0))
            return t;
    return -1;
}

static json_t *list_range(json_t *src, const char *range)
{
    json_t *out = json_array(), *it;
    long long from, to;
    size_t i;

    parse_range(range, &from, &to, 19);
    json_array_foreach(src, i, it) if ((long long)i >= from && (long long)i <= to)
        json_array_append(out, it);
    return out;
}

/* An item as the API shows it: a user's addresses live in UserEmail, not on the user. */
static json_t *api_view(json_t *it)
{
    json_t *v = json_deep_copy(it);

    json_object_del(v, "emails");
    return v;
}

static enum MHD_Result too_many(struct MHD_Connection *c, int retry_after)
{
    char ra[16];

    snprintf(ra, sizeof ra, "%d", retry_after);
    return send_text(c, 429, "[\"ERROR\",\"fake: too many requests\"]", ra);
}

/* The answer to a create that is already stored goes astray: the connection drops (MHD closes
 * it when the handler refuses), or GLPI's empty 200 of glpi#16177 comes back. */
static bool loses_reply(int t)
{
    return faults.lost_reply > 0 && (faults.lost_type < 0 || faults.lost_type == t);
}

static enum MHD_Result lose_reply(struct MHD_Connection *c)
{
    faults.lost_reply--;
    counters.lost_replies++;
    if (faults.lost_close)
        return MHD_NO;
    return send_text(c, 200, "", NULL);
}

static enum MHD_Result api(struct MHD_Connection *c, const char *method, const char *path,
                           struct req *rq)
{
    const char *sess = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Session-Token");
    const char *san = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-GLPI-Sanitized-Content");
    bool sanitize = !(san && strcasecmp(san, "false") == 0);
    json_t *body = NULL, *in;
    char name[64], sub[64];
    long long id = 0;
    int t, n;

    counters.requests++;
    if (!sess)
        sess = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "session_token");
    if (app_token) {
        const char *app = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "App-Token");

        if (!app)
            app = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "app_token");

        if (!app)
            return error(c, 400, "ERROR_APP_TOKEN_PARAMETERS_MISSING", "missing app_token");
        if (strcmp(app, app_token) != 0)
            return error(c, 400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "app_token seems wrong");
    }
    if (strcmp(path, "initSession") == 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        const char *user = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "user_token");
        char token[TOKEN_LEN + 1];
        bool ok = false;

        /* The query form is GLPI's way around proxies that strip Authorization. */
        if (!user && auth && strncmp(auth, "user_token ", 11) == 0)
            user = auth + 11;
        if (!user || !*user)
            return error(c, 400, "ERROR_LOGIN_PARAMETERS_MISSING",
                         "parameter(s) login, password "
                         "or user_token are missing");
        for (int i = 0; i < nuser_tokens; i++)
            ok = ok || strcmp(user_tokens[i], user) == 0;
        if (nuser_tokens && !ok)
            return error(c, 401, "ERROR_GLPI_LOGIN_USER_TOKEN",
                         "parameter user_token seems invalid");
        for (int i = 0; i < TOKEN_LEN; i++)
            token[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rand_r(&token_seed) % 36];
        token[TOKEN_LEN] = '\0';
        json_object_set_new(sessions, token, json_true());
        counters.init_session++;
        return send_json(c, 200, json_pack("{s:s}", "session_token", token), false);
    }
    /* Induced failures stand for a proxy or an overloaded server in front of GLPI, so they come
     * before GLPI looks at the session; logins are spared so a client can always start over. */
    if (faults.fail_500 > 0) {
        faults.fail_500--;
        return error(c, 500, "ERROR", "fake: induced failure");
    }
    if (faults.fail_429 > 0) {
        faults.fail_429--;
        return too_many(c, faults.retry_after);
    }
    if (faults.fail_rate > 0 && (double)rand_r(&seed) / RAND_MAX < faults.fail_rate) {
        int status = faults.fail_status ? faults.fail_status : 500;

        if (status == 429)
            return too_many(c, faults.retry_after > 0 ? faults.retry_after : 1);
        return error(c, status, "ERROR", "fake: induced failure");
    }
    if (!sess)
        return error(c, 400, "ERROR_SESSION_TOKEN_MISSING", "parameter session_token is missing");
    if (!json_object_get(sessions, sess))
        return error(c, 401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid");
    if (strcmp(path, "killSession") == 0) {
        json_object_del(sessions, sess);
        counters.kill_session++;
        return send_json(c, 200, json_true(), false);
    }
    if (rq->len) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");

        if (strcmp(method, "GET") == 0)
            return error(c, 400, "ERROR_JSON_PAYLOAD_FORBIDDEN", "GET with a body");
        if (!ct || strncasecmp(ct, "application/json", 16) != 0)
            return error(c, 400, "ERROR", "Content-Type must be application/json");
        if (!(body = json_loadb(rq->body, rq->len, 0, NULL)))
            return error(c, 400, "ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid");
    }
    if (sscanf(path, "search/%63[A-Za-z]", name) == 1) {
        json_decref(body);
        t = type_of(name);
        if (t < 0 || t == T_FOLLOWUP)
            return error(c, 400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found");
        return search(c, t, sanitize);
    }
    n = sscanf(path, "%63[A-Za-z_]/%lld/%63[A-Za-z_]", name, &id, sub);
    if (n < 1 || (t = type_of(name)) < 0) {
        json_decref(body);
        return error(c, 400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found");
    }
    const char *range = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "range");
    if (n == 3 && strcmp(method, "GET") == 0) {
        json_t *out = json_array(), *it;
        size_t i;

        json_decref(body);
        if (t == T_TICKET && strcmp(sub, "ITILFollowup") == 0) {
            json_t *mine = json_array();

            json_array_foreach(followups, i, it) if (id_of(json_object_get(it, "items_id")) == id)
                json_array_append(mine, it);
            json_decref(out);
            out = list_range(mine, range);
            json_decref(mine);
        } else if (t == T_TICKET && strcmp(sub, "Ticket_User") == 0) {
            json_array_foreach(ticket_users, i,
                               it) if (json_integer_value(json_object_get(it, "tickets_id")) == id)
                json_array_append(out, it);
        } else if (t == T_USER && strcmp(sub, "UserEmail") == 0) {
            json_t *u = find(users, id);

            json_array_foreach(json_object_get(u, "emails"), i, it)
            {
                json_t *e = json_deep_copy(it);

                json_object_set_new(e, "users_id", json_integer(id));
                json_object_set_new(e, "is_dynamic", json_integer(0));
                json_array_append_new(out, e);
            }
        } else {
            json_decref(out);
            return error(c, 400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found");
        }
        return send_json(c, 200, out, sanitize);
    }
    if (strcmp(method, "GET") == 0) {
        if (n == 1) {
            json_t *page = list_range(*store_of(t), range), *out = json_array(), *it;
            size_t i;

            json_array_foreach(page, i, it) json_array_append_new(out, api_view(it));
            json_decref(page);
            return send_json(c, 200, out, sanitize);
        }
        json_t *it = find(*store_of(t), id);

        if (!it)
            return error(c, 404, "ERROR_ITEM_NOT_FOUND", "Item not found");
        return send_json(c, 200, api_view(it), sanitize);
    }
    in = json_object_get(body, "input");
    if (strcmp(method, "POST") == 0 && n == 1) {
        json_t *out;
        const char *why = NULL;
        char loc[96];

        if (!in) {
            json_decref(body);
            return error(c, 400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects");
        }
        if (json_is_array(in)) {
            json_t *x;
            size_t i, good = 0;

            out = json_array();
            json_array_foreach(in, i, x)
            {
                why = create_one(t, x, &id);
                json_array_append_new(
                    out, why ? json_pack("{s:b, s:s}", "id", 0, "message", why)
                             : json_pack("{s:I, s:s}", "id", (json_int_t)id, "message", ""));
                good += !why;
            }
            /* in belongs to body: size it before letting go of it. */
            bool all = good == json_array_size(in);

            json_decref(body);
            if (good && loses_reply(t)) {
                json_decref(out);
                return lose_reply(c);
            }
            if (all)
                return send_json(c, 201, out, false);
            return send_json(
                c, good ? 207 : 400,
                json_pack("[s, o]", good ? "ERROR_GLPI_PARTIAL_ADD" : "ERROR_GLPI_ADD", out),
                false);
        }
        why = create_one(t, in, &id);
        json_decref(body);
        if (why)
            return error(c, 400, "ERROR_GLPI_ADD", why);
        if (loses_reply(t))
            return lose_reply(c);
        struct MHD_Response *r;
        char *text;
        enum MHD_Result ok;

        text = json_dumps(out = json_pack("{s:I, s:s}", "id", (json_int_t)id, "message", ""),
                          JSON_COMPACT);
        json_decref(out);
        r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        snprintf(loc, sizeof loc, "/apirest.php/%s/%lld", type_names[t], id);
        MHD_add_response_header(r, "Content-Type", "application/json; charset=UTF-8");
        MHD_add_response_header(r, "Location", loc);
        ok = MHD_queue_response(c, 201, r);
        MHD_destroy_response(r);
        return ok;
    }
    if ((strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) && n == 2) {
        json_t *it = find(*store_of(t), id), *v;
        const char *k;
        char key[32], now[32];

        const char *why = !it                   ? "Item not found"
                          : !json_is_object(in) ? "input: expected an object"
                          : t == T_USER         ? user_rename_refused(in, id)
                                                : NULL;

        if (why) {
            json_decref(body);
            return error(c, 400, "ERROR_GLPI_UPDATE", why);
        }
        json_object_foreach(in, k, v) if (is_column(t, k)) json_object_set(it, k, v);
        if (t == T_USER)
            user_emails(it, in, true);
        if (t == T_TICKET)
            take_requesters(id, in, true);
        now_text(now, sizeof now);
        json_object_set_new(it, "date_mod", json_string(now));
        json_decref(body);
        snprintf(key, sizeof key, "%lld", id);
        return send_json(c, 200, json_pack("[{s:b, s:s}]", key, 1, "message", ""), false);
    }
    json_decref(body);
    return error(c, 405, "ERROR_METHOD_NOT_ALLOWED", "method not allowed");
}

/* --- control --------------------------------------------------------------------------------- */

static json_t *decoded_items(json_t *store, bool tickets_too)
{
    json_t *out = json_array(), *it;
    size_t i;

    json_array_foreach(store, i, it)
        json_array_append_new(out, tickets_too ? with_requesters(it) : json_deep_copy(it));
    return out;
}

static enum MHD_Result control(struct MHD_Connection *c, const char *method, const char *path,
                               struct req *rq)
{
    if (strcmp(path, "state") == 0 && strcmp(method, "GET") == 0) {
        json_t *s = json_pack(
            "{s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "users",
            decoded_items(users, false), "contacts", decoded_items(contacts, false), "tickets",
            decoded_items(tickets, true), "followups", decoded_items(followups, false), "counters",
            "init_session", (json_int_t)counters.init_session, "kill_session",
            (json_int_t)counters.kill_session, "requests", (json_int_t)counters.requests, "creates",
            (json_int_t)counters.creates, "searches", (json_int_t)counters.searches, "lost_replies",
            (json_int_t)counters.lost_replies, "sessions_live",
            (json_int_t)json_object_size(sessions));
        return send_json(c, 200, s, false);
    }
    if (strcmp(path, "reset") == 0 && strcmp(method, "POST") == 0) {
        reset();
        return send_json(c, 200, json_pack("{s:b}", "ok", 1), false);
    }
    if (strcmp(path, "faults") == 0 && strcmp(method, "POST") == 0) {
        json_t *f = rq->len ? json_loadb(rq->body, rq->len, 0, NULL) : NULL, *v;
        const char *mode;

        if (!json_is_object(f)) {
            json_decref(f);
            return error(c, 400, "ERROR", "faults: expected a JSON object");
        }
        if (json_is_true(json_object_get(f, "expire_sessions")))
            json_object_clear(sessions);
        if ((v = json_object_get(f, "fail_500")))
            faults.fail_500 = (int)json_integer_value(v);
        if ((v = json_object_get(f, "fail_429")))
            faults.fail_429 = (int)json_integer_value(v);
        if ((v = json_object_get(f, "retry_after")))
            faults.retry_after = (int)json_integer_value(v);
        if ((v = json_object_get(f, "lost_reply")))
            faults.lost_reply = (int)json_integer_value(v);
        if ((mode = json_string_value(json_object_get(f, "lost_reply_mode"))))
            faults.lost_close = strcmp(mode, "close") == 0;
        if ((mode = json_string_value(json_object_get(f, "lost_reply_itemtype")))) {
            if ((faults.lost_type = type_of(mode)) < 0) {
                json_decref(f);
                return error(c, 400, "ERROR", "faults: lost_reply_itemtype: no such itemtype");
            }
        } else if (json_object_get(f, "lost_reply"))
            faults.lost_type = -1;
        if ((v = json_object_get(f, "delay_ms")))
            faults.delay_ms = (int)json_integer_value(v);
        if ((v = json_object_get(f, "fail_rate")))
            faults.fail_rate = json_number_value(v);
        if ((v = json_object_get(f, "fail_status")))
            faults.fail_status = (int)json_integer_value(v);
        if ((mode = json_string_value(json_object_get(f, "refuse_content"))))
            snprintf(faults.refuse_content, sizeof faults.refuse_content, "%s", mode);
        json_decref(f);
        return send_json(c, 200, json_pack("{s:b}", "ok", 1), false);
    }
    if ((strcmp(path, "create") == 0 || strcmp(path, "update") == 0) &&
        strcmp(method, "POST") == 0) {
        json_t *f = rq->len ? json_loadb(rq->body, rq->len, 0, NULL) : NULL;
        json_t *in = json_object_get(f, "input"), *it, *v;
        const char *name = json_string_value(json_object_get(f, "itemtype")), *why = NULL, *k;
        int t = name ? type_of(name) : -1;
        long long id = id_of(json_object_get(f, "id"));

        if (t < 0 || !json_is_object(in)) {
            json_decref(f);
            return error(c, 400, "ERROR", "expected {\"itemtype\": T, \"input\": {...}}");
        }
        if (strcmp(path, "create") == 0) {
            why = create_one(t, in, &id);
        } else if (!(it = find(*store_of(t), id))) {
            why = "Item not found";
        } else {
            json_object_foreach(in, k, v) if (is_column(t, k)) json_object_set(it, k, v);
            if (t == T_USER)
                user_emails(it, in, true);
        }
        json_decref(f);
        if (why)
            return error(c, 400, "ERROR", why);
        return send_json(c, 200, json_pack("{s:I}", "id", (json_int_t)id), false);
    }
    return error(c, 404, "ERROR", "no such control");
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
                             struct req *rq, int *delay_ms)
{
    enum MHD_Result ok;

    pthread_mutex_lock(&mu);
    if (strncmp(url, "/_fake/", 7) != 0)
        *delay_ms = faults.delay_ms;
    if (strncmp(url, "/_fake/", 7) == 0)
        ok = control(c, method, url + 7, rq);
    else if (strncmp(url, "/apirest.php/", 13) == 0) {
        ok = api(c, method, url + 13, rq);
        if (getenv("FAKE_GLPI_TRACE"))
            fprintf(stderr, "fake-glpi: %p %s %s -> %d (tickets %zu)\n", (void *)c, method, url,
                    (int)ok, json_array_size(tickets));
    } else
        ok = error(c, 404, "ERROR", "not the API: expected /apirest.php/...");
    pthread_mutex_unlock(&mu);
    return ok;
}

static enum MHD_Result too_big(struct MHD_Connection *c)
{
    return error(c, 413, "ERROR", "request body too large");
}

int main(int argc, char **argv)
{
    int port = 0;

    user_tokens = calloc((size_t)argc, sizeof *user_tokens);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--app-token") == 0 && i + 1 < argc)
            app_token = argv[++i];
        else if (strcmp(argv[i], "--user-token") == 0 && i + 1 < argc)
            user_tokens[nuser_tokens++] = argv[++i];
        else {
            fprintf(stderr, "usage: fake-glpi [--port N] [--app-token T] [--user-token T]...\n");
            return 2;
        }
    }
    /* Two fakes started together should not hand out the same tokens. */
    token_seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    reset();
    if (fake_serve("fake-glpi", &port, BODY_MAX, route, too_big) != 0)
        return 1;
    reset();
    json_decref(users);
    json_decref(contacts);
    json_decref(tickets);
    json_decref(followups);
    json_decref(ticket_users);
    json_decref(sessions);
    free(user_tokens);
    return 0;
}
