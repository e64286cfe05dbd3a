/* lang.h - which script a document's text is written in: Malayalam, English, or both. Counts
 * Malayalam letters and signs (U+0D00-U+0D7F without its digits) against Latin letters
 * (A-Z, a-z, U+00C0-U+024F) over every text a document has (subject, body, caption, filename,
 * text-like attachments); digits, punctuation, spaces and joiners count for neither. Romanised
 * Malayalam reads as English: a script count cannot tell them apart. */
#ifndef INGEST_LANG_H
#define INGEST_LANG_H

#include <stddef.h>

enum ingest_lang { LANG_UNKNOWN, LANG_EN, LANG_ML, LANG_MIXED };

#define LANG_MIN_LETTERS 20   /* fewer letters than this say nothing */
#define LANG_ONE_SHARE   0.80 /* this share of one script or more: that language */

struct lang_count {
    size_t ml, latin;
};

/* Adds the letters of len bytes of UTF-8 text; bytes that are not UTF-8 are skipped. */
void lang_count_add(struct lang_count *c, const char *text, size_t len);
/* unknown below LANG_MIN_LETTERS letters; else ml or en when one script has LANG_ONE_SHARE of
 * them, mixed otherwise. */
enum ingest_lang lang_decide(const struct lang_count *c);
/* "unknown", "en", "ml", "mixed": the documents.language values. */
const char *lang_name(enum ingest_lang l);

#endif
