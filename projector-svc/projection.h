/* A projection turns events into writes on one read collection. Pure: the
 * apply loop does the I/O. Adding a read model = one file under projections/
 * + one line in projections/registry.c.
 *
 * Events come through the contract (libshared cqrs/events.h): a projection is
 * a table of handlers keyed by the contract's descriptors, each given the
 * event decoded (cqrs_projection_dispatch); no event name or event field is
 * spelled here (the names of the read documents' fields are the read model's,
 * API.md). Using a new event field = one line in the contract + the handler
 * that writes it; handling another event type = one row. */
#ifndef CQRS_PROJECTION_H
#define CQRS_PROJECTION_H

#include "cqrs/error.h"
#include "cqrs/event.h"
#include "cqrs/events.h"
#include "cqrs/ferretdb_keyset.h"

#include <bson/bson.h>

/* One conditional write. Every write is guarded by the document's version so
 * applying an event twice, or an older event after a newer one, matches
 * nothing and changes nothing. */
typedef struct {
  bson_t filter;
  bson_t update;
  bool upsert;
} cqrs_write_t;

typedef struct {
  const char *name;           /* the collection, e.g. "user_profiles" */
  const char *aggregate_type; /* events of other aggregates are not its business;
                                 NULL: every aggregate's events (event_history) */
  /* Builds the write for ev into out (initialises filter and update). Returns
   * false with err for an event it cannot apply (malformed data): a poison
   * event. Sets *skip (and returns true) for an event type it ignores. */
  bool (*apply)(const cqrs_event_t *ev, cqrs_write_t *out, bool *skip, cqrs_error_t *err);
  /* The indexes its queries need, as createIndexes "indexes" entries. */
  void (*indexes)(bson_t *array);
  /* The names of those indexes that lists page on by keyset, (equalities...,
   * sort key, _id), every key a string in every document; NULL-terminated,
   * NULL: none. On FerretDB over PostgreSQL the projector mirrors each as a
   * btree in PostgreSQL (indexes.h) and query-svc reads those lists' pages
   * through it (query-svc/pg_lists.h). */
  const char *const *keysets;
} cqrs_projection_t;

void cqrs_write_cleanup(cqrs_write_t *w);

/* One row of a projection's dispatch table: the event type it handles and the
 * write that event becomes. apply gets ev (for its aggregate id and version)
 * and its data decoded (the union member named after the type), and fills w
 * (already initialised, upsert false). Can't fail: the contract's decode
 * already refused malformed data. */
typedef struct {
  const cqrs_event_type_t *type;
  void (*apply)(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w);
} cqrs_projection_handler_t;

/* A projection's apply over its table rows[0..n) (each row a type at its
 * current version): initialises w (as apply must, whatever the outcome),
 * upcasts ev's data to the current version of its type (cqrs/upcast.h: every
 * path that applies events, live, rebuild, replay, redrive and time travel,
 * comes through here), finds the row of its type, decodes the data through
 * the contract and runs the row. An event type without a row (another read
 * model's) sets *skip and returns true. A poison event, false with the
 * contract's CQRS_ERR_INVALID: a type or schema version the contract does not
 * know (the error names both), or data that does not decode (it names the
 * field). */
bool cqrs_projection_dispatch(const cqrs_projection_handler_t *rows, size_t n, const cqrs_event_t *ev,
                              cqrs_write_t *w, bool *skip, cqrs_error_t *err);

/* Helpers every projection shares. */

/* Appends {_id: ev's aggregate, version: {$lt: ev's version}} to filter: only
 * a document older than the event matches. */
void cqrs_projection_match_older(bson_t *filter, const cqrs_event_t *ev);

/* Appends to an indexes array, at position i, an ascending index called name
 * on the NULL-terminated list of fields. */
void cqrs_projection_index(bson_t *array, uint32_t i, const char *name, ...) __attribute__((sentinel));

/* The keys of proj's index called name (one of proj->indexes), in order,
 * copied into keys[0..max). Returns how many; 0 when proj has no such index
 * or it has more than max keys. */
size_t cqrs_projection_index_keys(const cqrs_projection_t *proj, const char *name, char keys[][64], size_t max);

/* Whether proj's list with filter, sorted on (sort_field, _id), pages on one
 * of proj's keyset indexes: true with q filled as cqrs_keyset_match does
 * (strings borrowed from filter). This function can't fail. */
bool cqrs_projection_keyset_match(const cqrs_projection_t *proj, const bson_t *filter, const char *sort_field,
                                  cqrs_keyset_query_t *q);

/* All projections, NULL-terminated. */
extern const cqrs_projection_t *const cqrs_projections[];

/* A projection by name, or NULL. */
const cqrs_projection_t *cqrs_projection_find(const char *name);

extern const cqrs_projection_t cqrs_user_profiles_projection;
extern const cqrs_projection_t cqrs_order_summaries_projection;
extern const cqrs_projection_t cqrs_customers_projection;
extern const cqrs_projection_t cqrs_event_history_projection;

/* The event history read model's fields (projections/event_history.c), for
 * the routes that read it: one document per event, _id = the event id. */
#define CQRS_HISTORY_EVENT_ID "eventId"
#define CQRS_HISTORY_TYPE "type"
#define CQRS_HISTORY_SCHEMA_VERSION "schemaVersion"
#define CQRS_HISTORY_AGGREGATE_TYPE "aggregateType"
#define CQRS_HISTORY_AGGREGATE_ID "aggregateId"
#define CQRS_HISTORY_VERSION "version"
#define CQRS_HISTORY_TIME "time"
#define CQRS_HISTORY_CORRELATION_ID "correlationId"
#define CQRS_HISTORY_CAUSATION_ID "causationId"
#define CQRS_HISTORY_TENANT "tenant"
#define CQRS_HISTORY_DATA "data"
/* Who caused the event (its ce_authtype and ce_authid, cqrs/event.h):
 * {"type": "app_user", "id": "<the JWT's sub>"}, id null when the event names
 * only a type. Absent when the event does not say (written before it was
 * recorded); the routes show that as null. */
#define CQRS_HISTORY_ACTOR "actor"
#define CQRS_HISTORY_ACTOR_TYPE "type"
#define CQRS_HISTORY_ACTOR_ID "id"
/* (version - 1) / CQRS_HISTORY_BLOCK: an aggregate's events in blocks of
 * consecutive versions, so a page of its history is an equality on the block
 * (FerretDB v1 pushes only equalities down to PostgreSQL: a range or a sort
 * on version would bring every event of the aggregate to FerretDB first). */
#define CQRS_HISTORY_VERSION_BLOCK "versionBlock"
#define CQRS_HISTORY_BLOCK 100
/* The hour of the time, "2026-03-01T12" (null for a time not in UTC with a
 * 'Z'): events of a type in a time window are read hour by hour, each an
 * equality, for the same reason. */
#define CQRS_HISTORY_TIME_HOUR "timeHour"
#define CQRS_HISTORY_HOUR_LEN 13

/* The event an event_history document records, back into ev (caller storage,
 * release with cqrs_event_cleanup, also after a failure): what time travel
 * hands to the projections. source and traceparent are not recorded (NULL);
 * the actor comes back as auth_type and auth_id.
 * False with CQRS_ERR_INVALID naming the field when doc is not such a
 * document. */
bool cqrs_event_history_to_event(const bson_t *doc, cqrs_event_t *ev, cqrs_error_t *err);

#endif
