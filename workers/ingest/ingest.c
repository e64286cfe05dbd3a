/* ingest.c - sy-ingest's handler: polls list what is new at a source and publish one
 * ingest.fetch per item; fetches store an item's documents once each and announce them. */
#include "ingest/ingest.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/classify.h"
#include "ingest/connector.h"
#include "ingest/lang.h"
#include "ingest/sources.h"
#include "sy/clock.h"
#include "sy/err.h"
#include "sy/files.h"
#include "sy/json.h"
#include "sy/log.h"
#include "sy/metrics.h"
#include "sy/pg.h"
#include "sy/redis.h"

#define REDIS_TIMEOUT_MS 5000
#define PUBLISH_TIMEOUT  10000
#define READY_EVERY_MS   5000
#define PARTS_MAX        200 /* parts of one mail looked at */
#define ERROR_TEXT_MAX   500

struct in_conf {
    char *sources, *departments, *files;
    long long connect_timeout_ms, timeout_ms, poll_lease_ms, list_time_ms;
};

#define C_(field) offsetof(struct in_conf, field)
static const struct sy_conf_key in_conf_keys[] = {
    {"SY_INGEST_SOURCES", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/ingest.yaml", 0, 0,
     C_(sources), 0, "the sources and limits (mailboxes, ...), read at start"},
    {"SY_INGEST_DEPARTMENTS", SY_CONF_STR, SY_DEFAULT_ROOT "/deploy/config/departments.yaml", 0, 0,
     C_(departments), 0, "the departments' keyword rules, read at start"},
    {"SY_FILES_ROOT", SY_CONF_STR, "/var/lib/switchyard/files", 0, 0, C_(files), 0,
     "the content-addressed file store documents are kept in"},
    {"SY_INGEST_CONNECT_TIMEOUT", SY_CONF_MS, "10s", 100, 120000, C_(connect_timeout_ms), 0,
     "how long connecting to a source may take"},
    {"SY_INGEST_TIMEOUT", SY_CONF_MS, "5m", 1000, 3600000, C_(timeout_ms), 0,
     "how long one call to a source may take in all (a large attachment's download)"},
    {"SY_INGEST_POLL_LEASE", SY_CONF_MS, "60s", 500, 3600000, C_(poll_lease_ms), 0,
     "the lease of a poll's lock on its source, renewed between its requests: another replica "
     "polls the source once a crashed poller's lease ran out"},
    {"SY_INGEST_LIST_TIME", SY_CONF_MS, "2m", 100, 3600000, C_(list_time_ms), 0,
     "how long one poll lists before it hands on what it found (the next poll goes on from "
     "there)"},
    {NULL, SY_CONF_STR, NULL, 0, 0, 0, 0, NULL},
};
#undef C_

struct in {
    struct sy_worker *w;
    const struct in_conf *conf;
    struct sources *src;
    struct classify_rules *rules;
    const char *pg_url, *redis_url;
    struct sy_pg_probe *ready; /* /readyz's own connection and last answer */
    struct sy_counter *listed, *stored, *duplicates, *rejected, *unhandled;
    /* Per source (as src->src): a fetch's error may be on record, to be cleared by the next
     * fetch that works. Set at start (one from a process before may be there) and by each
     * fetch error noted here, so a working fetch costs no statement while none is. */
    atomic_bool *fetch_error;
};

struct in_thread {
    struct in *g;
    struct sy_pg *pg;
    struct sy_redis *redis;
    bool rows_made; /* every configured source has its ingest_sources row */
};

/* A poll's hold on its source's lock while it lists and publishes. */
struct keeper {
    struct in_thread *t;
    struct sy_lock *l;
    int64_t started_ms, renewed_ms;
};

static struct in_env env_of(const struct in *g)
{
    return (struct in_env){.connect_timeout_ms = (long)g->conf->connect_timeout_ms,
                           .timeout_ms = (long)g->conf->timeout_ms};
}

/* A source's error for `syctl ingest status`, cut to ERROR_TEXT_MAX: a poll's (which also
 * says when the poll was), or a fetch's, which starts "fetch " and is cleared by the next
 * fetch that succeeds. */
static void note_error(struct in_thread *t, const char *source, bool polled, const char *why)
{
    char text[ERROR_TEXT_MAX + 1];
    const char *p[2] = {source, text};

    snprintf(text, sizeof text, "%s", why);
    sy_pg_exec(t->pg,
               polled ? "UPDATE ingest_sources SET last_poll_at = now(), last_error = $2,"
                        " updated_at = now() WHERE source = $1"
                      : "UPDATE ingest_sources SET last_error = $2, updated_at = now()"
                        " WHERE source = $1",
               2, p, NULL);
}

/* A fetch of source went through: a fetch's error recorded before is over; a source that is
 * not polled was last heard from now. */
static void note_fetched(struct in_thread *t, const struct in_source *src)
{
    const char *p[1] = {src->source};
    atomic_bool *noted = &t->g->fetch_error[src - t->g->src->src];

    if (src->c->list && !atomic_exchange(noted, false))
        return; /* no fetch error of this process's is on record */
    sy_pg_exec(t->pg,
               src->c->list ? "UPDATE ingest_sources SET last_error = NULL, updated_at = now()"
                              " WHERE source = $1 AND last_error LIKE 'fetch %'"
                            : "UPDATE ingest_sources SET last_ok_at = now(), last_error = CASE"
                              " WHEN last_error LIKE 'fetch %' THEN NULL ELSE last_error END,"
                              " updated_at = now() WHERE source = $1",
               1, p, NULL);
}

/* Renews the lease when a third of it has passed; says when the listing has run its time. */
static int keep_polling(void *ctx)
{
    struct keeper *k = ctx;
    const struct in_conf *conf = k->t->g->conf;
    int64_t now = sy_mono_ms();

    if (now - k->renewed_ms >= conf->poll_lease_ms / 3) {
        if (sy_lock_extend(k->t->redis, k->l, (int)conf->poll_lease_ms) != 0)
            return -SY_ESTALE;
        k->renewed_ms = now;
    }
    return now - k->started_ms >= conf->list_time_ms ? 1 : 0;
}

/* --- polls ---------------------------------------------------------------------------------- */

/* Publishes ingest.fetch for one listed item, waiting for the broker's confirm. */
static int publish_fetch(struct in_thread *t, const char *source, const char *item, int64_t size)
{
    json_t *d = json_pack("{s:s, s:s}", "source", source, "item", item);
    char id[SY_MSG_ID_MAX + 1];
    void *mp = NULL;
    size_t len = 0;
    int rc;

    if (!d)
        return -SY_ENOMEM;
    if (size >= 0) /* when the source said */
        json_object_set_new(d, "size", json_integer(size));
    snprintf(id, sizeof id, "ingest.fetch:%s:%s", source, item);
    rc = sy_json_to_msgpack(d, &mp, &len);
    json_decref(d);
    if (rc == 0)
        rc = sy_worker_publish(t->g->w, "ingest.fetch", id, mp, len, PUBLISH_TIMEOUT, NULL);
    free(mp);
    return rc;
}

/* One source's poll under its lock l: lists what is new after the saved cursor, publishes a
 * fetch for each item, then saves (fenced) the cursor of the last item confirmed, or the
 * listing's own once all were. A failure leaves the cursor where the confirmed publishes put
 * it. */
static int poll_source(struct in_thread *t, const struct in_source *src, struct sy_lock *l,
                       long limit, long long *retry_after_ms, char *err, size_t errlen)
{
    const char *p[1] = {src->source};
    struct in_env env = env_of(t->g);
    struct keeper k = {.t = t, .l = l, .started_ms = sy_mono_ms()};
    struct sy_pg_res *res = NULL;
    struct in_listed *items = NULL;
    json_t *cursor = NULL, *next = NULL;
    const json_t *save;
    size_t n = 0, done = 0;
    int rc, lrc;

    rc = sy_pg_exec(t->pg, "SELECT cursor::text FROM ingest_sources WHERE source = $1", 1, p, &res);
    if (rc != 0) {
        sy_errf(err, errlen, "reading the cursor: %s", sy_pg_error(t->pg));
        return rc;
    }
    cursor = sy_pg_res_rows(res) == 1 ? json_loads(sy_pg_res_get(res, 0, 0), 0, NULL) : NULL;
    sy_pg_res_free(res);
    if (!cursor && !(cursor = json_object()))
        return -SY_ENOMEM;
    k.renewed_ms = k.started_ms;
    env.keep = keep_polling;
    env.ctx = &k;
    lrc = src->c->list(src->conf, &env, cursor, limit, &items, &n, &next, retry_after_ms, err,
                       errlen);
    json_decref(cursor);
    if (lrc != 0 && !next) {
        in_listed_free(items, n);
        return lrc;
    }
    /* A listing cut short by a failure hands on what it took before, then reports it. */
    rc = 0;
    for (; done < n; done++) {
        if (keep_polling(&k) < 0) {
            sy_errf(err, errlen, "the poll's lock was lost");
            rc = -SY_ESTALE;
            break;
        }
        if ((rc = publish_fetch(t, src->source, items[done].item, items[done].size)) != 0) {
            sy_errf(err, errlen, "publishing ingest.fetch %s: %s", items[done].item,
                    sy_strerror(rc));
            break;
        }
    }
    if (rc == 0)
        rc = lrc; /* err still says why */
    /* The cursor moves past what the broker confirmed, and no further. */
    save = done == n ? next : done > 0 ? items[done - 1].cursor : NULL;
    if (save || done > 0 || rc == 0) {
        char *text = save ? json_dumps(save, JSON_COMPACT) : NULL, listed[24];
        const char *q[4] = {src->source, text, listed, rc == 0 ? NULL : err};

        snprintf(listed, sizeof listed, "%zu", done);
        int wrc = sy_pg_exec_fenced(
            t->pg, sy_lock_resource(l), sy_lock_fence(l),
            "UPDATE ingest_sources SET cursor = COALESCE($2::jsonb, cursor),"
            "   listed = listed + $3::bigint, last_poll_at = now(),"
            "   last_ok_at = CASE WHEN $4::text IS NULL THEN now() ELSE last_ok_at END,"
            "   last_error = $4, updated_at = now() WHERE source = $1",
            4, q, NULL);
        free(text);
        if (wrc != 0 && rc == 0) {
            sy_errf(err, errlen, "saving the cursor: %s", sy_pg_error(t->pg));
            rc = wrc;
        }
    }
    sy_counter_add(t->g->listed, (uint64_t)done);
    in_listed_free(items, n);
    json_decref(next);
    return rc;
}

/* ingest.poll.<kind>: every source of the kind that this replica can lock now. */
static enum sy_verdict poll(struct in_thread *t, struct sy_msg *msg, const char *kind)
{
    int64_t limit = 10000;
    long long wait_ms = -1;
    int retry = 0, polled = 0, known = 0;
    char why[600] = "";

    sy_msg_get_int(msg, "limit", &limit);
    for (size_t i = 0; i < t->g->src->n; i++) {
        const struct in_source *src = &t->g->src->src[i];
        struct sy_lock *l = NULL;
        long long ra = -1;
        char res[128], err[512] = "";
        int rc;

        if (strcmp(src->c->kind, kind) != 0)
            continue;
        known++;
        if (!src->c->list)
            continue; /* its items arrive as messages: nothing to list */
        polled++;
        snprintf(res, sizeof res, "ingest:%s", src->source);
        rc = sy_lock_try(t->redis, res, (int)t->g->conf->poll_lease_ms, &l);
        if (rc == -SY_EBUSY)
            continue; /* another replica polls it right now */
        if (rc != 0) {
            /* Connected afresh next time. */
            sy_redis_destroy(t->redis);
            t->redis = NULL;
            return sy_msg_fail(msg, SY_RETRY, "Redis: lock %s: %s", res, sy_strerror(rc));
        }
        rc = poll_source(t, src, l, (long)limit, &ra, err, sizeof err);
        sy_lock_release(t->redis, l);
        if (rc != 0) {
            note_error(t, src->source, true, err);
            sy_log_warn("ingest.poll", "%s: %s", src->source, err);
            /* A login refused or a bad URL waits for an operator, not for a retry. */
            if (rc != -SY_ECONFIG) {
                retry = 1;
                if (ra > wait_ms)
                    wait_ms = ra;
                snprintf(why, sizeof why, "%s: %s", src->source, err);
            }
        }
    }
    if (!known)
        sy_counter_add(t->g->unhandled, 1); /* no source of this kind is configured */
    if (!retry)
        return SY_ACK;
    if (wait_ms > 0)
        sy_msg_retry_after(msg, wait_ms);
    return sy_msg_fail(msg, SY_RETRY, "%s", why);
}

/* --- fetches -------------------------------------------------------------------------------- */

/* What became of one item: recorded once, whoever gets there first; *won (may be NULL) says
 * whether this call was first. */
static int item_put(struct in_thread *t, const char *source, const char *item, const char *status,
                    long long document_id, const char *reason, long long size, bool *won)
{
    char doc[24], sz[24];
    const char *p[6] = {
        source, item, status, document_id > 0 ? doc : NULL, reason, size >= 0 ? sz : NULL};
    struct sy_pg_res *res = NULL;
    int rc;

    snprintf(doc, sizeof doc, "%lld", document_id);
    snprintf(sz, sizeof sz, "%lld", size);
    rc = sy_pg_exec(t->pg,
                    "INSERT INTO document_items (source, source_id, status, document_id, reason,"
                    " size) VALUES ($1, $2, $3, $4::bigint, $5, $6::bigint) ON CONFLICT DO NOTHING"
                    " RETURNING 1",
                    6, p, &res);
    if (won)
        *won = rc == 0 && sy_pg_res_rows(res) == 1;
    sy_pg_res_free(res);
    return rc;
}

/* The item's row, if any: its status into st (empty when none) and its document's id. */
static int item_get(struct in_thread *t, const char *source, const char *item, char st[16],
                    long long *document_id)
{
    const char *p[2] = {source, item};
    struct sy_pg_res *res = NULL;
    int rc = sy_pg_exec(t->pg,
                        "SELECT status, COALESCE(document_id, 0) FROM document_items"
                        " WHERE source = $1 AND source_id = $2",
                        2, p, &res);

    st[0] = '\0';
    *document_id = 0;
    if (rc == 0 && sy_pg_res_rows(res) == 1) {
        snprintf(st, 16, "%s", sy_pg_res_get(res, 0, 0));
        *document_id = atoll(sy_pg_res_get(res, 0, 1));
    }
    sy_pg_res_free(res);
    return rc;
}

static void bump(struct in_thread *t, const char *source, const char *column)
{
    char sql[160];
    const char *p[1] = {source};

    snprintf(sql, sizeof sql,
             "UPDATE ingest_sources SET %s = %s + 1, updated_at = now() WHERE source = $1", column,
             column);
    sy_pg_exec(t->pg, sql, 1, p, NULL);
}

/* Announces a stored document (again, after a retry: the id is the same). */
static int announce(struct in_thread *t, long long id, const char *sha, const char *source,
                    const char *source_id, const struct in_doc *d, const char *lang,
                    const char *dept)
{
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "document_id", (json_int_t)id,
                          "sha256", sha, "source", source, "source_id", source_id, "mime", d->mime,
                          "size", (json_int_t)d->len, "language", lang);
    char mid[SY_MSG_ID_MAX + 1];
    void *mp = NULL;
    size_t len = 0;
    int rc;

    if (!j)
        return -SY_ENOMEM;
    /* Optional fields are left out when unknown, not sent as nil. */
    if (d->filename)
        json_object_set_new(j, "filename", json_string(d->filename));
    if (dept)
        json_object_set_new(j, "department", json_string(dept));
    snprintf(mid, sizeof mid, "document:%s", sha);
    rc = sy_json_to_msgpack(j, &mp, &len);
    json_decref(j);
    if (rc == 0)
        rc = sy_worker_publish(t->g->w, "document.ingested", mid, mp, len, PUBLISH_TIMEOUT, NULL);
    free(mp);
    return rc;
}

/* Stores one document of an item: the bytes in the file store, a documents row unless the
 * same bytes are there already, the part's item row, and the announcement of a new document. */
static int store_doc(struct in_thread *t, struct sy_msg *msg, const char *source,
                     const char *source_id, const struct in_doc *d, const char *lang,
                     const char *dept, json_t *meta, const char *source_time)
{
    char sha[SY_FILES_HEX_LEN + 1], err[256], st[16], size[24], *metatext;
    long long id = 0;
    struct sy_pg_res *res = NULL;
    bool won = false;
    int rc;

    if ((rc = item_get(t, source, source_id, st, &id)) != 0)
        return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg)), -1;
    if (st[0] && strcmp(st, "stored") != 0)
        return 0; /* a duplicate or a rejection: nothing to announce */
    if (!d->data || (long long)d->len > t->g->src->max_bytes ||
        !sources_type_ok(t->g->src, d->mime)) {
        char reason[300];

        if (!d->data || (long long)d->len > t->g->src->max_bytes)
            snprintf(reason, sizeof reason, "%zu bytes, more than the limit of %lld", d->len,
                     t->g->src->max_bytes);
        else
            snprintf(reason, sizeof reason, "type %.200s is not in limits.types", d->mime);
        if (item_put(t, source, source_id, "rejected", 0, reason, (long long)d->len, &won) != 0)
            return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg)), -1;
        if (won) {
            sy_counter_add(t->g->rejected, 1);
            bump(t, source, "rejected");
        }
        return 0;
    }
    if ((rc = sy_files_put(t->g->conf->files, d->data, d->len, sha, err, sizeof err)) != 0)
        return sy_msg_fail(msg, SY_RETRY, "file store: %s", err), -1;
    if (!st[0]) {
        const char *p[10] = {sha,  source, source_id, d->filename, d->mime,
                             size, lang,   dept,      NULL,        source_time};

        snprintf(size, sizeof size, "%zu", d->len);
        if (!(metatext = json_dumps(meta, JSON_COMPACT)))
            return sy_msg_fail(msg, SY_RETRY, "out of memory"), -1;
        p[8] = metatext;
        rc = sy_pg_exec(t->pg,
                        "INSERT INTO documents (sha256, source, source_id, filename, mime, size,"
                        " language, department, metadata, source_time)"
                        " VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8, $9::jsonb,"
                        " $10::timestamptz) ON CONFLICT (sha256) DO NOTHING RETURNING id",
                        10, p, &res);
        free(metatext);
        if (rc != 0)
            return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg)), -1;
        bool fresh = sy_pg_res_rows(res) == 1;

        id = fresh ? atoll(sy_pg_res_get(res, 0, 0)) : 0;
        sy_pg_res_free(res);
        res = NULL;
        if (!fresh) {
            const char *q[1] = {sha};

            if (sy_pg_exec(t->pg, "SELECT id FROM documents WHERE sha256 = $1", 1, q, &res) != 0 ||
                sy_pg_res_rows(res) != 1) {
                sy_pg_res_free(res);
                return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg)), -1;
            }
            id = atoll(sy_pg_res_get(res, 0, 0));
            sy_pg_res_free(res);
        }
        if (item_put(t, source, source_id, fresh ? "stored" : "duplicate", id, NULL,
                     (long long)d->len, &won) != 0)
            return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg)), -1;
        /* Whoever recorded the item first decides what it is, and alone counts it. */
        if (item_get(t, source, source_id, st, &id) != 0)
            return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg)), -1;
        if (won) {
            sy_counter_add(strcmp(st, "stored") == 0 ? t->g->stored : t->g->duplicates, 1);
            bump(t, source, strcmp(st, "stored") == 0 ? "stored" : "duplicates");
        }
        if (strcmp(st, "stored") != 0)
            return 0;
    }
    if ((rc = announce(t, id, sha, source, source_id, d, lang, dept)) != 0)
        return sy_msg_fail(msg, SY_RETRY, "publishing document.ingested: %s", sy_strerror(rc)), -1;
    return 0;
}

static bool text_like(const char *mime)
{
    return strncmp(mime, "text/", 5) == 0 || strcmp(mime, "application/json") == 0 ||
           strcmp(mime, "application/xml") == 0;
}

/* One item of src: fetched once, its documents stored once each. Its row is written last,
 * so a retry after a failure stores and announces what is missing. */
static enum sy_verdict fetch_item(struct in_thread *t, struct sy_msg *msg,
                                  const struct in_source *src, const char *item,
                                  const json_t *hints)
{
    struct in_env env = env_of(t->g);
    struct in_fetched f = {0};
    char st[16], err[512], partid[600];
    long long doc_id, wait_ms = -1;
    enum sy_verdict v = SY_ACK;
    int rc;

    if (strlen(item) > 512)
        return sy_msg_fail(msg, SY_REJECT, "item: more than 512 bytes");
    if (item_get(t, src->source, item, st, &doc_id) != 0)
        return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg));
    if (st[0])
        return SY_ACK; /* fetched before */
    rc = src->c->fetch(src->conf, &env, item, hints, t->g->src->max_bytes, &f, &wait_ms, err,
                       sizeof err);
    if (rc == -SY_EINVAL) {
        in_fetched_clear(&f);
        return sy_msg_fail(msg, SY_REJECT, "%s", err);
    }
    if (rc == -SY_ENOTFOUND) {
        f.rejected = true;
        snprintf(f.reason, sizeof f.reason, "gone from the source: %.250s", err);
    } else if (rc != 0) {
        char why[ERROR_TEXT_MAX + 1];

        in_fetched_clear(&f);
        /* An expired token, a refused download: shown by `syctl ingest status` too. */
        snprintf(why, sizeof why, "fetch %.100s: %.380s", item, err);
        note_error(t, src->source, false, why);
        atomic_store(&t->g->fetch_error[src - t->g->src->src], true);
        if (wait_ms > 0)
            sy_msg_retry_after(msg, wait_ms);
        return sy_msg_fail(msg, SY_RETRY, "%s: %s", src->source, err);
    }
    note_fetched(t, src);
    if (f.rejected) {
        bool won = false;

        rc = item_put(t, src->source, item, "rejected", 0, f.reason, -1, &won);
        in_fetched_clear(&f);
        if (rc != 0)
            return sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg));
        if (won) {
            sy_counter_add(t->g->rejected, 1);
            bump(t, src->source, "rejected");
        }
        return SY_ACK;
    }

    /* The language over all the item's text; the department with the title and the names
     * weighing more than the rest. */
    struct lang_count lc = {0};
    struct classify_score sc;

    classify_begin(&sc, t->g->rules);
    if (f.title) {
        lang_count_add(&lc, f.title, strlen(f.title));
        classify_add(&sc, f.title, strlen(f.title), 3);
    }
    if (f.body) {
        lang_count_add(&lc, f.body, strlen(f.body));
        classify_add(&sc, f.body, strlen(f.body), 1);
    }
    for (size_t i = 0; i < f.ndocs; i++) {
        const struct in_doc *d = &f.docs[i];

        if (d->filename) {
            lang_count_add(&lc, d->filename, strlen(d->filename));
            classify_add(&sc, d->filename, strlen(d->filename), 3);
        }
        if (d->data && text_like(d->mime)) {
            lang_count_add(&lc, (const char *)d->data, d->len);
            classify_add(&sc, (const char *)d->data, d->len, 1);
        }
    }
    const char *lang = lang_name(lang_decide(&lc)), *dept = classify_result(&sc);

    if (!f.meta && !(f.meta = json_object())) {
        in_fetched_clear(&f);
        return sy_msg_fail(msg, SY_RETRY, "out of memory");
    }
    for (size_t i = 0; i < f.ndocs && v == SY_ACK; i++) {
        snprintf(partid, sizeof partid, "%.512s/%zu", item, i + 1);
        if (store_doc(t, msg, src->source, partid, &f.docs[i], lang, dept, f.meta, f.source_time) !=
            0)
            v = sy_msg_verdict(msg);
    }
    if (v == SY_ACK && item_put(t, src->source, item, "expanded", 0, NULL, -1, NULL) != 0)
        v = sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg));
    in_fetched_clear(&f);
    return v;
}

static enum sy_verdict fetch(struct in_thread *t, struct sy_msg *msg)
{
    char source[96], item[600];
    const struct in_source *src;
    json_t *hints;
    enum sy_verdict v;

    if (sy_msg_copy_str(msg, "source", source, sizeof source) != 0 ||
        sy_msg_copy_str(msg, "item", item, sizeof item) != 0)
        return sy_msg_fail(msg, SY_REJECT, "data.source and data.item: required text");
    /* During a rolling change of ingest.yaml another replica may know the source: retried, and
     * dead-lettered (for a replay) once no replica took it in all attempts. */
    if (!(src = sources_find(t->g->src, source)))
        return sy_msg_fail(msg, SY_RETRY, "source: '%.80s' is not configured here", source);
    if (!(hints = sy_msg_data_json(msg)))
        return sy_msg_fail(msg, SY_RETRY, "out of memory");
    v = fetch_item(t, msg, src, item, hints);
    json_decref(hints);
    return v;
}

/* ingest.whatsapp.media: the media a WhatsApp message announced is the item itself, fetched
 * by the WhatsApp source of the business number it was sent to (or, failing one, by the first
 * that takes any number). */
static enum sy_verdict fetch_media(struct in_thread *t, struct sy_msg *msg)
{
    const struct in_source *src = NULL, *any = NULL;
    char media[300], phone[80] = "";
    json_t *hints;
    enum sy_verdict v;
    size_t kind = 0;

    if (sy_msg_copy_str(msg, "media_id", media, sizeof media) != 0)
        return sy_msg_fail(msg, SY_REJECT, "data.media_id: required text");
    if (!(hints = sy_msg_data_json(msg)))
        return sy_msg_fail(msg, SY_RETRY, "out of memory");
    for (size_t i = 0; i < t->g->src->n && !src; i++) {
        const struct in_source *s = &t->g->src->src[i];
        int claim;

        if (strcmp(s->c->kind, "whatsapp") != 0)
            continue;
        kind++;
        claim = s->c->claims ? s->c->claims(s->conf, hints) : 1;
        if (claim == 2)
            src = s;
        else if (claim == 1 && !any)
            any = s;
    }
    if (!src)
        src = any;
    if (!src) {
        sy_msg_copy_str(msg, "phone_number_id", phone, sizeof phone);
        json_decref(hints);
        if (!kind)
            return sy_msg_fail(msg, SY_REJECT,
                               "no WhatsApp source is configured here: kept for a "
                               "replay once one is");
        return sy_msg_fail(msg, SY_REJECT,
                           "phone_number_id: no WhatsApp source here has the number '%.64s': "
                           "kept for a replay once one has",
                           phone);
    }
    v = fetch_item(t, msg, src, media, hints);
    json_decref(hints);
    return v;
}

/* --- the handler ---------------------------------------------------------------------------- */

static int connect_stores(struct in_thread *t, struct sy_msg *msg)
{
    char err[256];

    if (!t->pg && !(t->pg = sy_pg_connect(t->g->pg_url, err, sizeof err))) {
        sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", err);
        return -1;
    }
    if (!t->redis &&
        !(t->redis = sy_redis_connect(t->g->redis_url, REDIS_TIMEOUT_MS, err, sizeof err))) {
        sy_msg_fail(msg, SY_RETRY, "Redis: %s", err);
        return -1;
    }
    return 0;
}

/* A row in ingest_sources for every configured source, polled or not, so `syctl ingest
 * status` shows each from the start. */
static int make_rows(struct in_thread *t, struct sy_msg *msg)
{
    for (size_t i = 0; i < t->g->src->n && !t->rows_made; i++) {
        const char *p[1] = {t->g->src->src[i].source};

        if (sy_pg_exec(t->pg,
                       "INSERT INTO ingest_sources (source) VALUES ($1) ON CONFLICT DO NOTHING", 1,
                       p, NULL) != 0) {
            sy_msg_fail(msg, SY_RETRY, "PostgreSQL: %s", sy_pg_error(t->pg));
            return -1;
        }
    }
    t->rows_made = true;
    return 0;
}

static enum sy_verdict in_handle(void *tstate, struct sy_msg *msg)
{
    struct in_thread *t = tstate;
    const char *type = sy_msg_type(msg);

    if (connect_stores(t, msg) != 0 || make_rows(t, msg) != 0)
        return sy_msg_verdict(msg);
    if (strncmp(type, "ingest.poll.", 12) == 0)
        return poll(t, msg, type + 12);
    if (strcmp(type, "ingest.fetch") == 0)
        return fetch(t, msg);
    if (strcmp(type, "ingest.whatsapp.media") == 0)
        return fetch_media(t, msg);
    return sy_msg_fail(msg, SY_REJECT, "type %s: not one sy-ingest handles", type);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static void in_exit(void *state)
{
    struct in *g = state;

    if (!g)
        return;
    sources_free(g->src);
    free(g->fetch_error);
    classify_free(g->rules);
    sy_pg_probe_free(g->ready);
    free(g);
}

/* sy_ingest_items_total for one outcome. */
static struct sy_counter *outcome(const char *what)
{
    char labels[64];

    snprintf(labels, sizeof labels, "outcome=\"%s\"", what);
    return sy_counter_get("sy_ingest_items_total", "items listed and what became of them", labels);
}

static int in_init(struct sy_worker *w, void **state)
{
    struct in *g = calloc(1, sizeof *g);
    char err[1024];

    if (!g)
        return -SY_ENOMEM;
    g->w = w;
    g->conf = sy_worker_conf(w);
    g->pg_url = sy_worker_url(w, "pg");
    g->redis_url = sy_worker_url(w, "redis");
    if (!g->pg_url || !g->redis_url) {
        sy_log_error("worker.config", "SY_PG_URL and SY_REDIS_URL: required (documents and "
                                      "cursors live in PostgreSQL, the pollers' locks in Redis)");
        in_exit(g);
        return -SY_ECONFIG;
    }
    if (!(g->ready = sy_pg_probe_new(g->pg_url, READY_EVERY_MS))) {
        in_exit(g);
        return -SY_ENOMEM;
    }
    if (!(g->src = sources_load(g->conf->sources, err, sizeof err))) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_INGEST_SOURCES: refused");
        in_exit(g);
        return -SY_ECONFIG;
    }
    if (!(g->fetch_error = calloc(g->src->n ? g->src->n : 1, sizeof *g->fetch_error))) {
        in_exit(g);
        return -SY_ENOMEM;
    }
    for (size_t i = 0; i < g->src->n; i++)
        atomic_init(&g->fetch_error[i], true);
    if (!(g->rules = classify_load(g->conf->departments, err, sizeof err))) {
        sy_log_write(SY_LOG_ERROR, "worker.config", -1, err, "SY_INGEST_DEPARTMENTS: refused");
        in_exit(g);
        return -SY_ECONFIG;
    }
    g->listed = outcome("listed");
    g->stored = outcome("stored");
    g->duplicates = outcome("duplicate");
    g->rejected = outcome("rejected");
    g->unhandled = outcome("unconfigured_poll");
    sy_log_info("ingest.start", "%zu source(s), %zu department(s), documents up to %lld bytes",
                g->src->n, classify_departments(g->rules), g->src->max_bytes);
    *state = g;
    return 0;
}

static int in_thread_init(void *state, void **tstate)
{
    struct in_thread *t = calloc(1, sizeof *t);

    if (!t)
        return -SY_ENOMEM;
    t->g = state;
    *tstate = t;
    return 0;
}

static void in_thread_exit(void *state, void *tstate)
{
    struct in_thread *t = tstate;

    (void)state;
    sy_pg_destroy(t->pg);
    sy_redis_destroy(t->redis);
    free(t);
}

/* Ready while PostgreSQL answers: documents and cursors are there. A source being away only
 * delays its documents. */
static int in_ready(void *state)
{
    return sy_pg_probe_check(((struct in *)state)->ready);
}

const struct sy_handler ingest_handler = {
    .name = "ingest",
    .conf = in_conf_keys,
    .conf_size = sizeof(struct in_conf),
    .init = in_init,
    .thread_init = in_thread_init,
    .thread_exit = in_thread_exit,
    .handle = in_handle,
    .ready = in_ready,
    .exit = in_exit,
};
