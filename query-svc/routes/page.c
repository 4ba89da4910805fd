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

/* An event the contract cannot read shows as written (its schemaVersion
 * says so): the audit trail hides no event. */
static void history_upcast(const bson_t *doc, bson_t *out) {
  cqrs_error_t err = {0};
  cqrs_event_history_upcast(doc, out, &err);
}

const cqrs_routes_item_t cqrs_routes_history_item = {
    .hidden = (const char *const[]){CQRS_HISTORY_VERSION_BLOCK, CQRS_HISTORY_TIME_HOUR, NULL},
    .always = (const char *const[]){CQRS_HISTORY_ACTOR, NULL},
    .shape = history_upcast,
};

static bool listed(const char *const *names, const char *k) {
  for (; names && *names; names++)
    if (strcmp(k, *names) == 0) return true;
  return false;
}

char *cqrs_routes_item_json(const bson_t *doc, const cqrs_routes_item_t *item) {
  bson_t out = BSON_INITIALIZER, shaped;
  bson_iter_t it;
  if (item && item->shape) {
    item->shape(doc, &shaped);
    doc = &shaped;
  }
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
  if (item && item->shape) bson_destroy(&shaped);
  return json;
}

void cqrs_routes_find_page(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const char *read_model,
                           const char *list, const bson_t *filter, const char *sort_field,
                           const cqrs_params_t *params) {
  const cqrs_routes_page_t page = {read_model, list, filter, sort_field, false, NULL, NULL};
  cqrs_routes_find_page_with(req, call, &page, params);
}

/* One page being answered: what was asked, and the items read so far. */
typedef struct {
  const cqrs_routes_call_t *call;
  const cqrs_routes_page_t *page;
  mongoc_client_t *client;
  int limit;
  const bson_value_t *after_v, *after_id; /* the cursor's position; NULL: the first page */
  cqrs_keyset_query_t keyset;             /* read_by_keyset's statement */
  bson_string_t *out;                     /* '{"items":[' and the items */
  int n;                                  /* items in out */
  bool more;                              /* a next page exists */
  bson_value_t last_v, last_id;           /* where it starts */
  const char *path;                       /* how it was read: the label of list_pages_total */
} page_read_t;

/* Reads r's page into r. False with err when the store failed. */
typedef bool (*page_reader_cb)(page_read_t *r, cqrs_error_t *err);

static void add_item(page_read_t *r, const bson_t *doc) {
  char *json = cqrs_routes_item_json(doc, r->page->item);
  if (r->n++) bson_string_append_c(r->out, ',');
  bson_string_append(r->out, json);
  bson_free(json);
}

/* The store's own find: the filter narrowed past the cursor, in the list's
 * order, one more than the page (whether there is a next one). */
static bool read_by_find(page_read_t *r, cqrs_error_t *err) {
  const cqrs_routes_page_t *page = r->page;
  bson_t query, opts = BSON_INITIALIZER, sort;
  int dir = page->descending ? -1 : 1;
  build_query(&query, page->filter, page->sort_field, r->after_v, r->after_id, page->descending);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, page->sort_field, dir);
  BSON_APPEND_INT32(&sort, "_id", dir);
  bson_append_document_end(&opts, &sort);
  /* One more than asked says whether there is a next page. */
  BSON_APPEND_INT64(&opts, "limit", r->limit + 1);
  /* One batch and the server closes the cursor: FerretDB deadlocks when an
   * open cursor meets a collection being created (seen during rebuilds). */
  BSON_APPEND_BOOL(&opts, "singleBatch", true);
  r->path = "path=\"find\"";
  mongoc_collection_t *coll = cqrs_routes_collection(r->call, r->client, page->read_model, err);
  mongoc_cursor_t *cur = coll ? mongoc_collection_find_with_opts(coll, &query, &opts, NULL) : NULL;
  const bson_t *doc;
  bson_error_t error;
  bool ok = coll != NULL;
  while (ok && mongoc_cursor_next(cur, &doc)) {
    if (r->n == r->limit) {
      r->more = true;
      break;
    }
    bson_value_destroy(&r->last_v);
    bson_value_destroy(&r->last_id);
    copy_member(doc, page->sort_field, &r->last_v);
    copy_member(doc, "_id", &r->last_id);
    add_item(r, doc);
  }
  if (ok && mongoc_cursor_error(cur, &error)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s", error.message);
    ok = false;
  }
  if (cur) mongoc_cursor_destroy(cur);
  if (coll) mongoc_collection_destroy(coll);
  bson_destroy(&opts);
  bson_destroy(&query);
  return ok;
}

static void utf8_value(const char *s, bson_value_t *out) {
  bson_value_t v = {.value_type = BSON_TYPE_UTF8};
  v.value.v_utf8.str = (char *)s;
  v.value.v_utf8.len = (uint32_t)strlen(s);
  bson_value_copy(&v, out);
}

/* The document id of the list, by _id through the store: a point find
 * (FerretDB's GIN index on _id). *doc NULL when it is gone, or left the
 * list since its id was read (cqrs_keyset_holds). */
static bool find_item(mongoc_collection_t *coll, const cqrs_keyset_query_t *q, const char *id, bson_t **doc,
                      cqrs_error_t *err) {
  bson_t query = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&query, "_id", id);
  BSON_APPEND_INT64(&opts, "limit", 1);
  BSON_APPEND_BOOL(&opts, "singleBatch", true);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &query, &opts, NULL);
  const bson_t *d;
  bson_error_t error;
  *doc = mongoc_cursor_next(cur, &d) && cqrs_keyset_holds(q, d) ? bson_copy(d) : NULL;
  bool ok = !mongoc_cursor_error(cur, &error);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s", error.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(&opts);
  bson_destroy(&query);
  return ok;
}

/* FerretDB over PostgreSQL: the page's ids through the list's keyset index
 * (pg_lists.h), then each document through the store by _id. Point finds
 * rather than one find of the page's ids: FerretDB v1 pushes neither $in nor
 * $or down, so that one find reads the whole collection. Measured at 100,000
 * orders, the 50 ids of a page of orders by status: 50 point finds 41-71 ms,
 * one {_id: {$in: [...]}} 10.6-14.0 s, one {$or: [{_id}...]} 33-43 s. The cursor is the last row's (sort value, _id) as the index has
 * it, which is what the find's page would have carried. */
static bool read_by_keyset(page_read_t *r, cqrs_error_t *err) {
  const cqrs_routes_page_t *page = r->page;
  cqrs_tenant_place_t at;
  if (!cqrs_routes_locate(r->call, r->client, page->read_model, &at, err)) return false;
  r->keyset.descending = page->descending;
  r->keyset.after_value = r->after_v ? r->after_v->value.v_utf8.str : NULL;
  r->keyset.after_id = r->after_id ? r->after_id->value.v_utf8.str : NULL;
  r->keyset.limit = r->limit + 1;
  cqrs_pg_page_t rows;
  switch (cqrs_pg_lists_read(r->call->ctx->pg_lists, at.db, at.collection, &r->keyset, &rows, err)) {
  case CQRS_PG_LIST_NO_TABLE:
    return read_by_find(r, err); /* nothing stored yet: the find is as cheap */
  case CQRS_PG_LIST_FAILED:
    return false;
  case CQRS_PG_LIST_DONE:
    break;
  }
  r->path = "path=\"keyset\"";
  mongoc_collection_t *coll = mongoc_client_get_collection(r->client, at.db, at.collection);
  bool ok = true;
  size_t shown = rows.n > (size_t)r->limit ? (size_t)r->limit : rows.n;
  for (size_t i = 0; ok && i < shown; i++) {
    bson_t *doc;
    if (!(ok = find_item(coll, &r->keyset, rows.ids[i], &doc, err)) || !doc) continue;
    add_item(r, doc);
    bson_destroy(doc);
  }
  r->more = rows.n > shown;
  if (ok && shown) {
    utf8_value(rows.values[shown - 1], &r->last_v);
    utf8_value(rows.ids[shown - 1], &r->last_id);
  }
  mongoc_collection_destroy(coll);
  cqrs_pg_page_cleanup(&rows);
  return ok;
}

/* A position the keyset statement can take: two strings PostgreSQL's text
 * holds. The server makes no other for those lists. */
static bool text_position(const bson_value_t *v, const bson_value_t *id) {
  return v->value_type == BSON_TYPE_UTF8 && id->value_type == BSON_TYPE_UTF8 &&
         strlen(v->value.v_utf8.str) == v->value.v_utf8.len && strlen(id->value.v_utf8.str) == id->value.v_utf8.len;
}

void cqrs_routes_find_page_with(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_routes_page_t *page,
                                const cqrs_params_t *params) {
  cqrs_error_t err = {0};
  const char *text;
  bson_value_t after_v = {0}, after_id = {0};
  bool after = false;
  page_read_t r = {.call = call, .page = page};
  if (!cqrs_params_limit(params, &r.limit, &err) || !cqrs_params_cursor(params, &text, &err) ||
      (text && !(after = cqrs_cursor_decode(text, page->list, page->sort_field, &after_v, &after_id, &err)))) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  /* The one place a list's path is chosen: its keyset index in PostgreSQL
   * when the store is FerretDB over PostgreSQL and the list pages on one,
   * else the store's find. */
  bool keyset = cqrs_pg_lists_match(call->ctx->pg_lists, page->read_model, page->filter, page->sort_field, &r.keyset);
  page_reader_cb read = keyset ? read_by_keyset : read_by_find;
  if (keyset && after && !text_position(&after_v, &after_id)) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "cursor", "cursor is not a cursor of this list");
    cqrs_routes_reply_invalid(req, &err);
    goto done_values;
  }
  r.after_v = after ? &after_v : NULL;
  r.after_id = after ? &after_id : NULL;
  r.out = bson_string_new("{\"items\":[");
  r.client = mongoc_client_pool_pop(call->ctx->pool);
  if (!read(&r, &err)) {
    cqrs_routes_reply_no_store(req, call, page->read_model, err.message);
    goto done;
  }
  if (r.n == 0 && !after && !r.more && page->not_found) { /* the first page is empty: nothing to list */
    cqrs_http_reply_error(req, 404, page->not_found, NULL);
    goto done;
  }
  cqrs_metrics_add(call->ctx->metrics, "list_pages_total", r.path, 1);
  cqrs_routes_freshness(req, call, page->read_model);
  char *next = r.more ? cqrs_cursor_encode(page->list, page->sort_field, &r.last_v, &r.last_id) : NULL;
  if (r.more && !next) {
    /* A sort value a cursor cannot carry is a read model bug, not the client's. */
    cqrs_log_error(call->ctx->log, "cannot page past an item", "collection", page->read_model, "list", page->list,
                   NULL);
    cqrs_http_reply_error(req, 500, "this list cannot be paged further", NULL);
    goto done;
  }
  cqrs_routes_end_page(r.out, next);
  bson_free(next);
  cqrs_http_reply_json(req, 200, r.out->str, r.out->len);
done:
  bson_string_free(r.out, true);
  mongoc_client_pool_push(call->ctx->pool, r.client);
  bson_value_destroy(&r.last_v);
  bson_value_destroy(&r.last_id);
done_values:
  bson_value_destroy(&after_v);
  bson_value_destroy(&after_id);
}
