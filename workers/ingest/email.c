/* email.c - the IMAP mailbox connector of sy-ingest (see connector.h): a mailbox's new messages
 * by UID under its UIDVALIDITY, and a message's attachments (or, without any, its text). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/connector.h"
#include "ingest/imap.h"
#include "ingest/mime.h"
#include "ingest/settings.h"
#include "sy/doc.h"
#include "sy/err.h"
#include "sy/log.h"

#define PARTS_MAX 200 /* parts of one message looked at */

struct email_conf {
    char *url, *user, *password;
    bool allow_plain;
    long batch, window;
};

static void email_unconfigure(void *conf)
{
    struct email_conf *c = conf;

    if (!c)
        return;
    free(c->url);
    free(c->user);
    setting_secret_free(c->password);
    free(c);
}

static int email_configure(const struct sy_doc *doc, const struct sy_node *m, const char *key,
                           const char *dir, void **conf, char *err, size_t errlen)
{
    static const char *const keys[] = {"url",         "user",  "password_env",  "password_file",
                                       "allow_plain", "batch", "search_window", NULL};
    struct email_conf *c = calloc(1, sizeof *c);
    long long batch = 200, window = 10000;
    char why[256];
    int rc;

    *conf = NULL;
    if (!c)
        return -SY_ENOMEM;
    if ((rc = sy_node_check_keys(doc, m, keys, err, errlen)) != 0 ||
        (rc = setting_text(doc, m, key, "url", true, &c->url, err, errlen)) != 0 ||
        (rc = setting_text(doc, m, key, "user", true, &c->user, err, errlen)) != 0 ||
        (rc = setting_secret(doc, m, dir, key, "password", &c->password, err, errlen)) != 0 ||
        (rc = setting_bool(doc, m, key, "allow_plain", &c->allow_plain, err, errlen)) != 0)
        goto fail;
    if (sy_node_get(m, "batch") &&
        sy_node_int(sy_node_get(m, "batch"), 1, 10000, &batch, why, sizeof why) != 0) {
        sy_errf(err, errlen, "%s: %s.%s", sy_doc_name(doc), key, why);
        rc = -SY_ECONFIG;
        goto fail;
    }
    if (sy_node_get(m, "search_window") &&
        sy_node_int(sy_node_get(m, "search_window"), 1, IMAP_WINDOW_MAX, &window, why,
                    sizeof why) != 0) {
        sy_errf(err, errlen, "%s: %s.%s", sy_doc_name(doc), key, why);
        rc = -SY_ECONFIG;
        goto fail;
    }
    c->batch = (long)batch;
    c->window = (long)window;
    *conf = c;
    return 0;
fail:
    email_unconfigure(c);
    return rc;
}

static struct imap_conf imap_of(const struct email_conf *c, const struct in_env *env)
{
    return (struct imap_conf){.url = c->url,
                              .user = c->user,
                              .password = c->password,
                              .connect_timeout_ms = env->connect_timeout_ms,
                              .timeout_ms = env->timeout_ms,
                              .allow_plain = c->allow_plain};
}

static json_t *cursor_of(uint64_t uidvalidity, uint64_t uid)
{
    return json_pack("{s:I, s:I}", "uidvalidity", (json_int_t)uidvalidity, "uid", (json_int_t)uid);
}

static uint64_t number(const json_t *cursor, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(cursor, key));

    return v > 0 ? (uint64_t)v : 0;
}

/* Items "<uidvalidity>/<uid>": a UID names a message only under its UIDVALIDITY. The UIDs
 * after the cursor are searched for window by window (search_window UIDs each) up to the
 * UIDNEXT of the listing's start, so no answer grows with the mailbox; a window found empty
 * moves the cursor past it all the same, since a new message only ever gets a UID at or above
 * UIDNEXT. */
static int email_list(void *conf, const struct in_env *env, const json_t *cursor, long limit,
                      struct in_listed **items, size_t *n, json_t **next, long long *retry_after_ms,
                      char *err, size_t errlen)
{
    struct email_conf *c = conf;
    struct imap_conf ic = imap_of(c, env);
    uint64_t uidvalidity = number(cursor, "uidvalidity"), after = number(cursor, "uid");
    uint64_t *uids = NULL, scanned;
    size_t found = 0, cap = 0, max = (size_t)(limit < c->batch ? limit : c->batch);
    struct imap_status st;
    int rc, keep;

    *items = NULL;
    *n = 0;
    *next = NULL;
    *retry_after_ms = -1;
    if ((rc = imap_status(&ic, &st, err, errlen)) != 0)
        return rc;
    if (st.uidvalidity != uidvalidity) {
        /* Every UID saved is void under a new UIDVALIDITY: the mailbox is listed again, and
         * what was stored before is found by its bytes. */
        if (uidvalidity)
            sy_log_warn("ingest.uidvalidity",
                        "%s: UIDVALIDITY changed from %" PRIu64 " to %" PRIu64
                        ": listing the mailbox again",
                        c->url, uidvalidity, st.uidvalidity);
        after = 0;
    }
    if (max < 1)
        max = 1;
    scanned = after; /* every UID up to it was looked at */
    while (found < max && scanned + 1 < st.uidnext) {
        uint64_t lo = scanned + 1, hi = st.uidnext - 1;

        if (hi - lo >= (uint64_t)c->window)
            hi = lo + (uint64_t)c->window - 1;
        if ((rc = imap_search_range(&ic, lo, hi, max - found, &uids, &found, &cap, err, errlen)) !=
            0) {
            free(uids);
            return rc;
        }
        scanned = hi;
        if (found >= max || scanned + 1 >= st.uidnext)
            break;
        /* A mailbox far ahead of its cursor: the poll's lock kept, and the listing handed on
         * once it ran its time. */
        if ((keep = in_keep(env, err, errlen)) < 0) {
            free(uids);
            return -SY_ESTALE;
        }
        if (keep > 0)
            break;
    }
    if (found && !(*items = calloc(found, sizeof **items))) {
        free(uids);
        return -SY_ENOMEM;
    }
    for (size_t i = 0; i < found; i++) {
        char item[48];

        snprintf(item, sizeof item, "%" PRIu64 "/%" PRIu64, st.uidvalidity, uids[i]);
        (*items)[i].size = -1;
        if (!((*items)[i].item = strdup(item)) ||
            !((*items)[i].cursor = cursor_of(st.uidvalidity, uids[i]))) {
            in_listed_free(*items, i + 1);
            *items = NULL;
            free(uids);
            return -SY_ENOMEM;
        }
        *n = i + 1;
    }
    /* Cut at max: the last one handed on; else all that was looked at. */
    *next = cursor_of(st.uidvalidity, found >= max ? uids[found - 1] : scanned);
    free(uids);
    return *next ? 0 : -SY_ENOMEM;
}

static int email_fetch(void *conf, const struct in_env *env, const char *item, const json_t *hints,
                       long long max_bytes, struct in_fetched *out, long long *retry_after_ms,
                       char *err, size_t errlen)
{
    struct email_conf *c = conf;
    struct imap_conf ic = imap_of(c, env);
    uint64_t uidvalidity, uid, size = 0;
    void *raw = NULL;
    size_t len = 0;
    struct mail m = {0};
    int rc;

    (void)hints;
    *retry_after_ms = -1;
    if (sscanf(item, "%" SCNu64 "/%" SCNu64, &uidvalidity, &uid) != 2 || !uidvalidity || !uid) {
        sy_errf(err, errlen, "item: expected <uidvalidity>/<uid>, got '%.80s'", item);
        return -SY_EINVAL;
    }
    /* A message over the limit is refused before it is downloaded. */
    if ((rc = imap_size(&ic, uid, &size, err, errlen)) != 0)
        return rc;
    if ((long long)size > max_bytes) {
        out->rejected = true;
        snprintf(out->reason, sizeof out->reason, "%" PRIu64 " bytes, more than the limit of %lld",
                 size, max_bytes);
        return 0;
    }
    /* Under the listed UIDVALIDITY only: a UID of an older mailbox names no message of the new
     * one (-SY_ENOTFOUND, and the next poll lists the mailbox again). */
    if ((rc = imap_fetch(&ic, uidvalidity, uid, (size_t)max_bytes, &raw, &len, err, errlen)) != 0)
        return rc;
    rc = mail_parse(raw, len, (size_t)max_bytes, PARTS_MAX, &m, out->reason, sizeof out->reason);
    free(raw);
    if (rc != 0) {
        out->rejected = true;
        mail_clear(&m);
        return rc == -SY_ENOMEM ? rc : 0;
    }
    out->meta = json_pack("{s:s?, s:s?, s:s?, s:s}", "subject", m.subject, "from", m.from,
                          "message_id", m.message_id, "mailbox", c->url);
    out->title = m.subject ? strdup(m.subject) : NULL;
    out->body = m.text ? strdup(m.text) : NULL;
    out->source_time = m.date_iso ? strdup(m.date_iso) : NULL;
    rc = out->meta ? 0 : -SY_ENOMEM;
    /* Each attachment is a document; a message without any is one itself, as its text. */
    for (size_t i = 0; rc == 0 && i < m.nparts; i++) {
        rc = in_fetched_add(out, m.parts[i].filename, m.parts[i].mime, m.parts[i].data,
                            m.parts[i].len);
        if (rc == 0)
            m.parts[i].data = NULL; /* taken over */
    }
    if (rc == 0 && m.nparts == 0 && m.text && *m.text) {
        rc = in_fetched_add(out, "message.txt", "text/plain", (unsigned char *)m.text,
                            strlen(m.text));
        if (rc == 0)
            m.text = NULL;
    }
    mail_clear(&m);
    return rc;
}

const struct connector connector_email = {
    .kind = "email",
    .configure = email_configure,
    .unconfigure = email_unconfigure,
    .list = email_list,
    .fetch = email_fetch,
};
