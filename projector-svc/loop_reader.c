/* The apply loop's reader for reading projections (loop_reader.h). */
#include "loop_reader.h"

#include "history_read.h"

#include "cqrs/util.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* The collection read_model of ctx's tenant: the loop's target for its own,
 * else where the alias points. */
static mongoc_collection_t *collection(const cqrs_loop_reader_t *ctx, mongoc_client_t *client,
                                       const char *read_model) {
  char db[CQRS_TENANT_DB_MAX], coll[CQRS_COLLECTION_NAME_MAX];
  cqrs_tenants_db(ctx->tenants, ctx->tenant, db);
  if (ctx->target && strcmp(read_model, ctx->projection) == 0)
    snprintf(coll, sizeof coll, "%s", ctx->target);
  else
    cqrs_tenants_resolve(ctx->tenants, ctx->tenant, read_model, coll);
  return mongoc_client_get_collection(client, db, coll);
}

static bool find(const cqrs_projection_reader_t *r, const char *id, bson_t *doc, bool *found, cqrs_error_t *err) {
  const cqrs_loop_reader_t *ctx = r->ctx;
  for (size_t i = ctx->n_writes; i-- > 0;) {
    if (strcmp(ctx->write_tenants[i], ctx->tenant) != 0) continue;
    if ((*found = cqrs_write_document(&ctx->writes[i], id, doc))) return true;
    bson_destroy(doc);
  }
  bson_init(doc);
  *found = false;
  mongoc_client_t *client = mongoc_client_pool_pop(ctx->pool);
  mongoc_collection_t *coll = collection(ctx, client, ctx->projection);
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
  bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
  const bson_t *got;
  if (mongoc_cursor_next(cur, &got)) {
    bson_concat(doc, got);
    *found = true;
  }
  bson_error_t e;
  bool ok = !mongoc_cursor_error(cur, &e);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading %s: %s", ctx->projection, e.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(opts);
  bson_destroy(filter);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(ctx->pool, client);
  return ok;
}

static bool history(const cqrs_projection_reader_t *r, const char *aggregate_type, const char *aggregate_id,
                    int64_t from, int64_t to, cqrs_events_t *out, cqrs_error_t *err) {
  const cqrs_loop_reader_t *ctx = r->ctx;
  mongoc_client_t *client = mongoc_client_pool_pop(ctx->pool);
  mongoc_collection_t *coll = collection(ctx, client, cqrs_event_history_projection.name);
  int64_t gap_until = 0;
  bool ok;
  for (;;) {
    if (!(ok = cqrs_history_read(coll, aggregate_type, aggregate_id, from, to, NULL, SIZE_MAX, out, NULL, err))) break;
    if (out->n == (size_t)(to - from + 1)) break;
    if (!gap_until) { /* short: is the history behind, or is a version missing? */
      bool recorded;
      if (!(ok = cqrs_history_has(coll, aggregate_type, aggregate_id, to, &recorded, err))) break;
      if (!recorded) {
        cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL,
                       "the event history has not recorded version %" PRId64 " of %s %s yet", to, aggregate_type,
                       aggregate_id);
        ok = false;
        break;
      }
      gap_until = cqrs_time_monotonic_ms() + CQRS_LOOP_READER_GAP_MS;
    }
    if (cqrs_time_monotonic_ms() >= gap_until) break; /* missing for good */
    if (cqrs_worker_stopping(ctx->owner)) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "stopping");
      ok = false;
      break;
    }
    cqrs_events_release(out);
    usleep(100 * 1000); /* the history's writes in flight */
  }
  if (!ok) cqrs_events_release(out);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(ctx->pool, client);
  return ok;
}

void cqrs_loop_reader_bind(cqrs_projection_reader_t *r, cqrs_loop_reader_t *ctx, int snapshot_every) {
  *r = (cqrs_projection_reader_t){.find = find, .history = history, .snapshot_every = snapshot_every, .ctx = ctx};
}
