/* Lists, one page at a time, by keyset: a page continues after the last
 * item's (sort value, _id), so pages neither skip nor repeat items while the
 * collection changes elsewhere, and deep pages cost what the first does. */
#include "../cursor.h"
#include "../routes.h"

#include "cqrs/json.h"

#include <string.h>

/* filter, narrowed to the items after (value, id) when after is set:
 * {$and: [filter, {$or: [{f: {$gt: v}}, {f: v, _id: {$gt: id}}]}]}, $lt
 * instead of $gt when descending. */
static void build_query(bson_t *query, const bson_t *filter, const char *f, const bson_value_t *value,
                        const bson_value_t *id, bool descending) {
  const char *beyond = descending ? "$lt" : "$gt";
  bson_t and, el, or, alt, cmp;
  bson_init(query);
  if (!value) {
    bson_copy_to(filter, query);
    return;
  }
  BSON_APPEND_ARRAY_BEGIN(query, "$and", &and);
  BSON_APPEND_DOCUMENT(&and, "0", filter);
  BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &el);
  BSON_APPEND_ARRAY_BEGIN(&el, "$or", &or);
  BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &alt);
  if (value->value_type == BSON_TYPE_NULL && !descending) {
    /* $gt null matches nothing; every non-null value sorts after null. */
    BSON_APPEND_DOCUMENT_BEGIN(&alt, f, &cmp);
    BSON_APPEND_NULL(&cmp, "$ne");
  } else {
    /* (descending past a null: $lt null matches nothing, and nothing sorts
     * below null but other nulls, which the _id branch takes) */
    BSON_APPEND_DOCUMENT_BEGIN(&alt, f, &cmp);
    BSON_APPEND_VALUE(&cmp, beyond, value);
  }
  bson_append_document_end(&alt, &cmp);
  bson_append_document_end(&or, &alt);
  BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &alt);
  BSON_APPEND_VALUE(&alt, f, value);
  BSON_APPEND_DOCUMENT_BEGIN(&alt, "_id", &cmp);
  BSON_APPEND_VALUE(&cmp, beyond, id);
  bson_append_document_end(&alt, &cmp);
  bson_append_document_end(&or, &alt);
  bson_append_array_end(&el, &or);
  bson_append_document_end(&and, &el);
  bson_append_array_end(query, &and);
}

/* Copies doc's key (null when absent: a missing field sorts as null) into out. */
static void copy_member(const bson_t *doc, const char *key, bson_value_t *out) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key)) {
    bson_value_copy(bson_iter_value(&it), out);
  } else {
    memset(out, 0, sizeof *out);
    out->value_type = BSON_TYPE_NULL;
  }
}

const cqrs_routes_item_t cqrs_routes_history_item = {
    .hidden = (const char *const[]){CQRS_HISTORY_VERSION_BLOCK, CQRS_HISTORY_TIME_HOUR, NULL},
    .always = (const char *const[]){CQRS_HISTORY_SCHEMA_VERSION, CQRS_HISTORY_ACTOR, NULL},
};

static bool listed(const char *const *names, const char *k) {
  for (; names && *names; names++)
    if (strcmp(k, *names) == 0) return true;
  return false;
}

char *cqrs_routes_item_json(const bson_t *doc, const cqrs_routes_item_t *item) {
  bson_t out = BSON_INITIALIZER;
  bson_iter_t it;
  if (bson_iter_init(&it, doc))
    while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      if (strcmp(k, "_id") != 0 && !(item && listed(item->hidden, k)))
        bson_append_value(&out, k, -1, bson_iter_value(&it));
    }
  for (const char *const *k = item ? item->always : NULL; k && *k; k++)
    if (!bson_iter_init_find(&it, doc, *k)) bson_append_null(&out, *k, -1);
  char *json = cqrs_json_write(&out, NULL);
  bson_destroy(&out);
  return json;
}

void cqrs_routes_find_page(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const char *read_model,
                           const char *list, const bson_t *filter, const char *sort_field,
                           const cqrs_params_t *params) {
  const cqrs_routes_page_t page = {read_model, list, filter, sort_field, false, NULL, NULL};
  cqrs_routes_find_page_with(req, call, &page, params);
}

void cqrs_routes_find_page_with(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_routes_page_t *page,
                                const cqrs_params_t *params) {
  const char *read_model = page->read_model, *list = page->list, *sort_field = page->sort_field;
  const bson_t *filter = page->filter;
  int dir = page->descending ? -1 : 1;
  cqrs_error_t err = {0};
  int limit;
  const char *text;
  bson_value_t after_v = {0}, after_id = {0}, last_v = {0}, last_id = {0};
  bool after = false;
  if (!cqrs_params_limit(params, &limit, &err) || !cqrs_params_cursor(params, &text, &err) ||
      (text && !(after = cqrs_cursor_decode(text, list, sort_field, &after_v, &after_id, &err)))) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  bson_t query, opts = BSON_INITIALIZER, sort;
  build_query(&query, filter, sort_field, after ? &after_v : NULL, &after_id, page->descending);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, sort_field, dir);
  BSON_APPEND_INT32(&sort, "_id", dir);
  bson_append_document_end(&opts, &sort);
  /* One more than asked says whether there is a next page. */
  BSON_APPEND_INT64(&opts, "limit", limit + 1);
  /* One batch and the server closes the cursor: FerretDB deadlocks when an
   * open cursor meets a collection being created (seen during rebuilds). */
  BSON_APPEND_BOOL(&opts, "singleBatch", true);

  mongoc_client_t *client = mongoc_client_pool_pop(call->ctx->pool);
  mongoc_collection_t *coll = cqrs_routes_collection(call, client, read_model, &err);
  mongoc_cursor_t *cur = coll ? mongoc_collection_find_with_opts(coll, &query, &opts, NULL) : NULL;
  bson_string_t *out = bson_string_new("{\"items\":[");
  const bson_t *doc;
  int n = 0;
  bool more = false;
  bson_error_t error;
  if (!coll) {
    cqrs_routes_reply_no_store(req, call, read_model, err.message);
    goto done;
  }
  while (mongoc_cursor_next(cur, &doc)) {
    if (n == limit) {
      more = true;
      break;
    }
    bson_value_destroy(&last_v);
    bson_value_destroy(&last_id);
    copy_member(doc, sort_field, &last_v);
    copy_member(doc, "_id", &last_id);
    char *json = cqrs_routes_item_json(doc, page->item);
    if (n++) bson_string_append_c(out, ',');
    bson_string_append(out, json);
    bson_free(json);
  }
  if (mongoc_cursor_error(cur, &error)) {
    cqrs_routes_reply_no_store(req, call, read_model, error.message);
    goto done;
  }
  if (n == 0 && !after && page->not_found) { /* the first page is empty: nothing to list */
    cqrs_http_reply_error(req, 404, page->not_found, NULL);
    goto done;
  }
  cqrs_routes_freshness(req, call, read_model);
  char *next = more ? cqrs_cursor_encode(list, sort_field, &last_v, &last_id) : NULL;
  if (more && !next) {
    /* A sort value a cursor cannot carry is a read model bug, not the client's. */
    cqrs_log_error(call->ctx->log, "cannot page past an item", "collection", read_model, "list", list, NULL);
    cqrs_http_reply_error(req, 500, "this list cannot be paged further", NULL);
    goto done;
  }
  cqrs_routes_end_page(out, next);
  bson_free(next);
  cqrs_http_reply_json(req, 200, out->str, out->len);
done:
  bson_string_free(out, true);
  if (cur) mongoc_cursor_destroy(cur);
  if (coll) mongoc_collection_destroy(coll);
  mongoc_client_pool_push(call->ctx->pool, client);
  bson_destroy(&opts);
  bson_destroy(&query);
  bson_value_destroy(&last_v);
  bson_value_destroy(&last_id);
  bson_value_destroy(&after_v);
  bson_value_destroy(&after_id);
}
