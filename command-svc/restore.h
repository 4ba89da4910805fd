/* Restoring the aggregates of newly assigned partitions from the compacted
 * aggregate-state topic (read_committed), before their commands are
 * processed; from the event log for a partition aggregate-state has nothing
 * for while the log has events (the state topic was lost). */
#ifndef CQRS_RESTORE_H
#define CQRS_RESTORE_H

#include "aggregate_store.h"

#include "cqrs/config.h"
#include "cqrs/log.h"

#include <librdkafka/rdkafka.h>

/* Reads partitions parts (their partition numbers; the topic names in parts
 * are ignored) of state_topic from the beginning to the end and puts every
 * aggregate into store. A partition of state_topic without records whose
 * partition of events_topic has events is rebuilt from those events instead,
 * each upcast to its current version and evolved (replay.h). Logs progress
 * every few seconds. A malformed record is logged and skipped; an event that
 * cannot be read is logged and its aggregate refuses commands (never a
 * crash).
 *
 * Bounded: it gives up past cfg->restore_timeout_ms (RESTORE_TIMEOUT_MS)
 * from the call, and when stopping(stop_ctx) turns true (stopping may be
 * NULL: never), which it asks at least every 100 ms. A Kafka failure on the
 * way (the broker lost, a fetch error) is logged as a warning with the time
 * left and retried with backoff, each partition resuming at its next record,
 * until the deadline. False with err (CQRS_ERR_UNAVAILABLE) when the deadline
 * passed (naming what failed last), when the restore consumer cannot be
 * made, or when stopping turned true (the message says it was stopped).
 * store then holds what was read so far (the caller drops those
 * partitions).
 *
 * It reads with one consumer per core (at most 4, at most one per
 * partition), each on a thread of its own over a share of the partitions,
 * all joined before it returns; stopping is called from those threads, so it
 * must be thread-safe (an atomic flag). Thread-safe per call: it keeps no
 * state outside its arguments, so calls for disjoint partitions into
 * different stores may run on threads side by side (cfg and log are only
 * read). */
bool cqrs_restore_partitions(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                             const char *events_topic, const rd_kafka_topic_partition_list_t *parts,
                             cqrs_aggregate_store_t *store, bool (*stopping)(void *ctx), void *stop_ctx,
                             cqrs_error_t *err);

#endif
