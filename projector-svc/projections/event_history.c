/* event_history: one document per event, of every aggregate,
 * {_id: event id, eventId, type, schemaVersion, aggregateType, aggregateId,
 * version, versionBlock, time, timeHour, correlationId, causationId, tenant, actor, data}: the audit trail
 * (by aggregate, in version order) and the events by type and time. Written
 * once: a redelivered event finds its document and changes nothing. The
 * inverse, a document back into the event the projections apply, is here too
 * (time travel, query-svc). */
#include "../projection.h"

#include "cqrs/alloc.h"
#include "cqrs/tenant.h"
#include "cqrs/upcast.h"

#include <stdlib.h>
#include <string.h>


static void append_or_null(bson_t *doc, const char *key, const char *v) {
  if (v)
    bson_append_utf8(doc, key, -1, v, -1);
  else
    bson_append_null(doc, key, -1);
}

/* Every event is recorded as written, with the schema version it was written
 * at (1 for events from before schema versions), one whose type or version the
 * contract does not know included: the history is the log's, not the read
 * models', and no upcaster's result is ever stored, so a later upcaster
 * applies to every stored event without a rebuild. Whoever reads the data
 * back upcasts it like any other reader: time travel through
 * cqrs_projection_dispatch, the audit trail and the events by type through
 * cqrs_event_history_upcast. No decoding, so no event is poison here. */
static bool apply(const cqrs_event_t *ev, cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  (void)err;
  *skip = false;
  bson_init(&w->filter);
  bson_init(&w->update);
  w->upsert = true;
  bson_t set;
  BSON_APPEND_UTF8(&w->filter, "_id", ev->id);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
  BSON_APPEND_UTF8(&set, CQRS_HISTORY_EVENT_ID, ev->id);
  BSON_APPEND_UTF8(&set, CQRS_HISTORY_TYPE, ev->type);
  BSON_APPEND_INT32(&set, CQRS_HISTORY_SCHEMA_VERSION, cqrs_event_schema_version(ev));
  BSON_APPEND_UTF8(&set, CQRS_HISTORY_AGGREGATE_TYPE, ev->aggregate_type);
  BSON_APPEND_UTF8(&set, CQRS_HISTORY_AGGREGATE_ID, ev->aggregate_id);
  BSON_APPEND_INT64(&set, CQRS_HISTORY_VERSION, ev->version);
  BSON_APPEND_INT64(&set, CQRS_HISTORY_VERSION_BLOCK, ev->version > 0 ? (ev->version - 1) / CQRS_HISTORY_BLOCK : 0);
  BSON_APPEND_UTF8(&set, CQRS_HISTORY_TIME, ev->time);
  size_t tlen = strlen(ev->time);
  if (tlen > CQRS_HISTORY_HOUR_LEN && ev->time[10] == 'T' && ev->time[tlen - 1] == 'Z')
    bson_append_utf8(&set, CQRS_HISTORY_TIME_HOUR, -1, ev->time, CQRS_HISTORY_HOUR_LEN);
  else
    BSON_APPEND_NULL(&set, CQRS_HISTORY_TIME_HOUR);
  append_or_null(&set, CQRS_HISTORY_CORRELATION_ID, ev->correlation_id);
  append_or_null(&set, CQRS_HISTORY_CAUSATION_ID, ev->causation_id);
  BSON_APPEND_UTF8(&set, CQRS_HISTORY_TENANT, ev->tenant ? ev->tenant : CQRS_TENANT_DEFAULT);
  if (ev->auth_type) {
    bson_t actor;
    BSON_APPEND_DOCUMENT_BEGIN(&set, CQRS_HISTORY_ACTOR, &actor);
    BSON_APPEND_UTF8(&actor, CQRS_HISTORY_ACTOR_TYPE, ev->auth_type);
    append_or_null(&actor, CQRS_HISTORY_ACTOR_ID, ev->auth_id);
    bson_append_document_end(&set, &actor);
  }
  if (ev->data)
    BSON_APPEND_DOCUMENT(&set, CQRS_HISTORY_DATA, ev->data);
  else
    BSON_APPEND_NULL(&set, CQRS_HISTORY_DATA);
  bson_append_document_end(&w->update, &set);
  return true;
}

/* The audit trail: equality on the aggregate, in version order. aggregateId
 * leads (not aggregateType, which has three values): on FerretDB the GIN
 * index goes on each index's first field (indexes.h), and only the id is
 * selective. Events by type: a time range within a type. */
static void indexes(bson_t *array) {
  cqrs_projection_index(array, 0, "aggregate_version", CQRS_HISTORY_AGGREGATE_ID, CQRS_HISTORY_AGGREGATE_TYPE, CQRS_HISTORY_VERSION, "_id", NULL);
  cqrs_projection_index(array, 1, "type_time", CQRS_HISTORY_TYPE, CQRS_HISTORY_TIME, "_id", NULL);
}

const cqrs_projection_t cqrs_event_history_projection = {
    .name = "event_history",
    .aggregate_type = NULL, /* every aggregate's events */
    .apply = apply,
    .indexes = indexes,
};

/* The stored schema version of doc: 1 when absent or null (recorded before
 * schema versions were, when the contract had only version 1). */
static int stored_schema_version(const bson_t *doc) {
  bson_iter_t it;
  return bson_iter_init_find(&it, doc, CQRS_HISTORY_SCHEMA_VERSION) && BSON_ITER_HOLDS_NUMBER(&it)
             ? (int)bson_iter_as_int64(&it)
             : 1;
}

/* A required string member of doc, copied. */
static bool take_string(const bson_t *doc, const char *key, bool required, char **out, cqrs_error_t *err) {
  bson_iter_t it;
  *out = NULL;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) {
    *out = cqrs_xstrdup(bson_iter_utf8(&it, NULL));
    return true;
  }
  if (!required) return true;
  cqrs_error_set(err, CQRS_ERR_INVALID, key, "history document without a string %s", key);
  return false;
}

bool cqrs_event_history_to_event(const bson_t *doc, cqrs_event_t *ev, cqrs_error_t *err) {
  memset(ev, 0, sizeof *ev);
  bson_iter_t it, sub;
  if (!take_string(doc, CQRS_HISTORY_EVENT_ID, true, &ev->id, err) || !take_string(doc, CQRS_HISTORY_TYPE, true, &ev->type, err) ||
      !take_string(doc, CQRS_HISTORY_AGGREGATE_TYPE, true, &ev->aggregate_type, err) ||
      !take_string(doc, CQRS_HISTORY_AGGREGATE_ID, true, &ev->aggregate_id, err) || !take_string(doc, CQRS_HISTORY_TIME, true, &ev->time, err) ||
      !take_string(doc, CQRS_HISTORY_CORRELATION_ID, false, &ev->correlation_id, err) ||
      !take_string(doc, CQRS_HISTORY_CAUSATION_ID, false, &ev->causation_id, err) ||
      !take_string(doc, CQRS_HISTORY_TENANT, false, &ev->tenant, err))
    return false;
  if (!bson_iter_init_find(&it, doc, CQRS_HISTORY_VERSION) || !BSON_ITER_HOLDS_NUMBER(&it)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, CQRS_HISTORY_VERSION, "history document without a numeric version");
    return false;
  }
  ev->version = bson_iter_as_int64(&it);
  ev->schema_version = stored_schema_version(doc);
  /* absent when the event did not say who caused it */
  if (bson_iter_init_find(&it, doc, CQRS_HISTORY_ACTOR) && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    const uint8_t *a;
    uint32_t alen;
    bson_t actor;
    bson_iter_document(&it, &alen, &a);
    if (bson_init_static(&actor, a, alen)) {
      take_string(&actor, CQRS_HISTORY_ACTOR_TYPE, false, &ev->auth_type, NULL);
      take_string(&actor, CQRS_HISTORY_ACTOR_ID, false, &ev->auth_id, NULL);
    }
  }
  const uint8_t *data;
  uint32_t len;
  if (!bson_iter_init_find(&it, doc, CQRS_HISTORY_DATA) || !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, CQRS_HISTORY_DATA, "history document without its data");
    return false;
  }
  bson_iter_document(&it, &len, &data);
  ev->data = bson_new_from_data(data, len);
  if (!ev->data) {
    cqrs_error_set(err, CQRS_ERR_INVALID, CQRS_HISTORY_DATA, "history document with corrupt data");
    return false;
  }
  return true;
}

bool cqrs_event_history_upcast(const bson_t *doc, bson_t *out, cqrs_error_t *err) {
  bson_init(out);
  bson_iter_t it;
  const char *type = bson_iter_init_find(&it, doc, CQRS_HISTORY_TYPE) && BSON_ITER_HOLDS_UTF8(&it)
                         ? bson_iter_utf8(&it, NULL) : NULL;
  int written = stored_schema_version(doc), now = written;
  bson_t data;
  bool has_data = false;
  if (bson_iter_init_find(&it, doc, CQRS_HISTORY_DATA) && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    const uint8_t *d;
    uint32_t len;
    bson_iter_document(&it, &len, &d);
    has_data = bson_init_static(&data, d, len);
  }
  cqrs_upcast_t up = {0};
  bool ok = false;
  if (!type)
    cqrs_error_set(err, CQRS_ERR_INVALID, CQRS_HISTORY_TYPE, "history document without a string type");
  else if (!has_data)
    cqrs_error_set(err, CQRS_ERR_INVALID, CQRS_HISTORY_DATA, "history document without its data");
  else if ((ok = cqrs_upcast(type, written, &data, &up, err)))
    now = up.type->version;
  bool placed = false;
  if (bson_iter_init(&it, doc))
    while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      if (strcmp(k, CQRS_HISTORY_WRITTEN_SCHEMA_VERSION) == 0) continue;
      if (strcmp(k, CQRS_HISTORY_SCHEMA_VERSION) == 0) {
        BSON_APPEND_INT32(out, CQRS_HISTORY_SCHEMA_VERSION, now);
        BSON_APPEND_INT32(out, CQRS_HISTORY_WRITTEN_SCHEMA_VERSION, written);
        placed = true;
      } else if (ok && strcmp(k, CQRS_HISTORY_DATA) == 0) {
        BSON_APPEND_DOCUMENT(out, CQRS_HISTORY_DATA, up.data);
      } else {
        bson_append_iter(out, k, -1, &it);
      }
    }
  if (!placed) {
    BSON_APPEND_INT32(out, CQRS_HISTORY_SCHEMA_VERSION, now);
    BSON_APPEND_INT32(out, CQRS_HISTORY_WRITTEN_SCHEMA_VERSION, written);
  }
  cqrs_upcast_cleanup(&up);
  return ok;
}
