/* How fresh each read model is, so that answers can say it (API.md: never hide
 * eventual consistency). The projector publishes, per projection, what it has
 * applied: one document in <MONGO_DB>.projection_progress,
 * {_id: <read model>, lagEvents, caughtUpAtMs, heartbeatMs}; readers
 * (query-svc) turn it into a lag in milliseconds and judge it against the read
 * model's staleness objective (STALENESS_OBJECTIVE_MS, per read model
 * STALENESS_OBJECTIVES; cqrs/config.h).
 *
 * The lag a reader assumes is now - caughtUpAtMs: the time since the
 * projector last had applied everything on the log. While it keeps up,
 * caughtUpAtMs moves with every report (every CQRS_PROGRESS_PERIOD_MS); when
 * it falls behind, stops or hangs, nothing moves it and the lag grows, which
 * is the honest answer: nobody vouches for the read model since then. Clocks
 * of the two hosts are assumed close (NTP). With several projector replicas
 * of one projection each reports its own assignment and the last report
 * wins (a known limit: one replica per projection is the supported shape). */
#ifndef CQRS_FRESHNESS_H
#define CQRS_FRESHNESS_H

#include "cqrs/error.h"

#include <mongoc/mongoc.h>
#include <stdint.h>

#define CQRS_PROGRESS_COLLECTION "projection_progress"
#define CQRS_PROGRESS_PERIOD_MS 500

typedef struct {
  int64_t lag_events;   /* events behind the end of the log at heartbeat_ms; -1: unknown */
  int64_t caught_up_ms; /* wall-clock ms of the last moment it had applied everything; 0: never */
  int64_t heartbeat_ms; /* wall-clock ms of the report */
} cqrs_progress_t;

/* Upserts read_model's progress into db. False with err when the store
 * refused or did not answer (the next report tries again). */
bool cqrs_progress_publish(mongoc_client_t *client, const char *db, const char *read_model, const cqrs_progress_t *p,
                           cqrs_error_t *err);

/* Calls cb for each read model's progress in db. False with err when the
 * store did not answer. */
bool cqrs_progress_read_all(mongoc_client_t *client, const char *db,
                            void (*cb)(void *ctx, const char *read_model, const cqrs_progress_t *p), void *ctx,
                            cqrs_error_t *err);

/* The lag to assume at now_ms (>= 0), or -1 when p never caught up. Pure. */
int64_t cqrs_progress_lag_ms(const cqrs_progress_t *p, int64_t now_ms);

#endif
