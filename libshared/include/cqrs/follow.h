/* Following a compacted topic: a thread that reads partition 0 of
 * TOPIC_PREFIX + <suffix> from the beginning, hands each record to an apply
 * callback, keeps following it, and tells when it has caught up and when it
 * has passed a given point. The control reader (cqrs/control.h) and the
 * schema registry's reader (cqrs/schemas.h) are this plus their apply.
 *
 * No consumer group: partitions are assigned, never subscribed, and no offset
 * is committed, so every process reads the whole topic. The topic is created
 * when missing: compacted, one partition (one partition is what gives every
 * reader the same order, which the schema registry's first-wins rule needs). */
#ifndef CQRS_FOLLOW_H
#define CQRS_FOLLOW_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One record: key and value as librdkafka hands them over (not
 * NUL-terminated; value NULL for a tombstone), borrowed for the call.
 * @locality the follower's thread */
typedef void (*cqrs_follow_apply_cb)(const char *key, size_t key_len, const char *value, size_t value_len,
                                     int64_t offset, void *ctx);

typedef struct cqrs_follower cqrs_follower_t;

/* Starts following TOPIC_PREFIX + suffix. name labels the log lines ("<name>
 * records read") and the consumer ("<name>-reader"); suffix and name are
 * copied. apply and ctx must outlive the follower. NULL with err when the
 * Kafka client cannot be made or the thread cannot start. */
cqrs_follower_t *cqrs_follower_start(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *suffix,
                                     const char *name, cqrs_follow_apply_cb apply, void *ctx, cqrs_error_t *err);

/* True once every record that existed when the follower started is applied. */
bool cqrs_follower_caught_up(const cqrs_follower_t *f);

/* Waits until every record produced before this call has been applied (reads
 * the end offset now, waits for the thread to pass it), up to timeout_ms.
 * False with err (CQRS_ERR_UNAVAILABLE) on timeout. Any thread. */
bool cqrs_follower_sync(cqrs_follower_t *f, int timeout_ms, cqrs_error_t *err);

/* Stops the thread and frees the follower. NULL is fine. */
void cqrs_follower_stop(cqrs_follower_t *f);

#endif
