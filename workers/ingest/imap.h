/* imap.h - the few IMAP calls sy-ingest makes, over libcurl: a mailbox's UIDVALIDITY and UIDNEXT,
 * the UIDs after the last one seen, a message's size, and a message whole. A thread's calls
 * share its connection to a server (one login, not one per call); each call is bounded in time
 * and in bytes. */
#ifndef INGEST_IMAP_H
#define INGEST_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_URL_MAX    1024
#define IMAP_REPLY_MAX  (4u * 1024u * 1024u) /* a SEARCH answer: ~ 400k UIDs */
#define IMAP_WINDOW_MAX 200000               /* UIDs one SEARCH asks about: within that */

struct imap_conf {
    const char *url; /* imaps://host[:port]/MAILBOX (imap:// only with allow_plain) */
    const char *user, *password;
    long connect_timeout_ms, timeout_ms;
    bool allow_plain;
};

struct imap_status {
    uint64_t uidvalidity, uidnext, messages;
};

/* Errors: -SY_ECONFIG (a URL this cannot use, or the server refused the login: not worth a
 * quick retry), -SY_ECONN / -SY_ETIMEOUT (try later), -SY_EPROTO (an answer this does not
 * understand), -SY_ENOTFOUND (no such message, or UIDVALIDITY changed), -SY_ETOOBIG; err says
 * what, never with the password. */
int imap_status(const struct imap_conf *c, struct imap_status *st, char *err, size_t errlen);
/* The UIDs from lo to hi (hi - lo < IMAP_WINDOW_MAX, so the answer stays bounded), ascending,
 * at most max of them (the lowest), appended to *uids (malloc'd, *n of them, *cap room). */
int imap_search_range(const struct imap_conf *c, uint64_t lo, uint64_t hi, size_t max,
                      uint64_t **uids, size_t *n, size_t *cap, char *err, size_t errlen);
/* RFC822.SIZE of one message, before fetching it. */
int imap_size(const struct imap_conf *c, uint64_t uid, uint64_t *size, char *err, size_t errlen);
/* The message's raw bytes (at most max), only while the mailbox's UIDVALIDITY is still
 * uidvalidity. *data malloc'd. */
int imap_fetch(const struct imap_conf *c, uint64_t uidvalidity, uint64_t uid, size_t max,
               void **data, size_t *len, char *err, size_t errlen);

#endif
