/* One command record in, its outcome out: the pure heart of the command loop.
 * Parses and validates the command, routes it to the partition that owns its
 * aggregate, checks idempotency, existence and expectedVersion, runs the
 * aggregate's decider and evolves the state. No I/O: the loop writes the
 * outcome to Kafka in one transaction.
 *
 * Tenancy: the tenant is an input (the tenant of the record's verified
 * credential), never read from the command. An aggregate is keyed by its
 * aggregate key "<tenant>/<aggregateId>" (cqrs/tenant.h): in the store, for
 * the partition, and as the Kafka key of its events, its aggregate-state
 * record and a forwarded command. The aggregateId inside events (ce_subject),
 * results and HTTP answers stays the plain one. A command whose JSON has a
 * "tenantId" member naming another tenant is refused with 403 (one naming the
 * same tenant is ignored). */
#ifndef CQRS_PROCESSOR_H
#define CQRS_PROCESSOR_H

#include "aggregate_store.h"
#include "decider.h"

#include "cqrs/event.h"
#include "cqrs/tenant.h"

/* A command member that may name the tenant; it never selects one. */
#define CQRS_COMMAND_TENANT_FIELD "tenantId"

/* The Kafka header of a command record that carries its credential, with the
 * value of the HTTP Authorization header ("Bearer <credential>"). */
#define CQRS_COMMAND_AUTH_HEADER "authorization"

/* The Kafka header of a command record with the moment nobody waits for its
 * answer any more, in milliseconds since the epoch (decimal ASCII): the HTTP
 * ingress sets it to when it answers 503 (COMMAND_TIMEOUT_MS), a Kafka
 * producer may set it too. A command not yet decided by then is not decided
 * at all (cqrs_outcome_t.expired): its client was told to retry with the same
 * commandId, and a late copy (say, one a frozen ingress sends when it wakes)
 * decided after that retry and more than CQRS_RECENT_COMMANDS later commands
 * would be decided twice. A repeat the aggregate remembers is still answered.
 * Without the header a command never expires. */
#define CQRS_COMMAND_DEADLINE_HEADER "deadline"

/* Which partition of the aggregate topics holds key (the Kafka default
 * partitioner: murmur2 of the key). */
typedef int32_t (*cqrs_partition_of_cb)(const char *key, void *ctx);

/* Whether tenant may have one more command decided now (its rate limit):
 * true, or false with *retry_after_ms set to when it may. */
typedef bool (*cqrs_admit_cb)(const char *tenant, int64_t *retry_after_ms, void *ctx);

typedef struct {
  const char *tenant;        /* the verified credential's tenant; NULL when it
                                did not verify (then denied is set) */
  const char *actor_type;    /* who sent it, copied into every event decided
                                (ce_authtype, ce_authid): the verified
                                principal's kind, a CQRS_AUTHTYPE_* ... */
  const char *actor_id;      /* ... and its subject. NULL: the events do not
                                say (actor_id alone is not written) */
  const cqrs_error_t *denied;/* NULL: authorized. Else the 401/403 to answer
                                with: the record gets a result, nothing else */
  cqrs_admit_cb admit;       /* asked once per command this partition decides
                                (not for one refused before, nor one
                                forwarded): false answers 429 with retryAfter,
                                decides nothing and is not remembered, so a
                                retry with the same commandId is decided. NULL:
                                every command is admitted */
  void *admit_ctx;
  int32_t partition;         /* the record's partition */
  cqrs_partition_of_cb partition_of;
  void *partition_ctx;
  const char *now;           /* RFC 3339 */
  int64_t now_ms;            /* the time now, in ms since the epoch */
  int64_t deadline_ms;       /* CQRS_COMMAND_DEADLINE_HEADER; 0: none */
  const char *source;        /* ce_source of new events */
  const char *schema_registry; /* the registry new events' ce_dataschema points
                                  at (SCHEMA_REGISTRY_URL); NULL: the default */
  const char *traceparent;   /* from the record headers, may be NULL */
  const cqrs_decider_settings_t *settings; /* the deciders' defaults; NULL: none are added */
} cqrs_process_ctx_t;

typedef struct {
  int status;                /* the result's HTTP status; 0 when forwarded or expired */
  bool expired;              /* past ctx->deadline_ms and not a remembered
                                repeat: nothing decided, no result, no event */
  char *command_id;          /* the commandId (given or generated); never NULL */
  char *result_key;          /* the result's Kafka key: cqrs_result_key(tenant, commandId) */
  char *result_json;         /* the result record value (bson_free); NULL when forwarded */
  size_t result_len;
  size_t n_events;
  cqrs_event_t events[CQRS_MAX_EVENTS];
  cqrs_aggregate_t *staged;  /* the aggregate after the command; to write to
                                aggregate-state and stage. NULL: unchanged */
  int32_t forward_partition; /* >= 0: the command belongs to that partition */
  char *forward_json;        /* ... re-keyed, to produce there (bson_free) */
  char *aggregate_id;        /* for logs; may be NULL */
  char *aggregate_key;       /* "<tenant>/<aggregateId>": the Kafka key of the
                                events, the state and a forwarded command; NULL
                                when the command was refused before routing */
  char *command_type;        /* a known commandType, for metrics; NULL otherwise */
  char *correlation_id;      /* for logs; may be NULL */
  char *invalid_event;       /* a decided event failed validation (our bug: the
                                result is a 500, nothing is appended): its type
                                and version, "OrderCreated v2", for the log and
                                the metric; NULL otherwise */
  char *invalid_reason;      /* ... and why (the validator's message) */
} cqrs_outcome_t;

/* The Kafka key of a result on command-results: "<tenant>/<commandId>", so
 * two tenants using the same commandId never see each other's result; with
 * tenant NULL (the credential did not verify) "/<commandId>", which no tenant
 * key can be. malloc'd; NULL when out of memory. */
char *cqrs_result_key(const char *tenant, const char *command_id);

/* False with err (CQRS_ERR_FORBIDDEN, field "tenantId") when cmd has a
 * "tenantId" member that is not tenant. Used by the HTTP ingress and the
 * processor alike. */
bool cqrs_command_check_tenant(const cqrs_command_t *cmd, const char *tenant, cqrs_error_t *err);

/* Validation before append: checks every event of d against its schema (its
 * type at the version written, which must be the type's current version:
 * deciders write nothing else). False with err (CQRS_ERR_INTERNAL: an event
 * the deciders got wrong is our bug, not the client's) naming the event, and
 * *bad its index. Pure. */
bool cqrs_decision_validate(const cqrs_decision_t *d, size_t *bad, cqrs_error_t *err);

/* Processes one command record (value json, key may be NULL) against store
 * (read only: the caller stages out->staged). Never fails: every problem
 * becomes a result with a 4xx status, or a 500 when a decided event does not
 * validate (cqrs_decision_validate; out->invalid_event says which). out is caller storage; release it with
 * cqrs_outcome_cleanup. */
void cqrs_process_command(const cqrs_aggregate_store_t *store, const cqrs_process_ctx_t *ctx,
                          const char *json, size_t len, cqrs_outcome_t *out);

/* Releases what out holds (but a staged aggregate the caller took: set
 * out->staged to NULL after taking it). */
void cqrs_outcome_cleanup(cqrs_outcome_t *out);

#endif
