/* Events on the wire: CloudEvents 1.0 in Kafka binary content mode (API.md).
 * The record value is the event data JSON; the metadata travels in headers.
 * Pure: works on header arrays, the Kafka wrapper converts. */
#ifndef CQRS_EVENT_H
#define CQRS_EVENT_H

#include "cqrs/error.h"

#include <bson/bson.h>
#include <stddef.h>

typedef struct {
  char *id;             /* ce_id */
  char *type;           /* ce_type, e.g. "UserCreated" */
  char *source;         /* ce_source */
  char *aggregate_type; /* ce_aggregatetype: "user", "order", "customer" */
  char *aggregate_id;   /* ce_subject */
  char *time;           /* ce_time, RFC 3339 */
  char *correlation_id; /* ce_correlationid, may be NULL */
  char *causation_id;   /* ce_causationid: the commandId, may be NULL */
  char *traceparent;    /* may be NULL */
  char *tenant;         /* ce_tenant: whose event (cqrs/tenant.h); decoding gives
                           CQRS_TENANT_DEFAULT to events written before tenancy */
  int64_t version;      /* ce_aggregateversion: 1, 2, ... */
  bson_t *data;         /* the record value */
} cqrs_event_t;

/* One Kafka header; value is not NUL-terminated. */
typedef struct {
  const char *name;
  const void *value;
  size_t len;
} cqrs_header_t;

#define CQRS_EVENT_MAX_HEADERS 14

/* Fills hdrs with ev's CloudEvents headers and returns how many. The values
 * borrow from ev and from version_buf, which must outlive hdrs. Can't fail. */
size_t cqrs_event_to_headers(const cqrs_event_t *ev, cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS],
                             char version_buf[24]);

/* Decodes a record into ev (caller storage, release with cqrs_event_cleanup,
 * also after a failure). Fails with CQRS_ERR_INVALID naming the header when a
 * required CloudEvents header is missing or malformed (ce_tenant, when
 * present, must be a valid tenant id), or the value is not a JSON object. */
bool cqrs_event_from_record(cqrs_event_t *ev, const cqrs_header_t *hdrs, size_t n_hdrs,
                            const void *value, size_t len, cqrs_error_t *err);

/* Releases what ev holds. Safe on a zeroed event. */
void cqrs_event_cleanup(cqrs_event_t *ev);

#endif
