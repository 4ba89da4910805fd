/* CloudEvents binary mode: an event to headers and back. */
#include "cqrs/alloc.h"
#include "cqrs/event.h"
#include "cqrs/json.h"
#include "cqrs/tenant.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(cqrs_header_t *h, size_t *n, const char *name, const char *value) {
  if (!value) return;
  h[*n].name = name;
  h[*n].value = value;
  h[*n].len = strlen(value);
  (*n)++;
}

size_t cqrs_event_to_headers(const cqrs_event_t *ev, cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS],
                             char version_buf[24]) {
  size_t n = 0;
  snprintf(version_buf, 24, "%lld", (long long)ev->version);
  add(hdrs, &n, "ce_specversion", "1.0");
  add(hdrs, &n, "ce_id", ev->id);
  add(hdrs, &n, "ce_source", ev->source);
  add(hdrs, &n, "ce_type", ev->type);
  add(hdrs, &n, "ce_subject", ev->aggregate_id);
  add(hdrs, &n, "ce_time", ev->time);
  add(hdrs, &n, "content-type", "application/json");
  add(hdrs, &n, "ce_aggregatetype", ev->aggregate_type);
  add(hdrs, &n, "ce_aggregateversion", version_buf);
  add(hdrs, &n, "ce_correlationid", ev->correlation_id);
  add(hdrs, &n, "ce_causationid", ev->causation_id);
  add(hdrs, &n, "traceparent", ev->traceparent);
  add(hdrs, &n, "ce_tenant", ev->tenant);
  add(hdrs, &n, "ce_dataschema", ev->dataschema);
  add(hdrs, &n, CQRS_EVENT_AUTHTYPE_HEADER, ev->auth_type);
  add(hdrs, &n, CQRS_EVENT_AUTHID_HEADER, ev->auth_id);
  if (ev->schema_version > 0) {
    /* The value borrows from the URI when it ends in the version (what
     * cqrs_event_set_schema writes), else it goes into version_buf after the
     * aggregate version: room for any aggregate version below 10^12. */
    char text[16];
    snprintf(text, sizeof text, "%d", ev->schema_version);
    const char *slash = ev->dataschema ? strrchr(ev->dataschema, '/') : NULL;
    size_t used = strlen(version_buf) + 1;
    if (slash && strcmp(slash + 1, text) == 0)
      add(hdrs, &n, "ce_schemaversion", slash + 1);
    else if (used + strlen(text) < 24)
      add(hdrs, &n, "ce_schemaversion", memcpy(version_buf + used, text, strlen(text) + 1));
  }
  return n;
}

void cqrs_event_set_schema(cqrs_event_t *ev, const char *registry_url, int version) {
  const char *base = registry_url && *registry_url ? registry_url : CQRS_SCHEMA_REGISTRY_DEFAULT;
  size_t blen = strlen(base);
  while (blen > 0 && base[blen - 1] == '/') blen--;
  char *uri = NULL;
  if (asprintf(&uri, "%.*s/v1/schemas/subjects/%s/versions/%d", (int)blen, base, ev->type, version) < 0) uri = NULL;
  free(ev->dataschema);
  ev->dataschema = uri;
  ev->schema_version = version;
}

int cqrs_event_schema_version(const cqrs_event_t *ev) { return ev->schema_version > 0 ? ev->schema_version : 1; }

/* A positive int in s (all of it), or 0. */
static int positive_int(const char *s) {
  if (!s || !*s || strspn(s, "0123456789") != strlen(s)) return 0;
  errno = 0;
  long v = strtol(s, NULL, 10);
  return errno || v < 1 || v > INT_MAX ? 0 : (int)v;
}

/* The last header called name; NULL when absent. */
static const cqrs_header_t *find(const cqrs_header_t *hdrs, size_t n, const char *name) {
  for (size_t i = n; i-- > 0;)
    if (strcmp(hdrs[i].name, name) == 0) return &hdrs[i];
  return NULL;
}

/* The last header called name, copied; NULL when absent. */
static char *header(const cqrs_header_t *hdrs, size_t n, const char *name) {
  const cqrs_header_t *h = find(hdrs, n, name);
  if (!h) return NULL;
  return h->value ? cqrs_xstrndup(h->value, h->len) : cqrs_xstrdup("");
}

bool cqrs_event_authid_valid(const char *s, size_t len) {
  if (!s || len < 1 || len > CQRS_EVENT_AUTHID_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
  return bson_utf8_validate(s, len, false);
}

static bool authtype_valid(const char *s, size_t len) {
  if (!s || len < 1 || len > CQRS_EVENT_AUTHTYPE_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) return false;
  return true;
}

/* The Auth Context headers into ev (both optional); checked on the bytes as
 * they came, so a NUL inside one is refused, not cut short. */
static bool auth_context(cqrs_event_t *ev, const cqrs_header_t *hdrs, size_t n, cqrs_error_t *err) {
  const cqrs_header_t *type = find(hdrs, n, CQRS_EVENT_AUTHTYPE_HEADER), *id = find(hdrs, n, CQRS_EVENT_AUTHID_HEADER);
  if (type && !authtype_valid(type->value, type->len)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, CQRS_EVENT_AUTHTYPE_HEADER,
                   "event header " CQRS_EVENT_AUTHTYPE_HEADER " must be 1 to %d lowercase letters or '_'",
                   CQRS_EVENT_AUTHTYPE_MAX);
    return false;
  }
  if (id && (!type || !cqrs_event_authid_valid(id->value, id->len))) {
    cqrs_error_set(err, CQRS_ERR_INVALID, CQRS_EVENT_AUTHID_HEADER,
                   "event header " CQRS_EVENT_AUTHID_HEADER " must come with " CQRS_EVENT_AUTHTYPE_HEADER
                   " and be 1 to %d bytes of UTF-8 without control characters", CQRS_EVENT_AUTHID_MAX);
    return false;
  }
  ev->auth_type = type ? cqrs_xstrndup(type->value, type->len) : NULL;
  ev->auth_id = id ? cqrs_xstrndup(id->value, id->len) : NULL;
  return true;
}

static bool required(char **slot, const cqrs_header_t *hdrs, size_t n, const char *name,
                     cqrs_error_t *err) {
  *slot = header(hdrs, n, name);
  if (*slot && **slot) return true;
  cqrs_error_set(err, CQRS_ERR_INVALID, name, "event header %s is missing or empty", name);
  return false;
}

bool cqrs_event_from_record(cqrs_event_t *ev, const cqrs_header_t *hdrs, size_t n_hdrs,
                            const void *value, size_t len, cqrs_error_t *err) {
  memset(ev, 0, sizeof *ev);
  char *spec = header(hdrs, n_hdrs, "ce_specversion");
  bool spec_ok = spec && strcmp(spec, "1.0") == 0;
  free(spec);
  if (!spec_ok) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "ce_specversion", "event header ce_specversion must be 1.0");
    return false;
  }
  char *version = NULL;
  bool ok = required(&ev->id, hdrs, n_hdrs, "ce_id", err) &&
            required(&ev->type, hdrs, n_hdrs, "ce_type", err) &&
            required(&ev->source, hdrs, n_hdrs, "ce_source", err) &&
            required(&ev->aggregate_id, hdrs, n_hdrs, "ce_subject", err) &&
            required(&ev->aggregate_type, hdrs, n_hdrs, "ce_aggregatetype", err) &&
            required(&ev->time, hdrs, n_hdrs, "ce_time", err) &&
            required(&version, hdrs, n_hdrs, "ce_aggregateversion", err);
  if (ok) {
    char *end;
    errno = 0;
    long long v = strtoll(version, &end, 10);
    if (errno || *end || v < 1) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "ce_aggregateversion",
                     "event header ce_aggregateversion must be a positive integer");
      ok = false;
    }
    ev->version = v;
  }
  free(version);
  if (!ok) return false;
  ev->correlation_id = header(hdrs, n_hdrs, "ce_correlationid");
  ev->causation_id = header(hdrs, n_hdrs, "ce_causationid");
  ev->traceparent = header(hdrs, n_hdrs, "traceparent");
  ev->dataschema = header(hdrs, n_hdrs, "ce_dataschema");
  char *schema_version = header(hdrs, n_hdrs, "ce_schemaversion");
  if (schema_version) {
    ev->schema_version = positive_int(schema_version);
    free(schema_version);
    if (!ev->schema_version) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "ce_schemaversion",
                     "event header ce_schemaversion must be a positive integer");
      return false;
    }
  } else {
    const char *slash = ev->dataschema ? strrchr(ev->dataschema, '/') : NULL;
    ev->schema_version = slash ? positive_int(slash + 1) : 0;
    if (!ev->schema_version) ev->schema_version = 1; /* written before schema versions */
  }
  ev->tenant = header(hdrs, n_hdrs, "ce_tenant");
  if (!ev->tenant) {
    ev->tenant = cqrs_xstrdup(CQRS_TENANT_DEFAULT);
  } else if (!cqrs_tenant_valid(ev->tenant, err)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "ce_tenant", "event header ce_tenant is not a valid tenant id");
    return false;
  }
  if (!auth_context(ev, hdrs, n_hdrs, err)) return false;
  ev->data = value ? cqrs_json_parse(value, len, err) : NULL;
  if (!ev->data) {
    if (!value) cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "event has no value");
    return false;
  }
  return true;
}

void cqrs_event_cleanup(cqrs_event_t *ev) {
  if (!ev) return;
  free(ev->id);
  free(ev->type);
  free(ev->source);
  free(ev->aggregate_type);
  free(ev->aggregate_id);
  free(ev->time);
  free(ev->correlation_id);
  free(ev->causation_id);
  free(ev->traceparent);
  free(ev->tenant);
  free(ev->dataschema);
  free(ev->auth_type);
  free(ev->auth_id);
  if (ev->data) bson_destroy(ev->data);
  memset(ev, 0, sizeof *ev);
}
