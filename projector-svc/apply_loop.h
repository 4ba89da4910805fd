/* The apply loop of one projection: a consumer group of its own on `events`
 * (read_committed); batches become one MongoDB bulk write; offsets are
 * committed only after the store acknowledged. A poison event goes to
 * events.dlq with the error, projection and source offset in headers, and the
 * partition moves on. Runs on its own thread. */
#ifndef CQRS_APPLY_LOOP_H
#define CQRS_APPLY_LOOP_H

#include "projection.h"

#include "cqrs/config.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include <mongoc/mongoc.h>

typedef struct cqrs_apply_loop cqrs_apply_loop_t;

/* Creates the consumer (group prefix + "projector-" + projection name) and the
 * DLQ producer, and makes sure the collection's indexes exist. Borrowed: cfg,
 * log, metrics, pool, projection. NULL with err. */
cqrs_apply_loop_t *cqrs_apply_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                       mongoc_client_pool_t *pool, const cqrs_projection_t *projection,
                                       cqrs_error_t *err);
bool cqrs_apply_loop_start(cqrs_apply_loop_t *loop, cqrs_error_t *err);
/* Finishes the batch in hand, commits, leaves the group. Safe twice. */
void cqrs_apply_loop_stop(cqrs_apply_loop_t *loop);
/* True while Kafka answers. */
bool cqrs_apply_loop_ready(cqrs_apply_loop_t *loop, cqrs_error_t *err);
void cqrs_apply_loop_destroy(cqrs_apply_loop_t *loop);

#endif
