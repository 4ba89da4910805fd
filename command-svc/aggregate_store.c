/* In-memory aggregates with staged batches, and their aggregate-state form. */
#include "aggregate_store.h"
#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/map.h"

#include <stdlib.h>
#include <string.h>

struct cqrs_aggregate_store {
  cqrs_map_t *committed;
  cqrs_map_t *staged;
};

/* An outcome in one block, "<commandId>\0<result>\0", freed through
 * command_id. */
static cqrs_recent_t recent_new(const char *command_id, const char *result_json, int64_t at_ms) {
  size_t nc = strlen(command_id) + 1, nr = strlen(result_json) + 1;
  char *block = cqrs_xmalloc(nc + nr);
  memcpy(block, command_id, nc);
  memcpy(block + nc, result_json, nr);
  return (cqrs_recent_t){block, block + nc, at_ms};
}

cqrs_aggregate_t *cqrs_aggregate_new(const char *tenant, const char *id, const char *type, int32_t partition) {
  cqrs_aggregate_t *a = cqrs_xcalloc(1, sizeof *a);
  /* One block for the names, "<tenant>/<id>\0<tenant>\0<type>\0", the id
   * inside the key: a million restored aggregates are a million mallocs
   * fewer (BENCHMARKS.md). */
  size_t nt = strlen(tenant), ni = strlen(id), ny = strlen(type);
  char *block = cqrs_xmalloc(nt + 1 + ni + 1 + nt + 1 + ny + 1);
  a->key = block;
  memcpy(block, tenant, nt);
  block[nt] = CQRS_TENANT_KEY_SEP;
  memcpy(block + nt + 1, id, ni + 1);
  a->aggregate_id = block + nt + 1;
  a->tenant = block + nt + 1 + ni + 1;
  memcpy(a->tenant, tenant, nt + 1);
  a->aggregate_type = a->tenant + nt + 1;
  memcpy(a->aggregate_type, type, ny + 1);
  a->partition = partition;
  return a;
}

cqrs_aggregate_t *cqrs_aggregate_copy(const cqrs_aggregate_t *src) {
  cqrs_aggregate_t *a = cqrs_aggregate_new(src->tenant, src->aggregate_id, src->aggregate_type, src->partition);
  a->version = src->version;
  a->state = src->state ? bson_copy(src->state) : NULL;
  if (src->n_recent) a->recent = cqrs_xmalloc(src->n_recent * sizeof *a->recent);
  for (size_t i = 0; i < src->n_recent; i++) a->recent[i] = recent_new(src->recent[i].command_id, src->recent[i].result_json, src->recent[i].at_ms);
  a->n_recent = src->n_recent;
  a->unreadable = src->unreadable ? cqrs_xstrdup(src->unreadable) : NULL;
  return a;
}

void cqrs_aggregate_destroy(cqrs_aggregate_t *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n_recent; i++) free(a->recent[i].command_id); /* and its result */
  free(a->recent);
  if (a->state) bson_destroy(a->state);
  free(a->unreadable);
  free(a->key); /* and the other names (cqrs_aggregate_new) */
  free(a);
}

const char *cqrs_aggregate_recent(const cqrs_aggregate_t *a, const char *command_id) {
  for (size_t i = 0; i < a->n_recent; i++)
    if (strcmp(a->recent[i].command_id, command_id) == 0) return a->recent[i].result_json;
  return NULL;
}

void cqrs_aggregate_remember(cqrs_aggregate_t *a, const char *command_id, const char *result_json, int64_t at_ms) {
  a->recent = cqrs_xrealloc(a->recent, (a->n_recent + 1) * sizeof *a->recent);
  a->recent[a->n_recent++] = recent_new(command_id, result_json, at_ms);
  size_t drop = 0;
  while (a->n_recent - drop > CQRS_RECENT_COMMANDS &&
         (a->n_recent - drop > CQRS_RECENT_MAX || a->recent[drop].at_ms <= at_ms - CQRS_RECENT_MIN_MS))
    free(a->recent[drop++].command_id); /* and its result */
  if (drop) {
    memmove(&a->recent[0], &a->recent[drop], (a->n_recent - drop) * sizeof a->recent[0]);
    a->n_recent -= drop;
  }
}

char *cqrs_aggregate_to_json(const cqrs_aggregate_t *a, size_t *len) {
  bson_t doc = BSON_INITIALIZER, recent, item;
  BSON_APPEND_UTF8(&doc, "tenant", a->tenant);
  BSON_APPEND_UTF8(&doc, "aggregateId", a->aggregate_id);
  BSON_APPEND_UTF8(&doc, "aggregateType", a->aggregate_type);
  BSON_APPEND_INT64(&doc, "version", a->version);
  if (a->state) BSON_APPEND_DOCUMENT(&doc, "state", a->state);
  BSON_APPEND_ARRAY_BEGIN(&doc, "recent", &recent);
  for (size_t i = 0; i < a->n_recent; i++) {
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    bson_append_document_begin(&recent, k, -1, &item);
    BSON_APPEND_UTF8(&item, "commandId", a->recent[i].command_id);
    BSON_APPEND_UTF8(&item, "result", a->recent[i].result_json);
    if (a->recent[i].at_ms) BSON_APPEND_INT64(&item, "at", a->recent[i].at_ms);
    bson_append_document_end(&recent, &item);
  }
  bson_append_array_end(&doc, &recent);
  if (a->unreadable) BSON_APPEND_UTF8(&doc, "unreadable", a->unreadable);
  char *json = cqrs_json_write(&doc, len);
  bson_destroy(&doc);
  return json;
}

cqrs_aggregate_t *cqrs_aggregate_from_json(const char *record_key, int32_t partition, const char *json,
                                           size_t len, cqrs_error_t *err) {
  bson_t *doc = cqrs_json_parse(json, len, err);
  if (!doc) return NULL;
  cqrs_aggregate_t *a = NULL;
  const char *tenant, *id, *type;
  int64_t version;
  const char *unreadable;
  bool has_version, has_state, has_recent;
  bson_t state, recent;
  if (!cqrs_json_get_string(doc, "tenant", NULL, false, CQRS_TENANT_MAX, &tenant, err) ||
      !cqrs_json_get_string(doc, "aggregateId", NULL, false, 0, &id, err))
    goto done;
  if (!tenant && !id) {
    /* Written before tenancy: the key was the plain aggregate id. */
    tenant = CQRS_TENANT_DEFAULT;
    id = record_key;
  } else if (!tenant || !id) {
    cqrs_error_set(err, CQRS_ERR_INVALID, tenant ? "aggregateId" : "tenant",
                   "an aggregate-state value has both tenant and aggregateId or neither");
    goto done;
  } else if (!cqrs_tenant_valid(tenant, err)) {
    goto done;
  }
  if (!cqrs_json_get_string(doc, "aggregateType", NULL, true, 64, &type, err) ||
      !cqrs_json_get_int64(doc, "version", NULL, true, &version, &has_version, err) ||
      !cqrs_json_get_object(doc, "state", NULL, false, &state, &has_state, err) ||
      !cqrs_json_get_array(doc, "recent", NULL, false, &recent, &has_recent, err) ||
      !cqrs_json_get_string(doc, "unreadable", NULL, false, 0, &unreadable, err))
    goto done;
  a = cqrs_aggregate_new(tenant, id, type, partition);
  a->version = version;
  if (unreadable) a->unreadable = cqrs_xstrdup(unreadable);
  if (has_state) a->state = bson_copy(&state);
  bson_iter_t it;
  if (has_recent && bson_iter_init(&it, &recent)) {
    while (bson_iter_next(&it)) { /* oldest first: remember keeps what it would have */
      bson_t item;
      const uint8_t *data;
      uint32_t n;
      const char *cid, *res;
      int64_t at = 0;
      bool has_at;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
      bson_iter_document(&it, &n, &data);
      if (!bson_init_static(&item, data, n) ||
          !cqrs_json_get_string(&item, "commandId", NULL, true, 0, &cid, NULL) ||
          !cqrs_json_get_string(&item, "result", NULL, true, 0, &res, NULL) ||
          !cqrs_json_get_int64(&item, "at", NULL, false, &at, &has_at, NULL))
        continue;
      cqrs_aggregate_remember(a, cid, res, at);
    }
  }
done:
  bson_destroy(doc);
  return a;
}

static void destroy_value(void *v) { cqrs_aggregate_destroy(v); }

cqrs_aggregate_store_t *cqrs_aggregate_store_new(void) {
  cqrs_aggregate_store_t *s = cqrs_xcalloc(1, sizeof *s);
  s->committed = cqrs_map_new(destroy_value);
  s->staged = cqrs_map_new(destroy_value);
  return s;
}

void cqrs_aggregate_store_destroy(cqrs_aggregate_store_t *s) {
  if (!s) return;
  cqrs_map_destroy(s->committed);
  cqrs_map_destroy(s->staged);
  free(s);
}

const cqrs_aggregate_t *cqrs_aggregate_store_get(const cqrs_aggregate_store_t *s, const char *key) {
  const cqrs_aggregate_t *a = cqrs_map_get(s->staged, key);
  return a ? a : cqrs_map_get(s->committed, key);
}

void cqrs_aggregate_store_stage(cqrs_aggregate_store_t *s, cqrs_aggregate_t *a) {
  cqrs_map_put(s->staged, a->key, a);
}

void cqrs_aggregate_store_put(cqrs_aggregate_store_t *s, cqrs_aggregate_t *a) {
  cqrs_map_put(s->committed, a->key, a);
}

typedef struct {
  void (*cb)(cqrs_aggregate_t *a, void *ctx);
  void *ctx;
} each_t;

static bool visit(const char *key, void *value, void *ctx) {
  (void)key;
  each_t *e = ctx;
  e->cb(value, e->ctx);
  return false; /* keep it */
}

void cqrs_aggregate_store_each(cqrs_aggregate_store_t *s, void (*cb)(cqrs_aggregate_t *a, void *ctx), void *ctx) {
  each_t e = {cb, ctx};
  cqrs_map_filter(s->committed, visit, &e);
}

void cqrs_aggregate_store_commit(cqrs_aggregate_store_t *s) {
  cqrs_map_move_all(s->committed, s->staged);
}

void cqrs_aggregate_store_abort(cqrs_aggregate_store_t *s) {
  cqrs_map_clear(s->staged);
}

static bool in_partition(const char *key, void *value, void *ctx) {
  (void)key;
  return ((cqrs_aggregate_t *)value)->partition == *(int32_t *)ctx;
}

void cqrs_aggregate_store_drop_partition(cqrs_aggregate_store_t *s, int32_t partition) {
  cqrs_map_filter(s->committed, in_partition, &partition);
  cqrs_map_filter(s->staged, in_partition, &partition);
}

size_t cqrs_aggregate_store_size(const cqrs_aggregate_store_t *s) { return cqrs_map_size(s->committed); }
