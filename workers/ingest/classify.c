/* classify.c - keyword rules for departments (see classify.h). */
#include "ingest/classify.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sy/doc.h"
#include "sy/err.h"

struct keyword {
    char *text; /* lower-case when ascii */
    size_t len;
    bool word; /* ASCII letters, digits, spaces, '-' only: matched as whole words */
};

struct dept {
    char *name;
    struct keyword *kw;
    size_t nkw;
};

struct classify_rules {
    struct dept d[CLASSIFY_DEPTS_MAX];
    size_t n;
    long min_score;
};

void classify_free(struct classify_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        for (size_t k = 0; k < r->d[i].nkw; k++)
            free(r->d[i].kw[k].text);
        free(r->d[i].kw);
        free(r->d[i].name);
    }
    free(r);
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A keyword as written in the file: trimmed, not empty, not too long, no control bytes. */
static int keyword_make(const char *s, struct keyword *k, char *why, size_t whylen)
{
    size_t len = strlen(s);

    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    if (len == 0 || len > CLASSIFY_KEYWORD_MAX) {
        snprintf(why, whylen, "a keyword must have 1 to %d bytes", CLASSIFY_KEYWORD_MAX);
        return -SY_ECONFIG;
    }
    if (!(k->text = malloc(len + 1)))
        return -SY_ENOMEM;
    k->word = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7F) {
            free(k->text);
            snprintf(why, whylen, "a keyword holds a control character");
            return -SY_ECONFIG;
        }
        k->text[i] = lower((char)c);
        if (!alnum((char)c) && c != ' ' && c != '-')
            k->word = false;
    }
    k->text[len] = '\0';
    k->len = len;
    /* Malayalam joins suffixes to a word and its last letter changes with them (ബജറ്റ് and
     * ബജറ്റിൽ, സ്റ്റേഷൻ and സ്റ്റേഷനിൽ, ശമ്പളം and ശമ്പളത്തിൽ): a final virama, chillu or
     * anusvara is dropped so the stem finds every form. */
    while (!k->word && k->len > 3) {
        const unsigned char *e = (const unsigned char *)k->text + k->len - 3;
        /* A code point of U+0800-U+0FFF is E0 followed by two continuation bytes. */
        unsigned cp = e[0] == 0xE0 && (e[1] & 0xC0) == 0x80 && (e[2] & 0xC0) == 0x80
                          ? (((unsigned)e[1] & 0x3Fu) << 6) | ((unsigned)e[2] & 0x3Fu)
                          : 0;
        if (cp != 0x0D4D && cp != 0x0D02 && !(cp >= 0x0D7A && cp <= 0x0D7F))
            break;
        k->len -= 3;
        k->text[k->len] = '\0';
    }
    return 0;
}

static struct classify_rules *load(struct sy_doc *doc, char *err, size_t errlen)
{
    static const char *const keys[] = {"departments", "min_score", NULL};
    const struct sy_node *root = sy_doc_root(doc), *depts = sy_node_get(root, "departments");
    struct classify_rules *r;
    char why[256];
    long long min = 1;

    if (!root || sy_node_kind(root) != SY_NODE_MAP) {
        sy_errf(err, errlen, "%s: expected a map with departments", sy_doc_name(doc));
        return NULL;
    }
    if (sy_node_check_keys(doc, root, keys, err, errlen) != 0)
        return NULL;
    if (sy_node_get(root, "min_score") &&
        sy_node_int(sy_node_get(root, "min_score"), 1, 1000000, &min, why, sizeof why) != 0) {
        sy_errf(err, errlen, "%s: %s", sy_doc_name(doc), why);
        return NULL;
    }
    if (sy_node_kind(depts) != SY_NODE_MAP || sy_node_len(depts) == 0 ||
        sy_node_len(depts) > CLASSIFY_DEPTS_MAX) {
        sy_errf(err, errlen, "%s:%d: departments: expected a map of 1 to %d departments",
                sy_doc_name(doc), sy_node_line(depts ? depts : root), CLASSIFY_DEPTS_MAX);
        return NULL;
    }
    if (!(r = calloc(1, sizeof *r))) {
        sy_errf(err, errlen, "out of memory");
        return NULL;
    }
    r->min_score = (long)min;
    for (size_t i = 0; i < sy_node_len(depts); i++) {
        const char *name = NULL;
        const struct sy_node *list = sy_node_at(depts, i, &name);
        struct dept *d = &r->d[r->n];
        size_t n = sy_node_len(list);

        if (sy_node_kind(list) != SY_NODE_SEQ || n == 0 || n > CLASSIFY_KEYWORDS_MAX) {
            sy_errf(err, errlen, "%s:%d: departments.%s: expected a list of 1 to %d keywords",
                    sy_doc_name(doc), sy_node_line(list), name, CLASSIFY_KEYWORDS_MAX);
            goto fail;
        }
        if (!(d->name = strdup(name)) || !(d->kw = calloc(n, sizeof *d->kw))) {
            free(d->name);
            sy_errf(err, errlen, "out of memory");
            goto fail;
        }
        r->n++;
        for (size_t k = 0; k < n; k++) {
            const struct sy_node *kw = sy_node_at(list, k, NULL);
            const char *s = sy_node_str(kw);
            int rc = s ? keyword_make(s, &d->kw[k], why, sizeof why) : -SY_ECONFIG;

            if (rc != 0) {
                sy_errf(err, errlen, "%s:%d: departments.%s[%zu]: %s", sy_doc_name(doc),
                        sy_node_line(kw), name, k,
                        rc == -SY_ENOMEM ? "out of memory"
                        : s              ? why
                                         : "expected text");
                goto fail;
            }
            d->nkw++;
        }
    }
    return r;
fail:
    classify_free(r);
    return NULL;
}

struct classify_rules *classify_load(const char *path, char *err, size_t errlen)
{
    struct sy_doc *doc = sy_doc_load_file(path, err, errlen);
    struct classify_rules *r = doc ? load(doc, err, errlen) : NULL;

    sy_doc_destroy(doc);
    return r;
}

struct classify_rules *classify_load_mem(const char *name, const char *yaml, char *err,
                                         size_t errlen)
{
    struct sy_doc *doc = sy_doc_load_mem(name, yaml, strlen(yaml), err, errlen);
    struct classify_rules *r = doc ? load(doc, err, errlen) : NULL;

    sy_doc_destroy(doc);
    return r;
}

size_t classify_departments(const struct classify_rules *r)
{
    return r ? r->n : 0;
}

const char *classify_department(const struct classify_rules *r, size_t i)
{
    return r && i < r->n ? r->d[i].name : NULL;
}

void classify_begin(struct classify_score *s, const struct classify_rules *r)
{
    memset(s, 0, sizeof *s);
    s->rules = r;
}

/* Whether a word keyword's match ends the word at q, or its plural does ("tracks",
 * "invoices"). */
static bool word_ends(const char *q, const char *end)
{
    if (q < end && q[0] == 'e' && q + 1 < end && q[1] == 's')
        q += 2;
    else if (q < end && q[0] == 's')
        q++;
    return q == end || !alnum(*q);
}

/* Occurrences of k in the lower-cased text t (whole words for a word keyword), at most
 * CLASSIFY_HITS_MAX. */
static int hits(const char *t, size_t n, const struct keyword *k)
{
    const char *p = t, *end = t + n;
    int found = 0;

    while (found < CLASSIFY_HITS_MAX && (size_t)(end - p) >= k->len &&
           (p = memmem(p, (size_t)(end - p), k->text, k->len))) {
        bool ok = !k->word || ((p == t || !alnum(p[-1])) && word_ends(p + k->len, end));

        found += ok;
        p += ok ? k->len : 1;
    }
    return found;
}

void classify_add(struct classify_score *s, const char *text, size_t len, int weight)
{
    const struct classify_rules *r = s->rules;
    char *t;

    if (!r || !text || len == 0 || weight <= 0)
        return;
    if (len > CLASSIFY_TEXT_MAX)
        len = CLASSIFY_TEXT_MAX;
    if (!(t = malloc(len)))
        return; /* an unclassified document, not a lost one */
    for (size_t i = 0; i < len; i++)
        t[i] = lower(text[i]);
    for (size_t d = 0; d < r->n; d++)
        for (size_t k = 0; k < r->d[d].nkw; k++)
            s->score[d] += (long)weight * hits(t, len, &r->d[d].kw[k]);
    free(t);
}

const char *classify_result(const struct classify_score *s)
{
    const struct classify_rules *r = s->rules;
    size_t best = 0;

    if (!r || r->n == 0)
        return NULL;
    for (size_t d = 1; d < r->n; d++)
        if (s->score[d] > s->score[best])
            best = d;
    return s->score[best] >= r->min_score ? r->d[best].name : NULL;
}
