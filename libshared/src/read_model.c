/* Read model aliases with a small TTL cache. */
#include "cqrs/read_model.h"

#include "cqrs/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 16

typedef struct {
  char read_model[CQRS_COLLECTION_NAME_MAX];
  char collection[CQRS_COLLECTION_NAME_MAX];
  int64_t fetched_ms;
} entry_t;

struct cqrs_read_models {
  pthread_mutex_t lock;
  char *db;
  int ttl_ms;
  entry_t entries[MAX_MODELS];
  int n;
};

cqrs_read_models_t *cqrs_read_models_new(const char *db, int ttl_ms) {
  cqrs_read_models_t *rm = calloc(1, sizeof *rm);
  pthread_mutex_init(&rm->lock, NULL);
  rm->db = strdup(db);
  rm->ttl_ms = ttl_ms;
  return rm;
}

void cqrs_read_models_destroy(cqrs_read_models_t *rm) {
  if (!rm) return;
  pthread_mutex_destroy(&rm->lock);
  free(rm->db);
  free(rm);
}

/* The alias from the store; false with error when it cannot be read. */
static bool fetch(mongoc_client_t *client, const char *db, const char *read_model, char out[CQRS_COLLECTION_NAME_MAX],
                  bson_error_t *error) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, CQRS_READ_MODELS_COLLECTION);
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", read_model);
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_INT64(&opts, "limit", 1);
  BSON_APPEND_BOOL(&opts, "singleBatch", true); /* no cursor left open on the server */
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  bson_destroy(&opts);
  const bson_t *doc;
  bson_iter_t it;
  snprintf(out, CQRS_COLLECTION_NAME_MAX, "%s", read_model);
  bool ok = true;
  if (mongoc_cursor_next(cur, &doc)) {
    if (bson_iter_init_find(&it, doc, "collection") && BSON_ITER_HOLDS_UTF8(&it))
      snprintf(out, CQRS_COLLECTION_NAME_MAX, "%s", bson_iter_utf8(&it, NULL));
  } else if (mongoc_cursor_error(cur, error)) {
    ok = false;
  }
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  mongoc_collection_destroy(coll);
  return ok;
}

void cqrs_read_models_resolve(cqrs_read_models_t *rm, mongoc_client_t *client, const char *read_model,
                              char out[CQRS_COLLECTION_NAME_MAX]) {
  cqrs_read_models_lookup(rm, client, read_model, out, NULL);
}

bool cqrs_read_models_lookup(cqrs_read_models_t *rm, mongoc_client_t *client, const char *read_model,
                             char out[CQRS_COLLECTION_NAME_MAX], cqrs_error_t *err) {
  int64_t now = cqrs_time_monotonic_ms();
  pthread_mutex_lock(&rm->lock);
  entry_t *e = NULL;
  for (int i = 0; i < rm->n && !e; i++)
    if (strcmp(rm->entries[i].read_model, read_model) == 0) e = &rm->entries[i];
  if (e && now - e->fetched_ms < rm->ttl_ms) {
    snprintf(out, CQRS_COLLECTION_NAME_MAX, "%s", e->collection);
    pthread_mutex_unlock(&rm->lock);
    return true;
  }
  pthread_mutex_unlock(&rm->lock);
  char fresh[CQRS_COLLECTION_NAME_MAX];
  bson_error_t error = {0};
  bool ok = fetch(client, rm->db, read_model, fresh, &error);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading the alias of %s: %s", read_model, error.message);
  pthread_mutex_lock(&rm->lock);
  e = NULL;
  for (int i = 0; i < rm->n && !e; i++)
    if (strcmp(rm->entries[i].read_model, read_model) == 0) e = &rm->entries[i];
  if (!e && rm->n < MAX_MODELS) {
    e = &rm->entries[rm->n++];
    snprintf(e->read_model, sizeof e->read_model, "%s", read_model);
    snprintf(e->collection, sizeof e->collection, "%s", read_model);
  }
  if (e && ok) {
    snprintf(e->collection, sizeof e->collection, "%s", fresh);
    e->fetched_ms = now;
  }
  snprintf(out, CQRS_COLLECTION_NAME_MAX, "%s", e ? e->collection : fresh);
  pthread_mutex_unlock(&rm->lock);
  return ok;
}

bool cqrs_read_models_swap(mongoc_client_t *client, const char *db, const char *read_model, const char *collection,
                           cqrs_error_t *err) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, CQRS_READ_MODELS_COLLECTION);
  bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, opts = BSON_INITIALIZER;
  char now[32];
  cqrs_time_now_rfc3339(now);
  BSON_APPEND_UTF8(&filter, "_id", read_model);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "collection", collection);
  BSON_APPEND_UTF8(&set, "swappedAt", now);
  bson_append_document_end(&update, &set);
  BSON_APPEND_BOOL(&opts, "upsert", true);
  bson_error_t error;
  bool ok = mongoc_collection_update_one(coll, &filter, &update, &opts, NULL, &error);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "swapping %s to %s: %s", read_model, collection, error.message);
  bson_destroy(&filter);
  bson_destroy(&update);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  return ok;
}
