/* What every query route shares: single-document reads, parameter checks. */
#include "../routes.h"

#include "cqrs/json.h"

#include <stdio.h>

mongoc_collection_t *cqrs_routes_collection(const cqrs_routes_ctx_t *ctx, mongoc_client_t *client,
                                            const char *read_model) {
  return mongoc_client_get_collection(client, ctx->db, read_model);
}

void cqrs_routes_find_one(cqrs_http_req_t *req, const cqrs_routes_ctx_t *ctx, const char *collection,
                          const bson_t *filter, const bson_t *sort, const char *not_found) {
  mongoc_client_t *client = mongoc_client_pool_pop(ctx->pool);
  mongoc_collection_t *coll = cqrs_routes_collection(ctx, client, collection);
  bson_t opts = BSON_INITIALIZER, proj;
  BSON_APPEND_INT64(&opts, "limit", 1);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 0);
  bson_append_document_end(&opts, &proj);
  if (sort) BSON_APPEND_DOCUMENT(&opts, "sort", sort);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
  const bson_t *doc;
  bson_error_t error;
  if (mongoc_cursor_next(cur, &doc)) {
    size_t len;
    char *json = cqrs_json_write(doc, &len);
    cqrs_http_reply_json(req, 200, json, len);
    bson_free(json);
  } else if (mongoc_cursor_error(cur, &error)) {
    cqrs_log_error(ctx->log, "store read failed", "collection", collection, "error", error.message, NULL);
    cqrs_http_reply_error(req, 503, "the read store did not answer", NULL);
  } else {
    cqrs_http_reply_error(req, 404, not_found, NULL);
  }
  mongoc_cursor_destroy(cur);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(ctx->pool, client);
}

bool cqrs_routes_check_params(cqrs_http_req_t *req, const char *const *allowed) {
  const char *unknown;
  if (!cqrs_http_req_query_unknown(req, allowed, &unknown)) return true;
  char msg[160];
  snprintf(msg, sizeof msg, "unknown query parameter \"%.100s\"", unknown);
  cqrs_http_reply_error(req, 400, msg, unknown);
  return false;
}
