/* Restore from saga-state: the instances of the assigned partitions, read to
 * their end by a short-lived consumer before the loop consumes them. */
#ifndef CQRS_SAGA_RESTORE_H
#define CQRS_SAGA_RESTORE_H

#include "saga_store.h"

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"

#include <librdkafka/rdkafka.h>

/* Reads partitions parts of state_topic (the partition numbers of parts,
 * whatever their topic) into store. Malformed records are logged and skipped.
 * False with err when Kafka fails. */
bool cqrs_saga_restore(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *state_topic,
                       const rd_kafka_topic_partition_list_t *parts, cqrs_saga_store_t *store, cqrs_error_t *err);

#endif
