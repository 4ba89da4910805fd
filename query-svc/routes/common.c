/* What every query route shares: single-document reads, parameter checks. */
#include "../routes.h"

#include "cqrs/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

mongoc_collection_t *cqrs_routes_collection(const cqrs_routes_ctx_t *ctx, mongoc_client_t *client,
                                            const char *read_model) {
  char name[CQRS_COLLECTION_NAME_MAX];
  cqrs_read_models_resolve(ctx->read_models, client, read_model, name);
  return mongoc_client_get_collection(client, ctx->db, name);
}

/* Reads minVersion and waitMs (API.md: read-your-writes). False after a 400. */
static bool read_wait_params(cqrs_http_req_t *req, const cqrs_params_t *p, int64_t *min_version, int64_t *wait_ms) {
  static const struct {
    const char *name;
    int64_t max;
  } params[] = {{"minVersion", INT64_MAX}, {"waitMs", 10000}};
  int64_t *out[] = {min_version, wait_ms};
  for (int i = 0; i < 2; i++) {
    const char *v = p ? cqrs_params_get(p, params[i].name) : NULL;
    *out[i] = 0;
    if (!v) continue;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || !*v || *end || n < 0 || n > params[i].max) {
      char msg[96];
      snprintf(msg, sizeof msg, "%s must be an integer in [0, %lld]", params[i].name, (long long)params[i].max);
      cqrs_http_reply_error(req, 400, msg, params[i].name);
      return false;
    }
    *out[i] = n;
  }
  return true;
}

static int64_t doc_version(const bson_t *doc) {
  bson_iter_t it;
  return doc && bson_iter_init_find(&it, doc, "version") && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
}

void cqrs_routes_find_one(cqrs_http_req_t *req, const cqrs_routes_ctx_t *ctx, const char *collection,
                          const bson_t *filter, const bson_t *sort, const char *not_found, const cqrs_params_t *p) {
  int64_t min_version, wait_ms;
  if (!read_wait_params(req, p, &min_version, &wait_ms)) return;
  mongoc_client_t *client = mongoc_client_pool_pop(ctx->pool);
  mongoc_collection_t *coll = cqrs_routes_collection(ctx, client, collection);
  bson_t opts = BSON_INITIALIZER, proj;
  BSON_APPEND_INT64(&opts, "limit", 1);
  /* The server closes the cursor at once: FerretDB deadlocks when an open
   * cursor meets a collection being created (seen during rebuilds). */
  BSON_APPEND_BOOL(&opts, "singleBatch", true);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 0);
  bson_append_document_end(&opts, &proj);
  if (sort) BSON_APPEND_DOCUMENT(&opts, "sort", sort);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
  const bson_t *doc = NULL;
  bson_error_t error;
  bool found = mongoc_cursor_next(cur, &doc);
  if (!found && mongoc_cursor_error(cur, &error)) {
    cqrs_log_error(ctx->log, "store read failed", "collection", collection, "error", error.message, NULL);
    cqrs_http_reply_error(req, 503, "the read store did not answer", NULL);
    goto done;
  }
  bool fresh = found && doc_version(doc) >= min_version;
  int64_t age = cqrs_http_req_age_ms(req);
  if (!fresh && min_version > 0 && age < wait_ms) {
    /* Not there yet: look again soon, backing off from 5 ms to 100 ms, without
     * holding the loop. */
    int64_t delay = age / 4 < 5 ? 5 : age / 4 > 100 ? 100 : age / 4;
    if (delay > wait_ms - age) delay = wait_ms - age;
    cqrs_http_req_again(req, (int)delay);
    goto done;
  }
  if (!fresh && min_version > 0) cqrs_http_req_add_header(req, "X-Stale", "true");
  if (found) {
    size_t len;
    char *json = cqrs_json_write(doc, &len);
    cqrs_http_reply_json(req, 200, json, len);
    bson_free(json);
  } else {
    cqrs_http_reply_error(req, 404, not_found, NULL);
  }
done:
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
