/* Aggregates from the event log (see replay.h). */
#include "replay.h"
#include "decider.h"

#include "cqrs/alloc.h"
#include "cqrs/upcast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Marks a unreadable with err's message (set by the caller). */
static void mark(cqrs_aggregate_t *a, const cqrs_error_t *err) {
  free(a->unreadable);
  a->unreadable = cqrs_xstrdup(err->message);
}

bool cqrs_replay_event(cqrs_aggregate_store_t *store, int32_t partition, const cqrs_event_t *ev, cqrs_error_t *err) {
  const cqrs_decider_t *d = cqrs_decider_for_aggregate(ev->aggregate_type);
  if (!d) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "ce_aggregatetype", "no aggregate type \"%s\" (event %s of %s)",
                   ev->aggregate_type, ev->id, ev->aggregate_id);
    return false;
  }
  char *key = cqrs_tenant_key(ev->tenant ? ev->tenant : CQRS_TENANT_DEFAULT, ev->aggregate_id);
  const cqrs_aggregate_t *current = cqrs_aggregate_store_get(store, key);
  free(key);
  if (current && current->unreadable) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "%s", current->unreadable);
    return false;
  }
  if (current && ev->version <= current->version) return true; /* applied already */
  cqrs_aggregate_t *next = current ? cqrs_aggregate_copy(current)
                                   : cqrs_aggregate_new(ev->tenant ? ev->tenant : CQRS_TENANT_DEFAULT,
                                                        ev->aggregate_id, d->aggregate_type, partition);
  next->partition = partition;
  next->replayed = true;
  cqrs_upcast_t up = {0};
  cqrs_error_t why = {0};
  bool ok = false;
  if (current && strcmp(current->aggregate_type, d->aggregate_type) != 0) {
    cqrs_error_set(&why, CQRS_ERR_INVALID, "ce_aggregatetype", "a %s event for the %s", ev->aggregate_type,
                   current->aggregate_type);
  } else if (ev->version != next->version + 1) {
    cqrs_error_set(&why, CQRS_ERR_INVALID, "ce_aggregateversion", "version %lld follows version %lld",
                   (long long)ev->version, (long long)next->version);
  } else if (cqrs_upcast(ev->type, cqrs_event_schema_version(ev), ev->data, &up, &why) &&
             cqrs_event_validate(up.type, up.data, &why)) {
    bson_t *state = bson_new();
    d->evolve(next->state, ev->type, up.data, state);
    if (next->state) bson_destroy(next->state);
    next->state = state;
    next->version = ev->version;
    ok = true;
  }
  cqrs_upcast_cleanup(&up);
  if (!ok) {
    cqrs_error_set(err, CQRS_ERR_INVALID, why.field[0] ? why.field : NULL,
                   "%s %s cannot be restored from the event log past version %lld: event %s at version %lld: %s",
                   d->aggregate_type, ev->aggregate_id, (long long)next->version, ev->type, (long long)ev->version,
                   why.message);
    mark(next, err);
  }
  cqrs_aggregate_store_put(store, next);
  return ok;
}
