/* classify.h - a document's department from keyword rules (deploy/config/departments.yaml):
 *
 *   departments:              # in order: a tie goes to the one listed first
 *     Engineering: [track, signalling, "ട്രാക്ക്", ...]
 *     Finance: [...]
 *   min_score: 2              # optional (default 1): less than this is unclassified
 *
 * A keyword of ASCII letters matches whole words of the text, any case, and their plurals ("fare"
 * finds "Fares" but not "farewell"); one with other characters (Malayalam) matches wherever it
 * occurs, less a final virama, chillu or anusvara, since Malayalam joins suffixes to its words
 * and changes their last letter for it (ബജറ്റ് finds ബജറ്റിൽ). A text adds its weight for every
 * occurrence of a keyword (at most CLASSIFY_HITS_MAX per keyword and text), so a title can weigh
 * more than a body. */
#ifndef INGEST_CLASSIFY_H
#define INGEST_CLASSIFY_H

#include <stddef.h>

#define CLASSIFY_DEPTS_MAX    32
#define CLASSIFY_KEYWORDS_MAX 1000 /* per department */
#define CLASSIFY_KEYWORD_MAX  100  /* bytes */
#define CLASSIFY_HITS_MAX     5
#define CLASSIFY_TEXT_MAX     (512u * 1024u) /* bytes of one text looked at */

struct classify_rules;

/* NULL with "file:line: why" in err when the file is unreadable or breaks the rules above. */
struct classify_rules *classify_load(const char *path, char *err, size_t errlen);
struct classify_rules *classify_load_mem(const char *name, const char *yaml, char *err,
                                         size_t errlen);
void classify_free(struct classify_rules *r); /* accepts NULL */
size_t classify_departments(const struct classify_rules *r);
const char *classify_department(const struct classify_rules *r, size_t i);

/* One document's scores, one per department. */
struct classify_score {
    const struct classify_rules *rules;
    long score[CLASSIFY_DEPTS_MAX];
};

void classify_begin(struct classify_score *s, const struct classify_rules *r);
void classify_add(struct classify_score *s, const char *text, size_t len, int weight);
/* The department scoring highest, if at least min_score; NULL: unclassified. */
const char *classify_result(const struct classify_score *s);

#endif
