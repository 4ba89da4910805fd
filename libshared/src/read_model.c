/* Read model aliases with a small TTL cache, keyed by database and read model. */
#include "cqrs/alloc.h"
#include "cqrs/read_model.h"

#include "cqrs/map.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char collection[CQRS_COLLECTION_NAME_MAX];
  int64_t fetched_ms;     /* 0: never fetched (the store did not answer) */
  int64_t valid_until_ms; /* monotonic: re-read from then on */
} entry_t;

struct cqrs_read_models {
  pthread_mutex_t lock;
  char *db; /* NULL: any database */
  int ttl_ms;
  cqrs_alias_role_t role;
  cqrs_map_t *entries; /* "<db>\n<read model>" -> entry_t */
};

cqrs_read_models_t *cqrs_read_models_new(const char *db, int ttl_ms, cqrs_alias_role_t role) {
  cqrs_read_models_t *rm = cqrs_xcalloc(1, sizeof *rm);
  pthread_mutex_init(&rm->lock, NULL);
  rm->db = db ? cqrs_xstrdup(db) : NULL;
  rm->ttl_ms = ttl_ms;
  rm->role = role;
  rm->entries = cqrs_map_new(free);
  return rm;
}

void cqrs_read_models_destroy(cqrs_read_models_t *rm) {
  if (!rm) return;
  pthread_mutex_destroy(&rm->lock);
  cqrs_map_destroy(rm->entries);
  free(rm->db);
  free(rm);
}

/* The alias from the store for role; false with error when it cannot be
 * read. *wait_ms: how long a reader is still to stay on the previous
 * collection (0: not). */
static bool fetch(mongoc_client_t *client, const char *db, const char *read_model, cqrs_alias_role_t role,
                  char out[CQRS_COLLECTION_NAME_MAX], int64_t *wait_ms, bson_error_t *error) {
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
  *wait_ms = 0;
  bool ok = true;
  if (mongoc_cursor_next(cur, &doc)) {
    const char *field = "collection";
    if (role == CQRS_ALIAS_READER && bson_iter_init_find(&it, doc, "readersFromMs") && BSON_ITER_HOLDS_INT64(&it)) {
      int64_t left = bson_iter_int64(&it) - cqrs_time_now_ms();
      if (left > 0) *wait_ms = left, field = "previous";
    }
    if (bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_UTF8(&it))
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
  BSON_ASSERT(rm->db); /* a resolver for any database takes the database with each call */
  cqrs_read_models_lookup_in(rm, client, rm->db, read_model, out, NULL);
}

bool cqrs_read_models_lookup(cqrs_read_models_t *rm, mongoc_client_t *client, const char *read_model,
                             char out[CQRS_COLLECTION_NAME_MAX], cqrs_error_t *err) {
  BSON_ASSERT(rm->db);
  return cqrs_read_models_lookup_in(rm, client, rm->db, read_model, out, err);
}

void cqrs_read_models_resolve_in(cqrs_read_models_t *rm, mongoc_client_t *client, const char *db,
                                 const char *read_model, char out[CQRS_COLLECTION_NAME_MAX]) {
  cqrs_read_models_lookup_in(rm, client, db, read_model, out, NULL);
}

typedef struct {
  int64_t cutoff_ms;
  const char *oldest_key;
  int64_t oldest_ms;
  char *oldest; /* copy of oldest_key, taken after the scan */
} evict_t;

static bool expired_cb(const char *key, void *value, void *ctx) {
  (void)key;
  return ((entry_t *)value)->fetched_ms < ((evict_t *)ctx)->cutoff_ms;
}

static bool oldest_cb(const char *key, void *value, void *ctx) {
  evict_t *e = ctx;
  entry_t *en = value;
  if (!e->oldest_key || en->fetched_ms < e->oldest_ms) {
    e->oldest_key = key;
    e->oldest_ms = en->fetched_ms;
  }
  return false;
}

/* Makes room for one more entry (under lock): answers past their TTL go
 * first; when every one is fresh, the oldest fetched. */
static void make_room(cqrs_read_models_t *rm, int64_t now) {
  if (cqrs_map_size(rm->entries) < CQRS_READ_MODELS_CACHE_MAX) return;
  evict_t e = {.cutoff_ms = now - rm->ttl_ms};
  cqrs_map_filter(rm->entries, expired_cb, &e);
  if (cqrs_map_size(rm->entries) < CQRS_READ_MODELS_CACHE_MAX) return;
  cqrs_map_filter(rm->entries, oldest_cb, &e);
  if (!e.oldest_key) return;
  e.oldest = cqrs_xstrdup(e.oldest_key);
  cqrs_map_delete(rm->entries, e.oldest);
  free(e.oldest);
}

bool cqrs_read_models_lookup_in(cqrs_read_models_t *rm, mongoc_client_t *client, const char *db,
                                const char *read_model, char out[CQRS_COLLECTION_NAME_MAX], cqrs_error_t *err) {
  int64_t now = cqrs_time_monotonic_ms();
  char *key = bson_strdup_printf("%s\n%s", db, read_model);
  pthread_mutex_lock(&rm->lock);
  entry_t *e = cqrs_map_get(rm->entries, key);
  if (e && e->fetched_ms > 0 && now < e->valid_until_ms) {
    snprintf(out, CQRS_COLLECTION_NAME_MAX, "%s", e->collection);
    pthread_mutex_unlock(&rm->lock);
    bson_free(key);
    return true;
  }
  pthread_mutex_unlock(&rm->lock);
  char fresh[CQRS_COLLECTION_NAME_MAX];
  bson_error_t error = {0};
  int64_t wait_ms;
  bool ok = fetch(client, db, read_model, rm->role, fresh, &wait_ms, &error);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading the alias of %s: %s", read_model, error.message);
  pthread_mutex_lock(&rm->lock);
  if (!(e = cqrs_map_get(rm->entries, key))) {
    make_room(rm, now);
    e = cqrs_xcalloc(1, sizeof *e);
    snprintf(e->collection, sizeof e->collection, "%s", read_model);
    cqrs_map_put(rm->entries, key, e);
  }
  if (ok) {
    snprintf(e->collection, sizeof e->collection, "%s", fresh);
    e->fetched_ms = now > 0 ? now : 1;
    /* held on the previous collection: asked again at least every
     * CQRS_ALIAS_TTL_MS, so a release is followed that soon */
    int64_t valid = rm->ttl_ms;
    if (wait_ms > 0 && wait_ms < valid) valid = wait_ms;
    if (wait_ms > 0 && CQRS_ALIAS_TTL_MS < valid) valid = CQRS_ALIAS_TTL_MS;
    e->valid_until_ms = now + valid;
  }
  snprintf(out, CQRS_COLLECTION_NAME_MAX, "%s", e->collection);
  pthread_mutex_unlock(&rm->lock);
  bson_free(key);
  return ok;
}

bool cqrs_read_models_swap(mongoc_client_t *client, const char *db, const char *read_model, const char *collection,
                           const int64_t *positions, int n, cqrs_error_t *err) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, CQRS_READ_MODELS_COLLECTION);
  bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, opts = BSON_INITIALIZER;
  char now[32], previous[CQRS_COLLECTION_NAME_MAX];
  int64_t unused;
  bson_error_t error;
  if (!fetch(client, db, read_model, CQRS_ALIAS_WRITER, previous, &unused, &error)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading the alias of %s: %s", read_model, error.message);
    mongoc_collection_destroy(coll);
    return false;
  }
  cqrs_time_now_rfc3339(now);
  BSON_APPEND_UTF8(&filter, "_id", read_model);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "collection", collection);
  BSON_APPEND_UTF8(&set, "previous", previous);
  BSON_APPEND_INT64(&set, "readersFromMs", cqrs_time_now_ms() + CQRS_READ_MODELS_READER_HOLD_MS);
  BSON_APPEND_UTF8(&set, "swappedAt", now);
  BSON_APPEND_INT64(&set, "swappedMs", cqrs_time_now_ms());
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(&set, "handoff", &arr);
  for (int i = 0; i < n; i++) {
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    BSON_APPEND_INT64(&arr, k, positions[i]);
  }
  bson_append_array_end(&set, &arr);
  bson_append_document_end(&update, &set);
  BSON_APPEND_BOOL(&opts, "upsert", true);
  bool ok = mongoc_collection_update_one(coll, &filter, &update, &opts, NULL, &error);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "swapping %s to %s: %s", read_model, collection, error.message);
  bson_destroy(&filter);
  bson_destroy(&update);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  return ok;
}

bool cqrs_read_models_release_readers(mongoc_client_t *client, const char *db, const char *read_model,
                                      const char *collection, cqrs_error_t *err) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, CQRS_READ_MODELS_COLLECTION);
  bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
  BSON_APPEND_UTF8(&filter, "_id", read_model);
  BSON_APPEND_UTF8(&filter, "collection", collection);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_INT64(&set, "readersFromMs", cqrs_time_now_ms());
  bson_append_document_end(&update, &set);
  bson_error_t error;
  bool ok = mongoc_collection_update_one(coll, &filter, &update, NULL, NULL, &error);
  if (!ok)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "releasing the readers of %s: %s", read_model, error.message);
  bson_destroy(&filter);
  bson_destroy(&update);
  mongoc_collection_destroy(coll);
  return ok;
}

int cqrs_read_models_handoff(mongoc_client_t *client, const char *db, const char *read_model, const char *collection,
                             int64_t *out, int max, cqrs_error_t *err) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, CQRS_READ_MODELS_COLLECTION);
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", read_model);
  BSON_APPEND_UTF8(&filter, "collection", collection);
  BSON_APPEND_INT64(&opts, "limit", 1);
  BSON_APPEND_BOOL(&opts, "singleBatch", true);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  const bson_t *doc;
  bson_iter_t it, arr;
  bson_error_t error;
  int n = 0;
  if (mongoc_cursor_next(cur, &doc)) {
    bool recent = bson_iter_init_find(&it, doc, "swappedMs") && BSON_ITER_HOLDS_INT64(&it) &&
                  cqrs_time_now_ms() - bson_iter_int64(&it) < CQRS_READ_MODELS_HANDOFF_MS;
    if (recent && bson_iter_init_find(&it, doc, "handoff") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr))
      while (n < max && bson_iter_next(&arr))
        out[n++] = BSON_ITER_HOLDS_INT64(&arr) ? bson_iter_int64(&arr) : -2 /* RD_KAFKA_OFFSET_BEGINNING */;
  } else if (mongoc_cursor_error(cur, &error)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading the alias of %s: %s", read_model, error.message);
    n = -1;
  }
  mongoc_cursor_destroy(cur);
  bson_destroy(&opts);
  bson_destroy(&filter);
  mongoc_collection_destroy(coll);
  return n;
}
