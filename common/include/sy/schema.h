/* schema.h - message schemas loaded from schemas/messages/<type>.yaml, checked before any
 * handler sees a message.
 *
 * A schema file:
 *   type: grievance.submitted        # must equal the file name without .yaml
 *   versions: [1]                    # envelope versions this runtime accepts
 *   description: text
 *   data:                            # a field spec; data is always a map
 *     fields:
 *       grievance_id: {type: str, required: true, min_len: 1, max_len: 64}
 *       status: {type: str, enum: [pending, submitted]}
 *       priority: {type: int, min: 0, max: 9}
 *       files:
 *         type: array
 *         max_items: 20
 *         items: {type: map, fields: {file_id: {type: str, required: true}}}
 * Field spec keys: type (str, int, float, bool, bin, map, array, any), required, nullable,
 * min_len/max_len (bytes of str or bin), min/max (int, float), enum (str), pattern-free by
 * design; map: fields; array: items, min_items, max_items; description (any spec, text only).
 * Fields a schema does not name are allowed and ignored (newer producers may add them).
 * `data` itself takes only fields and description (its type, if given, must be map); a file
 * without `data` accepts any map. Ints must fit int64; floats accept ints; a nil value passes
 * only `nullable` fields and `any`; `required` means present and, unless nullable, not nil. */
#ifndef SY_SCHEMA_H
#define SY_SCHEMA_H

#include <stddef.h>

struct sy_schemas; /* all schemas of a directory */
struct sy_msg;

/* Loads every *.yaml in dir. A bad file fails the whole load with "file:line: why" in err. */
struct sy_schemas *sy_schemas_load(const char *dir, char *err, size_t errlen);
void sy_schemas_destroy(struct sy_schemas *s);

/* Number of types loaded; whether `type` has a schema. */
size_t sy_schemas_count(const struct sy_schemas *s);
int sy_schemas_has(const struct sy_schemas *s, const char *type);

/* Checks a decoded message: its type has a schema, its version is accepted, its data matches.
 * 0, or -SY_ESCHEMA with a reason naming the field ("data.user_info.phone_number: required",
 * "unknown type 'x'", "version 3 not accepted for 'x' (accepts 1)") in err. Thread-safe. */
int sy_schemas_check(const struct sy_schemas *s, const struct sy_msg *msg, char *err,
                     size_t errlen);

#endif
