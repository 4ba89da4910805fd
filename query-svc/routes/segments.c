/* A keyset page read segment by segment (routes.h, cqrs_routes_read_segments):
 * the loop the history (version blocks) and the events by time (hours)
 * share. */
#include "../routes.h"

#include <string.h>

/* Copies doc's member key into *out (emptied first; left empty when absent). */
static void take(const bson_t *doc, const char *key, bson_value_t *out) {
  bson_iter_t it;
  bson_value_destroy(out);
  memset(out, 0, sizeof *out);
  if (bson_iter_init_find(&it, doc, key)) bson_value_copy(bson_iter_value(&it), out);
}

bool cqrs_routes_read_segments(const cqrs_routes_call_t *call, const cqrs_routes_segments_t *s, int limit,
                               bson_string_t *out, int *n, bool *more, bson_value_t *last_key, bson_value_t *last_id,
                               cqrs_error_t *err) {
  mongoc_client_t *client = mongoc_client_pool_pop(call->ctx->pool);
  mongoc_collection_t *coll = cqrs_routes_collection(call, client, s->read_model, err);
  bool ok = coll != NULL;
  for (size_t i = 0; ok && !*more; i++) {
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    bool exists = s->segment(s->ctx, i, last_key, &filter, &sort);
    bson_append_document_end(&opts, &sort);
    if (!exists) {
      bson_destroy(&opts);
      bson_destroy(&filter);
      break;
    }
    BSON_APPEND_INT64(&opts, "limit", limit + 1 - *n); /* one more than the page says whether there is a next */
    BSON_APPEND_BOOL(&opts, "singleBatch", true);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    int in_segment = 0;
    while (mongoc_cursor_next(cur, &doc)) {
      in_segment++;
      if (*n == limit) {
        *more = true;
        break;
      }
      take(doc, s->key, last_key);
      take(doc, "_id", last_id);
      char *json = cqrs_routes_item_json(doc, s->item);
      if ((*n)++) bson_string_append_c(out, ',');
      bson_string_append(out, json);
      bson_free(json);
    }
    bson_error_t error;
    if (mongoc_cursor_error(cur, &error)) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s", error.message);
      ok = false;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    bson_destroy(&filter);
    if (in_segment == 0 && s->empty_ends) break;
  }
  if (coll) mongoc_collection_destroy(coll);
  mongoc_client_pool_push(call->ctx->pool, client);
  return ok;
}
