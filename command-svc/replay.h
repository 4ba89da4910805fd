/* Rebuilding aggregates from the event log: what restore does for a partition
 * whose aggregate-state has nothing (the state topic was lost or never
 * written). Each event of the partition, in log order, is upcast to the
 * current version of its type (cqrs/upcast.h) and evolved into its aggregate
 * by the aggregate's decider, exactly as the events were once decided. Pure:
 * the restore shell reads the records. */
#ifndef CQRS_REPLAY_H
#define CQRS_REPLAY_H

#include "aggregate_store.h"

#include "cqrs/event.h"

/* Evolves ev's aggregate (key "<tenant>/<aggregateId>") in store's committed
 * set by ev, creating it at its first event; partition is the record's. An
 * event at or below the aggregate's version was applied already: skipped,
 * true. False with err (the caller logs it; nothing else changes) for an
 * event of an aggregate type no decider knows. When the aggregate cannot be
 * rebuilt past ev (a type or schema version the contract does not know, data
 * that does not decode, a gap in its versions) the aggregate is kept, marked
 * unreadable with the reason (cqrs_aggregate_t.unreadable: its commands are
 * refused, never decided on a state that misses events) and the call returns
 * false with that reason; its later events are skipped. */
bool cqrs_replay_event(cqrs_aggregate_store_t *store, int32_t partition, const cqrs_event_t *ev, cqrs_error_t *err);

#endif
