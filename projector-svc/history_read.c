/* Reading an aggregate's events back from event_history (history_read.h). */
#include "history_read.h"

#include "cqrs/alloc.h"

#include <stdlib.h>
#include <string.h>

static int64_t block_of(int64_t version) { return version > 0 ? (version - 1) / CQRS_HISTORY_BLOCK : 0; }

/* {aggregateId, aggregateType, versionBlock: the block of lo, version: lo..hi}:
 * equalities FerretDB pushes down, and the range, which MongoDB's index
 * serves and FerretDB applies to the block's documents. */
static void block_filter(bson_t *filter, const char *aggregate_type, const char *aggregate_id, int64_t lo,
                         int64_t hi) {
  bson_t range;
  bson_init(filter);
  BSON_APPEND_UTF8(filter, CQRS_HISTORY_AGGREGATE_ID, aggregate_id);
  BSON_APPEND_UTF8(filter, CQRS_HISTORY_AGGREGATE_TYPE, aggregate_type);
  BSON_APPEND_INT64(filter, CQRS_HISTORY_VERSION_BLOCK, block_of(lo));
  BSON_APPEND_DOCUMENT_BEGIN(filter, CQRS_HISTORY_VERSION, &range);
  BSON_APPEND_INT64(&range, "$gte", lo);
  BSON_APPEND_INT64(&range, "$lte", hi);
  bson_append_document_end(filter, &range);
}

static int64_t version_of(const bson_t *doc) {
  bson_iter_t it;
  return bson_iter_init_find(&it, doc, CQRS_HISTORY_VERSION) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it)
                                                                                            : -1;
}

bool cqrs_history_read(mongoc_collection_t *coll, const char *aggregate_type, const char *aggregate_id, int64_t from,
                       int64_t to, const char *time_max, size_t max, cqrs_events_t *out, bool *too_many,
                       cqrs_error_t *err) {
  *out = (cqrs_events_t){.owned = true};
  if (too_many) *too_many = false;
  size_t cap = 0;
  int64_t next = from < 1 ? 1 : from;
  bool ok = true, done = next > to;
  bson_t opts = BSON_INITIALIZER, sort;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, CQRS_HISTORY_VERSION, 1);
  bson_append_document_end(&opts, &sort);
  while (ok && !done) {
    int64_t block_end = (block_of(next) + 1) * CQRS_HISTORY_BLOCK, hi = to < block_end ? to : block_end;
    bson_t filter;
    block_filter(&filter, aggregate_type, aggregate_id, next, hi);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    while (!done && mongoc_cursor_next(cur, &doc)) {
      int64_t v = version_of(doc);
      bson_iter_t it;
      if (v < next) continue; /* a version met again */
      if (v > next) {         /* a gap */
        done = true;
      } else if (time_max && bson_iter_init_find(&it, doc, CQRS_HISTORY_TIME) && BSON_ITER_HOLDS_UTF8(&it) &&
                 strcmp(bson_iter_utf8(&it, NULL), time_max) > 0) {
        done = true;
      } else if (out->n == max) {
        if (too_many) *too_many = true;
        done = true;
      } else {
        if (out->n == cap) {
          cap = cap ? 2 * cap : 16;
          out->v = cqrs_xrealloc(out->v, cap * sizeof *out->v);
        }
        if (!cqrs_event_history_to_event(doc, &out->v[out->n], err)) {
          cqrs_event_cleanup(&out->v[out->n]);
          if (err) err->code = CQRS_ERR_INTERNAL;
          ok = false;
          break;
        }
        out->n++;
        next++;
      }
    }
    bson_error_t e;
    if (ok && mongoc_cursor_error(cur, &e)) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s", e.message);
      ok = false;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    /* the block ended before hi: no next version; or to is reached */
    if (!done) done = next <= hi || next > to;
  }
  bson_destroy(&opts);
  if (!ok) cqrs_events_release(out);
  return ok;
}

bool cqrs_history_has(mongoc_collection_t *coll, const char *aggregate_type, const char *aggregate_id,
                      int64_t version, bool *recorded, cqrs_error_t *err) {
  bson_t filter;
  block_filter(&filter, aggregate_type, aggregate_id, version, version);
  bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1), "}");
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
  const bson_t *doc;
  *recorded = mongoc_cursor_next(cur, &doc);
  bson_error_t e;
  bool ok = !mongoc_cursor_error(cur, &e);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s", e.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(opts);
  bson_destroy(&filter);
  return ok;
}
