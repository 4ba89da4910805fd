/* Read-model progress documents (see freshness.h). */
#include "cqrs/freshness.h"

#include <string.h>

#define F_LAG_EVENTS "lagEvents"
#define F_CAUGHT_UP "caughtUpAtMs"
#define F_HEARTBEAT "heartbeatMs"

bool cqrs_progress_publish(mongoc_client_t *client, const char *db, const char *read_model, const cqrs_progress_t *p,
                           cqrs_error_t *err) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, CQRS_PROGRESS_COLLECTION);
  bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", read_model);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_INT64(&set, F_LAG_EVENTS, p->lag_events);
  if (p->caught_up_ms > 0) BSON_APPEND_INT64(&set, F_CAUGHT_UP, p->caught_up_ms); /* else keep the last known */
  BSON_APPEND_INT64(&set, F_HEARTBEAT, p->heartbeat_ms);
  bson_append_document_end(&update, &set);
  BSON_APPEND_BOOL(&opts, "upsert", true);
  bson_error_t e;
  bool ok = mongoc_collection_update_one(coll, &filter, &update, &opts, NULL, &e);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "progress of %s: %s", read_model, e.message);
  bson_destroy(&opts);
  bson_destroy(&update);
  bson_destroy(&filter);
  mongoc_collection_destroy(coll);
  return ok;
}

static int64_t member(const bson_t *doc, const char *key, int64_t absent) {
  bson_iter_t it;
  return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : absent;
}

bool cqrs_progress_read_all(mongoc_client_t *client, const char *db,
                            void (*cb)(void *ctx, const char *read_model, const cqrs_progress_t *p), void *ctx,
                            cqrs_error_t *err) {
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, CQRS_PROGRESS_COLLECTION);
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  /* a handful of documents: one batch, and the server closes the cursor */
  BSON_APPEND_INT64(&opts, "limit", 1000);
  BSON_APPEND_BOOL(&opts, "singleBatch", true);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  const bson_t *doc;
  bson_iter_t it;
  while (mongoc_cursor_next(cur, &doc)) {
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) continue;
    cqrs_progress_t p = {member(doc, F_LAG_EVENTS, -1), member(doc, F_CAUGHT_UP, 0), member(doc, F_HEARTBEAT, 0)};
    cb(ctx, bson_iter_utf8(&it, NULL), &p);
  }
  bson_error_t e;
  bool ok = !mongoc_cursor_error(cur, &e);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "read model progress: %s", e.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(&opts);
  bson_destroy(&filter);
  mongoc_collection_destroy(coll);
  return ok;
}

int64_t cqrs_progress_lag_ms(const cqrs_progress_t *p, int64_t now_ms) {
  if (p->caught_up_ms <= 0) return -1;
  return now_ms > p->caught_up_ms ? now_ms - p->caught_up_ms : 0;
}
