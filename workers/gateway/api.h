/* api.h - sy-gateway's grievance REST API: JSON in and out, every route behind gw_auth_check.
 * The full contract, with every field, is schemas/openapi.yaml; this is its summary.
 *
 * Writes become messages for sy-grievance and are answered 202 once the broker confirmed them:
 *   POST /api/grievances/              grievance.submitted      chatbot agent admin
 *   PUT  /api/grievances/{id}/         grievance.updated        chatbot agent admin
 *   PUT  /api/grievances/{id}/status/  grievance.status_update  agent admin
 *   POST /api/users/                   grievance.user_upsert    chatbot agent admin
 *   PUT  /api/users/{id}/              grievance.user_upsert    chatbot agent admin
 *   POST /api/files/                   grievance.file_attached  chatbot agent admin
 * The 202 body: {"id": "<message id>", "status": "accepted", plus the resource's id:
 * "grievance_id", "phone_number" or "file_id"}. Each message's data carries "actor", who asked
 * ("apikey:<key id>" or "jwt:<sub>", "jwt" alone for a token without sub).
 *
 * Reads come from PostgreSQL (migration 0004), for every role:
 *   GET /api/grievances/{id}/          the grievance, its user and its attachments' metadata
 *   GET /api/grievances/{id}/status/   its status and history, newest first (at most 100)
 *   GET /api/users/{id}/               the user and their latest grievance ids (at most 100)
 *   GET /api/files/{id}/               an attachment's metadata (its bytes are in the file store)
 * 404 "not_found" when there is no such row: a write answered 202 moments ago may still be on
 * its way through sy-grievance. 503 "unavailable" with Retry-After when PostgreSQL cannot be
 * reached or its grievance tables are missing (the body then says to run syctl migrate).
 *
 * Ids: a grievance's and a file's id is 1..64 of [A-Za-z0-9._-], chosen by the client (POST
 * /api/files/ makes a UUID when file_id is absent); a user's id is their phone number in E.164
 * form, '+' and 7..15 digits, the first not 0 ("%2B" works for '+' in a path).
 *
 * Bad input gets 400 "invalid" naming the field in "field" (a JSON path such as
 * "user_info.phone_number" or "files[1].file_data"): not JSON, not an object, a field missing,
 * of the wrong type, too long or out of its set, bad base64, a body id that differs from the
 * path's. Fields the API does not know are refused too ("unknown field"), so a typo is not
 * silently dropped. A 400 publishes nothing.
 *
 * Idempotency-Key (1..64 of [A-Za-z0-9._-]): a write that carries one is published with the
 * message id "idem:<64 hex>", the SHA-256 of the message type, the actor and the key (NUL
 * between them), so a client's retry after a lost answer is the same message, which consumers
 * deduplicate, while the same key from another caller or for another kind of write is not.
 * Without it each write gets a fresh UUID.
 *
 * A malformed id in a path is 400 naming the field it stands for: "grievance_id",
 * "phone_number" or "file_id".
 */
#ifndef GW_API_H
#define GW_API_H

#include "http.h"

#define GW_API_ID_MAX    64  /* bytes of a grievance or file id */
#define GW_API_FILES_MAX 10  /* attachments in one submission */
#define GW_API_LIST_MAX  100 /* rows in a history or a user's grievance list */
#define GW_API_ACTOR_MAX 200 /* bytes of an actor */
#define GW_API_IDEM_MAX  64  /* bytes of an Idempotency-Key */

/* The routes (ctx is the struct gw). */
void gw_api_grievance_create(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_grievance_get(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_grievance_update(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_status_get(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_status_update(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_user_create(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_user_get(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_user_update(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_file_create(void *ctx, const struct gw_request *rq, struct gw_response *rs);
void gw_api_file_get(void *ctx, const struct gw_request *rq, struct gw_response *rs);

/* Whether s is a grievance or file id; a user id (E.164). */
int gw_api_id_ok(const char *s);
int gw_api_phone_ok(const char *s);

#endif
