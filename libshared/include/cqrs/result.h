/* Command results: the body an HTTP caller gets and the value on the
 * command-results topic (the same body plus "status"). */
#ifndef CQRS_RESULT_H
#define CQRS_RESULT_H

#include "cqrs/error.h"

#include <stddef.h>
#include <stdint.h>

/* The Kafka header of a command record naming the command-results partition
 * its result goes to: the HTTP ingress that waits for it reads only the
 * partitions it holds (command-svc/ingress.h). The value is the partition
 * number in decimal ASCII, e.g. "3". Without it (a Kafka client's command)
 * the result goes where its key hashes to. */
#define CQRS_REPLY_PARTITION_HEADER "reply-partition"

/* A 429 result's member: whole seconds until the tenant may send again (the
 * value of the Retry-After header an HTTP caller gets). */
#define CQRS_RESULT_RETRY_AFTER "retryAfter"

typedef struct {
  int status;              /* HTTP status: 201 accepted, 200 no-op or repeat, 4xx refused */
  const char *command_id;
  const char *aggregate_id;/* may be NULL */
  int64_t version;         /* the aggregate's version after the command */
  const char *event_id;    /* NULL for a no-op */
  const char *event_type;  /* NULL for a no-op */
  const cqrs_error_t *error; /* set for a refusal: "error", "field", "currentVersion",
                                "retryAfter" */
} cqrs_result_t;

/* Writes r as JSON. Returns a string to bson_free. Can't fail. */
char *cqrs_result_to_json(const cqrs_result_t *r, size_t *len);

/* A copy of a result JSON with its "status" set to status (a repeated command
 * answers 200 with the first outcome). NULL when json is not a JSON object. */
char *cqrs_result_restatus(const char *json, size_t len, int status, size_t *out_len);

/* Reads "status" from a result JSON. False when absent or not an integer. */
bool cqrs_result_status(const char *json, size_t len, int *status);

/* Whole seconds to wait for retry_after_ms: rounded up, at least 1. Pure. */
int64_t cqrs_result_retry_after_s(int64_t retry_after_ms);

/* Reads "retryAfter" (seconds) from a result JSON: 0 when absent, not a
 * positive integer, or json is not a JSON object. */
int64_t cqrs_result_retry_after(const char *json, size_t len);

/* The partition a reply-partition header value (len bytes, not
 * NUL-terminated; NULL for no header) names, for a results topic of
 * n_partitions partitions: -1 (RD_KAFKA_PARTITION_UA: the default
 * partitioner) when absent, empty, not all decimal digits, or not below
 * n_partitions. Pure; can't fail. */
int32_t cqrs_result_reply_partition(const void *value, size_t len, int32_t n_partitions);

#endif
