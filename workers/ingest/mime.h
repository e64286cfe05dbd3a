/* mime.h - one raw mail message (RFC 822 and MIME, as IMAP hands it over) taken apart for
 * ingest: who sent it, when, under which subject, its readable text, and every attachment and
 * inline image with its content decoded. Header words and parameters encoded by RFC 2047 or
 * RFC 2231 come back as UTF-8; text and names that are not valid UTF-8 have their bad bytes
 * replaced by U+FFFD, so every string here is UTF-8. Safe to call from several threads at once. */
#ifndef INGEST_MIME_H
#define INGEST_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MAIL_DEPTH_MAX 5  /* attached messages inside attached messages opened, at most */
#define MAIL_NEST_MAX  64 /* multiparts inside multiparts, at most */

struct mail_part {
    char *filename;      /* as the sender named it (not safe as a path), NULL when none */
    char *mime;          /* lower-case type/subtype, e.g. "application/pdf" */
    char *content_id;    /* without its angle brackets, NULL when none: what cid: URLs name */
    unsigned char *data; /* decoded content; never NULL, with a NUL after it that len omits */
    size_t len;
    bool inline_part; /* Content-Disposition inline or none (a body part), vs attachment */
    int depth;        /* 0 in the message itself, 1 inside an attached message, ... */
};

struct mail {
    char *subject, *from, *message_id, *date_iso;
    /* from: the whole From field as read ("Name <addr>"); from_addr: its first address only.
     * message_id: without its angle brackets. date_iso: the Date field in UTC,
     * "2026-12-07T10:00:00Z". Each NULL when the message has none (or an unreadable date). */
    char *from_addr;
    /* The message's readable text: its first text/plain body part, else its first text/html one
     * with tags stripped, in UTF-8 with line ends as "\n"; NULL when it has neither. Text of an
     * attached message is not here: that message is a part of its own. */
    char *text;
    /* In order: attachments, inline parts that are not text/plain or text/html bodies (images),
     * and text files with a name or marked as attachments. An attached message (message/rfc822)
     * is listed with its raw bytes, followed by its own parts at depth + 1 (up to
     * MAIL_DEPTH_MAX; deeper ones are listed without being opened). */
    struct mail_part *parts;
    size_t nparts;
};

/* Takes apart len bytes of a mail message into *out, which the caller frees with mail_clear.
 * 0 on success. On failure *out is left empty (mail_clear is still safe) and err says why:
 * -SY_EINVAL when the bytes are not a mail message (no mail header such as From, Date, Subject
 * or Message-ID before the body); -SY_ETOOBIG when a part (or the text body) decodes to more
 * than max_part bytes, naming the part, when there would be more than max_parts parts, or when
 * multiparts nest deeper than MAIL_NEST_MAX; -SY_ENOMEM. */
int mail_parse(const void *raw, size_t len, size_t max_part, size_t max_parts, struct mail *out,
               char *err, size_t errlen);
/* Frees what mail_parse filled in and empties *m; accepts NULL and an empty mail. */
void mail_clear(struct mail *m);

#endif
