/* The read models projector-svc maintains, and the lookups over them (by
 * name; the time-travel model of an aggregate type). */
#include "../projection.h"

#include "cqrs/alloc.h"
#include "cqrs/upcast.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cqrs_projection_t *const cqrs_projections[] = {&cqrs_user_profiles_projection, &cqrs_order_summaries_projection,
                                                     &cqrs_customers_projection, &cqrs_event_history_projection,
                                                     &cqrs_snapshots_projection, NULL};

const cqrs_projection_t *cqrs_projection_find(const char *name) {
  for (size_t i = 0; cqrs_projections[i]; i++)
    if (strcmp(cqrs_projections[i]->name, name) == 0) return cqrs_projections[i];
  return NULL;
}

const cqrs_projection_t *cqrs_snapshot_model(const char *aggregate_type) {
  for (size_t i = 0; aggregate_type && cqrs_projections[i]; i++)
    if (cqrs_projections[i]->time_travel && strcmp(cqrs_projections[i]->aggregate_type, aggregate_type) == 0)
      return cqrs_projections[i];
  return NULL;
}

void cqrs_write_cleanup(cqrs_write_t *w) {
  bson_destroy(&w->filter);
  bson_destroy(&w->update);
}

cqrs_write_t *cqrs_writes_new(size_t n) { return cqrs_xcalloc_aligned(n, sizeof(cqrs_write_t), _Alignof(cqrs_write_t)); }

bool cqrs_projection_apply(const cqrs_projection_t *proj, const cqrs_projection_reader_t *r, const cqrs_event_t *ev,
                           cqrs_write_t *out, bool *skip, cqrs_error_t *err) {
  if (proj->apply) return proj->apply(ev, out, skip, err);
  if (r) return proj->apply_reading(r, ev, out, skip, err);
  *skip = false;
  out->upsert = false;
  bson_init(&out->filter);
  bson_init(&out->update);
  cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "projection %s reads the store and was given no reader", proj->name);
  return false;
}

bool cqrs_write_document(const cqrs_write_t *w, const char *id, bson_t *doc) {
  bson_init(doc);
  bson_iter_t it, f;
  if (!w->upsert || !bson_iter_init_find(&it, &w->filter, "_id") || !BSON_ITER_HOLDS_UTF8(&it) ||
      strcmp(bson_iter_utf8(&it, NULL), id) != 0)
    return false;
  BSON_APPEND_UTF8(doc, "_id", id);
  static const char *const ops[] = {"$setOnInsert", "$set"};
  for (int i = 0; i < 2; i++)
    if (bson_iter_init_find(&it, &w->update, ops[i]) && bson_iter_recurse(&it, &f))
      while (bson_iter_next(&f)) bson_append_value(doc, bson_iter_key(&f), -1, bson_iter_value(&f));
  return true;
}

void cqrs_events_release(cqrs_events_t *e) {
  if (e->owned)
    for (size_t i = 0; i < e->n; i++) cqrs_event_cleanup(&e->v[i]);
  free(e->v);
  *e = (cqrs_events_t){0};
}

bool cqrs_projection_dispatch(const cqrs_projection_handler_t *rows, size_t n, const cqrs_event_t *ev,
                              cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  *skip = false;
  w->upsert = false;
  bson_init(&w->filter);
  bson_init(&w->update);
  /* Every read of an event reads its current version: rows are the current
   * descriptors, and an event the contract cannot bring there (unknown type
   * or version) is poison for the read model of its aggregate. */
  cqrs_upcast_t up;
  if (!cqrs_upcast(ev->type, cqrs_event_schema_version(ev), ev->data, &up, err)) return false;
  bool ok = true;
  size_t i = 0;
  while (i < n && rows[i].type != up.type) i++;
  if (i == n) {
    *skip = true;
  } else {
    cqrs_event_data_t e;
    if ((ok = rows[i].type->decode(up.data, &e, err))) rows[i].apply(ev, &e, w);
  }
  cqrs_upcast_cleanup(&up);
  return ok;
}

void cqrs_projection_match_older(bson_t *filter, const cqrs_event_t *ev) {
  bson_t lt;
  BSON_APPEND_UTF8(filter, "_id", ev->aggregate_id);
  BSON_APPEND_DOCUMENT_BEGIN(filter, CQRS_PROJECTION_VERSION, &lt);
  BSON_APPEND_INT64(&lt, "$lt", ev->version);
  bson_append_document_end(filter, &lt);
}

void cqrs_projection_index(bson_t *array, uint32_t i, const char *name, ...) {
  char buf[16];
  const char *k;
  bson_uint32_to_string(i, &k, buf, sizeof buf);
  bson_t idx, key;
  bson_append_document_begin(array, k, -1, &idx);
  BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
  va_list ap;
  va_start(ap, name);
  for (const char *f; (f = va_arg(ap, const char *)) != NULL;) BSON_APPEND_INT32(&key, f, 1);
  va_end(ap);
  bson_append_document_end(&idx, &key);
  BSON_APPEND_UTF8(&idx, "name", name);
  bson_append_document_end(array, &idx);
}

size_t cqrs_projection_index_keys(const cqrs_projection_t *proj, const char *name, char keys[][64], size_t max) {
  bson_t all = BSON_INITIALIZER;
  proj->indexes(&all);
  bson_iter_t it, sub, key;
  size_t n = 0;
  bool found = false;
  if (bson_iter_init(&it, &all))
    while (!found && bson_iter_next(&it)) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub) || !bson_iter_find(&sub, "name") ||
          !BSON_ITER_HOLDS_UTF8(&sub) || strcmp(bson_iter_utf8(&sub, NULL), name) != 0)
        continue;
      found = true;
      if (!bson_iter_recurse(&it, &sub) || !bson_iter_find(&sub, "key") || !BSON_ITER_HOLDS_DOCUMENT(&sub) ||
          !bson_iter_recurse(&sub, &key))
        break;
      while (bson_iter_next(&key)) {
        if (n == max || strlen(bson_iter_key(&key)) >= 64) {
          n = 0;
          break;
        }
        snprintf(keys[n++], 64, "%s", bson_iter_key(&key));
      }
    }
  bson_destroy(&all);
  return found ? n : 0;
}

bool cqrs_projection_keyset_match(const cqrs_projection_t *proj, const bson_t *filter, const char *sort_field,
                                  cqrs_keyset_query_t *q) {
  for (const char *const *k = proj->keysets; k && *k; k++) {
    char keys[CQRS_KEYSET_KEYS_MAX][64];
    const char *names[CQRS_KEYSET_KEYS_MAX];
    size_t n = cqrs_projection_index_keys(proj, *k, keys, CQRS_KEYSET_KEYS_MAX);
    for (size_t i = 0; i < n; i++) names[i] = keys[i];
    if (cqrs_keyset_match(names, n, filter, sort_field, q)) return true;
  }
  return false;
}
