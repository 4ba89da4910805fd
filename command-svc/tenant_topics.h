/* The second tier of Kafka ingress (README, "A second tier for large
 * tenants"): a tenant's own command topic "<prefix>tenant.<tenant>.commands"
 * (cqrs_tenant_topic). A tenant that produces a lot gets one, so its backlog
 * sits in partitions of its own and other tenants' commands on the shared
 * topic do not queue behind it (BENCHMARKS.md, "Authentication and fairness":
 * behind 100,000 records of one tenant on the shared topic, another's p99
 * went from 78 ms to 1.13 s).
 *
 * The tenant topics ride along with the shared commands topic: a lane that
 * the group gave partition p of `commands` also reads partition p of every
 * tenant topic, on a consumer of its own assigned by hand. So one lane stays
 * the only one deciding the aggregates of partition p, whichever topic their
 * commands come on. Their offsets are committed in the lane's transactions,
 * to the lane's group (send_offsets_to_transaction takes any partition), and
 * read back from there (stable offsets: a transaction still open is waited
 * for) when the lane is given its partitions; a tenant topic never read
 * before is read from its beginning. A tenant topic whose partition count is
 * not the commands topic's is not read (its partition p would not hold the
 * aggregates of p): logged once, as an error.
 *
 * A tenant's own topic is a queue of its own, so a tenant at its command
 * rate (RATE_LIMIT_COMMANDS, with auth) is not refused there, as it is on the
 * shared topic (429): its records wait in its topic. Each partition read is
 * read from a queue of its own, and a batch takes from it only what the
 * tenant's tokens allow (taking them: the command loop does not take them
 * again); the rest stays queued (1 MB a partition at most, then librdkafka
 * stops fetching it). Measured (BENCHMARKS.md, "Authentication and
 * fairness"): behind 100,000 of A's records on its own topic, A is decided at
 * its rate (2,402 in 10 s at 200/s, burst 400), none refused, and another
 * tenant's p99 is 1.5-2.2x its p99 alone. Not pause/resume/seek of the
 * partition: each waits for librdkafka's broker thread (one seek timed out
 * after 5 s, holding the lane).
 *
 * New tenant topics are found by listing the cluster's topics every
 * CQRS_TENANT_TOPICS_SCAN_MS. The operator creates a tenant's topic with the
 * partition count of `commands` and grants the tenant's producers Write on
 * the prefixed resource "<prefix>tenant.<tenant>." (docs/multi-tenancy.md).
 *
 * One per command lane; the lane's loop thread only (its rebalance callback
 * runs there too). */
#ifndef CQRS_TENANT_TOPICS_H
#define CQRS_TENANT_TOPICS_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"
#include "cqrs/ratelimit.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#define CQRS_TENANT_TOPICS_SCAN_MS 10000

typedef struct cqrs_tenant_topics cqrs_tenant_topics_t;

/* The lane's reader of tenant topics. group (the lane's consumer, borrowed:
 * it must outlive this) is where their offsets are read back from;
 * commands_topic (copied) names the shared topic and n_partitions its
 * partition count; limits (borrowed, may be NULL: none) the tenants' command
 * rates, whose tokens it takes for the records it hands out. cfg, log and metrics
 * are borrowed. NULL with err when the consumer cannot be made. */
cqrs_tenant_topics_t *cqrs_tenant_topics_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                             cqrs_metrics_t *metrics, rd_kafka_t *group,
                                             const char *commands_topic, int32_t n_partitions,
                                             cqrs_ratelimit_t *limits, cqrs_error_t *err);

/* Closes the consumer and frees. NULL is fine. */
void cqrs_tenant_topics_destroy(cqrs_tenant_topics_t *tt);

/* The lane was given parts (of the shared commands topic; other topics in it
 * are ignored): lists the tenant topics and reads partition p of each for
 * every p of parts, from the offsets committed to the group. False with err
 * when Kafka does not answer: then it reads none, and the next
 * cqrs_tenant_topics_scan tries again. */
bool cqrs_tenant_topics_assign(cqrs_tenant_topics_t *tt, const rd_kafka_topic_partition_list_t *parts,
                               cqrs_error_t *err);

/* The lane lost its partitions: reads no tenant topic until the next assign. */
void cqrs_tenant_topics_revoke(cqrs_tenant_topics_t *tt);

/* Between batches: when the last listing is CQRS_TENANT_TOPICS_SCAN_MS old
 * (or the last assign failed), lists the topics again and, when the set of
 * tenant topics changed, reads the new ones too (the same partitions, from
 * their committed offsets). Failures are logged and tried again later. */
void cqrs_tenant_topics_scan(cqrs_tenant_topics_t *tt);

/* True while it reads at least one partition. */
bool cqrs_tenant_topics_active(const cqrs_tenant_topics_t *tt);

/* Up to max records into msgs (the caller destroys them), of what is
 * fetched already (no wait), the partitions taken in turn, a different one
 * first each time; with limits, only what each tenant's tokens allow now,
 * taking them (the rest waits, see above). */
size_t cqrs_tenant_topics_poll(cqrs_tenant_topics_t *tt, rd_kafka_message_t **msgs, size_t max);

/* A batch was aborted: reads the tenant topics again from their committed
 * offsets (where the batch began: the last transaction committed them), as
 * the lane's consumer is put back at the batch's first records. On failure
 * it reads none until the next cqrs_tenant_topics_scan, which assigns again. */
void cqrs_tenant_topics_rewind(cqrs_tenant_topics_t *tt);

#endif
