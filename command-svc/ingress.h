/* HTTP ingress: POST /v1/commands checks the command, gives it its ids,
 * produces it to `commands` (key = the aggregate key "<tenant>/<aggregateId>")
 * and answers from the matching record on `command-results` (key
 * "<tenant>/<commandId>": request-reply over Kafka), or 503 once the
 * deadline passes.
 *
 * Replies go only where they are awaited: the replicas' results readers form
 * one consumer group (TOPIC_PREFIX + "command-svc-replies", cooperative-sticky,
 * never committing), so each reads only the command-results partitions the
 * group gives it, each from its end at the time it is given. A command record
 * names one of them (its aggregate's partition number when held, else one
 * chosen by "<tenant>/<commandId>", so every send of a commandId to a replica
 * names the same partition and their results come back in decision order) in
 * its header CQRS_REPLY_PARTITION_HEADER
 * (cqrs/result.h), and the command loop puts the result there, still keyed
 * "<tenant>/<commandId>" on command-results, so Kafka clients reading the
 * topic see every result as before. With N replicas each reads about 1/N of
 * the results (command_results_read_bytes_total). An instance holding no
 * partition is not ready (cqrs_ingress_ready) and refuses commands with 503
 * and Retry-After; so run at most as many replicas as command-results has
 * partitions (TOPIC_PARTITIONS).
 *
 * A reply routed to a partition whose owner changed before it was read (a
 * rebalance moved the partition, or the replica died) is not answered there:
 * the client gets the timeout 503 ("retry with the same commandId"), and a
 * retry with the same commandId, on any replica, returns the original outcome
 * (200 with the first result's body) from the aggregate's idempotency window,
 * without deciding the command again. The result itself is never lost: it is
 * on command-results for any Kafka reader.
 *
 * Authentication: the route needs the scope commands:write
 * (cqrs_auth_http: 401 without a valid credential, 403 without the scope or
 * when X-Tenant-Id names another tenant); the tenant is the credential's. A
 * command whose "tenantId" member names another tenant is refused with 403.
 * The request's Authorization value travels with the command as the Kafka
 * header "authorization", so the command loop checks it again like any
 * Kafka producer's.
 *
 * Backpressure: at most cfg->command_max_in_flight (COMMAND_MAX_IN_FLIGHT)
 * commands per replica wait for their results at once. Past it a command is
 * answered at once 503 with "Retry-After: 1" and an "overloaded" error and is
 * never produced, so latency stays bounded by the cap (a queue of at most that
 * many round trips) instead of growing with the offered load. 503, not 429:
 * 429 is the tenant's own rate limit (RATE_LIMIT_COMMANDS: "you send too
 * much"); this is the replica's state, not the client's doing, and a load
 * balancer or client may retry it on another replica at once. Every command
 * taken is answered: its result, or the timeout 503. Metrics:
 * commands_in_flight, commands_in_flight_limit, commands_overloaded_total. */
#ifndef CQRS_INGRESS_H
#define CQRS_INGRESS_H

#include "cqrs/auth.h"
#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/http.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"
#include "cqrs/ratelimit.h"

typedef struct cqrs_ingress cqrs_ingress_t;

/* Creates the producer and the results reader and adds POST /v1/commands to
 * http. cfg, log, metrics, auth, limits and http are borrowed. limits (NULL:
 * none) is the instance's per-tenant command rate: with AUTH on the command
 * loop takes its tokens and this gate only peeks (answering 429 at once when
 * the bucket is empty, before Kafka); with AUTH=off the gate takes them. NULL with err when
 * Kafka is unusable. */
cqrs_ingress_t *cqrs_ingress_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                 cqrs_auth_t *auth, cqrs_ratelimit_t *limits, cqrs_http_server_t *http,
                                 cqrs_error_t *err);

/* Joins the replies group and reads the results of the partitions it gives
 * (each from its end at the time) on a thread of its own. False with err when
 * the subscription or the thread cannot start. */
bool cqrs_ingress_start(cqrs_ingress_t *ing, cqrs_error_t *err);

/* True once the replies group gave this instance at least one command-results
 * partition (the HTTP route can hear results); false with err saying why not.
 * Any thread; for /readyz. */
bool cqrs_ingress_ready(cqrs_ingress_t *ing, cqrs_error_t *err);

/* Stops the results thread and flushes the producer. Safe to call twice. */
void cqrs_ingress_stop(cqrs_ingress_t *ing);

/* Stops and frees. NULL is fine. */
void cqrs_ingress_destroy(cqrs_ingress_t *ing);

#endif
