/* The saga loop: a member of the saga-svc consumer group on `events` and
 * `command-results` (its own group: a projection rebuild or replay never
 * moves it, and it never rewinds). The range assignor gives one member
 * partition p of both topics; a saga lives in the partition of the aggregate
 * that started it and picks its commandIds so their results land in the same
 * partition of command-results (saga.h), so one owner sees every input of a
 * saga, one at a time. Both topics must have one partition count.
 *
 * Per batch, ONE Kafka transaction holds the commands the sagas emit (to
 * `commands`, keyed "<tenant>/<aggregateId>" in the aggregate's partition,
 * signed as cqrs/saga_sign.h says when SAGA_SIGNING_KEY is set, with the
 * traceparent of the event or result that caused them), the new
 * saga instances (compacted `saga-state`, key = saga id, in the saga's
 * partition) and the consumed offsets with the group metadata (KIP-447: a
 * member that lost its partitions is fenced). Deadlines that fell due are
 * fired in the same way, in a batch of their own when no record came.
 * On assignment the partitions' instances are restored from saga-state, so
 * deadlines that fell due while no one owned them fire once, then. Runs on
 * its own thread. */
#ifndef CQRS_SAGA_LOOP_H
#define CQRS_SAGA_LOOP_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"

typedef struct cqrs_saga_loop cqrs_saga_loop_t;

/* Creates the consumer and the transactional producer (transactional.id =
 * prefix + "saga-svc-" + instance_id), makes the topics and initialises
 * transactions. NULL with err when Kafka is unusable or events and
 * command-results differ in partition count. cfg, log and metrics are borrowed. */
cqrs_saga_loop_t *cqrs_saga_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                     const char *instance_id, cqrs_error_t *err);

/* Subscribes and starts the loop thread. False with err. */
bool cqrs_saga_loop_start(cqrs_saga_loop_t *loop, cqrs_error_t *err);

/* Finishes the batch in hand, leaves the group, joins the thread. Safe twice. */
void cqrs_saga_loop_stop(cqrs_saga_loop_t *loop);

/* True (with err) when the loop hit a fatal error and ended; the process must
 * exit non-zero. Any thread. */
bool cqrs_saga_loop_failed(cqrs_saga_loop_t *loop, cqrs_error_t *err);

/* True once the loop joined its group, while Kafka answers. */
bool cqrs_saga_loop_ready(cqrs_saga_loop_t *loop, cqrs_error_t *err);

/* Stops (if needed) and frees. NULL is fine. */
void cqrs_saga_loop_destroy(cqrs_saga_loop_t *loop);

#endif
