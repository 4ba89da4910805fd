/* A projection turns events into writes on one read collection. Pure: the
 * apply loop does the I/O. Adding a read model = one file under projections/
 * + one line in projections/registry.c. */
#ifndef CQRS_PROJECTION_H
#define CQRS_PROJECTION_H

#include "cqrs/error.h"
#include "cqrs/event.h"

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
  const char *aggregate_type; /* events of other aggregates are not its business */
  /* Builds the write for ev into out (initialises filter and update). Returns
   * false with err for an event it cannot apply (malformed data): a poison
   * event. Sets *skip (and returns true) for an event type it ignores. */
  bool (*apply)(const cqrs_event_t *ev, cqrs_write_t *out, bool *skip, cqrs_error_t *err);
  /* The indexes its queries need, as createIndexes "indexes" entries. */
  void (*indexes)(bson_t *array);
} cqrs_projection_t;

void cqrs_write_cleanup(cqrs_write_t *w);

/* Helpers every projection shares. */

/* Appends {_id: ev's aggregate, version: {$lt: ev's version}} to filter: only
 * a document older than the event matches. */
void cqrs_projection_match_older(bson_t *filter, const cqrs_event_t *ev);

/* Appends to an indexes array, at position i, an ascending index called name
 * on the NULL-terminated list of fields. */
void cqrs_projection_index(bson_t *array, uint32_t i, const char *name, ...) __attribute__((sentinel));

/* All projections, NULL-terminated. */
extern const cqrs_projection_t *const cqrs_projections[];

/* A projection by name, or NULL. */
const cqrs_projection_t *cqrs_projection_find(const char *name);

extern const cqrs_projection_t cqrs_user_profiles_projection;
extern const cqrs_projection_t cqrs_order_summaries_projection;
extern const cqrs_projection_t cqrs_customers_projection;

#endif
