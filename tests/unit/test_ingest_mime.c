/* test_ingest_mime.c - sy-ingest's mail parsing on the messages in tests/data/ingest/mail/: a
 * Malayalam subject and file names (RFC 2047, RFC 2231 with continuations), attachments decoded
 * to their exact bytes, an inline image found by its Content-ID, Latin-1 quoted-printable and
 * HTML-only bodies made UTF-8 text, attached messages opened, CRLF line ends, the size and
 * nesting limits naming what broke them, garbage refused, and the same answers from threads
 * parsing at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ingest/connector.h"
#include "ingest/mime.h"
#include "sy/err.h"

#define BIG (1u << 20)

static const char PDF[] =
    "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n"
    "endobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
static const unsigned char PNG[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
    0xda, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x02, 0x01, 0xd3, 0xb5,
    0xe3, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
static const char ML_TEXT[] = "ആലുവ സ്റ്റേഷനിലെ ട്രാക്ക് പരിശോധന റിപ്പോർട്ട് ചേർക്കുന്നു.\n"
                              "Track inspection report attached.\n";
static const char *const FIXTURES[] = {"ml_report.eml", "related_image.eml", "latin1_qp.eml",
                                       "html_only.eml", "forwarded.eml"};
#define NFIXTURES (sizeof FIXTURES / sizeof FIXTURES[0])

/* A fixture's bytes (they hold no NUL), malloc'd. */
static char *fixture(const char *name, size_t *len)
{
    char path[1200], *text;

    snprintf(path, sizeof path, "%s/tests/data/ingest/mail/%s", th_need_env("SY_SOURCE_DIR"), name);
    if (!(text = th_read_file(path)))
        fail_msg("%s: cannot read", path);
    *len = strlen(text);
    return text;
}

static void parse_ok(const char *raw, size_t len, struct mail *m)
{
    char err[256] = "";
    int rc = mail_parse(raw, len, BIG, 100, m, err, sizeof err);

    if (rc != 0)
        fail_msg("mail_parse: %d (%s)", rc, err);
}

static void parse_fixture(const char *name, struct mail *m)
{
    size_t len;
    char *raw = fixture(name, &len);

    parse_ok(raw, len, m);
    free(raw);
}

static void assert_part(const struct mail_part *p, const char *filename, const char *mime,
                        const void *data, size_t len, bool inline_part, int depth)
{
    if (filename)
        assert_string_equal(p->filename, filename);
    else
        assert_null(p->filename);
    assert_string_equal(p->mime, mime);
    assert_int_equal(p->len, len);
    assert_memory_equal(p->data, data, len);
    assert_int_equal(p->data[len], '\0');
    assert_int_equal(p->inline_part, inline_part);
    assert_int_equal(p->depth, depth);
}

static void malayalam_subject_and_file_names_and_attachments_decode(void **state)
{
    struct mail m;

    (void)state;
    parse_fixture("ml_report.eml", &m);
    /* Two base64 words, the first padded: GMime 3.2.13 alone keeps only the first. */
    assert_string_equal(m.subject, "പരിശോധന റിപ്പോർട്ട്");
    assert_string_equal(m.from, "രാജൻ നായർ <rajan@kmrl.example>");
    assert_string_equal(m.from_addr, "rajan@kmrl.example");
    assert_string_equal(m.message_id, "insp-2291@kmrl.example");
    assert_string_equal(m.date_iso, "2026-12-07T10:00:00Z"); /* 15:30 at +0530 */
    assert_string_equal(m.text, ML_TEXT);
    assert_int_equal(m.nparts, 3);
    /* RFC 2231 filename* wins over Content-Type's name. */
    assert_part(&m.parts[0], "പരിശോധന_റിപ്പോർട്ട്.pdf", "application/pdf", PDF, sizeof PDF - 1, false,
                0);
    /* RFC 2231 continuations, the second letter's UTF-8 cut between filename*0* and *1*. */
    static const char csv[] = "station,line,date\nആലുവ,1,2026-12-01\nEdappally,1,2026-12-02\n";
    assert_part(&m.parts[1], "സ്റ്റേഷൻ_കണക്ക്_ഡിസംബർ.csv", "text/csv", csv, sizeof csv - 1, false, 0);
    assert_null(m.parts[1].content_id);
    /* A text/plain file attached (RFC 2047 in a quoted filename) is a part, not the text. */
    static const char notes[] = "ആദ്യ കുറിപ്പ്\nsecond line\n";
    assert_part(&m.parts[2], "കുറിപ്പ്.txt", "text/plain", notes, sizeof notes - 1, false, 0);
    mail_clear(&m);
    assert_null(m.parts);
    assert_int_equal(m.nparts, 0);
    mail_clear(&m);
    mail_clear(NULL);
}

/* IMAP hands messages over with CRLF line ends. */
static char *with_crlf(const char *lf, size_t len, size_t *out)
{
    char *s = malloc(2 * len + 1);
    size_t n = 0;

    assert_non_null(s);
    for (size_t i = 0; i < len; i++) {
        if (lf[i] == '\n')
            s[n++] = '\r';
        s[n++] = lf[i];
    }
    *out = n;
    return s;
}

static void crlf_line_ends_read_the_same(void **state)
{
    size_t len, clen;
    char *lf = fixture("ml_report.eml", &len), *crlf = with_crlf(lf, len, &clen);
    struct mail m;

    (void)state;
    parse_ok(crlf, clen, &m);
    assert_string_equal(m.subject, "പരിശോധന റിപ്പോർട്ട്");
    assert_string_equal(m.text, ML_TEXT);
    assert_int_equal(m.nparts, 3);
    assert_part(&m.parts[0], "പരിശോധന_റിപ്പോർട്ട്.pdf", "application/pdf", PDF, sizeof PDF - 1, false,
                0);
    assert_string_equal(m.parts[1].filename, "സ്റ്റേഷൻ_കണക്ക്_ഡിസംബർ.csv");
    static const char notes[] = "ആദ്യ കുറിപ്പ്\nsecond line\n"; /* base64: LF as sent */
    assert_part(&m.parts[2], "കുറിപ്പ്.txt", "text/plain", notes, sizeof notes - 1, false, 0);
    mail_clear(&m);
    free(crlf);
    free(lf);

    lf = fixture("latin1_qp.eml", &len);
    crlf = with_crlf(lf, len, &clen);
    parse_ok(crlf, clen, &m);
    assert_string_equal(m.text, "Café at Aluva: the naïve fix cost £ 5 and ½ day. This line is "
                                "long enough that it must be wrapped by a soft line break here.\n"
                                "Second line.\n");
    mail_clear(&m);
    free(crlf);
    free(lf);
}

static void inline_image_in_related_keeps_its_content_id(void **state)
{
    struct mail m;

    (void)state;
    parse_fixture("related_image.eml", &m);
    assert_string_equal(m.subject, "Platform screen door fault, Edappally");
    assert_string_equal(m.date_iso, "2026-12-08T09:15:42Z");
    /* text/plain wins over the text/html alternative, which is not listed either. */
    assert_string_equal(m.text, "Door 4 on platform 2 does not close. Photo below.");
    assert_int_equal(m.nparts, 1);
    assert_part(&m.parts[0], NULL, "image/png", PNG, sizeof PNG, true, 0);
    assert_string_equal(m.parts[0].content_id, "door4@kmrl.example");
    mail_clear(&m);
}

static void latin1_quoted_printable_becomes_utf8(void **state)
{
    struct mail m;

    (void)state;
    parse_fixture("latin1_qp.eml", &m);
    assert_string_equal(m.subject, "Café invoice");
    /* An undeclared 8-bit name: not UTF-8, so read as Windows-1252. */
    assert_string_equal(m.from, "José Mathew <jose@kmrl.example>");
    assert_string_equal(m.date_iso, "2026-12-10T07:59:59Z"); /* 23:59:59 at -0800 */
    assert_string_equal(m.text, "Café at Aluva: the naïve fix cost £ 5 and ½ day. This line is "
                                "long enough that it must be wrapped by a soft line break here.\n"
                                "Second line.\n");
    assert_int_equal(m.nparts, 0);
    assert_null(m.parts);
    mail_clear(&m);
}

static void html_only_mail_gives_its_text_without_tags(void **state)
{
    struct mail m;

    (void)state;
    parse_fixture("html_only.eml", &m);
    assert_string_equal(m.from, "Metro Helpdesk <helpdesk@kmrl.example>");
    /* Head, style, script and comments go; entities are decoded (&#x20; is a real space);
     * blocks become lines, cells are spaced; an unknown entity and a lone '<' stay. */
    assert_string_equal(m.text, "Fares & Taxes\n\n"
                                "Week 49: ridership up 4%, revenue ₹ 12 lakh.\n\n"
                                "Aluva <-> Pettah — ടിക്കറ്റ് നിരക്ക്\n\n"
                                "Line 1 on time\n\n"
                                "Line 2 late\n\n"
                                "Unknown &bogus; stays, a < b stays.\n"
                                "Last line");
    assert_int_equal(m.nparts, 0);
    mail_clear(&m);
}

static void attached_messages_are_listed_and_opened(void **state)
{
    struct mail m, inner;

    (void)state;
    parse_fixture("forwarded.eml", &m);
    /* The message's own text only; the attached ones keep theirs in their bytes. */
    assert_string_equal(m.text, "Two reports forwarded below.");
    assert_int_equal(m.nparts, 4);
    assert_string_equal(m.parts[0].filename, "inspection.eml");
    assert_string_equal(m.parts[0].mime, "message/rfc822");
    assert_false(m.parts[0].inline_part);
    assert_int_equal(m.parts[0].depth, 0);
    assert_part(&m.parts[1], "track-aluva.pdf", "application/pdf", PDF, sizeof PDF - 1, false, 1);
    /* The second comes base64 encoded, which GMime leaves as a plain part: opened all the same. */
    assert_null(m.parts[2].filename);
    assert_string_equal(m.parts[2].mime, "message/rfc822");
    assert_int_equal(m.parts[2].depth, 0);
    assert_part(&m.parts[3], "wheels.csv", "text/csv", "axle,wear_mm\n1,0.4", 18, false, 1);

    /* An attached message's bytes are a mail of their own. */
    parse_ok((const char *)m.parts[0].data, m.parts[0].len, &inner);
    assert_string_equal(inner.subject, "Track inspection, Aluva");
    assert_string_equal(inner.date_iso, "2026-12-04T02:30:00Z");
    assert_string_equal(inner.text, "Findings attached.");
    assert_int_equal(inner.nparts, 1);
    assert_part(&inner.parts[0], "track-aluva.pdf", "application/pdf", PDF, sizeof PDF - 1, false,
                0);
    mail_clear(&inner);
    parse_ok((const char *)m.parts[2].data, m.parts[2].len, &inner);
    assert_string_equal(inner.subject, "Rake 7 wheel profile");
    assert_string_equal(inner.text, "Profile data attached.");
    mail_clear(&inner);
    mail_clear(&m);
}

/* A message with attachment a<level>.txt and, below MAIL_DEPTH_MAX + 2 levels, the next level
 * attached. */
static void nested_messages(FILE *s, int level)
{
    fprintf(s,
            "From: l%d@kmrl.example\nSubject: level %d\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n"
            "--b%d\nContent-Type: text/plain\nContent-Disposition: attachment; "
            "filename=\"a%d.txt\"\n\nlevel %d\n",
            level, level, level, level, level, level);
    if (level < MAIL_DEPTH_MAX + 2) {
        fprintf(s, "--b%d\nContent-Type: message/rfc822\n\n", level);
        nested_messages(s, level + 1);
    }
    fprintf(s, "--b%d--\n", level);
}

static void messages_deeper_than_the_limit_are_listed_unopened(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *s = open_memstream(&text, &len);
    struct mail m;

    (void)state;
    assert_non_null(s);
    nested_messages(s, 0);
    fclose(s);
    parse_ok(text, len, &m);
    /* a0..a5 and the messages of levels 1..6; level 6 (at depth 5) is not opened. */
    assert_int_equal(m.nparts, 2 * (MAIL_DEPTH_MAX + 1));
    for (int level = 0; level <= MAIL_DEPTH_MAX; level++) {
        const struct mail_part *a = &m.parts[2 * level], *msg = &m.parts[2 * level + 1];
        char name[16], body[16];

        snprintf(name, sizeof name, "a%d.txt", level);
        snprintf(body, sizeof body, "level %d", level);
        assert_part(a, name, "text/plain", body, strlen(body), false, level);
        assert_string_equal(msg->mime, "message/rfc822");
        assert_int_equal(msg->depth, level);
    }
    assert_non_null(strstr((const char *)m.parts[2 * MAIL_DEPTH_MAX + 1].data, "a6.txt"));
    mail_clear(&m);
    free(text);
}

/* A message whose body is multiparts nested `levels` deep around one attachment. */
static char *nested_multiparts(int levels, size_t *len)
{
    char *text = NULL;
    FILE *s = open_memstream(&text, len);

    assert_non_null(s);
    fprintf(s, "From: deep@kmrl.example\nMIME-Version: 1.0\n");
    for (int i = 0; i < levels; i++)
        fprintf(s, "Content-Type: multipart/mixed; boundary=\"n%d\"\n\n--n%d\n", i, i);
    fprintf(s, "Content-Type: application/octet-stream\n\nx\n");
    for (int i = levels - 1; i >= 0; i--)
        fprintf(s, "--n%d--\n", i);
    fclose(s);
    return text;
}

static void multiparts_nested_too_deep_are_refused(void **state)
{
    size_t len;
    char *text = nested_multiparts(10, &len), err[256] = "";
    struct mail m;

    (void)state;
    parse_ok(text, len, &m);
    assert_int_equal(m.nparts, 1);
    assert_string_equal(m.parts[0].mime, "application/octet-stream");
    mail_clear(&m);
    free(text);

    text = nested_multiparts(MAIL_NEST_MAX + 20, &len);
    assert_int_equal(mail_parse(text, len, BIG, 100, &m, err, sizeof err), -SY_ETOOBIG);
    assert_non_null(strstr(err, "nested deeper than"));
    assert_null(m.parts);
    free(text);
}

static void size_limits_are_refused_naming_the_part(void **state)
{
    size_t len;
    char *raw = fixture("ml_report.eml", &len), err[256];
    struct mail m;

    (void)state;
    /* The PDF has 96 bytes decoded (128 in base64). */
    err[0] = '\0';
    assert_int_equal(mail_parse(raw, len, sizeof PDF - 2, 100, &m, err, sizeof err), -SY_ETOOBIG);
    assert_string_equal(err, "part 1 (പരിശോധന_റിപ്പോർട്ട്.pdf, application/pdf) decodes to more "
                             "than 95 bytes");
    assert_null(m.parts);
    assert_null(m.subject);
    assert_int_equal(m.nparts, 0);
    /* The text body is held to the same limit. */
    err[0] = '\0';
    assert_int_equal(mail_parse(raw, len, strlen(ML_TEXT) - 1, 100, &m, err, sizeof err),
                     -SY_ETOOBIG);
    assert_non_null(strstr(err, "text/plain body decodes to more than"));
    assert_int_equal(mail_parse(raw, len, strlen(ML_TEXT), 100, &m, err, sizeof err), 0);
    mail_clear(&m);
    /* Three parts. */
    err[0] = '\0';
    assert_int_equal(mail_parse(raw, len, BIG, 2, &m, err, sizeof err), -SY_ETOOBIG);
    assert_string_equal(err, "more than 2 parts");
    assert_null(m.parts);
    assert_int_equal(mail_parse(raw, len, BIG, 3, &m, err, sizeof err), 0);
    assert_int_equal(m.nparts, 3);
    mail_clear(&m);
    free(raw);

    /* An attached message is measured as a whole. */
    raw = fixture("forwarded.eml", &len);
    err[0] = '\0';
    assert_int_equal(mail_parse(raw, len, 500, 100, &m, err, sizeof err), -SY_ETOOBIG);
    assert_non_null(strstr(err, "part 1 (inspection.eml, message/rfc822) decodes to more than"));
    free(raw);
}

static void garbage_is_refused(void **state)
{
#define BYTES(s)                                                                                   \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        BYTES(""),
        BYTES("hello world\nthis is not mail\n"),
        BYTES("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
        BYTES("\n\nFrom: late@kmrl.example\n\nbody\n"), /* headers must come first */
        BYTES("X-Only: custom\n\nbody\n"),
        BYTES("\0\0\0\0From: a@b\n\n"),
        BYTES("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
    };
#undef BYTES
    unsigned char noise[4096];
    uint32_t x = 2463534242u;
    char err[256];
    struct mail m;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        if (mail_parse(cases[i].bytes, cases[i].len, BIG, 100, &m, err, sizeof err) != -SY_EINVAL ||
            err[0] == '\0')
            fail_msg("case %zu: not refused (%s)", i, err);
        assert_null(m.subject);
        assert_null(m.parts);
    }
    for (size_t i = 0; i < sizeof noise; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        noise[i] = (unsigned char)x;
    }
    assert_int_equal(mail_parse(noise, sizeof noise, BIG, 100, &m, err, sizeof err), -SY_EINVAL);
    assert_int_equal(mail_parse(NULL, 10, BIG, 100, &m, err, sizeof err), -SY_EINVAL);
    assert_int_equal(mail_parse("From: a@b\n\n", 11, BIG, 100, NULL, err, sizeof err), -SY_EINVAL);
}

/* Lead and continuation bytes where UTF-8 puts them. */
static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        int n = *p < 0x80                  ? 0
                : *p >= 0xC2 && *p <= 0xDF ? 1
                : *p >= 0xE0 && *p <= 0xEF ? 2
                : *p >= 0xF0 && *p <= 0xF4 ? 3
                                           : -1;

        if (n < 0)
            return false;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

/* Whatever comes back is whole: UTF-8 strings and data with its NUL. */
static void assert_sane(const struct mail *m)
{
    const char *s[] = {m->subject, m->from, m->from_addr, m->message_id, m->date_iso, m->text};

    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        assert_true(!s[i] || utf8_ok(s[i]));
    for (size_t i = 0; i < m->nparts; i++) {
        assert_non_null(m->parts[i].data);
        assert_int_equal(m->parts[i].data[m->parts[i].len], '\0');
        assert_true(utf8_ok(m->parts[i].mime));
        assert_true(!m->parts[i].filename || utf8_ok(m->parts[i].filename));
        assert_true(m->parts[i].depth >= 0 && m->parts[i].depth <= MAIL_DEPTH_MAX);
    }
}

static void cut_and_damaged_mail_never_breaks_the_parser(void **state)
{
    uint32_t x = 88172645u;
    char err[256];

    (void)state;
    for (size_t f = 0; f < NFIXTURES; f++) {
        size_t len;
        char *raw = fixture(FIXTURES[f], &len), *copy = malloc(len);
        struct mail m;

        assert_non_null(copy);
        /* Every prefix, each in a buffer of exactly its size so a read past it is caught. */
        for (size_t cut = 0; cut <= len; cut++) {
            char *part = malloc(cut ? cut : 1);

            assert_non_null(part);
            memcpy(part, raw, cut);
            int rc = mail_parse(part, cut, BIG, 100, &m, err, sizeof err);
            assert_true(rc == 0 || rc == -SY_EINVAL);
            assert_sane(&m);
            mail_clear(&m);
            free(part);
        }
        /* Bytes overwritten with noise, boundaries and quotes among them. */
        for (int round = 0; round < 300; round++) {
            memcpy(copy, raw, len);
            for (int k = 0; k < 8; k++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                static const char junk[] = "\0\r\n=?\"';*%-<>&#\xe0\xff";
                copy[x % len] =
                    k % 2 ? junk[(x >> 8) % (sizeof junk - 1)] : (char)(unsigned char)(x >> 16);
            }
            int rc = mail_parse(copy, len, BIG, 100, &m, err, sizeof err);
            assert_true(rc == 0 || rc == -SY_EINVAL || rc == -SY_ETOOBIG);
            assert_sane(&m);
            mail_clear(&m);
        }
        free(copy);
        free(raw);
    }
}

static void undeclared_text_and_encoded_words_decode(void **state)
{
    static const char mail[] =
        "From: =?UTF-8?B?4LSw4LS+4LSc4LW7?= <a@kmrl.example>, b@kmrl.example\n"
        "Subject: x =?UTF-8?B?SGVsbG8=?= =?UTF-8?B?IHdvcmxk?= =?utf-8?q?_=E2=82=B9?= y\n"
        "Date: not a date\n"
        "\n"
        "It\x92s caf\xe9 time\r\nnext\rline\n";
    struct mail m;

    (void)state;
    parse_ok(mail, sizeof mail - 1, &m);
    /* Padded base64 words run together (GMime issue 133 again), then a quoted-printable one. */
    assert_string_equal(m.subject, "x Hello world ₹ y");
    assert_string_equal(m.from, "രാജൻ <a@kmrl.example>, b@kmrl.example");
    assert_string_equal(m.from_addr, "a@kmrl.example");
    assert_null(m.date_iso);
    assert_null(m.message_id);
    /* No charset and not UTF-8: Windows-1252, with line ends made "\n". */
    assert_string_equal(m.text, "It’s café time\nnext\nline\n");
    mail_clear(&m);
}

/* Threads parse every fixture at once and must see what one thread sees. */
struct agree {
    char *raw[NFIXTURES];
    size_t len[NFIXTURES];
    struct mail want[NFIXTURES];
    int wrong;
};

static bool same_mail(const struct mail *a, const struct mail *b)
{
    if (strcmp(a->subject ? a->subject : "", b->subject ? b->subject : "") != 0 ||
        strcmp(a->text ? a->text : "", b->text ? b->text : "") != 0 || a->nparts != b->nparts)
        return false;
    for (size_t i = 0; i < a->nparts; i++)
        if (a->parts[i].len != b->parts[i].len ||
            memcmp(a->parts[i].data, b->parts[i].data, a->parts[i].len) != 0 ||
            strcmp(a->parts[i].filename ? a->parts[i].filename : "",
                   b->parts[i].filename ? b->parts[i].filename : "") != 0)
            return false;
    return true;
}

static void *parse_many(void *arg)
{
    struct agree *g = arg;

    for (int round = 0; round < 40; round++)
        for (size_t f = 0; f < NFIXTURES; f++) {
            struct mail m;
            char err[256];

            if (mail_parse(g->raw[f], g->len[f], BIG, 100, &m, err, sizeof err) != 0 ||
                !same_mail(&m, &g->want[f]))
                __atomic_add_fetch(&g->wrong, 1, __ATOMIC_RELAXED);
            mail_clear(&m);
        }
    return NULL;
}

static void threads_parsing_at_once_agree(void **state)
{
    struct agree g = {0};
    pthread_t t[8];

    (void)state;
    for (size_t f = 0; f < NFIXTURES; f++) {
        g.raw[f] = fixture(FIXTURES[f], &g.len[f]);
        parse_ok(g.raw[f], g.len[f], &g.want[f]);
    }
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, parse_many, &g), 0);
    for (size_t i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(g.wrong, 0);
    for (size_t f = 0; f < NFIXTURES; f++) {
        mail_clear(&g.want[f]);
        free(g.raw[f]);
    }
}

/* What a connector hands on fits document.ingested: names cut on a character with their
 * extension, control characters replaced, broken UTF-8 dropped, odd or long types made
 * application/octet-stream. */
static void documents_get_names_and_types_an_announcement_can_carry(void **state)
{
    struct in_fetched f = {0};
    char name[2100], type[300];
    size_t o;

    (void)state;
    /* "ലോ" (3 + 3 bytes) over and over: 1024 is not on a character's start for every cut. */
    for (o = 0; o + 6 <= 1990; o += 6)
        memcpy(name + o, "\xe0\xb4\xb2\xe0\xb5\x8b", 6);
    memcpy(name + o, ".pdf", 5);
    snprintf(type, sizeof type, "text/x-%0260d", 1);
    assert_int_equal(in_fetched_add(&f, name, "application/pdf", NULL, 10), 0);
    assert_int_equal(in_fetched_add(&f, "ok.txt", type, NULL, 1), 0);
    assert_int_equal(in_fetched_add(&f, "tab\tname", "Text/Plain; charset=x", NULL, 1), 0);
    assert_int_equal(in_fetched_add(&f, "bad\xff.txt", "image", NULL, 1), 0);
    assert_int_equal(in_fetched_add(&f, NULL, "image/png", NULL, 1), 0);
    assert_int_equal(f.ndocs, 5);

    size_t n = strlen(f.docs[0].filename);
    assert_true(n <= IN_FILENAME_MAX && n > IN_FILENAME_MAX - 8);
    assert_string_equal(f.docs[0].filename + n - 4, ".pdf");
    assert_int_equal((n - 4) % 3, 0); /* whole characters only */
    assert_int_equal(memcmp(f.docs[0].filename, name, n - 4), 0);
    assert_string_equal(f.docs[0].mime, "application/pdf");
    assert_string_equal(f.docs[1].filename, "ok.txt");
    assert_string_equal(f.docs[1].mime, "application/octet-stream");
    assert_string_equal(f.docs[2].filename, "tab_name");
    assert_string_equal(f.docs[2].mime, "application/octet-stream");
    assert_null(f.docs[3].filename);
    assert_string_equal(f.docs[3].mime, "application/octet-stream");
    assert_null(f.docs[4].filename);
    assert_string_equal(f.docs[4].mime, "image/png");
    in_fetched_clear(&f);

    /* Just at the limits: kept as they are. */
    memset(name, 'a', IN_FILENAME_MAX);
    name[IN_FILENAME_MAX] = '\0';
    snprintf(type, sizeof type, "text/x-%0248d", 1);
    assert_int_equal(strlen(type), IN_MIME_MAX);
    assert_int_equal(in_fetched_add(&f, name, type, NULL, 1), 0);
    assert_string_equal(f.docs[0].filename, name);
    assert_string_equal(f.docs[0].mime, type);
    in_fetched_clear(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malayalam_subject_and_file_names_and_attachments_decode),
        cmocka_unit_test(crlf_line_ends_read_the_same),
        cmocka_unit_test(inline_image_in_related_keeps_its_content_id),
        cmocka_unit_test(latin1_quoted_printable_becomes_utf8),
        cmocka_unit_test(html_only_mail_gives_its_text_without_tags),
        cmocka_unit_test(attached_messages_are_listed_and_opened),
        cmocka_unit_test(messages_deeper_than_the_limit_are_listed_unopened),
        cmocka_unit_test(multiparts_nested_too_deep_are_refused),
        cmocka_unit_test(size_limits_are_refused_naming_the_part),
        cmocka_unit_test(garbage_is_refused),
        cmocka_unit_test(cut_and_damaged_mail_never_breaks_the_parser),
        cmocka_unit_test(undeclared_text_and_encoded_words_decode),
        cmocka_unit_test(threads_parsing_at_once_agree),
        cmocka_unit_test(documents_get_names_and_types_an_announcement_can_carry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
