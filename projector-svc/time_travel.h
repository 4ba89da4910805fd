/* Time travel: a read model's document as it was after the first n events of
 * one aggregate, computed by the read model's own projection (its apply) and
 * the store writer's fold (the document that folding the writes into nothing
 * gives, fold.h): the same code that wrote the live document, applied in
 * memory, so each read model has one definition. Pure: query-svc reads the
 * events (the event_history read model) and hands them here. */
#ifndef CQRS_TIME_TRAVEL_H
#define CQRS_TIME_TRAVEL_H

#include "projection.h"

#include <stddef.h>

/* Applies proj to events[0..n) (one aggregate's, in version order; events
 * proj ignores are skipped) and folds the writes. On success *exists says
 * whether there is a document then (false: no event created it yet) and, if
 * so, doc (initialised either way; bson_destroy it) holds it as the store
 * would, _id included. False with err (doc left empty) when an event is
 * poison for proj or the writes cannot be folded (a history no decider
 * emits: e.g. a creation after an update). */
bool cqrs_time_travel(const cqrs_projection_t *proj, const cqrs_event_t *events, size_t n, bson_t *doc,
                      bool *exists, cqrs_error_t *err);

/* cqrs_time_travel from base, proj's document after the events before
 * events[0] (a snapshot's, cqrs_snapshot_build; NULL: from nothing): the same
 * document as cqrs_time_travel over the whole history, field order included
 * (base goes first as the creation that inserts it). */
bool cqrs_time_travel_from(const cqrs_projection_t *proj, const bson_t *base, const cqrs_event_t *events, size_t n,
                           bson_t *doc, bool *exists, cqrs_error_t *err);

#endif
