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
#define CQRS_TOPIC_SAGA_STATE "saga-state" /* saga-svc's saga instances, compacted, keyed by saga id */

/* What a client's callbacks are given.
 * Every client made here has a small context that this module owns: a copy of
 * the log (librdkafka's own log lines go there as JSON lines) and the caller's
 * callbacks with their ctx. It is the configuration's opaque, so callers never
 * call rd_kafka_conf_set_opaque, rd_kafka_opaque or rd_kafka_conf_dup on what
 * these functions return: a callback that needs the caller's state takes it as
 * ctx below. The context is freed with the configuration (rd_kafka_conf_destroy)
 * or with the client made from it (rd_kafka_destroy), so there is nothing else
 * to free. */

/* Called on the thread that polls the consumer (rd_kafka_consumer_poll), like
 * librdkafka's rebalance_cb, with ctx as given to cqrs_kafka_consumer_new. It
 * must assign or unassign as librdkafka's rebalance_cb does. */
typedef void cqrs_kafka_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t *parts, void *ctx);

/* Called once per produced record on the thread that calls rd_kafka_poll /
 * rd_kafka_flush, like librdkafka's dr_msg_cb, with ctx as given to
 * cqrs_kafka_producer_new. m->_private is the record's own opaque. */
typedef void cqrs_kafka_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *ctx);

/* A new librdkafka configuration with bootstrap.servers, the given
 * "name", "value" pairs (NULL-terminated), then every KAFKA_* property (so an
 * operator can override our defaults), logs routed to a copy of log (log is
 * only read here). NULL with err (field: the property) naming the bad property.
 * The caller owns the result: pass it to cqrs_kafka_new (which takes it over)
 * or rd_kafka_conf_destroy it. */
rd_kafka_conf_t *cqrs_kafka_conf_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                     cqrs_error_t *err, ...) __attribute__((sentinel));

/* Creates a client of the given type from conf (taken over, also on failure).
 * Producers get the murmur2_random partitioner. */
rd_kafka_t *cqrs_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, cqrs_error_t *err);

/* A consumer in group TOPIC_PREFIX + group_suffix, reading committed records
 * only (isolation.level=read_committed), committing nothing by itself
 * (enable.auto.commit=false; offsets go in a transaction, or by hand), with
 * the extra "name", "value" pairs (NULL-terminated) applied after those and
 * the KAFKA_* properties last. rebalance_cb may be NULL (librdkafka assigns
 * what the group gives); ctx is borrowed and handed to it. Not yet subscribed
 * or assigned. NULL with err on a bad property or when librdkafka refuses.
 * The caller destroys it with rd_kafka_consumer_close + rd_kafka_destroy. */
rd_kafka_t *cqrs_kafka_consumer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *group_suffix,
                                    cqrs_kafka_rebalance_cb *rebalance_cb, void *ctx, cqrs_error_t *err, ...)
    __attribute__((sentinel));

/* A producer (murmur2_random partitioner) with the "name", "value" pairs
 * (NULL-terminated) and the KAFKA_* properties last. delivery_cb may be NULL
 * (no delivery reports); ctx is borrowed and handed to it. NULL with err.
 * The caller destroys it with rd_kafka_destroy (after rd_kafka_flush). */
rd_kafka_t *cqrs_kafka_producer_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                    cqrs_kafka_delivery_cb *delivery_cb, void *ctx, cqrs_error_t *err, ...)
    __attribute__((sentinel));

/* A transactional producer with transactional.id txn_id and
 * transaction.timeout.ms timeout_ms, tuned for one short transaction after
 * another (the command lanes', saga-svc's):
 *   linger.ms 1: a batch's records leave at once; commit_transaction flushes
 *     anyway, so a longer linger only delays it (5 ms measured no better).
 *   retry.backoff.ms 5: a transaction begun right after the previous commit
 *     finds the coordinator still writing that one's markers and is told
 *     CONCURRENT_TRANSACTIONS; at librdkafka's 100 ms backoff the next
 *     AddOffsetsToTxn waited 100 ms (p90) and HTTP commands at 64 connections
 *     683/s, p99 222 ms; at 5 ms, 900/s, p99 133 ms (tests/bench/tune.sh).
 *   a delivery report callback that does nothing: commit_transaction flushes,
 *     and librdkafka's flush without one (no report to wake it) looks at
 *     the records in flight every 10 ms, so each commit waited up to 10 ms
 *     after its last record was acknowledged (5 ms on average).
 * KAFKA_* properties still come last. transactions are not initialised here.
 * NULL with err. */
rd_kafka_t *cqrs_kafka_txn_producer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *txn_id,
                                        int timeout_ms, cqrs_error_t *err);

/* Creates the project's topics when missing (partitions and replication from
 * cfg; aggregate-state compacted; events and events.dlq kept forever;
 * commands kept 7 days; command-results 6 hours; control (cqrs/control.h)
 * compacted, kept forever, one partition), then checks that commands,
 * events and aggregate-state have one partition count, which is returned in
 * *partitions. False with a clear err otherwise. Blocks up to timeout_ms. */
bool cqrs_kafka_topics_ensure(rd_kafka_t *rk, const cqrs_config_t *cfg, int timeout_ms,
                              int *partitions, cqrs_error_t *err);

/* Creates the one project topic prefix + name (name: one of those above, e.g.
 * CQRS_TOPIC_CONTROL) when missing, with the cleanup, retention and fixed
 * partition count cqrs_kafka_topics_ensure gives it (partitions: the count
 * for a topic without a fixed one). An existing topic is left as it is.
 * False with err when Kafka refuses or does not answer within timeout_ms. */
bool cqrs_kafka_topic_ensure(rd_kafka_t *rk, const char *prefix, const char *name, int partitions,
                             int replication, int timeout_ms, cqrs_error_t *err);

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

/* Adds offsets (borrowed) to producer's open transaction, for consumer's
 * group and generation (KIP-447: a member fenced by a rebalance fails here).
 * An empty list sends nothing. NULL on success, else the error (the caller's,
 * e.g. for cqrs_kafka_txn_abortable). */
rd_kafka_error_t *cqrs_kafka_txn_send_offsets(rd_kafka_t *producer, rd_kafka_t *consumer,
                                              const rd_kafka_topic_partition_list_t *offsets);

/* Classifies a failed transactional call (send offsets, commit; NULL: none)
 * and destroys it, with err set from it. Returns true when the transaction
 * can be aborted and its batch retried; false when the producer is fatally
 * failed or the outcome is unknown (not abortable after an infinite-timeout
 * call): the loop must stop and restart cleanly rather than guess. */
bool cqrs_kafka_txn_abortable(rd_kafka_error_t *kerr, const char *what, cqrs_error_t *err);

#endif
