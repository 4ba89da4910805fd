/* The operations topic: how the control plane asks the projector to act
 * (replays, pausing a projection, redriving a dead letter) and how the
 * projector reports back, without either calling the other.
 *
 * A compacted topic of one partition, TOPIC_PREFIX + "ops" (separate from
 * "control" so services that only authenticate never read it). Each key has
 * exactly one writer, so two writers never race on one record:
 *
 *   written by admin-svc:
 *   "replay/<id>"        -> {"replayId","projection","from":"beginning"|RFC 3339,"fromMs":N,
 *                            "tenant":str|null,"requestedBy","createdAt"}
 *   "replay-want/<id>"   -> {"want":"run"|"pause"|"cancel","at"}   (absent: run)
 *   "projection/<p>"     -> {"want":"run"|"pause","resumes":N,"at"} (resumes counts resumes:
 *                            a projection halted at a poison event before the Nth moves past it)
 *   "dlq/<id>"           -> {"action":"redrive"|"discard","reason"?,"by","at"}
 *   written by projector-svc:
 *   "replay-state/<id>"  -> {"state","applied","total","rate","etaSeconds","startedAt","finishedAt",
 *                            "error","phase","checkpoint":[N per partition],"owner"}
 *   "projection-state/<p>/<instance>" -> {"state","eventsApplied","lastError","updatedAt","halt"?:
 *                            {"partition","offset"}}
 *   "dlq-state/<id>"     -> {"state":"redriven"|"discarded","error":str|null,"at"}
 * (<id> of a dead letter: "<partition>-<offset>" in events.dlq.)
 *
 * cqrs_ops_t reads the topic from its beginning into memory (key -> latest
 * value) on a thread of its own and keeps following it; it also writes. */
#ifndef CQRS_OPS_H
#define CQRS_OPS_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#define CQRS_TOPIC_OPS "ops"
/* Every admin action, one JSON record each, kept forever (admin-svc's audit). */
#define CQRS_TOPIC_AUDIT "audit"

#define CQRS_OPS_REPLAY "replay/"
#define CQRS_OPS_REPLAY_WANT "replay-want/"
#define CQRS_OPS_REPLAY_STATE "replay-state/"
#define CQRS_OPS_PROJECTION "projection/"
#define CQRS_OPS_PROJECTION_STATE "projection-state/"
#define CQRS_OPS_DLQ "dlq/"
#define CQRS_OPS_DLQ_STATE "dlq-state/"

/* The headers a reader adds to a dead letter on events.dlq (the event's own
 * headers stay), which admin-svc shows. dlq_projection names who could not
 * read it: a projection, or CQRS_DLQ_SAGAS. */
#define CQRS_DLQ_ERROR "dlq_error"
#define CQRS_DLQ_PROJECTION "dlq_projection"
#define CQRS_DLQ_SOURCE_TOPIC "dlq_source_topic"
#define CQRS_DLQ_SOURCE_PARTITION "dlq_source_partition"
#define CQRS_DLQ_SOURCE_OFFSET "dlq_source_offset"
#define CQRS_DLQ_REDRIVEN_FROM "dlq_redriven_from" /* a redrive that failed again: the dead letter it was */
#define CQRS_DLQ_HEADER_PREFIX "dlq_"
/* dlq_projection of saga-svc's dead letters (events a saga could not read). */
#define CQRS_DLQ_SAGAS "saga-svc"

/* The headers of record m (read from partition m->partition, offset
 * m->offset of source_topic) as a dead letter of consumer, a projection's
 * name or CQRS_DLQ_SAGAS: m's own headers, copied, then dlq_error = error,
 * dlq_projection = consumer and the source coordinates. Every reader that
 * dead-letters an event builds them here. The caller owns the result
 * (rd_kafka_producev takes it on success). */
rd_kafka_headers_t *cqrs_dlq_headers(const rd_kafka_message_t *m, const char *consumer, const char *source_topic,
                                     const char *error);

/* "dlq/<id>" actions and a dead letter's states as the API shows them. */
#define CQRS_DLQ_REDRIVE "redrive"
#define CQRS_DLQ_DISCARD "discard"
#define CQRS_DLQ_DEAD "dead"
#define CQRS_DLQ_REDRIVEN "redriven"
#define CQRS_DLQ_DISCARDED "discarded"

/* Replay states, as the API shows them. */
#define CQRS_REPLAY_PENDING "pending"
#define CQRS_REPLAY_RUNNING "running"
#define CQRS_REPLAY_PAUSED "paused"
#define CQRS_REPLAY_SWAPPING "swapping"
#define CQRS_REPLAY_COMPLETED "completed"
#define CQRS_REPLAY_FAILED "failed"
#define CQRS_REPLAY_CANCELLED "cancelled"

typedef struct cqrs_ops cqrs_ops_t;

/* Called on the reader thread after each record is stored (value NULL: a
 * tombstone). It must not call cqrs_ops_put or cqrs_ops_sync. */
typedef void (*cqrs_ops_record_cb)(const char *key, const char *value, void *ctx);

/* Creates the topic when missing, starts the reader thread (from the
 * beginning) and a producer (idempotent, acks=all). on_record may be NULL.
 * NULL with err when a Kafka client cannot be made. */
cqrs_ops_t *cqrs_ops_open(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_ops_record_cb on_record, void *ctx,
                          cqrs_error_t *err);
/* Stops the thread, flushes the producer, frees. NULL is fine. */
void cqrs_ops_close(cqrs_ops_t *ops);

/* True once every record that existed at open has been read. */
bool cqrs_ops_caught_up(cqrs_ops_t *ops);
/* Waits until every record written before this call has been read, up to
 * timeout_ms. False with err (CQRS_ERR_UNAVAILABLE) otherwise. */
bool cqrs_ops_sync(cqrs_ops_t *ops, int timeout_ms, cqrs_error_t *err);

/* Writes key -> value (NULL: a tombstone) and waits for Kafka's
 * acknowledgement, up to timeout_ms. With sync, also until this process has
 * read it back (so cqrs_ops_get shows it). Any thread. */
bool cqrs_ops_put(cqrs_ops_t *ops, const char *key, const char *value, bool sync, int timeout_ms, cqrs_error_t *err);

/* The latest value of key (a malloc'd copy, free it), or NULL. */
char *cqrs_ops_get(cqrs_ops_t *ops, const char *key);

/* Every record whose key starts with prefix: parallel arrays of malloc'd
 * keys and values (free each and the arrays with cqrs_ops_free_list),
 * ordered by key. */
size_t cqrs_ops_list(cqrs_ops_t *ops, const char *prefix, char ***keys, char ***values);
void cqrs_ops_free_list(char **keys, char **values, size_t n);

/* A producer's client, for readiness checks. */
bool cqrs_ops_ping(cqrs_ops_t *ops, int timeout_ms);

#endif
