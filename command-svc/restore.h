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
 * crash). False with err when Kafka fails. */
bool cqrs_restore_partitions(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                             const char *events_topic, const rd_kafka_topic_partition_list_t *parts,
                             cqrs_aggregate_store_t *store, cqrs_error_t *err);

#endif
