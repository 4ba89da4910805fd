/* HTTP ingress: POST /v1/commands checks the command, gives it its ids,
 * produces it to `commands` (key = the aggregate key "<tenant>/<aggregateId>")
 * and answers from the matching record on `command-results` (key
 * "<tenant>/<commandId>": request-reply over Kafka), or 503 once the
 * deadline passes. Every instance reads every result partition from the
 * moment it starts, so any replica can answer any command.
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

typedef struct cqrs_ingress cqrs_ingress_t;

/* Creates the producer and the results reader and adds POST /v1/commands to
 * http. cfg, log, metrics, auth and http are borrowed. NULL with err when
 * Kafka is unusable. */
cqrs_ingress_t *cqrs_ingress_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                 cqrs_auth_t *auth, cqrs_http_server_t *http, cqrs_error_t *err);

/* Starts reading results (from their current end) on a thread of its own. */
bool cqrs_ingress_start(cqrs_ingress_t *ing, cqrs_error_t *err);

/* Stops the results thread and flushes the producer. Safe to call twice. */
void cqrs_ingress_stop(cqrs_ingress_t *ing);

/* Stops and frees. NULL is fine. */
void cqrs_ingress_destroy(cqrs_ingress_t *ing);

#endif
