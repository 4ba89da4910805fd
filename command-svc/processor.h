/* One command record in, its outcome out: the pure heart of the command loop.
 * Parses and validates the command, routes it to the partition that owns its
 * aggregate, checks idempotency, existence and expectedVersion, runs the
 * aggregate's decider and evolves the state. No I/O: the loop writes the
 * outcome to Kafka in one transaction. */
#ifndef CQRS_PROCESSOR_H
#define CQRS_PROCESSOR_H

#include "aggregate_store.h"
#include "decider.h"

#include "cqrs/event.h"

/* Which partition of the aggregate topics holds key (the Kafka default
 * partitioner: murmur2 of the key). */
typedef int32_t (*cqrs_partition_of_cb)(const char *key, void *ctx);

typedef struct {
  int32_t partition;         /* the record's partition */
  cqrs_partition_of_cb partition_of;
  void *partition_ctx;
  const char *now;           /* RFC 3339 */
  const char *source;        /* ce_source of new events */
  const char *traceparent;   /* from the record headers, may be NULL */
} cqrs_process_ctx_t;

typedef struct {
  int status;                /* the result's HTTP status; 0 when forwarded */
  char *command_id;          /* result key; NULL when the record had none and is unusable */
  char *result_json;         /* the result record value (bson_free); NULL when forwarded */
  size_t result_len;
  size_t n_events;
  cqrs_event_t events[CQRS_MAX_EVENTS];
  cqrs_aggregate_t *staged;  /* the aggregate after the command; to write to
                                aggregate-state and stage. NULL: unchanged */
  int32_t forward_partition; /* >= 0: the command belongs to that partition */
  char *forward_json;        /* ... re-keyed, to produce there (bson_free) */
  char *aggregate_id;        /* for logs and keys; may be NULL */
  char *command_type;        /* a known commandType, for metrics; NULL otherwise */
  char *correlation_id;      /* for logs; may be NULL */
} cqrs_outcome_t;

/* Processes one command record (value json, key may be NULL) against store
 * (read only: the caller stages out->staged). Never fails: every problem
 * becomes a result with a 4xx status. out is caller storage; release it with
 * cqrs_outcome_cleanup. */
void cqrs_process_command(const cqrs_aggregate_store_t *store, const cqrs_process_ctx_t *ctx,
                          const char *json, size_t len, cqrs_outcome_t *out);

/* Releases what out holds (but a staged aggregate the caller took: set
 * out->staged to NULL after taking it). */
void cqrs_outcome_cleanup(cqrs_outcome_t *out);

#endif
