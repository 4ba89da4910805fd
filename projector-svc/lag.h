/* How far a consumer is behind the end of its assigned partitions. */
#ifndef CQRS_LAG_H
#define CQRS_LAG_H

#include "cqrs/metrics.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

/* Sums, over consumer's assignment, the events between its position and the
 * partition's end (from the cached watermarks: no broker round trip) into
 * *total. A partition whose position librdkafka does not know (not fetched
 * since its assignment or a seek) counts from written[p] (the next offset
 * after what the caller has written; n_written of them, negative: unknown,
 * written may be NULL), else from its start. With metrics, also sets
 * projection_lag_events{labels,partition=..} per partition. True when every
 * assigned partition's end is known. */
bool cqrs_consumer_lag(rd_kafka_t *consumer, const int64_t *written, int n_written, cqrs_metrics_t *metrics,
                       const char *labels, int64_t *total);

#endif
