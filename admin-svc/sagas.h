/* admin-svc's saga inspection (issue 13): GET /v1/admin/sagas and
 * GET /v1/admin/sagas/{sagaId}, answered from the compacted saga-state topic
 * that saga-svc writes. A reader thread follows the topic from its beginning
 * into memory (the latest instance per saga id; a tombstone removes one).
 *
 * Who sees what: a platform administrator every tenant's sagas; a credential
 * of a tenant with scope admin that tenant's only (another tenant's saga is
 * the 404 an unknown one is). With AUTH=off (loopback only) everyone is a
 * platform administrator. */
#ifndef ADMIN_SAGAS_H
#define ADMIN_SAGAS_H

#include "routes.h"

#include "cqrs/config.h"

#include <bson/bson.h>
#include <stdint.h>

typedef struct admin_sagas admin_sagas_t;

/* Starts the reader thread (it creates saga-state when missing, and retries
 * while Kafka cannot give it: until then the lists are empty) and adds the
 * two routes to http. ctx (auth, log) and cfg are borrowed and must outlive
 * the result. NULL with err when the Kafka client cannot be made. */
admin_sagas_t *admin_sagas_start(const cqrs_config_t *cfg, admin_ctx_t *ctx, cqrs_http_server_t *http,
                                 cqrs_error_t *err);

/* Stops the reader and frees. NULL is fine. Call after the HTTP server stopped. */
void admin_sagas_stop(admin_sagas_t *s);

/* ---- the pure view (saga_view.c) ---- */

/* The state an operator sees: the instance's, or "stuck" for a running saga
 * with a command unanswered, or a deadline overdue, for stuck_after_ms or
 * more at now_ms. Borrowed from instance or static. */
const char *admin_saga_view_state(const bson_t *instance, int64_t now_ms, int64_t stuck_after_ms);

/* Writes the list item of instance into out (an empty document):
 * {sagaId, type, state (view_state), key, tenant, startedAt, updatedAt}; with
 * detail, also steps [{at, trigger, command, commandId, outcome}] and
 * deadlines [{due, what}]. */
void admin_saga_view(const bson_t *instance, const char *view_state, bool detail, bson_t *out);

/* True when s is a state the list may be filtered by. */
bool admin_saga_state_known(const char *s);

/* True when s is a saga type (the list's type filter). */
bool admin_saga_type_known(const char *s);

#endif
