/* mirror.c - Chatwoot events into GLPI people, tickets and followups (see glpi.h, mirror.h). */
#include "glpi/mirror.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/err.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/msg.h"
#include "sy/pg.h"
#include "sy/redis.h"

#define LOCK_WAIT_MS   15000 /* then RETRY: the holder is busy with a long conversation */
#define NAME_MAX       255
#define EMAIL_MAX      254
#define PHONE_MAX      32
#define CONTENT_MAX    (256 * 1024) /* bytes of one message's text */
#define DUE_PAGE       200          /* messages mirrored per query */
#define FOLLOWUP_PAGE  500          /* followups read per call when looking for a marker */
#define RES_MAX        160
#define LOCK_MARGIN_MS 10000 /* the lease outlasts the longest GLPI call by this much */

int gl_lock_ttl_ms(long long timeout_ms)
{
    /* A call may be three exchanges: it, the initSession after a 401, and it again. */
    long long ttl = 3 * timeout_ms + LOCK_MARGIN_MS;

    return ttl > INT32_MAX ? INT32_MAX : (int)ttl;
}

/* --- verdicts ------------------------------------------------------------------------------- */

static int fail(struct gl_ev *e, enum sy_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct gl_ev *e, enum sy_verdict v, const char *fmt, ...)
{
    char why[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    sy_msg_fail(e->msg, v, "%s", why);
    return -1;
}

/* A call GLPI did not answer as hoped; a Retry-After it gave holds the next attempt back. */
static int glpi_failed(struct gl_ev *e, enum glpi_rc rc, const char *what, const struct glpi_res *r)
{
    if (rc == GLPI_RETRY && r->retry_after_s > 0)
        sy_msg_retry_after(e->msg, r->retry_after_s * 1000LL);
    return fail(e, rc == GLPI_REJECT ? SY_REJECT : SY_RETRY, "GLPI %s: %ld %s %s", what, r->status,
                r->code, r->msg);
}

static int pg_failed(struct gl_ev *e, int rc, const char *what)
{
    if (rc == -SY_ECONN)
        e->pg_lost = true;
    return fail(e, rc == -SY_EDBDATA ? SY_REJECT : SY_RETRY, "PostgreSQL %s: %s (%s)", what,
                sy_strerror(rc), sy_pg_error(e->pg));
}

/* --- mutexes and fenced writes -------------------------------------------------------------- */

static int take(struct gl_ev *e, const char *res, struct sy_lock **l)
{
    int rc = sy_lock_acquire(e->redis, res, e->lock_ttl_ms, LOCK_WAIT_MS, l);

    if (rc == 0)
        return 0;
    if (rc == -SY_ECONN)
        e->redis_lost = true;
    return fail(e, SY_RETRY, "mutex %s: %s", res, sy_strerror(rc));
}

/* Renews the lease before each GLPI call, so the call runs with the whole TTL ahead of it (the
 * TTL outlasts the longest call, see gl_lock_ttl_ms); one whose lease was lost is not sent. */
static int lease(struct gl_ev *e, struct sy_lock *l)
{
    int rc = sy_lock_extend(e->redis, l, e->lock_ttl_ms);

    if (rc == 0)
        return 0;
    if (rc == -SY_ECONN)
        e->redis_lost = true;
    return fail(e, SY_RETRY, "mutex %s lost before calling GLPI: %s", sy_lock_resource(l),
                sy_strerror(rc));
}

/* A holder refused as older than the fence PostgreSQL recorded: Redis lost its counter (a
 * restart without persistence). Raising the counter past the record lets the next holder
 * write again. */
static void raise_floor(struct gl_ev *e, struct sy_lock *l)
{
    const char *res = sy_lock_resource(l);
    struct sy_pg_res *r = NULL;

    if (sy_pg_exec(e->pg, "SELECT fence FROM sy_fences WHERE resource = $1", 1, &res, &r) == 0 &&
        sy_pg_res_rows(r) == 1) {
        uint64_t f = strtoull(sy_pg_res_get(r, 0, 0), NULL, 10);

        if (f > sy_lock_fence(l))
            sy_lock_fence_floor(e->redis, res, f);
    }
    sy_pg_res_free(r);
}

/* sql in a transaction that first records l's fence (one round trip): a holder whose lease ran
 * out and whose resource someone else took since cannot write any more. */
static int fenced(struct gl_ev *e, struct sy_lock *l, const char *sql, int n, const char *const *p,
                  struct sy_pg_res **res)
{
    int rc = sy_pg_exec_fenced(e->pg, sy_lock_resource(l), sy_lock_fence(l), sql, n, p, res);

    if (rc == 0)
        return 0;
    if (rc == -SY_ESTALE) {
        raise_floor(e, l);
        return fail(e, SY_RETRY, "mutex %s: a newer holder wrote first (fence %" PRIu64 ")",
                    sy_lock_resource(l), sy_lock_fence(l));
    }
    return pg_failed(e, rc, "write");
}

static int query(struct gl_ev *e, const char *sql, int n, const char *const *p,
                 struct sy_pg_res **res)
{
    int rc = sy_pg_exec(e->pg, sql, n, p, res);

    return rc == 0 ? 0 : pg_failed(e, rc, "read");
}

/* --- the payload's pieces ------------------------------------------------------------------- */

struct person {
    long long id; /* Chatwoot's contact id */
    char idtxt[24];
    const char *name, *email, *phone; /* NULL when absent or empty */
};

static const char *nonempty(const json_t *v)
{
    const char *s = json_string_value(v);

    return s && *s ? s : NULL;
}

static long long id_of(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0 ? (long long)json_integer_value(v) : 0;
}

/* A contact object (Contact#webhook_data, or a conversation's meta.sender). */
static int person_of(struct gl_ev *e, const json_t *c, const char *where, struct person *p)
{
    memset(p, 0, sizeof *p);
    if (!(p->id = id_of(json_object_get(c, "id"))))
        return fail(e, SY_REJECT, "%s.id: expected a positive integer", where);
    snprintf(p->idtxt, sizeof p->idtxt, "%lld", p->id);
    p->name = nonempty(json_object_get(c, "name"));
    p->email = nonempty(json_object_get(c, "email"));
    p->phone = nonempty(json_object_get(c, "phone_number"));
    if (p->name && strlen(p->name) > NAME_MAX)
        return fail(e, SY_REJECT, "%s.name: longer than %d bytes", where, NAME_MAX);
    if (p->email && (strlen(p->email) > EMAIL_MAX || !strchr(p->email, '@')))
        return fail(e, SY_REJECT, "%s.email: expected an address of at most %d bytes", where,
                    EMAIL_MAX);
    if (p->phone && strlen(p->phone) > PHONE_MAX)
        return fail(e, SY_REJECT, "%s.phone_number: longer than %d bytes", where, PHONE_MAX);
    return 0;
}

static const char *who(const struct person *p)
{
    return p->name ? p->name : p->email ? p->email : p->phone ? p->phone : "unknown contact";
}

/* "Jane van Doe" → first "Jane van", last "Doe"; one word is a last name. */
static void split_name(const char *name, char *first, size_t fl, char *last, size_t ll)
{
    const char *sp = name ? strrchr(name, ' ') : NULL;

    if (!name) {
        first[0] = last[0] = '\0';
    } else if (!sp) {
        first[0] = '\0';
        snprintf(last, ll, "%s", name);
    } else {
        snprintf(first, fl, "%.*s", (int)(sp - name), name);
        snprintf(last, ll, "%s", sp + 1);
    }
}

/* --- people --------------------------------------------------------------------------------- */

/* A link of the other itemtype (the hook's sync type changed since) is no link: its id is not
 * one of this itemtype's, so the person is found or made again and the link replaced. */
static const char sql_person_get[] =
    "SELECT COALESCE(glpi_id, 0), created, create_at IS NOT NULL, COALESCE(name, ''),"
    " COALESCE(email, ''), COALESCE(phone, '') FROM glpi_people"
    " WHERE hook_id = $1 AND contact_id = $2::bigint AND itemtype = $3";

static const char sql_person_intent[] =
    "INSERT INTO glpi_people (hook_id, contact_id, itemtype, create_at, name, email, phone)"
    " VALUES ($1, $2::bigint, $3, now(), $4, $5, $6)"
    " ON CONFLICT (hook_id, contact_id) DO UPDATE SET itemtype = EXCLUDED.itemtype,"
    "   glpi_id = NULL, created = false, create_at = now(), name = EXCLUDED.name,"
    "   email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now()";

static const char sql_person_link[] =
    "INSERT INTO glpi_people (hook_id, contact_id, itemtype, glpi_id, created, name, email, phone)"
    " VALUES ($1, $2::bigint, $3, $4::bigint, $5::boolean, $6, $7, $8)"
    " ON CONFLICT (hook_id, contact_id) DO UPDATE SET itemtype = EXCLUDED.itemtype,"
    "   glpi_id = EXCLUDED.glpi_id, created = EXCLUDED.created, create_at = NULL,"
    "   name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now()";

static const char sql_person_seen[] =
    "UPDATE glpi_people SET name = $3, email = $4, phone = $5, updated_at = now()"
    " WHERE hook_id = $1 AND contact_id = $2::bigint AND itemtype = $6";

/* Search option ids (User: 5 emails, 11 mobile, 6 phone, 1 login; Contact: 6 email,
 * 10 mobile, 3 phone, 70 registration number). */
struct itemtype {
    const char *name;
    int email, mobile, phone, marker;
};
static const struct itemtype T_USER = {"User", 5, 11, 6, 1};
static const struct itemtype T_CONTACT = {"Contact", 6, 10, 3, 70};

static const struct itemtype *person_type(const struct gl_ev *e)
{
    return e->h->contact_sync ? &T_CONTACT : &T_USER;
}

/* What marks a person as this hook's copy of the contact: a User's login, a Contact's
 * registration number. */
static void person_marker(const struct gl_ev *e, const struct person *p, char *buf, size_t n)
{
    snprintf(buf, n, "chatwoot-%s-%lld", e->h->id, p->id);
}

static int person_search(struct gl_ev *e, struct sy_lock *l, int field, const char *value,
                         long long *id)
{
    struct glpi_res r = {.retry_after_s = -1};
    long long *ids = NULL;
    size_t n = 0;
    enum glpi_rc rc;

    if (lease(e, l) != 0)
        return -1;
    rc = glpi_search_eq(e->s, e->http, person_type(e)->name, field, value, false, &ids, &n, &r);

    if (rc != GLPI_OK) {
        int v = glpi_failed(e, rc, "search", &r);

        glpi_res_clear(&r);
        return v;
    }
    *id = n > 0 ? ids[0] : 0;
    free(ids);
    glpi_res_clear(&r);
    return 0;
}

static json_t *person_input(const struct gl_ev *e, const struct person *p, bool create)
{
    char first[NAME_MAX + 1], last[NAME_MAX + 1], marker[128], comment[160];
    json_t *in;

    split_name(p->name, first, sizeof first, last, sizeof last);
    if (!last[0])
        snprintf(last, sizeof last, "%s", who(p));
    person_marker(e, p, marker, sizeof marker);
    snprintf(comment, sizeof comment, "Chatwoot contact %lld (hook %s)", p->id, e->h->id);
    if (e->h->contact_sync) {
        in = json_pack("{s:s, s:s, s:s?, s:s?}", "name", last, "firstname", first, "email",
                       p->email, "mobile", p->phone);
        if (in && create) {
            json_object_set_new(in, "registration_number", json_string(marker));
            json_object_set_new(in, "comment", json_string(comment));
            json_object_set_new(in, "entities_id", json_integer(e->h->entity_id));
        }
        return in;
    }
    in = json_pack("{s:s, s:s, s:s?}", "realname", last, "firstname", first, "mobile", p->phone);
    if (in && p->email) {
        /* A new address becomes the default one; GLPI keeps the older ones. */
        json_object_set_new(in, "_useremails", json_pack("{s:s}", "-1", p->email));
        json_object_set_new(in, "_default_email", json_string("-1"));
    }
    if (in && create) {
        json_object_set_new(in, "name", json_string(marker));
        json_object_set_new(in, "registration_number", json_string(marker));
        json_object_set_new(in, "comment", json_string(comment));
        json_object_set_new(in, "is_active", json_integer(1));
        json_object_set_new(in, "entities_id", json_integer(e->h->entity_id));
    }
    return in;
}

static int person_link(struct gl_ev *e, struct sy_lock *l, const struct person *p, long long id,
                       bool created)
{
    char idtxt[24];
    const char *params[8] = {
        e->h->id, p->idtxt, person_type(e)->name, idtxt, created ? "true" : "false", p->name,
        p->email, p->phone};

    snprintf(idtxt, sizeof idtxt, "%lld", id);
    return fenced(e, l, sql_person_link, 8, params, NULL);
}

static bool differs(const char *stored, const char *now)
{
    return strcmp(stored, now ? now : "") != 0;
}

/* The GLPI person of contact p, under its mutex l: linked, found, or created. With update, a
 * person this worker created takes the contact's new name, email and phone. */
static int person_sync(struct gl_ev *e, struct sy_lock *l, const struct person *p, bool update,
                       long long *glpi_id)
{
    const struct itemtype *t = person_type(e);
    const char *params[6] = {e->h->id, p->idtxt, t->name, p->name, p->email, p->phone};
    struct glpi_res r = {.retry_after_s = -1};
    struct sy_pg_res *res = NULL;
    char marker[128];
    long long id = 0;
    bool intent = false;
    enum glpi_rc rc;
    json_t *in;

    *glpi_id = 0;
    if (query(e, sql_person_get, 3, params, &res) != 0)
        return -1;
    if (sy_pg_res_rows(res) == 1) {
        id = atoll(sy_pg_res_get(res, 0, 0));
        intent = strcmp(sy_pg_res_get(res, 0, 2), "t") == 0;
        if (id > 0) {
            bool mine = strcmp(sy_pg_res_get(res, 0, 1), "t") == 0;
            bool changed = differs(sy_pg_res_get(res, 0, 3), p->name) ||
                           differs(sy_pg_res_get(res, 0, 4), p->email) ||
                           differs(sy_pg_res_get(res, 0, 5), p->phone);

            sy_pg_res_free(res);
            *glpi_id = id;
            if (!update || !changed)
                return 0;
            if (mine) {
                if (lease(e, l) != 0 || !(in = person_input(e, p, false)))
                    return sy_msg_verdict(e->msg) ? -1 : fail(e, SY_RETRY, "out of memory");
                rc = glpi_update(e->s, e->http, t->name, id, in, &r);
                json_decref(in);
                if (rc != GLPI_OK) {
                    int v = glpi_failed(e, rc, "update of the person", &r);

                    glpi_res_clear(&r);
                    return v;
                }
                glpi_res_clear(&r);
            }
            return fenced(
                e, l, sql_person_seen, 6,
                (const char *[]){e->h->id, p->idtxt, p->name, p->email, p->phone, t->name}, NULL);
        }
    }
    sy_pg_res_free(res);

    person_marker(e, p, marker, sizeof marker);
    if (lease(e, l) != 0)
        return -1;
    if (intent) {
        /* A create was sent before and its answer never came: it may well exist. */
        if (person_search(e, l, t->marker, marker, &id) != 0)
            return -1;
        if (id > 0)
            return person_link(e, l, p, *glpi_id = id, true);
    } else {
        /* Somebody GLPI knows already (staff, or an earlier import) is linked, not copied. */
        if (p->email && person_search(e, l, t->email, p->email, &id) != 0)
            return -1;
        if (!id && p->phone && person_search(e, l, t->mobile, p->phone, &id) != 0)
            return -1;
        if (!id && p->phone && person_search(e, l, t->phone, p->phone, &id) != 0)
            return -1;
        if (id > 0)
            return person_link(e, l, p, *glpi_id = id, false);
    }
    if (fenced(e, l, sql_person_intent, 6, params, NULL) != 0)
        return -1;
    if (lease(e, l) != 0 || !(in = person_input(e, p, true)))
        return sy_msg_verdict(e->msg) ? -1 : fail(e, SY_RETRY, "out of memory");
    rc = glpi_create(e->s, e->http, t->name, in, &id, &r);
    json_decref(in);
    if (rc == GLPI_REJECT && strcmp(r.code, "ERROR_GLPI_ADD") == 0) {
        /* GLPI's unicity rules refuse a second one: then the first is there to be found. */
        long long found = 0;

        if (person_search(e, l, t->marker, marker, &found) != 0) {
            glpi_res_clear(&r);
            return -1;
        }
        if (found > 0) {
            glpi_res_clear(&r);
            return person_link(e, l, p, *glpi_id = found, true);
        }
    }
    if (rc != GLPI_OK) {
        int v = glpi_failed(e, rc, "create of the person", &r);

        glpi_res_clear(&r);
        return v;
    }
    glpi_res_clear(&r);
    return person_link(e, l, p, *glpi_id = id, true);
}

static void lock_name(char *buf, size_t n, const struct gl_ev *e, const char *kind, long long id)
{
    snprintf(buf, n, "glpi:%s:%s:%lld", e->h->id, kind, id);
}

/* p's person under p's own mutex. */
static int person_locked(struct gl_ev *e, const struct person *p, bool update, long long *glpi_id)
{
    char res[RES_MAX];
    struct sy_lock *l = NULL;
    int rc;

    lock_name(res, sizeof res, e, "contact", p->id);
    if (take(e, res, &l) != 0)
        return -1;
    rc = person_sync(e, l, p, update, glpi_id);
    sy_lock_release(e->redis, l);
    return rc;
}

int gl_contact(struct gl_ev *e, const json_t *contact, bool update)
{
    struct person p;
    long long id;

    if (person_of(e, contact, "payload", &p) != 0)
        return -1;
    return person_locked(e, &p, update, &id);
}

/* --- tickets -------------------------------------------------------------------------------- */

struct conv {
    long long id; /* the per-account display id */
    char idtxt[24];
    struct person sender; /* sender.id 0: none known */
    const char *status;
    double ts;
};

static int conv_of(struct gl_ev *e, const json_t *c, const char *where, struct conv *v)
{
    const json_t *sender = json_object_get(json_object_get(c, "meta"), "sender");
    const json_t *ts = json_object_get(c, "timestamp");
    char field[64];

    memset(v, 0, sizeof *v);
    snprintf(v->sender.idtxt, sizeof v->sender.idtxt, "0");
    if (!json_is_object(c))
        return fail(e, SY_REJECT, "%s: expected the conversation object", where);
    if (!(v->id = id_of(json_object_get(c, "id"))))
        return fail(e, SY_REJECT, "%s.id: expected a positive integer", where);
    snprintf(v->idtxt, sizeof v->idtxt, "%lld", v->id);
    v->status = nonempty(json_object_get(c, "status"));
    v->ts = json_is_number(ts) ? json_number_value(ts) : 0;
    const char *type = json_string_value(json_object_get(sender, "type"));

    if (json_is_object(sender) && (!type || strcmp(type, "contact") == 0)) {
        snprintf(field, sizeof field, "%s.meta.sender", where);
        return person_of(e, sender, field, &v->sender);
    }
    /* Older payloads name the contact only through its inbox link. */
    v->sender.id = id_of(json_object_get(json_object_get(c, "contact_inbox"), "contact_id"));
    snprintf(v->sender.idtxt, sizeof v->sender.idtxt, "%lld", v->sender.id);
    return 0;
}

static const char sql_conv_get[] =
    "SELECT COALESCE(ticket_id, 0), create_at IS NOT NULL FROM glpi_tickets"
    " WHERE hook_id = $1 AND conversation_id = $2::bigint";

static const char sql_conv_add[] =
    "INSERT INTO glpi_tickets (hook_id, conversation_id, contact_id)"
    " VALUES ($1, $2::bigint, NULLIF($3::bigint, 0)) ON CONFLICT DO NOTHING";

static const char sql_conv_intent[] =
    "UPDATE glpi_tickets SET create_at = now(), updated_at = now()"
    " WHERE hook_id = $1 AND conversation_id = $2::bigint";

static const char sql_conv_link[] =
    "UPDATE glpi_tickets SET ticket_id = $3::bigint, create_at = NULL, updated_at = now()"
    " WHERE hook_id = $1 AND conversation_id = $2::bigint";

static void ticket_marker(const struct gl_ev *e, const struct conv *c, char *buf, size_t n)
{
    snprintf(buf, n, " [chatwoot %s/%lld]", e->h->id, c->id);
}

static json_t *ticket_input(const struct gl_ev *e, const struct conv *c, long long person)
{
    const struct person *p = &c->sender;
    char title[NAME_MAX + 80], marker[128], *esc = NULL, *html = NULL;
    json_t *in;

    ticket_marker(e, c, marker, sizeof marker);
    snprintf(title, sizeof title, "Chatwoot #%lld: %.120s%s", c->id, who(p), marker);
    {
        char text[1024];

        snprintf(text, sizeof text, "Conversation #%lld in Chatwoot.\nFrom: %s%s%s%s%s", c->id,
                 who(p), p->email ? ", " : "", p->email ? p->email : "", p->phone ? ", " : "",
                 p->phone ? p->phone : "");
        if (e->h->contact_sync && person > 0)
            snprintf(text + strlen(text), sizeof text - strlen(text), "\nGLPI contact #%lld",
                     person);
        if (!(esc = glpi_html_escape(text)) || asprintf(&html, "<p>%s</p>", esc) < 0)
            html = NULL;
        free(esc);
    }
    if (!html)
        return NULL;
    in = json_pack("{s:s, s:s, s:i, s:i}", "name", title, "content", html, "type",
                   e->h->ticket_type, "entities_id", e->h->entity_id);
    free(html);
    if (!in)
        return NULL;
    if (e->h->category_id > 0)
        json_object_set_new(in, "itilcategories_id", json_integer(e->h->category_id));
    if (!e->h->contact_sync && person > 0) {
        json_object_set_new(in, "_users_id_requester", json_integer(person));
    } else if (e->h->default_user_id > 0) {
        /* GLPI cannot make a Contact an actor: the hook's user stands in for it. */
        json_object_set_new(in, "_users_id_requester", json_integer(e->h->default_user_id));
    } else if (p->email) {
        /* Or the contact's address as an email-only requester. */
        json_object_set_new(in, "_users_id_requester", json_integer(0));
        json_object_set_new(
            in, "_users_id_requester_notif",
            json_pack("{s:[i], s:[s]}", "use_notification", 1, "alternative_email", p->email));
    }
    return in;
}

static int ticket_search(struct gl_ev *e, const char *marker, long long *id)
{
    struct glpi_res r = {.retry_after_s = -1};
    long long *ids = NULL;
    size_t n = 0;
    enum glpi_rc rc = glpi_search_eq(e->s, e->http, "Ticket", 1, marker, true, &ids, &n, &r);

    if (rc != GLPI_OK) {
        int v = glpi_failed(e, rc, "search", &r);

        glpi_res_clear(&r);
        return v;
    }
    *id = n > 0 ? ids[0] : 0;
    free(ids);
    glpi_res_clear(&r);
    return 0;
}

/* The conversation's ticket, under its mutex l: linked, found after a lost create, or made. */
static int ticket_sync(struct gl_ev *e, struct sy_lock *l, const struct conv *c, long long *tid)
{
    const char *params[3] = {e->h->id, c->idtxt, c->sender.idtxt};
    struct glpi_res r = {.retry_after_s = -1};
    struct sy_pg_res *res = NULL;
    long long person = 0, id = 0;
    char marker[128];
    bool intent;
    enum glpi_rc rc;
    json_t *in;

    *tid = 0;
    if (query(e, sql_conv_get, 2, params, &res) != 0)
        return -1;
    if (sy_pg_res_rows(res) == 0) {
        sy_pg_res_free(res);
        if (fenced(e, l, sql_conv_add, 3, params, NULL) != 0)
            return -1;
        intent = false;
    } else {
        *tid = atoll(sy_pg_res_get(res, 0, 0));
        intent = strcmp(sy_pg_res_get(res, 0, 1), "t") == 0;
        sy_pg_res_free(res);
        if (*tid > 0)
            return 0;
    }
    ticket_marker(e, c, marker, sizeof marker);
    if (intent) {
        if (lease(e, l) != 0 || ticket_search(e, marker + 1, &id) != 0)
            return -1;
        if (id > 0) {
            const char *link[3] = {e->h->id, c->idtxt, NULL};
            char idtxt[24];

            snprintf(idtxt, sizeof idtxt, "%lld", id);
            link[2] = idtxt;
            if (fenced(e, l, sql_conv_link, 3, link, NULL) != 0)
                return -1;
            *tid = id;
            return 0;
        }
    }
    if (c->sender.id > 0 && person_locked(e, &c->sender, false, &person) != 0)
        return -1;
    if (fenced(e, l, sql_conv_intent, 2, params, NULL) != 0)
        return -1;
    if (lease(e, l) != 0)
        return -1;
    if (!(in = ticket_input(e, c, person)))
        return fail(e, SY_RETRY, "out of memory");
    rc = glpi_create(e->s, e->http, "Ticket", in, &id, &r);
    json_decref(in);
    if (rc != GLPI_OK) {
        int v = glpi_failed(e, rc, "create of the ticket", &r);

        glpi_res_clear(&r);
        return v;
    }
    glpi_res_clear(&r);
    {
        const char *link[3] = {e->h->id, c->idtxt, NULL};
        char idtxt[24];

        snprintf(idtxt, sizeof idtxt, "%lld", id);
        link[2] = idtxt;
        if (fenced(e, l, sql_conv_link, 3, link, NULL) != 0)
            return -1;
    }
    *tid = id;
    return 0;
}

/* --- messages ------------------------------------------------------------------------------- */

static const char sql_msgs_put[] =
    "INSERT INTO glpi_messages (hook_id, conversation_id, message_id, content, private, sender,"
    "   sent_at)"
    " SELECT $1, $2::bigint, m.message_id, m.content, m.private, m.sender,"
    "   CASE WHEN m.sent_at ~ '^[0-9]+(\\.[0-9]+)?$' THEN to_timestamp(m.sent_at::float8)"
    "        ELSE m.sent_at::timestamptz END"
    " FROM json_to_recordset($3::json) AS m(message_id bigint, content text, private boolean,"
    "   sender text, sent_at text)"
    " ON CONFLICT DO NOTHING";

/* The messages after $3 still to mirror: a message GLPI refused is left out, unless it is $4,
 * the one a message event carries (its replay, once GLPI was fixed, tries it again). */
static const char sql_due[] =
    "SELECT message_id, content, private, COALESCE(sender, ''),"
    " to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), post_at IS NOT NULL"
    " FROM glpi_messages WHERE hook_id = $1 AND conversation_id = $2::bigint"
    " AND followup_id IS NULL AND message_id > $3::bigint"
    " AND (refused_at IS NULL OR message_id = $4::bigint) ORDER BY message_id LIMIT 200";

static const char sql_msg_refused[] =
    "UPDATE glpi_messages SET refused_at = now(), refused_reason = $4, post_at = NULL"
    " WHERE hook_id = $1 AND conversation_id = $2::bigint AND message_id = $3::bigint";

static const char sql_msg_intent[] =
    "UPDATE glpi_messages SET post_at = now()"
    " WHERE hook_id = $1 AND conversation_id = $2::bigint AND message_id = $3::bigint";

static const char sql_msg_done[] =
    "WITH m AS (UPDATE glpi_messages SET followup_id = $4::bigint, post_at = NULL,"
    "     refused_at = NULL, refused_reason = NULL"
    "   WHERE hook_id = $1 AND conversation_id = $2::bigint AND message_id = $3::bigint)"
    " UPDATE glpi_tickets SET last_message_id = GREATEST(last_message_id, $3::bigint),"
    "   updated_at = now() WHERE hook_id = $1 AND conversation_id = $2::bigint";

/* Chatwoot's message types: incoming, outgoing and template messages are the conversation;
 * activity messages ("Jane resolved the conversation") are not. As a string in message
 * events, as a number 0..3 in a conversation's messages[]. */
static bool conversational(const json_t *type)
{
    const char *s = json_string_value(type);

    if (s)
        return strcmp(s, "incoming") == 0 || strcmp(s, "outgoing") == 0 ||
               strcmp(s, "template") == 0;
    return json_is_integer(type) && json_integer_value(type) != 2;
}

/* One message as a row of glpi_messages: its text with its attachments' links. NULL with the
 * verdict set when it is malformed; *skip for messages that are not the conversation's. */
static json_t *message_row(struct gl_ev *e, const json_t *m, const char *where, bool *skip)
{
    const json_t *at = json_object_get(m, "created_at"), *files = json_object_get(m, "attachments");
    const char *content = json_string_value(json_object_get(m, "content"));
    const char *sender = json_string_value(json_object_get(json_object_get(m, "sender"), "name"));
    long long id = id_of(json_object_get(m, "id"));
    char stamp[40], *text = NULL;
    size_t len = 0, i;
    json_t *f, *row;
    FILE *out;

    *skip = false;
    if (!id) {
        fail(e, SY_REJECT, "%s.id: expected a positive integer", where);
        return NULL;
    }
    if (!conversational(json_object_get(m, "message_type"))) {
        *skip = true;
        return NULL;
    }
    if (json_is_string(at) && strlen(json_string_value(at)) < sizeof stamp)
        snprintf(stamp, sizeof stamp, "%s", json_string_value(at));
    else if (json_is_number(at) && json_number_value(at) > 0 && json_number_value(at) < 1e11)
        snprintf(stamp, sizeof stamp, "%.3f", json_number_value(at));
    else {
        fail(e, SY_REJECT, "%s.created_at: expected a time (RFC 3339 text or Unix seconds)", where);
        return NULL;
    }
    if (content && strlen(content) > CONTENT_MAX) {
        fail(e, SY_REJECT, "%s.content: longer than %d bytes", where, CONTENT_MAX);
        return NULL;
    }
    if (!(out = open_memstream(&text, &len))) {
        fail(e, SY_RETRY, "out of memory");
        return NULL;
    }
    fputs(content ? content : "", out);
    bool any = content && *content;
    json_array_foreach(files, i, f)
    {
        const char *url = json_string_value(json_object_get(f, "data_url"));
        const char *type = json_string_value(json_object_get(f, "file_type"));

        if (url && strlen(url) < 2048) {
            fprintf(out, "%s[%s: %s]", any ? "\n" : "", type ? type : "file", url);
            any = true;
        }
    }
    fclose(out);
    if (!text || !*text) {
        /* GLPI refuses an empty followup; a message without text or files has nothing to say. */
        free(text);
        *skip = true;
        return NULL;
    }
    row = json_pack("{s:I, s:s, s:b, s:s?, s:s}", "message_id", (json_int_t)id, "content", text,
                    "private", json_is_true(json_object_get(m, "private")), "sender", sender,
                    "sent_at", stamp);
    free(text);
    if (!row)
        fail(e, SY_RETRY, "out of memory");
    return row;
}

/* The messages of an event into glpi_messages, once each. */
static int messages_put(struct gl_ev *e, struct sy_lock *l, const struct conv *c,
                        const json_t *msgs, const char *where)
{
    json_t *rows = json_array(), *m;
    char field[64], *text;
    size_t i;
    int rc;

    if (!rows)
        return fail(e, SY_RETRY, "out of memory");
    if (json_is_object(msgs)) {
        /* A message event: the payload is the one message. */
        bool skip;
        json_t *row = message_row(e, msgs, where, &skip);

        if (!row && !skip) {
            json_decref(rows);
            return -1;
        }
        if (row)
            json_array_append_new(rows, row);
    }
    json_array_foreach(msgs, i, m)
    {
        bool skip;
        json_t *row;

        snprintf(field, sizeof field, "%s[%zu]", where, i);
        if (!(row = message_row(e, m, json_is_array(msgs) ? field : where, &skip)) && !skip) {
            json_decref(rows);
            return -1;
        }
        if (row)
            json_array_append_new(rows, row);
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return 0;
    }
    text = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    if (!text)
        return fail(e, SY_RETRY, "out of memory");
    rc = fenced(e, l, sql_msgs_put, 3, (const char *[]){e->h->id, c->idtxt, text}, NULL);
    free(text);
    return rc;
}

static void followup_marker(long long message_id, char *buf, size_t n)
{
    snprintf(buf, n, "(chatwoot message %lld)", message_id);
}

/* Whether ticket tid has a followup whose content holds marker: *id its id, 0 when none. */
static int followup_find(struct gl_ev *e, struct sy_lock *l, long long tid, const char *marker,
                         long long *id)
{
    struct glpi_res r = {.retry_after_s = -1};
    char path[128];

    *id = 0;
    for (long long from = 0;; from += FOLLOWUP_PAGE) {
        enum glpi_rc rc;
        json_t *f;
        size_t i;

        snprintf(path, sizeof path, "Ticket/%lld/ITILFollowup?range=%lld-%lld", tid, from,
                 from + FOLLOWUP_PAGE - 1);
        if (lease(e, l) != 0) {
            glpi_res_clear(&r);
            return -1;
        }
        rc = glpi_call(e->s, e->http, "GET", path, NULL, &r);
        if (rc != GLPI_OK && strcmp(r.code, "ERROR_RANGE_EXCEED_TOTAL") == 0)
            break;
        if (rc != GLPI_OK) {
            int v = glpi_failed(e, rc, "list of followups", &r);

            glpi_res_clear(&r);
            return v;
        }
        json_array_foreach(r.json, i, f)
        {
            const char *content = json_string_value(json_object_get(f, "content"));

            if (content && strstr(content, marker)) {
                *id = id_of(json_object_get(f, "id"));
                glpi_res_clear(&r);
                return 0;
            }
        }
        if (json_array_size(r.json) < FOLLOWUP_PAGE)
            break;
    }
    glpi_res_clear(&r);
    return 0;
}

static char *followup_html(const char *text, const char *sender, bool private, const char *marker)
{
    char *body = glpi_html_escape(text), *by = glpi_html_escape(*sender ? sender : "Chatwoot");
    char *html = NULL;

    if (body && by &&
        asprintf(&html, "<p>%s</p><p><small>%s%s %s</small></p>", body, by,
                 private ? ", private note" : "", marker) < 0)
        html = NULL;
    free(body);
    free(by);
    return html;
}

/* Every kept message of the conversation that is not a followup yet becomes one, oldest
 * first. A message whose followup was sent without an answer is looked for first. A message
 * whose followup GLPI refuses for its data (a 4xx: a ticket closed or deleted in GLPI, a
 * content its rules refuse) is recorded as refused, logged and counted, and the later ones go
 * on: one refusal does not hold the conversation up. When that message is own (the message of
 * the message event being handled), GLPI's answer goes to *refused for the event's verdict. */
static int messages_mirror(struct gl_ev *e, struct sy_lock *l, const struct conv *c, long long tid,
                           long long own, char *refused, size_t refused_len)
{
    char after[24] = "0", owntxt[24];
    const char *due[4] = {e->h->id, c->idtxt, after, owntxt};
    struct sy_pg_res *res = NULL;
    int rows;

    snprintf(owntxt, sizeof owntxt, "%lld", own);
    do {
        if (query(e, sql_due, 4, due, &res) != 0)
            return -1;
        rows = sy_pg_res_rows(res);
        for (int i = 0; i < rows; i++) {
            const char *mid = sy_pg_res_get(res, i, 0);
            bool private = strcmp(sy_pg_res_get(res, i, 2), "t") == 0;
            bool sent = strcmp(sy_pg_res_get(res, i, 5), "t") == 0;
            struct glpi_res r = {.retry_after_s = -1};
            char marker[64], idtxt[24];
            const char *params[4] = {e->h->id, c->idtxt, mid, idtxt};
            long long fid = 0;
            json_t *in;
            char *html;

            snprintf(after, sizeof after, "%s", mid);
            followup_marker(atoll(mid), marker, sizeof marker);
            if (sent && followup_find(e, l, tid, marker, &fid) != 0)
                goto fail;
            if (!fid) {
                enum glpi_rc rc;

                if (fenced(e, l, sql_msg_intent, 3, params, NULL) != 0 || lease(e, l) != 0)
                    goto fail;
                html = followup_html(sy_pg_res_get(res, i, 1), sy_pg_res_get(res, i, 3), private,
                                     marker);
                in = html ? json_pack("{s:s, s:I, s:s, s:i, s:s}", "itemtype", "Ticket", "items_id",
                                      (json_int_t)tid, "content", html, "is_private",
                                      private ? 1 : 0, "date", sy_pg_res_get(res, i, 4))
                          : NULL;
                free(html);
                if (!in) {
                    fail(e, SY_RETRY, "out of memory");
                    goto fail;
                }
                rc = glpi_create(e->s, e->http, "ITILFollowup", in, &fid, &r);
                json_decref(in);
                if (rc == GLPI_REJECT) {
                    char why[512];

                    snprintf(why, sizeof why,
                             "GLPI refused the followup of message %s on ticket %lld: %ld %s %s",
                             mid, tid, r.status, r.code, r.msg);
                    glpi_res_clear(&r);
                    if (fenced(e, l, sql_msg_refused, 4,
                               (const char *[]){e->h->id, c->idtxt, mid, why}, NULL) != 0)
                        goto fail;
                    sy_log_warn("glpi.refused", "hook %s, conversation %s: %s", e->h->id, c->idtxt,
                                why);
                    if (e->refused)
                        sy_counter_add(e->refused, 1);
                    if (atoll(mid) == own)
                        snprintf(refused, refused_len, "%s", why);
                    continue;
                }
                if (rc != GLPI_OK) {
                    char what[80];

                    snprintf(what, sizeof what, "followup of message %s", mid);
                    glpi_failed(e, rc, what, &r);
                    glpi_res_clear(&r);
                    goto fail;
                }
                glpi_res_clear(&r);
            }
            snprintf(idtxt, sizeof idtxt, "%lld", fid);
            if (fenced(e, l, sql_msg_done, 4, params, NULL) != 0)
                goto fail;
        }
        sy_pg_res_free(res);
        res = NULL;
    } while (rows == DUE_PAGE);
    return 0;
fail:
    sy_pg_res_free(res);
    return -1;
}

/* --- resolution ----------------------------------------------------------------------------- */

/* Applies a status newer than the one recorded. Returns whether it was newer, the ticket's
 * solved flag before and after, and a resolution followup in flight. */
static const char sql_status[] =
    "WITH o AS (SELECT solved AS was FROM glpi_tickets"
    "   WHERE hook_id = $1 AND conversation_id = $2::bigint FOR UPDATE)"
    " UPDATE glpi_tickets t SET status = $3, status_at = $4::float8,"
    "   solved = CASE WHEN $3 = 'resolved' THEN t.solved ELSE false END, updated_at = now()"
    " FROM o WHERE t.hook_id = $1 AND t.conversation_id = $2::bigint AND t.status_at <= $4::float8"
    " RETURNING o.was, t.solved, COALESCE(t.solve_marker, '')";

static const char sql_solve_intent[] =
    "UPDATE glpi_tickets SET solve_marker = $3, updated_at = now()"
    " WHERE hook_id = $1 AND conversation_id = $2::bigint";

static const char sql_solved[] =
    "UPDATE glpi_tickets SET solved = true, solve_marker = NULL, updated_at = now()"
    " WHERE hook_id = $1 AND conversation_id = $2::bigint";

static int set_ticket_status(struct gl_ev *e, struct sy_lock *l, long long tid, int status)
{
    struct glpi_res r = {.retry_after_s = -1};
    json_t *in = json_pack("{s:i}", "status", status);
    enum glpi_rc rc;

    if (!in)
        return fail(e, SY_RETRY, "out of memory");
    if (lease(e, l) != 0) {
        json_decref(in);
        return -1;
    }
    rc = glpi_update(e->s, e->http, "Ticket", tid, in, &r);
    json_decref(in);
    if (rc != GLPI_OK) {
        int v = glpi_failed(e, rc, "status of the ticket", &r);

        glpi_res_clear(&r);
        return v;
    }
    glpi_res_clear(&r);
    return 0;
}

/* conversation_status_changed: a resolution solves the ticket (with a followup saying so); a
 * reopening of a solved one makes it new again. Older statuses than the one applied are
 * ignored, so a late or repeated delivery changes nothing. */
static int status_apply(struct gl_ev *e, struct sy_lock *l, const struct conv *c, long long tid)
{
    char ts[32], marker[96];
    const char *params[4] = {e->h->id, c->idtxt, c->status, ts};
    struct sy_pg_res *res = NULL;
    bool was, solved;
    long long fid = 0;
    char *pending;

    if (!c->status)
        return 0;
    snprintf(ts, sizeof ts, "%.3f", c->ts);
    if (fenced(e, l, sql_status, 4, params, &res) != 0)
        return -1;
    if (sy_pg_res_rows(res) == 0) {
        sy_pg_res_free(res);
        return 0;
    }
    was = strcmp(sy_pg_res_get(res, 0, 0), "t") == 0;
    solved = strcmp(sy_pg_res_get(res, 0, 1), "t") == 0;
    pending = strdup(sy_pg_res_get(res, 0, 2));
    sy_pg_res_free(res);
    if (!pending)
        return fail(e, SY_RETRY, "out of memory");
    if (strcmp(c->status, "resolved") != 0) {
        free(pending);
        return was ? set_ticket_status(e, l, tid, 1) : 0;
    }
    if (solved) {
        free(pending);
        return 0;
    }
    snprintf(marker, sizeof marker, "(chatwoot conversation %lld resolved at %.0f)", c->id,
             floor(c->ts));
    /* A resolution followup sent before without an answer, for this resolution or an earlier
     * one that a reopening overtook: when it is there, it says the conversation was resolved,
     * and a second one would say it twice. */
    if (*pending && followup_find(e, l, tid, pending, &fid) != 0) {
        free(pending);
        return -1;
    }
    free(pending);
    if (!fid) {
        struct glpi_res r = {.retry_after_s = -1};
        char *html = followup_html("The conversation was resolved in Chatwoot.", "", false, marker);
        json_t *in = html ? json_pack("{s:s, s:I, s:s, s:i}", "itemtype", "Ticket", "items_id",
                                      (json_int_t)tid, "content", html, "is_private", 0)
                          : NULL;
        enum glpi_rc rc;

        free(html);
        if (!in)
            return fail(e, SY_RETRY, "out of memory");
        if (fenced(e, l, sql_solve_intent, 3, (const char *[]){e->h->id, c->idtxt, marker}, NULL) !=
                0 ||
            lease(e, l) != 0) {
            json_decref(in);
            return -1;
        }
        rc = glpi_create(e->s, e->http, "ITILFollowup", in, &fid, &r);
        json_decref(in);
        if (rc != GLPI_OK) {
            int v = glpi_failed(e, rc, "resolution followup", &r);

            glpi_res_clear(&r);
            return v;
        }
        glpi_res_clear(&r);
    }
    if (set_ticket_status(e, l, tid, 5) != 0)
        return -1;
    return fenced(e, l, sql_solved, 2, params, NULL);
}

/* --- events --------------------------------------------------------------------------------- */

/* Everything of one conversation event under the conversation's mutex. */
static int conversation_locked(struct gl_ev *e, const struct conv *c, const json_t *msgs,
                               const char *where, bool status_event, long long own)
{
    char res[RES_MAX], refused[512] = "";
    struct sy_lock *l = NULL;
    long long tid = 0;
    int rc;

    lock_name(res, sizeof res, e, "conv", c->id);
    if (take(e, res, &l) != 0)
        return -1;
    rc = ticket_sync(e, l, c, &tid);
    if (rc == 0 && msgs)
        rc = messages_put(e, l, c, msgs, where);
    if (rc == 0)
        rc = messages_mirror(e, l, c, tid, own, refused, sizeof refused);
    if (rc == 0 && status_event)
        rc = status_apply(e, l, c, tid);
    sy_lock_release(e->redis, l);
    /* Everything else of the event is done: its own message alone could not be mirrored. */
    if (rc == 0 && refused[0])
        return fail(e, SY_REJECT, "%s", refused);
    return rc;
}

int gl_conversation(struct gl_ev *e, const json_t *conversation, bool status_event)
{
    const json_t *msgs = json_object_get(conversation, "messages");
    struct conv c;

    if (conv_of(e, conversation, "payload", &c) != 0)
        return -1;
    if (msgs && !json_is_array(msgs))
        return fail(e, SY_REJECT, "payload.messages: expected an array");
    if (status_event && c.status && c.ts <= 0)
        return fail(e, SY_REJECT, "payload.timestamp: expected the time of the status change");
    return conversation_locked(e, &c, msgs, "payload.messages", status_event, 0);
}

int gl_message(struct gl_ev *e, const json_t *message)
{
    const json_t *conversation = json_object_get(message, "conversation");
    const json_t *sender = json_object_get(message, "sender");
    const char *type = json_string_value(json_object_get(sender, "type"));
    struct conv c;

    if (conv_of(e, conversation, "payload.conversation", &c) != 0)
        return -1;
    /* An incoming message names its contact itself when the conversation did not. */
    if (!c.sender.id && type && strcmp(type, "contact") == 0 &&
        person_of(e, sender, "payload.sender", &c.sender) != 0)
        return -1;
    return conversation_locked(e, &c, message, "payload", false,
                               id_of(json_object_get(message, "id")));
}
