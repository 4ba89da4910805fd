/* What admin-svc reads from Kafka itself (it may read topics, never write
 * events): the event log's partitions and ends, where a time falls in it, a
 * projection's committed offsets, and whole small topics (events.dlq, audit).
 * Thread-safe: one lock around the clients. */
#ifndef ADMIN_PROBE_H
#define ADMIN_PROBE_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#define ADMIN_MAX_PARTITIONS 256

typedef struct admin_probe admin_probe_t;

/* Creates the project's topics when missing (cqrs_kafka_topics_ensure). NULL with err. */
admin_probe_t *admin_probe_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_error_t *err);
void admin_probe_destroy(admin_probe_t *p);

/* The events topic's partition count and each partition's low and high
 * watermarks into lo/hi; with from_ms > 0 also the first offset at or after
 * that time into at (hi when none). -1 with err. */
int admin_probe_events(admin_probe_t *p, int64_t from_ms, int64_t *lo, int64_t *hi, int64_t *at, cqrs_error_t *err);

/* The committed offsets of consumer group group_suffix (the config's group
 * prefix added) on events into committed[0..n) (-1: none). False with err. */
bool admin_probe_committed(admin_probe_t *p, const char *group_suffix, int n, int64_t *committed, cqrs_error_t *err);

/* Calls cb on every record of topic (prefix added; every partition, from the
 * beginning to the end as of now), in partition then offset order. False
 * with err when Kafka does not answer. */
typedef void (*admin_record_cb)(const rd_kafka_message_t *m, void *ctx);
bool admin_probe_read_all(admin_probe_t *p, const char *topic, admin_record_cb cb, void *ctx, cqrs_error_t *err);

#endif
