/* lang.c - Malayalam and Latin letters counted over UTF-8 text (see lang.h). */
#include "ingest/lang.h"

#include <stdint.h>

/* The code point at s[0..len), its length in *n (1 for a byte that starts no valid sequence,
 * which is then returned as 0xFFFD). Overlong forms and surrogates are not valid. */
static uint32_t next_cp(const unsigned char *s, size_t len, size_t *n)
{
    uint32_t cp;
    size_t need;

    *n = 1;
    if (s[0] < 0x80)
        return s[0];
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        cp = s[0] & 0x1F;
        need = 1;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        cp = s[0] & 0x0F;
        need = 2;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        cp = s[0] & 0x07;
        need = 3;
    } else {
        return 0xFFFD;
    }
    if (len < need + 1)
        return 0xFFFD;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0xFFFD;
    *n = need + 1;
    return cp;
}

void lang_count_add(struct lang_count *c, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, n;

    while (i < len) {
        uint32_t cp = next_cp(s + i, len - i, &n);

        i += n;
        if (cp >= 0x0D00 && cp <= 0x0D7F) {
            if (cp < 0x0D66 || cp > 0x0D6F) /* Malayalam digits count for neither */
                c->ml++;
        } else if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') ||
                   (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7)) {
            c->latin++;
        }
    }
}

enum ingest_lang lang_decide(const struct lang_count *c)
{
    size_t all = c->ml + c->latin;

    if (all < LANG_MIN_LETTERS)
        return LANG_UNKNOWN;
    if ((double)c->ml >= LANG_ONE_SHARE * (double)all)
        return LANG_ML;
    if ((double)c->latin >= LANG_ONE_SHARE * (double)all)
        return LANG_EN;
    return LANG_MIXED;
}

const char *lang_name(enum ingest_lang l)
{
    switch (l) {
    case LANG_EN:
        return "en";
    case LANG_ML:
        return "ml";
    case LANG_MIXED:
        return "mixed";
    case LANG_UNKNOWN:
        break;
    }
    return "unknown";
}
