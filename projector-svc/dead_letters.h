/* Dead letters of the projector: a poison event (undecodable, or refused by
 * the store after bounded retries) goes to events.dlq unchanged, with its
 * original headers plus dlq_error, dlq_projection, dlq_source_topic,
 * dlq_source_partition and dlq_source_offset; dlq_events_total counts them
 * and each gets an error log line. One producer (idempotent) per apply loop. */
#ifndef CQRS_DEAD_LETTERS_H
#define CQRS_DEAD_LETTERS_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include <librdkafka/rdkafka.h>

typedef struct cqrs_dead_letters cqrs_dead_letters_t;

/* For projection (borrowed), whose events come from source_topic (copied).
 * Borrowed: cfg, log, metrics. NULL with err when the producer cannot start. */
cqrs_dead_letters_t *cqrs_dead_letters_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                           const char *projection, const char *source_topic, cqrs_error_t *err);
/* Sends m with error. Any thread. Not durable until cqrs_dead_letters_flush. */
void cqrs_dead_letters_send(cqrs_dead_letters_t *dl, const rd_kafka_message_t *m, const char *error);
/* Waits up to timeout_ms until every dead letter sent is acknowledged. */
void cqrs_dead_letters_flush(cqrs_dead_letters_t *dl, int timeout_ms);
/* Flushes (bounded) and frees. NULL is fine. */
void cqrs_dead_letters_destroy(cqrs_dead_letters_t *dl);

#endif
