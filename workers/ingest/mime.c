/* mime.c - one mail message taken apart with GMime (see mime.h). */
#include "ingest/mime.h"

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "sy/err.h"

#define READ_CHUNK 65536

/* g_mime_init fills GMime's type registry and charset tables, which are only read afterwards,
 * but it counts its callers without a lock: it runs once for the whole process. (It also seeds
 * rand() and calls tzset().) */
static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init();
}

/* What a walk over one mail's MIME tree carries along. */
struct walk {
    struct mail *out;
    size_t cap; /* slots allocated in out->parts */
    size_t max_part, max_parts;
    GMimeParserOptions *opts;
    GMimePart *plain, *html; /* the message's first text bodies, borrowed from its tree */
    char *err;
    size_t errlen;
};

void mail_clear(struct mail *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nparts; i++) {
        free(m->parts[i].filename);
        free(m->parts[i].mime);
        free(m->parts[i].content_id);
        free(m->parts[i].data);
    }
    free(m->parts);
    free(m->subject);
    free(m->from);
    free(m->from_addr);
    free(m->message_id);
    free(m->date_iso);
    free(m->text);
    memset(m, 0, sizeof *m);
}

/* A malloc'd copy of s in *dst (NULL for NULL), bytes that are not UTF-8 replaced by U+FFFD:
 * GMime passes on undeclared 8-bit header bytes it could not place in a charset as they are. */
static int copy_utf8(char **dst, const char *s)
{
    char *fixed = NULL;

    *dst = NULL;
    if (!s)
        return 0;
    if (!g_utf8_validate(s, -1, NULL))
        s = fixed = g_utf8_make_valid(s, -1);
    *dst = strdup(s);
    g_free(fixed);
    return *dst ? 0 : -SY_ENOMEM;
}

/* Reads s to its end into a malloc'd buffer with a NUL after the data. -SY_ETOOBIG as soon as
 * more than max bytes come: the buffer grows to 4 KiB or max + 2 bytes, whichever is more. */
static int read_all(GMimeStream *s, size_t max, unsigned char **data, size_t *len)
{
    size_t n = 0, cap = 4096, limit = max < SIZE_MAX - 2 ? max + 2 : SIZE_MAX;
    unsigned char *buf = malloc(cap), *bigger;
    int rc = 0;

    if (!buf)
        return -SY_ENOMEM;
    /* A filter stream may hand back nothing for a chunk it consumed (base64 made of line
     * breaks): the end is what eos says, not an empty read. */
    while (!g_mime_stream_eos(s)) {
        size_t room;
        ssize_t got;

        if (n + 1 == cap) {
            size_t ncap = cap > limit / 2 ? limit : cap * 2;

            if (!(bigger = realloc(buf, ncap))) {
                rc = -SY_ENOMEM;
                goto out;
            }
            buf = bigger;
            cap = ncap;
        }
        room = cap - n - 1 < READ_CHUNK ? cap - n - 1 : READ_CHUNK;
        if ((got = g_mime_stream_read(s, (char *)buf + n, room)) < 0) {
            rc = -SY_EDECODE;
            goto out;
        }
        n += (size_t)got;
        if (n > max) {
            rc = -SY_ETOOBIG;
            goto out;
        }
    }
    buf[n] = '\0';
out:
    if (rc != 0) {
        free(buf);
        buf = NULL;
        n = 0;
    }
    *data = buf;
    *len = n;
    return rc;
}

/* A leaf part's content with its transfer encoding (base64, quoted-printable, uuencode) undone. */
static int part_content(GMimePart *part, size_t max, unsigned char **data, size_t *len)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    GMimeStream *src, *decoded;
    GMimeFilter *filter;
    int rc;

    if (!content || !(src = g_mime_data_wrapper_get_stream(content))) {
        *len = 0;
        return (*data = calloc(1, 1)) ? 0 : -SY_ENOMEM;
    }
    g_mime_stream_reset(src);
    decoded = g_mime_stream_filter_new(src);
    switch (g_mime_data_wrapper_get_encoding(content)) {
    case GMIME_CONTENT_ENCODING_BASE64:
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
    case GMIME_CONTENT_ENCODING_UUENCODE:
        filter = g_mime_filter_basic_new(g_mime_data_wrapper_get_encoding(content), FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(decoded), filter);
        g_object_unref(filter);
        break;
    default:
        break;
    }
    rc = read_all(decoded, max, data, len);
    g_object_unref(decoded);
    g_mime_stream_reset(src);
    return rc;
}

/* An attached message's bytes as GMime writes it back, measured first so that one too big is
 * refused before it is copied. */
static int message_bytes(GMimeMessage *msg, size_t max, unsigned char **data, size_t *len)
{
    GMimeStream *count, *mem;
    ssize_t n;
    int rc;

    if (!msg) {
        *len = 0;
        return (*data = calloc(1, 1)) ? 0 : -SY_ENOMEM;
    }
    count = g_mime_stream_null_new();
    n = g_mime_object_write_to_stream(GMIME_OBJECT(msg), NULL, count);
    g_object_unref(count);
    if (n < 0)
        return -SY_EDECODE;
    if ((size_t)n > max)
        return -SY_ETOOBIG;
    mem = g_mime_stream_mem_new();
    if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), NULL, mem) < 0) {
        g_object_unref(mem);
        return -SY_EDECODE;
    }
    g_mime_stream_reset(mem);
    rc = read_all(mem, max, data, len);
    g_object_unref(mem);
    return rc;
}

/* The object's lower-case type/subtype, g_malloc'd; text/plain when it declares none. */
static char *mime_of(GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    char *lower = g_ascii_strdown(type ? type : "text/plain", -1);

    g_free(type);
    return lower;
}

/* GMime before 3.2.14 (Debian bookworm has 3.2.13) decodes a run of base64 encoded-words in one
 * charset as a single stream that ends at the first padding, so "=?UTF-8?B?4LSq...IA==?=
 * =?UTF-8?B?4LSx...?=" keeps only its first word (GMime issue 133), and a long Malayalam subject
 * always comes as such a run. Each base64 word is rewritten here as the same bytes in a
 * quoted-printable word, which GMime joins and decodes right. g_malloc'd. */
static char *b_words_as_q(const char *s)
{
    GString *out = g_string_sized_new(strlen(s) + 1);
    const char *p = s, *w;

    while ((w = strstr(p, "=?"))) {
        const char *cs = w + 2, *q = cs, *payload, *end;
        unsigned char *bytes;
        char *b64;
        gsize n;

        while (*q && *q != '?' && !g_ascii_isspace(*q))
            q++;
        if (*q != '?' || q == cs || (q[1] != 'B' && q[1] != 'b') || q[2] != '?') {
            g_string_append_len(out, p, w + 2 - p);
            p = w + 2;
            continue;
        }
        payload = end = q + 3;
        while (g_ascii_isalnum(*end) || *end == '+' || *end == '/' || *end == '=')
            end++;
        if (end[0] != '?' || end[1] != '=') {
            g_string_append_len(out, p, w + 2 - p);
            p = w + 2;
            continue;
        }
        g_string_append_len(out, p, w - p);
        g_string_append(out, "=?");
        g_string_append_len(out, cs, q - cs);
        g_string_append(out, "?Q?");
        b64 = g_strndup(payload, (gsize)(end - payload));
        bytes = g_base64_decode(b64, &n);
        for (gsize i = 0; i < n; i++) {
            if (g_ascii_isalnum(bytes[i]))
                g_string_append_c(out, (char)bytes[i]);
            else
                g_string_append_printf(out, "=%02X", bytes[i]);
        }
        g_free(bytes);
        g_free(b64);
        g_string_append(out, "?=");
        p = end + 2;
    }
    g_string_append(out, p);
    return g_string_free(out, FALSE);
}

/* The first header called name, unfolded and with its base64 words rewritten (see
 * b_words_as_q), for GMime to decode again; g_malloc'd, NULL when obj has none. */
static char *raw_header(GMimeObject *obj, const char *name)
{
    GMimeHeaderList *list = g_mime_object_get_header_list(obj);
    GMimeHeader *h = list ? g_mime_header_list_get_header(list, name) : NULL;
    const char *raw = h ? g_mime_header_get_raw_value(h) : NULL;
    char *unfolded, *fixed;

    if (!raw)
        return NULL;
    unfolded = g_mime_utils_header_unfold(raw);
    fixed = b_words_as_q(unfolded);
    g_free(unfolded);
    return fixed;
}

/* Content-Disposition's filename, else Content-Type's older name parameter; g_malloc'd. */
static char *filename_of(GMimeObject *obj, GMimeParserOptions *opts)
{
    char *raw = raw_header(obj, "Content-Disposition"), *name = NULL;

    if (raw) {
        GMimeContentDisposition *cd = g_mime_content_disposition_parse(opts, raw);

        name = g_strdup(g_mime_content_disposition_get_parameter(cd, "filename"));
        g_object_unref(cd);
        g_free(raw);
    }
    if (!name && (raw = raw_header(obj, "Content-Type"))) {
        GMimeContentType *ct = g_mime_content_type_parse(opts, raw);

        name = g_strdup(g_mime_content_type_get_parameter(ct, "name"));
        g_object_unref(ct);
        g_free(raw);
    }
    return name;
}

/* Unknown dispositions count as attachment, as RFC 2183 asks. */
static bool is_inline(GMimeObject *obj)
{
    GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
    const char *d = cd ? g_mime_content_disposition_get_disposition(cd) : NULL;

    return !d || g_ascii_strcasecmp(d, "inline") == 0;
}

/* A new slot at the end of out->parts with the object's names and disposition filled in. */
static int add_part(struct walk *w, GMimeObject *obj, const char *mime, const char *filename,
                    int depth, struct mail_part **slot)
{
    struct mail *m = w->out;
    struct mail_part *p;
    int rc;

    if (m->nparts >= w->max_parts) {
        sy_errf(w->err, w->errlen, "more than %zu parts", w->max_parts);
        return -SY_ETOOBIG;
    }
    if (m->nparts == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;

        if (cap > w->max_parts)
            cap = w->max_parts;
        if (!(p = realloc(m->parts, cap * sizeof *p)))
            return -SY_ENOMEM;
        m->parts = p;
        w->cap = cap;
    }
    p = &m->parts[m->nparts++];
    memset(p, 0, sizeof *p);
    p->depth = depth;
    p->inline_part = is_inline(obj);
    if ((rc = copy_utf8(&p->filename, filename)) != 0 || (rc = copy_utf8(&p->mime, mime)) != 0 ||
        (rc = copy_utf8(&p->content_id, g_mime_object_get_content_id(obj))) != 0)
        return rc;
    *slot = p;
    return 0;
}

/* Fills err for a part whose content could not be had. */
static int part_failed(struct walk *w, const struct mail_part *p, int rc)
{
    const char *name = p->filename ? p->filename : "no name";

    if (rc == -SY_ETOOBIG)
        sy_errf(w->err, w->errlen, "part %zu (%s, %s) decodes to more than %zu bytes",
                w->out->nparts, name, p->mime, w->max_part);
    else if (rc == -SY_EDECODE)
        sy_errf(w->err, w->errlen, "part %zu (%s, %s) could not be read", w->out->nparts, name,
                p->mime);
    return rc;
}

static int walk(struct walk *w, GMimeObject *obj, int depth, int nest);

static int walk_message(struct walk *w, GMimeMessage *msg, int depth, int nest)
{
    GMimeObject *top = msg ? g_mime_message_get_mime_part(msg) : NULL;

    return top ? walk(w, top, depth, nest + 1) : 0;
}

/* A message attached base64 or quoted-printable encoded reaches us as a plain part: its decoded
 * bytes are parsed as a message of their own. */
static int walk_encoded_message(struct walk *w, const unsigned char *data, size_t len, int depth,
                                int nest)
{
    GMimeStream *s = g_mime_stream_mem_new_with_buffer((const char *)data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(s);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, w->opts);
    int rc = msg ? walk_message(w, msg, depth, nest) : 0;

    if (msg)
        g_object_unref(msg);
    g_object_unref(parser);
    g_object_unref(s);
    return rc;
}

static int walk_leaf(struct walk *w, GMimePart *part, int depth, int nest)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    char *mime = mime_of(obj), *filename = filename_of(obj, w->opts);
    bool plain = strcmp(mime, "text/plain") == 0, html = strcmp(mime, "text/html") == 0;
    struct mail_part *p = NULL;
    int rc = 0;

    if ((plain || html) && is_inline(obj) && !filename) {
        /* A body: the message's own first one of each kind is read once the walk is over; an
         * attached message's are in its bytes. */
        if (depth == 0 && plain && !w->plain)
            w->plain = part;
        if (depth == 0 && html && !w->html)
            w->html = part;
        goto out;
    }
    if ((rc = add_part(w, obj, mime, filename, depth, &p)) != 0)
        goto out;
    if ((rc = part_content(part, w->max_part, &p->data, &p->len)) != 0)
        rc = part_failed(w, p, rc);
    else if (strcmp(p->mime, "message/rfc822") == 0 && depth < MAIL_DEPTH_MAX)
        rc = walk_encoded_message(w, p->data, p->len, depth + 1, nest);
out:
    g_free(mime);
    g_free(filename);
    return rc;
}

static int walk_attached_message(struct walk *w, GMimeMessagePart *mp, int depth, int nest)
{
    GMimeObject *obj = GMIME_OBJECT(mp);
    GMimeMessage *msg = g_mime_message_part_get_message(mp);
    char *mime = mime_of(obj), *filename = filename_of(obj, w->opts);
    struct mail_part *p = NULL;
    int rc = add_part(w, obj, mime, filename, depth, &p);

    g_free(mime);
    g_free(filename);
    if (rc != 0)
        return rc;
    if ((rc = message_bytes(msg, w->max_part, &p->data, &p->len)) != 0)
        return part_failed(w, p, rc);
    return depth < MAIL_DEPTH_MAX ? walk_message(w, msg, depth + 1, nest) : 0;
}

/* Lists obj's parts in order; depth counts attached messages, nest every level. */
static int walk(struct walk *w, GMimeObject *obj, int depth, int nest)
{
    int rc = 0;

    if (nest > MAIL_NEST_MAX) {
        sy_errf(w->err, w->errlen, "MIME parts nested deeper than %d", MAIL_NEST_MAX);
        return -SY_ETOOBIG;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);

        for (int i = 0; i < n && rc == 0; i++)
            rc = walk(w, g_mime_multipart_get_part(mp, i), depth, nest + 1);
        return rc;
    }
    if (GMIME_IS_MESSAGE_PART(obj))
        return walk_attached_message(w, GMIME_MESSAGE_PART(obj), depth, nest);
    if (GMIME_IS_PART(obj))
        return walk_leaf(w, GMIME_PART(obj), depth, nest);
    return 0;
}

/* Room for `need` more bytes at *o in buf (cap bytes), which grows and moves when short. */
static int ensure_room(char **buf, size_t *cap, char **o, size_t need)
{
    size_t used = (size_t)(*o - *buf), ncap = *cap;
    char *bigger;

    if (*cap - used >= need)
        return 0;
    while (ncap - used < need)
        ncap *= 2;
    if (!(bigger = realloc(*buf, ncap)))
        return -SY_ENOMEM;
    *buf = bigger;
    *o = bigger + used;
    *cap = ncap;
    return 0;
}

/* n bytes of text in charset to UTF-8 through iconv, each byte the charset does not have
 * becoming U+FFFD. */
static int iconv_utf8(iconv_t cd, const unsigned char *s, size_t n, char **out, size_t *outlen)
{
    size_t cap = 3 * n + 16, inleft = n, outleft;
    char *buf = malloc(cap), *o = buf, *in = (char *)s;
    int rc = 0;

    if (!buf)
        return -SY_ENOMEM;
    for (;;) {
        outleft = cap - (size_t)(o - buf) - 1; /* one byte kept for the NUL */
        if (inleft == 0) {
            /* A stateful charset (ISO-2022-JP) may have a shift back to write. */
            if (iconv(cd, NULL, NULL, &o, &outleft) != (size_t)-1 || errno != E2BIG)
                break;
            if ((rc = ensure_room(&buf, &cap, &o, 64)) != 0)
                goto out;
            continue;
        }
        if (iconv(cd, &in, &inleft, &o, &outleft) != (size_t)-1)
            continue;
        if (errno == E2BIG) {
            if ((rc = ensure_room(&buf, &cap, &o, inleft * 3 + 16)) != 0)
                goto out;
            continue;
        }
        /* EILSEQ: a byte the charset does not have; EINVAL: a sequence cut off at the end. */
        if ((rc = ensure_room(&buf, &cap, &o, 4)) != 0)
            goto out;
        memcpy(o, "\xEF\xBF\xBD", 3);
        o += 3;
        in++;
        inleft--;
    }
    *o = '\0';
    *outlen = (size_t)(o - buf);
out:
    if (rc != 0) {
        free(buf);
        buf = NULL;
    }
    *out = buf;
    return rc;
}

/* n bytes of text declared in charset (NULL when undeclared) as malloc'd UTF-8 with a NUL.
 * Undeclared and "us-ascii" text is often 8-bit all the same: GMime then picks the first of the
 * fallback charsets (UTF-8, Windows-1252, ISO-8859-1) the bytes fit. */
static int to_utf8(unsigned char *s, size_t n, const char *charset, GMimeParserOptions *opts,
                   char **out, size_t *outlen)
{
    iconv_t cd = (iconv_t)-1;
    char *guessed;
    size_t k = 0;
    int rc;

    if (charset && g_ascii_strcasecmp(charset, "us-ascii") != 0)
        cd = g_mime_iconv_open("UTF-8", charset);
    if (cd != (iconv_t)-1) {
        rc = iconv_utf8(cd, s, n, out, outlen);
        g_mime_iconv_close(cd);
        return rc;
    }
    /* GMime's guess works on a C string: a NUL, which no 8-bit text holds, would cut it. */
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\0')
            s[k++] = s[i];
    guessed = g_mime_utils_decode_8bit(opts, (const char *)s, k);
    rc = copy_utf8(out, guessed);
    g_free(guessed);
    *outlen = *out ? strlen(*out) : 0;
    return rc;
}

/* Output of html_text: bytes go in while there is room (the text never outgrows the HTML);
 * a run of white space becomes one space, written only when more text follows on the line. */
struct text_out {
    char *b;
    size_t n, cap;
    bool space;
};

static void out_byte(struct text_out *o, char c)
{
    if (o->space && o->n > 0 && o->b[o->n - 1] != '\n' && o->n < o->cap)
        o->b[o->n++] = ' ';
    o->space = false;
    if (o->n < o->cap)
        o->b[o->n++] = c;
}

/* A line break, at most one blank line in a row, none at the start. */
static void out_break(struct text_out *o)
{
    o->space = false;
    if (o->n == 0 || (o->n >= 2 && o->b[o->n - 1] == '\n' && o->b[o->n - 2] == '\n'))
        return;
    if (o->n < o->cap)
        o->b[o->n++] = '\n';
}

static void out_cp(struct text_out *o, uint32_t cp)
{
    char u[4];
    int k = g_unichar_to_utf8(cp, u);

    for (int i = 0; i < k; i++)
        out_byte(o, u[i]);
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether the tag name at s[0..n) is one of the names in list ("p|div|..."), any case. */
static bool tag_in(const char *s, size_t n, const char *list)
{
    while (*list) {
        size_t k = strcspn(list, "|");

        if (k == n && g_ascii_strncasecmp(s, list, n) == 0)
            return true;
        list += k + (list[k] == '|');
    }
    return false;
}

/* Where the tag starting at s[i] ('<') ends, one past its '>'. Quotes in attributes may hold
 * '>'; when they never close, the first '>' ends the tag so a stray quote costs one tag only. */
static size_t tag_end(const char *s, size_t n, size_t i)
{
    char quote = 0;
    const char *gt;

    for (size_t j = i + 1; j < n; j++) {
        if (quote) {
            if (s[j] == quote)
                quote = 0;
        } else if (s[j] == '"' || s[j] == '\'') {
            quote = s[j];
        } else if (s[j] == '>') {
            return j + 1;
        }
    }
    gt = memchr(s + i, '>', n - i);
    return gt ? (size_t)(gt - s) + 1 : n;
}

/* Where the element whose content starts at s[i] is closed by </name>: one past that tag, or 0
 * when it never is. */
static size_t close_of(const char *s, size_t n, size_t i, const char *name, size_t k)
{
    for (; i + 2 + k <= n; i++)
        if (s[i] == '<' && s[i + 1] == '/' && g_ascii_strncasecmp(s + i + 2, name, k) == 0 &&
            (i + 2 + k == n || !is_alnum(s[i + 2 + k])))
            return tag_end(s, n, i);
    return 0;
}

/* The character an entity at s[i] ('&') stands for, its length in *k; false when it is none
 * we know, and the '&' is then text. */
static bool entity(const char *s, size_t n, size_t i, uint32_t *cp, size_t *k)
{
    static const struct {
        const char *name;
        uint32_t cp;
    } named[] = {{"amp", '&'},       {"lt", '<'},       {"gt", '>'},       {"quot", '"'},
                 {"apos", '\''},     {"nbsp", ' '},     {"ndash", 0x2013}, {"mdash", 0x2014},
                 {"hellip", 0x2026}, {"rsquo", 0x2019}, {"lsquo", 0x2018}, {"ldquo", 0x201C},
                 {"rdquo", 0x201D},  {"copy", 0xA9},    {"euro", 0x20AC},  {"rupee", 0x20B9}};
    size_t j = i + 1, end;

    while (j < n && j - i <= 10 && (is_alnum(s[j]) || s[j] == '#'))
        j++;
    if (j >= n || s[j] != ';' || j == i + 1)
        return false;
    end = j;
    *k = end - i + 1;
    if (s[i + 1] == '#') {
        bool hex = i + 2 < end && (s[i + 2] == 'x' || s[i + 2] == 'X');
        uint64_t v = 0;
        size_t d = i + 2 + hex;

        if (d == end)
            return false;
        for (; d < end; d++) {
            int x = g_ascii_xdigit_value(s[d]);

            if (x < 0 || (!hex && x > 9))
                return false;
            v = v * (hex ? 16 : 10) + (uint64_t)x;
            if (v > 0x10FFFF)
                v = 0x110000; /* stays out of range however many digits follow */
        }
        *cp = v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ? 0xFFFD : (uint32_t)v;
        return true;
    }
    for (size_t e = 0; e < sizeof named / sizeof named[0]; e++)
        if (strlen(named[e].name) == end - i - 1 &&
            strncmp(s + i + 1, named[e].name, end - i - 1) == 0) {
            *cp = named[e].cp;
            return true;
        }
    return false;
}

/* The readable text of an HTML document in *out (malloc'd, NUL-terminated): tags dropped, what
 * script, style and head hold skipped, entities decoded, white space made single spaces, and
 * block elements (p, div, br, li, tr, headings...) made line breaks. Enough to read and search
 * a mail, not a renderer. */
static int html_text(const char *s, size_t n, char **out, size_t *outlen)
{
    struct text_out o = {.b = malloc(n + 1), .cap = n};
    size_t i = 0;

    if (!o.b)
        return -SY_ENOMEM;
    while (i < n) {
        char c = s[i];

        if (c == '<' && i + 1 < n && s[i + 1] == '!') {
            const char *close = i + 4 <= n && memcmp(s + i, "<!--", 4) == 0
                                    ? memmem(s + i + 4, n - i - 4, "-->", 3)
                                    : NULL;

            i = close ? (size_t)(close - s) + 3 : tag_end(s, n, i);
        } else if (c == '<' && i + 1 < n &&
                   (g_ascii_isalpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '?')) {
            size_t name = i + 1 + (s[i + 1] == '/'), k = 0, end = tag_end(s, n, i), close;

            while (name + k < n && is_alnum(s[name + k]))
                k++;
            if (s[i + 1] != '/' && tag_in(s + name, k, "script|style|head|title") &&
                (close = close_of(s, n, end, s + name, k)) != 0)
                end = close;
            else if (tag_in(s + name, k,
                            "p|div|br|li|tr|h1|h2|h3|h4|h5|h6|table|ul|ol|dl|dt|dd|blockquote|"
                            "hr|pre|section|article|header|footer|address|center|form"))
                out_break(&o);
            else if (tag_in(s + name, k, "td|th"))
                o.space = true;
            i = end;
        } else if (c == '&') {
            uint32_t cp;
            size_t k;

            if (entity(s, n, i, &cp, &k)) {
                if (cp == ' ')
                    o.space = true;
                else
                    out_cp(&o, cp);
                i += k;
            } else {
                out_byte(&o, c);
                i++;
            }
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f') {
            o.space = true;
            i++;
        } else {
            out_byte(&o, c);
            i++;
        }
    }
    while (o.n > 0 && o.b[o.n - 1] == '\n')
        o.n--;
    o.b[o.n] = '\0';
    *out = o.b;
    *outlen = o.n;
    return 0;
}

/* Line ends as "\n", and no NUL inside the text (it is handed on as a C string). */
static void tidy_text(char *s, size_t *n)
{
    size_t k = 0;

    for (size_t i = 0; i < *n; i++) {
        if (s[i] == '\0')
            continue;
        if (s[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < *n && s[i + 1] == '\n')
                i++;
            continue;
        }
        s[k++] = s[i];
    }
    s[k] = '\0';
    *n = k;
}

/* The mail's text from its chosen body part. */
static int body_text(struct walk *w, GMimePart *part, bool html)
{
    const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    unsigned char *raw = NULL;
    char *utf8 = NULL, *stripped;
    size_t n, len;
    int rc;

    if ((rc = part_content(part, w->max_part, &raw, &n)) != 0) {
        if (rc == -SY_ETOOBIG)
            sy_errf(w->err, w->errlen, "the %s body decodes to more than %zu bytes",
                    html ? "text/html" : "text/plain", w->max_part);
        else if (rc == -SY_EDECODE)
            sy_errf(w->err, w->errlen, "the %s body could not be read",
                    html ? "text/html" : "text/plain");
        return rc;
    }
    if ((rc = to_utf8(raw, n, charset, w->opts, &utf8, &len)) != 0)
        goto out;
    tidy_text(utf8, &len);
    if (html) {
        if ((rc = html_text(utf8, len, &stripped, &len)) != 0)
            goto out;
        free(utf8);
        utf8 = stripped;
    }
    w->out->text = utf8;
    utf8 = NULL;
out:
    free(raw);
    free(utf8);
    return rc;
}

/* GMime reads nearly any bytes as a message, whatever precedes the first line that is not a
 * header being its headers: a mail must have at least one header that only mail has. */
static bool looks_like_mail(GMimeMessage *msg)
{
    static const char *const mail_headers[] = {
        "From",       "Sender",       "To",       "Cc",          "Subject",  "Date",
        "Message-ID", "MIME-Version", "Received", "Return-Path", "Reply-To", NULL};
    GMimeHeaderList *h = g_mime_object_get_header_list(GMIME_OBJECT(msg));

    for (size_t i = 0; mail_headers[i]; i++)
        if (g_mime_header_list_contains(h, mail_headers[i]))
            return true;
    return false;
}

/* Subject and From decoded again from their raw text, for the reason b_words_as_q gives. */
static int read_headers(GMimeMessage *msg, GMimeParserOptions *opts, struct mail *out)
{
    GMimeObject *obj = GMIME_OBJECT(msg);
    char *raw_subject = raw_header(obj, "Subject"), *raw_from = raw_header(obj, "From");
    char *subject = raw_subject ? g_mime_utils_header_decode_text(opts, raw_subject) : NULL;
    InternetAddressList *from = raw_from ? internet_address_list_parse(opts, raw_from) : NULL;
    GDateTime *date = g_mime_message_get_date(msg), *utc = date ? g_date_time_to_utc(date) : NULL;
    char *from_text = NULL, *iso = NULL;
    const char *addr = NULL;
    int rc;

    if (from && internet_address_list_length(from) > 0) {
        from_text = internet_address_list_to_string(from, NULL, FALSE);
        for (int i = 0; i < internet_address_list_length(from) && !addr; i++) {
            InternetAddress *a = internet_address_list_get_address(from, i);

            if (INTERNET_ADDRESS_IS_MAILBOX(a))
                addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
        }
    }
    if (utc)
        iso = g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ");
    /* On failure the caller clears what was copied. */
    if ((rc = copy_utf8(&out->subject, subject)) == 0 &&
        (rc = copy_utf8(&out->from, from_text)) == 0 &&
        (rc = copy_utf8(&out->from_addr, addr && *addr ? addr : NULL)) == 0 &&
        (rc = copy_utf8(&out->message_id, g_mime_message_get_message_id(msg))) == 0)
        rc = copy_utf8(&out->date_iso, iso);
    g_free(raw_subject);
    g_free(raw_from);
    g_free(subject);
    g_free(from_text);
    g_free(iso);
    if (from)
        g_object_unref(from);
    if (utc)
        g_date_time_unref(utc);
    return rc;
}

int mail_parse(const void *raw, size_t len, size_t max_part, size_t max_parts, struct mail *out,
               char *err, size_t errlen)
{
    /* Header bytes outside any declared charset are tried as UTF-8, then as Windows-1252 (what
     * Outlook sends undeclared), then as ISO-8859-1, which takes any byte. */
    static const char *const fallback[] = {"utf-8", "windows-1252", "iso-8859-1", NULL};
    struct walk w = {
        .out = out, .max_part = max_part, .max_parts = max_parts, .err = err, .errlen = errlen};
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *msg = NULL;
    GMimeObject *top;
    int rc = 0;

    if (!out) {
        sy_errf(err, errlen, "no mail to fill in");
        return -SY_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (!raw || len == 0) {
        sy_errf(err, errlen, "no bytes to read a mail message from");
        return -SY_EINVAL;
    }
    pthread_once(&gmime_once, gmime_start);
    /* Options of its own per call: the headers GMime builds keep a pointer to them. */
    w.opts = g_mime_parser_options_new();
    g_mime_parser_options_set_fallback_charsets(w.opts, (const char **)fallback);
    stream = g_mime_stream_mem_new_with_buffer(raw, len);
    parser = g_mime_parser_new_with_stream(stream);
    msg = g_mime_parser_construct_message(parser, w.opts);
    if (!msg || !looks_like_mail(msg)) {
        sy_errf(err, errlen, "not a mail message: no From, Date, Subject or Message-ID header");
        rc = -SY_EINVAL;
        goto out;
    }
    if ((rc = read_headers(msg, w.opts, out)) != 0)
        goto out;
    if ((top = g_mime_message_get_mime_part(msg)) && (rc = walk(&w, top, 0, 0)) != 0)
        goto out;
    if (w.plain || w.html)
        rc = body_text(&w, w.plain ? w.plain : w.html, !w.plain);
out:
    if (rc == -SY_ENOMEM)
        sy_errf(err, errlen, "out of memory");
    if (rc != 0)
        mail_clear(out);
    if (msg)
        g_object_unref(msg);
    if (parser)
        g_object_unref(parser);
    if (stream)
        g_object_unref(stream);
    g_mime_parser_options_free(w.opts);
    return rc;
}
