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

/* ---- projections that read what is stored ----
 *
 * A projection's apply is pure: one event in, one write out. One read model
 * cannot be written that way: a snapshot (projections/snapshots.c) is another
 * read model's document at a version, i.e. the snapshot before it plus the
 * events since, which no single event carries. Such a projection sets
 * apply_reading instead of apply and is handed a reader: what the apply loop
 * lets it read from the store, or (tests, benchmarks, the accounting) an
 * in-memory log (cqrs_projection_memory_reader). Its own logic stays pure. */

/* Events handed out by a reader, in version order. Release with
 * cqrs_events_release. */
typedef struct {
  cqrs_event_t *v;
  size_t n;
  bool owned; /* the events' members are the reader's copies (else borrowed) */
} cqrs_events_t;

void cqrs_events_release(cqrs_events_t *e);

typedef struct cqrs_projection_reader cqrs_projection_reader_t;

/* Bound to one event's tenant. Every function returns false with
 * CQRS_ERR_UNAVAILABLE when it cannot read now (the store does not answer,
 * or the history has not recorded the events yet): not the event's fault, so
 * the apply loop applies the batch up to that event and reads it again
 * later. */
struct cqrs_projection_reader {
  /* The document id of the projection's own collection as written so far
   * (by earlier batches, or by this batch's writes before the event) into
   * doc (initialised either way: bson_destroy it); *found false when none. */
  bool (*find)(const cqrs_projection_reader_t *r, const char *id, bson_t *doc, bool *found, cqrs_error_t *err);
  /* The events of aggregate (type, id) with versions from..to, from the
   * event history (the event_history read model), as far as they follow each
   * other from `from`: fewer than asked only when a version is missing for
   * good (a log with a gap). Into out (release it). */
  bool (*history)(const cqrs_projection_reader_t *r, const char *aggregate_type, const char *aggregate_id,
                  int64_t from, int64_t to, cqrs_events_t *out, cqrs_error_t *err);
  int snapshot_every; /* SNAPSHOT_EVERY (cqrs/config.h) */
  void *ctx;
};

typedef struct {
  const char *name;           /* the collection, e.g. "user_profiles" */
  const char *aggregate_type; /* events of other aggregates are not its business;
                                 NULL: every aggregate's events (event_history) */
  /* Builds the write for ev into out (initialises filter and update). Returns
   * false with err for an event it cannot apply (malformed data): a poison
   * event. Sets *skip (and returns true) for an event type it ignores. */
  bool (*apply)(const cqrs_event_t *ev, cqrs_write_t *out, bool *skip, cqrs_error_t *err);
  /* Instead of apply (which is then NULL), for a projection that reads (see
   * above): apply's contract with a reader r, plus false with r's
   * CQRS_ERR_UNAVAILABLE, which is not poison. With *skip set, a message in
   * err (code CQRS_ERR_NOT_FOUND) says why a write that was due is not made
   * (the loop logs it). */
  bool (*apply_reading)(const cqrs_projection_reader_t *r, const cqrs_event_t *ev, cqrs_write_t *out, bool *skip,
                        cqrs_error_t *err);
  /* The indexes its queries need, as createIndexes "indexes" entries. */
  void (*indexes)(bson_t *array);
  /* The names of those indexes that lists page on by keyset, (equalities...,
   * sort key, _id), every key a string in every document; NULL-terminated,
   * NULL: none. On FerretDB over PostgreSQL the projector mirrors each as a
   * btree in PostgreSQL (indexes.h) and query-svc reads those lists' pages
   * through it (query-svc/pg_lists.h). */
  const char *const *keysets;
  /* True for the read model whose documents time travel computes for its
   * aggregate_type (query-svc's asOf / atVersion reads): the snapshots
   * projection keeps its documents every K versions (cqrs_snapshot_model).
   * At most one per aggregate type (the registry's unit test checks it); it
   * must set apply (time travel folds in memory, with no reader). */
  bool time_travel;
} cqrs_projection_t;

/* proj's apply, or its apply_reading with r. A reading projection given no
 * reader (r NULL) fails with CQRS_ERR_INTERNAL. out is initialised whatever
 * the outcome. */
bool cqrs_projection_apply(const cqrs_projection_t *proj, const cqrs_projection_reader_t *r, const cqrs_event_t *ev,
                           cqrs_write_t *out, bool *skip, cqrs_error_t *err);

void cqrs_write_cleanup(cqrs_write_t *w);

/* n zeroed writes (n 0: room for one) aligned as their bson_t members require
 * (libbson declares 128 bytes; calloc promises 16). Free with free().
 * Aborts when out of memory. */
cqrs_write_t *cqrs_writes_new(size_t n);

/* The document that w, an upsert whose filter's _id is id, makes when it
 * inserts: {_id, its $setOnInsert's fields, its $set's fields}, into doc
 * (initialised either way). False when w is not such a write. */
bool cqrs_write_document(const cqrs_write_t *w, const char *id, bson_t *doc);

/* A reader over memory (cqrs_projection_reader_t), for tests, benchmarks and
 * the accounting: the history from events[0..n) (any aggregates, any order;
 * a version met twice counts once), find from the writes made so far,
 * writes[0..*n_writes) (cqrs_write_document of the last one to that _id).
 * All borrowed; one tenant's. Can't fail. */
typedef struct {
  const cqrs_event_t *events;
  size_t n;
  const cqrs_write_t *writes;
  const size_t *n_writes;
} cqrs_memory_reader_t;

void cqrs_projection_memory_reader(cqrs_projection_reader_t *r, cqrs_memory_reader_t *m, int snapshot_every);

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

/* The field every read model's document keeps its aggregate's version in:
 * what the guard below filters on, and what the store's own guard keeps
 * from going back where the store's guarded update is not atomic
 * (indexes.h, cqrs_ferretdb_pg_monotonic). */
#define CQRS_PROJECTION_VERSION "version"

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
extern const cqrs_projection_t cqrs_snapshots_projection;

/* The event history read model's fields (projections/event_history.c), for
 * the routes that read it: one document per event, _id = the event id. */
#define CQRS_HISTORY_EVENT_ID "eventId"
#define CQRS_HISTORY_TYPE "type"
#define CQRS_HISTORY_SCHEMA_VERSION "schemaVersion"
/* Not stored: what the audit trail shows next to the data it upcasts
 * (cqrs_event_history_upcast), the schemaVersion the event was written at. */
#define CQRS_HISTORY_WRITTEN_SCHEMA_VERSION "writtenSchemaVersion"
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

/* An event_history document as the audit trail shows it, into out
 * (initialised here; the caller destroys it, also after a failure): doc with
 * its data brought up to the current version of its type by the contract's
 * upcasters (cqrs_upcast), schemaVersion the version the data now has and,
 * right after it, writtenSchemaVersion the one stored (1 when the document
 * has none: recorded before schema versions were). Read time, so documents
 * stored before need no rebuild. An event the contract cannot read (unknown
 * type or version, or a failing upcast) keeps its data as written, with
 * schemaVersion = writtenSchemaVersion: false with err saying why, out
 * filled all the same. */
bool cqrs_event_history_upcast(const bson_t *doc, bson_t *out, cqrs_error_t *err);

/* ---- snapshots (projections/snapshots.c) ----
 *
 * Every SNAPSHOT_EVERY (K) versions of an aggregate, the document of the
 * read model that time travel replays for its type (cqrs_snapshot_model) at
 * that version: {_id, model, aggregateType, aggregateId, version, time (of
 * the event at that version), timeMax (the latest time of the events up to
 * it), document}. Time travel to version v starts from the snapshot at
 * floor(v / K) * K and folds fewer than K events after it. */
#define CQRS_SNAPSHOTS "snapshots"
#define CQRS_SNAPSHOT_MODEL "model"
#define CQRS_SNAPSHOT_AGGREGATE_TYPE "aggregateType"
#define CQRS_SNAPSHOT_AGGREGATE_ID "aggregateId"
#define CQRS_SNAPSHOT_VERSION "version"
#define CQRS_SNAPSHOT_TIME "time"
#define CQRS_SNAPSHOT_TIME_MAX "timeMax"
#define CQRS_SNAPSHOT_DOCUMENT "document"

/* The read model whose snapshots aggregate_type's aggregates get: the
 * registered projection (cqrs_projections) of that aggregate type marked
 * time_travel, or NULL (none, or aggregate_type NULL). */
const cqrs_projection_t *cqrs_snapshot_model(const char *aggregate_type);

/* The _id of model's snapshot of aggregate_id at version,
 * "<model>|<aggregate id>|<version>": every lookup is an equality on _id
 * (FerretDB v1 pushes only equalities down). A string to bson_free. */
char *cqrs_snapshot_id(const char *model, const char *aggregate_id, int64_t version);

/* The snapshot write of model for aggregate events[0..n) (consecutive
 * versions, n >= 1) after base (the snapshot at the version before
 * events[0]; NULL when events[0] is the aggregate's first): an upsert of the
 * snapshot document at events[n-1]'s version, into out (initialised either
 * way). False with err when model cannot fold them (a poison event among
 * them, cqrs_time_travel) or there is no document at that version yet. */
bool cqrs_snapshot_build(const cqrs_projection_t *model, const bson_t *base, const cqrs_event_t *events, size_t n,
                         cqrs_write_t *out, cqrs_error_t *err);

/* A snapshot document's document (borrowed from snapshot into doc, a static
 * bson_t), version and timeMax (borrowed; "" when absent). False when
 * snapshot is not one of model's snapshots of aggregate_id. */
bool cqrs_snapshot_parts(const bson_t *snapshot, const char *model, const char *aggregate_id, bson_t *doc,
                         int64_t *version, const char **time_max);

/* Time travel to a moment starts from the last snapshot j (at version j * K)
 * whose events are all at or before it. probe(ctx, j) says whether snapshot
 * j exists and is within (its timeMax at or before the moment); false with
 * err when it could not look. Assuming within holds up to some j and not
 * after (timeMax grows with j; a missing snapshot counts as not within),
 * finds that j by doubling then halving (about 2 log2(j) probes) into *j (0:
 * none). With gaps it still returns a j that is within, or 0. */
typedef bool (*cqrs_snapshot_probe_cb)(void *ctx, int64_t j, bool *within, cqrs_error_t *err);
bool cqrs_snapshot_search(cqrs_snapshot_probe_cb probe, void *ctx, int64_t *j, cqrs_error_t *err);

#endif
