/* Command results as JSON. */
#include "cqrs/result.h"
#include "cqrs/json.h"

#include <string.h>

char *cqrs_result_to_json(const cqrs_result_t *r, size_t *len) {
  bson_t doc = BSON_INITIALIZER;
  if (r->command_id) BSON_APPEND_UTF8(&doc, "commandId", r->command_id);
  if (r->aggregate_id) BSON_APPEND_UTF8(&doc, "aggregateId", r->aggregate_id);
  if (r->error) {
    BSON_APPEND_UTF8(&doc, "error", r->error->message);
    if (r->error->field[0]) BSON_APPEND_UTF8(&doc, "field", r->error->field);
    if (r->error->code == CQRS_ERR_CONFLICT)
      BSON_APPEND_INT64(&doc, "currentVersion", r->error->current_version);
    if (r->error->code == CQRS_ERR_RATE_LIMITED) /* whole seconds, as Retry-After */
      BSON_APPEND_INT64(&doc, CQRS_RESULT_RETRY_AFTER, cqrs_result_retry_after_s(r->error->retry_after_ms));
  } else {
    BSON_APPEND_INT64(&doc, "version", r->version);
    if (r->event_id)
      BSON_APPEND_UTF8(&doc, "eventId", r->event_id);
    else
      BSON_APPEND_NULL(&doc, "eventId");
    if (r->event_type)
      BSON_APPEND_UTF8(&doc, "eventType", r->event_type);
    else
      BSON_APPEND_NULL(&doc, "eventType");
  }
  BSON_APPEND_INT32(&doc, "status", r->status);
  char *json = cqrs_json_write(&doc, len);
  bson_destroy(&doc);
  return json;
}

char *cqrs_result_restatus(const char *json, size_t len, int status, size_t *out_len) {
  bson_t *doc = cqrs_json_parse(json, len, NULL);
  if (!doc) return NULL;
  bson_t copy = BSON_INITIALIZER;
  bson_copy_to_excluding_noinit(doc, &copy, "status", NULL);
  BSON_APPEND_INT32(&copy, "status", status);
  char *out = cqrs_json_write(&copy, out_len);
  bson_destroy(&copy);
  bson_destroy(doc);
  return out;
}

bool cqrs_result_status(const char *json, size_t len, int *status) {
  bson_t *doc = cqrs_json_parse(json, len, NULL);
  if (!doc) return false;
  int64_t v = 0;
  bool present = false;
  bool ok = cqrs_json_get_int64(doc, "status", NULL, true, &v, &present, NULL) && present;
  bson_destroy(doc);
  *status = (int)v;
  return ok;
}

int64_t cqrs_result_retry_after_s(int64_t retry_after_ms) {
  return retry_after_ms > 1000 ? (retry_after_ms + 999) / 1000 : 1;
}

int64_t cqrs_result_retry_after(const char *json, size_t len) {
  bson_t *doc = cqrs_json_parse(json, len, NULL);
  if (!doc) return 0;
  int64_t v = 0;
  bool present = false;
  bool ok = cqrs_json_get_int64(doc, CQRS_RESULT_RETRY_AFTER, NULL, true, &v, &present, NULL) && present && v > 0;
  bson_destroy(doc);
  return ok ? v : 0;
}

int32_t cqrs_result_reply_partition(const void *value, size_t len, int32_t n_partitions) {
  const char *v = value;
  if (!v || len == 0 || len > 10 || n_partitions <= 0) return -1; /* 10 digits hold any int32 */
  int64_t p = 0;
  for (size_t i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    p = p * 10 + (v[i] - '0');
  }
  return p < n_partitions ? (int32_t)p : -1;
}
