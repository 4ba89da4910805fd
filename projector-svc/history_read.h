/* Reading one aggregate's events back from the event_history read model, for
 * time travel (query-svc) and the snapshots projection (projector-svc's
 * reader): version block by version block (CQRS_HISTORY_BLOCK), each query an
 * equality on the aggregate and the block, so FerretDB v1 hands over at most
 * one block's documents per query whatever the history's length. */
#ifndef CQRS_HISTORY_READ_H
#define CQRS_HISTORY_READ_H

#include "projection.h"

#include <mongoc/mongoc.h>

/* The events of aggregate (type, id) in coll (an event_history collection)
 * with versions from..to (to INT64_MAX: up to the last), in version order and
 * as far as they follow each other, into out (owned: release it): the read
 * ends before a missing version (the end of the history, or a gap), and,
 * with time_max (not NULL), before the first event later than time_max (times
 * compare as strings: RFC 3339 in UTC, as events carry them). A version met
 * twice counts once. *too_many (may be NULL) is set, and the read ends, when
 * there would be more than max. False with err (CQRS_ERR_UNAVAILABLE: the
 * store failed; CQRS_ERR_INTERNAL: a document that is no history document)
 * and out empty. */
bool cqrs_history_read(mongoc_collection_t *coll, const char *aggregate_type, const char *aggregate_id, int64_t from,
                       int64_t to, const char *time_max, size_t max, cqrs_events_t *out, bool *too_many,
                       cqrs_error_t *err);

/* Whether coll records version of aggregate (type, id): into *recorded.
 * False with err (CQRS_ERR_UNAVAILABLE) when the store failed. */
bool cqrs_history_has(mongoc_collection_t *coll, const char *aggregate_type, const char *aggregate_id,
                      int64_t version, bool *recorded, cqrs_error_t *err);

#endif
