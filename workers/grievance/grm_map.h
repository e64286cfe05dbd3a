/* grm_map.h - how a grievance becomes a row of the legacy GRM's MySQL table and back, read from
 * deploy/config/grm.yaml. Table names, column names and status values come only from that
 * file, never from code: each site points it at its own GRM.
 *
 * The file (schemas/sql/grm-mysql/0001_grm.sql is the GRM it describes by default):
 *   enabled: ${GRM_INTEGRATION_ENABLED:-true}   # false: PostgreSQL only, GRM skipped
 *   table: grievances                           # the GRM table
 *   key: chatbot_ref                            # GRM column holding our grievance_id (unique)
 *   updated: updated_at                         # GRM column set whenever a row changes
 *   fields:                                     # our field -> GRM column
 *     user_full_name: complainant_name
 *     user_contact_phone: contact_phone
 *     grievance_details: grievance_description
 *     grievance_location: location
 *     classification_status: status
 *     project_type: project_type
 *     submitted_at: submitted_at
 *   custom:                                     # a site's own fields: custom.<name> -> column
 *     ward_no: ward_number
 *   status:                                     # our status -> GRM's value (one-to-one)
 *     pending: Pending
 *     submitted: Submitted
 *     under_evaluation: Under Evaluation
 *     resolved: Resolved
 *     denied: Denied
 *   pull_batch: 500                             # GRM rows read per pull round (1..10000)
 *
 * table, key and updated are required; enabled defaults to true, pull_batch to 500. Our
 * fields: grievance_id (always written, to `key`), user_full_name, user_contact_phone,
 * grievance_details, grievance_location, classification_status (our status, written as its
 * mapped value), project_type, submitted_at (the grievance's created_at, UTC
 * "YYYY-MM-DD HH:MM:SS"). Any of them may be left out of `fields` except
 * classification_status; at most 64 custom fields, their names 1..64 of [A-Za-z0-9_]. Every
 * status of ours must be mapped, to a value of 1..255 bytes, and no two to one GRM value
 * (compared without regard to case, as MySQL's usual collations compare them). Table and
 * column names are 1..64 bytes, quoted when used; no column is written twice (names compared
 * without regard to case) and `updated` is never written: the GRM sets it. Without a
 * `fields`, `status` or `custom` section (or one written with no value) the defaults apply: the
 * fields as above, each status to itself (pending -> pending, ...), no custom fields.
 * Every value may come from the environment: ${NAME} or ${NAME:-default} (sy_doc_expand_env);
 * keys are taken as written. */
#ifndef GRIEVANCE_GRM_MAP_H
#define GRIEVANCE_GRM_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct grm_map;

/* NULL with "path:line: why" in err for a bad file, naming the key (a missing or unreadable
 * file is "path: why"). Checks everything, whether enabled or not. */
struct grm_map *grm_map_load(const char *path, char *err, size_t errlen);
void grm_map_free(struct grm_map *m);

bool grm_map_enabled(const struct grm_map *m);
size_t grm_map_pull_batch(const struct grm_map *m);

/* Our status to GRM's value and back; NULL for a value the map does not hold. The GRM's value
 * is matched without regard to ASCII case. */
const char *grm_status_to_grm(const struct grm_map *m, const char *ours);
const char *grm_status_from_grm(const struct grm_map *m, const char *theirs);

/* What one row is made of. lookup(ud, field) gives our field's value as text, or NULL for
 * SQL NULL; field is one of ours above, or "custom.<name>". */
typedef const char *(*grm_lookup_fn)(void *ud, const char *field);

/* Columns of an upsert row: the key first, then the mapped fields, then the custom ones. */
size_t grm_map_ncols(const struct grm_map *m);
/* SQL of one INSERT of nrows rows (1..1000) that updates every column but the key when the
 * key exists: INSERT INTO `t` (`key`, ...) VALUES (?, ...), ... ON DUPLICATE KEY UPDATE
 * `c`=VALUES(`c`), ...  The caller frees it. */
char *grm_map_upsert_sql(const struct grm_map *m, size_t nrows);
/* Fills params[0 .. grm_map_ncols) for one grievance, in the upsert's column order (pointers
 * are lookup's, or the map's for the status). -1 with err naming the field when our status has
 * no GRM value or grievance_id is missing. */
int grm_map_row(const struct grm_map *m, grm_lookup_fn lookup, void *ud, const char **params,
                char *err, size_t errlen);

/* SQL of a pull round: the rows changed after a watermark, oldest first, at most pull_batch:
 *   SELECT `key`, DATE_FORMAT(`updated`, '%Y-%m-%d %H:%i:%s.%f'), `status column`
 *   FROM `t` WHERE `updated` > ? OR (`updated` = ? AND `key` > ?)
 *   ORDER BY `updated`, `key` LIMIT <pull_batch>
 * Parameters: the watermark's time twice, then its key. Columns: 0 key, 1 updated, 2 status
 * (GRM's value). The caller frees it. */
char *grm_map_pull_sql(const struct grm_map *m);
/* The GRM table and column names (unquoted), for messages and syctl; a field's column is NULL
 * when the map leaves it out ("grievance_id" gives the key column, "custom.<name>" a custom
 * one). */
const char *grm_map_table(const struct grm_map *m);
const char *grm_map_column(const struct grm_map *m, const char *field);

#endif
