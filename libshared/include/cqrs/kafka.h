/* Kafka helpers over librdkafka: client configuration from cqrs_config_t, the
 * project's topics, header conversion and a liveness probe.
 * Every producer we create uses the murmur2_random partitioner, the Java
 * client's default, so a key maps to the same partition whoever produces it. */
#ifndef CQRS_KAFKA_H
#define CQRS_KAFKA_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/event.h"
#include "cqrs/log.h"

#include <librdkafka/rdkafka.h>

/* Topic names, without the prefix. */
#define CQRS_TOPIC_COMMANDS "commands"
#define CQRS_TOPIC_EVENTS "events"
#define CQRS_TOPIC_STATE "aggregate-state"
#define CQRS_TOPIC_RESULTS "command-results"
#define CQRS_TOPIC_DLQ "events.dlq"

/* A new librdkafka configuration with bootstrap.servers, the given
 * "name", "value" pairs (NULL-terminated), then every KAFKA_* property (so an
 * operator can override our defaults), logs routed to log as JSON lines. NULL with err naming the bad
 * property. The caller owns the result (rd_kafka_new takes it over).
 * The client's opaque is log; a caller that replaces it (for a rebalance
 * callback) must point it at a struct that begins with a cqrs_log_t. */
rd_kafka_conf_t *cqrs_kafka_conf_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                     cqrs_error_t *err, ...) __attribute__((sentinel));

/* Creates a client of the given type from conf (taken over, also on failure).
 * Producers get the murmur2_random partitioner. */
rd_kafka_t *cqrs_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, cqrs_error_t *err);

/* Creates the project's topics when missing (partitions and replication from
 * cfg; aggregate-state compacted; events and events.dlq kept forever;
 * commands kept 7 days; command-results 6 hours), then checks that commands,
 * events and aggregate-state have one partition count, which is returned in
 * *partitions. False with a clear err otherwise. Blocks up to timeout_ms. */
bool cqrs_kafka_topics_ensure(rd_kafka_t *rk, const cqrs_config_t *cfg, int timeout_ms,
                              int *partitions, cqrs_error_t *err);

/* The partition count of topic, or -1 with err. Blocks up to timeout_ms. */
int cqrs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, cqrs_error_t *err);

/* The low and high watermarks of a partition, retrying while its leader is
 * not yet known (fresh topics) for up to timeout_ms. False with err. */
bool cqrs_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo, int64_t *hi,
                           int timeout_ms, cqrs_error_t *err);

/* Fills msgs with up to max records: waits up to first_timeout_ms for the
 * first, then takes only what is already fetched. Consumer errors are logged
 * and skipped. Returns the count; the caller destroys the messages. */
size_t cqrs_kafka_poll_batch(rd_kafka_t *rk, rd_kafka_message_t **msgs, size_t max, int first_timeout_ms,
                             const cqrs_log_t *log);

/* Subscribes consumer rk (a group member) to topic. False with err. */
bool cqrs_kafka_subscribe(rd_kafka_t *rk, const char *topic, cqrs_error_t *err);

/* True when the cluster answers a metadata request within timeout_ms. */
bool cqrs_kafka_ping(rd_kafka_t *rk, int timeout_ms);

/* Points out[0..max) at m's headers (borrowed from m); returns the count. */
size_t cqrs_kafka_headers(rd_kafka_message_t *m, cqrs_header_t *out, size_t max);

/* Adds hdrs to a new librdkafka header list (caller owns it, or the producer
 * once passed with RD_KAFKA_V_HEADERS). */
rd_kafka_headers_t *cqrs_kafka_headers_new(const cqrs_header_t *hdrs, size_t n);

/* Maps an rd_kafka_error_t to err (retriable or fatal as librdkafka says),
 * destroys it, and returns false. Returns true for NULL. */
bool cqrs_kafka_check(rd_kafka_error_t *kerr, const char *what, cqrs_error_t *err);

#endif
