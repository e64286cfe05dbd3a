/* doc.h - a YAML document as a read-only tree, with line numbers for error messages. */
#ifndef SY_DOC_H
#define SY_DOC_H

#include <stdbool.h>
#include <stddef.h>

struct sy_doc;  /* owns every node */
struct sy_node; /* borrowed from its document */

enum sy_node_kind { SY_NODE_SCALAR, SY_NODE_MAP, SY_NODE_SEQ };

/* Limits applied while parsing, before the tree grows past them. */
#define SY_DOC_MAX_BYTES (1024u * 1024u) /* file or buffer size */
#define SY_DOC_MAX_DEPTH 32              /* nested maps and sequences */
#define SY_DOC_MAX_NODES 100000u         /* scalars (keys included), maps and sequences */

/* Parses a YAML file (one document; anchors and aliases are refused; at most 1 MiB, depth 32,
 * 100k nodes). On failure returns NULL and writes "path:line: why" into err.
 *
 * Only the structure is interpreted: every scalar keeps its text as written (tags are ignored),
 * so `~`, `null` and an empty value are scalars "~", "null" and "" (sy_node_is_null tells them
 * apart from quoted text). Map keys must be scalars and unique ("path:line: duplicate key 'k'
 * (first at line N)"); a scalar holding a NUL character is refused. */
struct sy_doc *sy_doc_load_file(const char *path, char *err, size_t errlen);
/* Same from memory; `name` is used in error messages. */
struct sy_doc *sy_doc_load_mem(const char *name, const char *text, size_t len, char *err,
                               size_t errlen);
void sy_doc_destroy(struct sy_doc *doc);

/* The root node (NULL for an empty document, or one holding only a null) and the name given
 * at load. Every accessor below accepts a NULL node (a missing key) and returns 0, NULL or
 * false for it, so lookups can be chained. */
const struct sy_node *sy_doc_root(const struct sy_doc *doc);
const char *sy_doc_name(const struct sy_doc *doc);

enum sy_node_kind sy_node_kind(const struct sy_node *n);
int sy_node_line(const struct sy_node *n);
/* Scalar text (NUL-terminated), or NULL for a map or sequence. */
const char *sy_node_str(const struct sy_node *n);
/* True for NULL and for an unquoted scalar that YAML reads as null: "", "~", "null", "Null",
 * "NULL". A quoted "null" is text, not null. */
bool sy_node_is_null(const struct sy_node *n);
/* True for a scalar written without quotes: its text may be read as a number, boolean or
 * null; a quoted scalar is always text. */
bool sy_node_plain(const struct sy_node *n);
/* Number of entries of a map or sequence (0 for a scalar). */
size_t sy_node_len(const struct sy_node *n);
/* i-th element of a sequence, or i-th value of a map (with its key in *key). */
const struct sy_node *sy_node_at(const struct sy_node *n, size_t i, const char **key);
/* Value of `key` in a map, or NULL. */
const struct sy_node *sy_node_get(const struct sy_node *map, const char *key);

/* Typed scalar reads: 0, or -SY_EINVAL with "line N: key: why" in err, where key is the path
 * from the root ("retry.delays[2]"). Integers are decimal with an optional sign, nothing else
 * (no spaces, "0x", or trailing text), within [min, max]. Doubles are what strtod reads from
 * the whole text, finite. Booleans are true/false, yes/no, on/off, in any case. */
int sy_node_int(const struct sy_node *n, long long min, long long max, long long *out, char *err,
                size_t errlen);
int sy_node_double(const struct sy_node *n, double *out, char *err, size_t errlen);
int sy_node_bool(const struct sy_node *n, bool *out, char *err, size_t errlen);

/* Expands ${NAME} and ${NAME:-default} in a configuration value from the environment into out
 * (outsz bytes, NUL included). As in the shell, the default also stands for a variable set to
 * ""; it is taken literally up to the first '}'. Any other '$' is kept as written. Names are
 * [A-Za-z_][A-Za-z0-9_]*, at most SY_DOC_VAR_NAME_MAX characters. 0, or -SY_ECONFIG with the
 * reason alone in why (a variable unset and without a default, a bad name, an unclosed "${",
 * a result that does not fit): the caller adds the file, line and key. */
#define SY_DOC_VAR_NAME_MAX 128
int sy_doc_expand_env(const char *in, char *out, size_t outsz, char *why, size_t whylen);

/* Checks that every key of `map` is in the NULL-terminated `allowed` list. On the first unknown
 * key returns -SY_ECONFIG with "name:line: unknown key 'k' (allowed: a, b)" in err. */
int sy_node_check_keys(const struct sy_doc *doc, const struct sy_node *map,
                       const char *const *allowed, char *err, size_t errlen);

#endif
