/* Events on the wire: CloudEvents 1.0 in Kafka binary content mode (API.md).
 * The record value is the event data JSON; the metadata travels in headers.
 * Pure: works on header arrays, the Kafka wrapper converts.
 *
 * Every event says its schema: ce_dataschema is the URI of its schema in the
 * registry (admin-svc, Confluent API under /v1/schemas):
 * "<registry>/v1/schemas/subjects/<ce_type>/versions/<n>", and
 * ce_schemaversion is n. An event without them (written before schema
 * versions) is version 1.
 *
 * Every event says who caused it, in the CloudEvents "Auth Context" extension
 * (cloudevents/spec, cloudevents/extensions/authcontext.md): ce_authtype,
 * the kind of principal, and ce_authid, the verified credential's subject
 * (cqrs/auth.h). Never a secret: an API key's id, never the key. An event
 * written before has neither. */
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
  int schema_version;   /* ce_schemaversion: the data's schema version (cqrs/events.h);
                           decoding gives 1 to events without it. 0 (an event
                           built in code without cqrs_event_set_schema) reads as 1 */
  char *dataschema;     /* ce_dataschema, may be NULL */
  char *auth_type;      /* ce_authtype: a CQRS_AUTHTYPE_* value; NULL when the
                           event does not say (written before it was recorded) */
  char *auth_id;        /* ce_authid: who, e.g. a JWT's sub or "apikey:<keyId>";
                           may be NULL, and is whenever auth_type is */
  bson_t *data;         /* the record value */
} cqrs_event_t;

/* The headers of the Auth Context extension. */
#define CQRS_EVENT_AUTHTYPE_HEADER "ce_authtype"
#define CQRS_EVENT_AUTHID_HEADER "ce_authid"

/* The authtype values written here, all from the extension's documented list:
 * a JWT is issued to an end user of the application by its identity provider
 * (the extension's own examples for app_user are such providers' users; its
 * "user" means an account of the infrastructure itself); an API key is
 * api_key; saga-svc, which signs its commands with a service key, is a
 * service_account; with AUTH=off no credential is checked: unauthenticated. */
#define CQRS_AUTHTYPE_APP_USER "app_user"               /* authid: the JWT's sub */
#define CQRS_AUTHTYPE_API_KEY "api_key"                 /* authid: "apikey:<keyId>" */
#define CQRS_AUTHTYPE_SERVICE_ACCOUNT "service_account" /* authid: "saga-svc" */
#define CQRS_AUTHTYPE_UNAUTHENTICATED "unauthenticated" /* authid: "anonymous" */

/* Bounds a decoded event holds its auth headers to (decode refuses others):
 * an authtype is 1 to CQRS_EVENT_AUTHTYPE_MAX of [a-z_] (the extension lets
 * producers add values, so any such name reads); an authid is
 * cqrs_event_authid_valid. */
#define CQRS_EVENT_AUTHTYPE_MAX 32
#define CQRS_EVENT_AUTHID_MAX 127

/* True when the len bytes at s can be an authid: 1 to CQRS_EVENT_AUTHID_MAX
 * bytes of UTF-8 without a control character (nor a NUL). What a credential's
 * subject must be (cqrs/auth.h refuses a JWT whose sub is not), so every
 * event written can be read back. */
bool cqrs_event_authid_valid(const char *s, size_t len);

/* The registry events point at when SCHEMA_REGISTRY_URL is not set. */
#define CQRS_SCHEMA_REGISTRY_DEFAULT "http://127.0.0.1:8083"

/* ev's schema: schema_version = version and dataschema = the URI of type
 * ev->type at version in the registry at registry_url (no trailing slash
 * needed; NULL: CQRS_SCHEMA_REGISTRY_DEFAULT). Replaces a dataschema ev had.
 * Can't fail. */
void cqrs_event_set_schema(cqrs_event_t *ev, const char *registry_url, int version);

/* ev's schema version as read: schema_version, or 1 when it is 0. */
int cqrs_event_schema_version(const cqrs_event_t *ev);

/* One Kafka header; value is not NUL-terminated. */
typedef struct {
  const char *name;
  const void *value;
  size_t len;
} cqrs_header_t;

#define CQRS_EVENT_MAX_HEADERS 18

/* Fills hdrs with ev's CloudEvents headers and returns how many. The values
 * borrow from ev and from version_buf, which must outlive hdrs. ce_dataschema
 * is written when ev->dataschema is set, ce_schemaversion when
 * ev->schema_version is (cqrs_event_set_schema sets both in step),
 * ce_authtype and ce_authid when set. Can't fail. */
size_t cqrs_event_to_headers(const cqrs_event_t *ev, cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS],
                             char version_buf[24]);

/* Decodes a record into ev (caller storage, release with cqrs_event_cleanup,
 * also after a failure). Fails with CQRS_ERR_INVALID naming the header when a
 * required CloudEvents header is missing or malformed (ce_tenant, when
 * present, must be a valid tenant id; ce_schemaversion, when present, a
 * positive integer; ce_authtype and ce_authid, when present, within the
 * bounds above, and ce_authid only with a ce_authtype), or the value is not a
 * JSON object. Without
 * ce_schemaversion the version is the last segment of ce_dataschema when that
 * is a number, else 1. The data is as written: cqrs/upcast.h brings it to the
 * current version. */
bool cqrs_event_from_record(cqrs_event_t *ev, const cqrs_header_t *hdrs, size_t n_hdrs,
                            const void *value, size_t len, cqrs_error_t *err);

/* Releases what ev holds. Safe on a zeroed event. */
void cqrs_event_cleanup(cqrs_event_t *ev);

#endif
