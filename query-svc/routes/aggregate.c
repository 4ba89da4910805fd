/* An aggregate's document and its history, by row (routes.h): the audit
 * trail from the event_history read model, and time travel, which applies
 * the read model's own projection to the history up to a moment or version,
 * from the nearest snapshot (projector-svc's snapshots read model). */
#include "../routes.h"

#include "../cursor.h"
#include "cqrs/json.h"
#include "history_read.h"
#include "time_travel.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 128
#define HISTORY_SUFFIX "/history"
/* Events replayed for one time travel at most: a longer history answers 422
 * (it would hold the loop thread too long). */
#define TRAVEL_EVENTS_MAX 100000

/* ---- the history ---- */

/* An integer cursor value (the version a page continued after). */
static bool as_version(const bson_value_t *v, int64_t *out) {
  switch (v->value_type) {
  case BSON_TYPE_INT64: *out = v->value.v_int64; return true;
  case BSON_TYPE_INT32: *out = v->value.v_int32; return true;
  case BSON_TYPE_DOUBLE: *out = (int64_t)v->value.v_double; return v->value.v_double == (double)*out;
  default: return false;
  }
}

typedef struct {
  const cqrs_routes_aggregate_t *agg;
  const char *id;
  int64_t after;
} blocks_t;

/* Segment i of the history after version `after` (cqrs_routes_segments_t):
 * block after / CQRS_HISTORY_BLOCK + i, with the aggregate's equalities, and
 * the versions after the last one taken. */
static bool block_cb(void *ctx, size_t i, const bson_value_t *last_key, bson_t *filter, bson_t *sort) {
  const blocks_t *b = ctx;
  int64_t last = b->after;
  if (last_key->value_type != BSON_TYPE_EOD) as_version(last_key, &last);
  bson_t gt;
  BSON_APPEND_UTF8(filter, CQRS_HISTORY_AGGREGATE_ID, b->id);
  BSON_APPEND_UTF8(filter, CQRS_HISTORY_AGGREGATE_TYPE, b->agg->aggregate_type);
  BSON_APPEND_INT64(filter, CQRS_HISTORY_VERSION_BLOCK, b->after / CQRS_HISTORY_BLOCK + (int64_t)i);
  BSON_APPEND_DOCUMENT_BEGIN(filter, CQRS_HISTORY_VERSION, &gt);
  BSON_APPEND_INT64(&gt, "$gt", last);
  bson_append_document_end(filter, &gt);
  BSON_APPEND_INT32(sort, CQRS_HISTORY_VERSION, 1);
  return true;
}

/* One page of id's events after version `after`, block by block
 * (CQRS_HISTORY_BLOCK): each query an equality on the block, with the
 * aggregate's equalities, and the versions after the last one taken, so the
 * store hands over only the page's events even on FerretDB. A block that
 * yields nothing ends the history. As cqrs_routes_read_segments. */
static bool history_blocks(const cqrs_routes_call_t *call, const cqrs_routes_aggregate_t *agg, const char *id,
                           int64_t after, int limit, bson_string_t *out, int *n, bool *more, bson_value_t *last_v,
                           bson_value_t *last_id, cqrs_error_t *err) {
  blocks_t b = {agg, id, after};
  const cqrs_routes_segments_t s = {CQRS_ROUTES_HISTORY, CQRS_HISTORY_VERSION, &cqrs_routes_history_item, true,
                                    block_cb, &b};
  return cqrs_routes_read_segments(call, &s, limit, out, n, more, last_v, last_id, err);
}

static void history(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_routes_aggregate_t *agg,
                    const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *id, *text;
  int limit;
  char list[64];
  snprintf(list, sizeof list, "History:%s", agg->aggregate_type); /* a cursor of one aggregate type's trails */
  bson_value_t after_v = {0}, after_id = {0}, last_v = {0}, last_id = {0};
  int64_t after = 0;
  if (!cqrs_params_string(p, agg->id_param, true, ID_MAX, &id, &err) || !cqrs_params_limit(p, &limit, &err) ||
      !cqrs_params_cursor(p, &text, &err) ||
      (text && !cqrs_cursor_decode(text, list, CQRS_HISTORY_VERSION, &after_v, &after_id, &err))) {
    cqrs_routes_reply_invalid(req, &err);
    goto done;
  }
  if (text && (!as_version(&after_v, &after) || after < 0)) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "cursor", "cursor is not a cursor of this list");
    cqrs_routes_reply_invalid(req, &err);
    goto done;
  }
  bson_string_t *out = bson_string_new("{\"items\":[");
  int n = 0;
  bool more = false;
  if (!history_blocks(call, agg, id, after, limit, out, &n, &more, &last_v, &last_id, &err)) {
    cqrs_routes_reply_no_store(req, call, CQRS_ROUTES_HISTORY, err.message);
  } else if (n == 0 && !text) {
    cqrs_http_reply_error(req, 404, agg->no_history, NULL);
  } else {
    char *next = more ? cqrs_cursor_encode(list, CQRS_HISTORY_VERSION, &last_v, &last_id) : NULL;
    cqrs_routes_end_page(out, next);
    bson_free(next);
    cqrs_routes_freshness(req, call, CQRS_ROUTES_HISTORY);
    cqrs_http_reply_json(req, 200, out->str, out->len);
  }
  bson_string_free(out, true);
done:
  bson_value_destroy(&after_v);
  bson_value_destroy(&after_id);
  bson_value_destroy(&last_v);
  bson_value_destroy(&last_id);
}

/* ---- time travel ---- */

/* One time travel's start: the snapshot it folds from (the latest found
 * within the bound), or none. */
typedef struct {
  const cqrs_routes_aggregate_t *agg;
  const char *id;
  const char *as_of;               /* NULL: to a version */
  int64_t at_version;              /* with as_of: INT64_MAX */
  int64_t every;                   /* SNAPSHOT_EVERY */
  mongoc_collection_t *snapshots;  /* NULL: none are looked up */
  bson_t snapshot;                 /* when have: a copy of it */
  bool have;
  int64_t version;                 /* when have: its version */
} travel_t;

/* Reads snapshot j (at version j * every) into *got (a copy, when *found). */
static bool read_snapshot(travel_t *t, int64_t j, bson_t *got, bool *found, cqrs_error_t *err) {
  char *sid = cqrs_snapshot_id(t->agg->projection->name, t->id, j * t->every);
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(sid)), *opts = BCON_NEW("limit", BCON_INT64(1));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(t->snapshots, filter, opts, NULL);
  const bson_t *doc;
  bson_init(got);
  if ((*found = mongoc_cursor_next(cur, &doc))) bson_concat(got, doc);
  bson_error_t e;
  bool ok = !mongoc_cursor_error(cur, &e);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s", e.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(opts);
  bson_destroy(filter);
  bson_free(sid);
  return ok;
}

/* cqrs_snapshot_probe_cb: snapshot j exists, is at or before atVersion, and
 * (with asOf) all its events are at or before asOf. Keeps the latest such as
 * the start. */
static bool probe_cb(void *ctx, int64_t j, bool *within, cqrs_error_t *err) {
  travel_t *t = ctx;
  bson_t got, doc;
  bool found;
  int64_t v;
  const char *time_max;
  if (j > t->at_version / t->every) { /* beyond the version asked (and no overflow) */
    *within = false;
    return true;
  }
  if (!read_snapshot(t, j, &got, &found, err)) return false;
  *within = found && cqrs_snapshot_parts(&got, t->agg->projection->name, t->id, &doc, &v, &time_max) &&
            v == j * t->every && v <= t->at_version && (!t->as_of || strcmp(time_max, t->as_of) <= 0);
  if (*within && (!t->have || v > t->version)) {
    if (t->have) bson_destroy(&t->snapshot);
    bson_steal(&t->snapshot, &got);
    t->have = true;
    t->version = v;
  } else {
    bson_destroy(&got);
  }
  return true;
}

/* The snapshot to start from: for a version v the one at floor(v / K) * K,
 * one point read; for a moment, or while that one is not written yet (the
 * snapshots projection follows the history), the latest within the bounds
 * (cqrs_snapshot_search: about 2 log2(v / K) point reads). */
static bool find_start(travel_t *t, cqrs_error_t *err) {
  if (!t->snapshots || t->at_version < t->every) return true; /* none at or before it */
  bool within = false;
  int64_t j = t->at_version / t->every;
  if (!t->as_of && j >= 1 && !probe_cb(t, j, &within, err)) return false;
  return within || cqrs_snapshot_search(probe_cb, t, &j, err);
}

static void count_travel(const cqrs_routes_call_t *call, const travel_t *t, size_t events) {
  char labels[128];
  snprintf(labels, sizeof labels, "read_model=\"%s\",base=\"%s\"", t->agg->projection->name,
           t->have ? "snapshot" : "none");
  cqrs_metrics_add(call->ctx->metrics, "time_travels_total", labels, 1);
  snprintf(labels, sizeof labels, "read_model=\"%s\"", t->agg->projection->name);
  cqrs_metrics_add(call->ctx->metrics, "time_travel_events_total", labels, (double)events);
}

static void time_travel(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_routes_aggregate_t *agg,
                        const char *id, const char *as_of, int64_t at_version) {
  travel_t t = {.agg = agg, .id = id, .as_of = as_of, .at_version = as_of ? INT64_MAX : at_version,
                .every = call->ctx->snapshot_every};
  cqrs_error_t err = {0};
  cqrs_events_t evs = {0};
  bool too_many = false, exists = false;
  bson_t doc = BSON_INITIALIZER, from; /* doc: inline until the fold makes it (no heap to lose) */
  int64_t v;
  const char *time_max;
  mongoc_client_t *client = mongoc_client_pool_pop(call->ctx->pool);
  mongoc_collection_t *history = cqrs_routes_collection(call, client, CQRS_ROUTES_HISTORY, &err);
  if (history && t.every > 0) t.snapshots = cqrs_routes_collection(call, client, CQRS_SNAPSHOTS, &err);
  if (!history || (t.every > 0 && !t.snapshots) || !find_start(&t, &err) ||
      !cqrs_history_read(history, agg->aggregate_type, id, t.have ? t.version + 1 : 1, as_of ? INT64_MAX : at_version,
                         as_of, TRAVEL_EVENTS_MAX, &evs, &too_many, &err)) {
    if (err.code == CQRS_ERR_INTERNAL) {
      cqrs_log_error(call->ctx->log, "unreadable history document", "error", err.message, NULL);
      cqrs_http_reply_error(req, 500, "the history cannot be read back", NULL);
    } else {
      cqrs_routes_reply_no_store(req, call, CQRS_ROUTES_HISTORY, err.message);
    }
    goto done;
  }
  count_travel(call, &t, evs.n);
  if (too_many) {
    cqrs_http_reply_error(req, 422, "this aggregate's history is too long to replay", NULL);
  } else if (!cqrs_time_travel_from(agg->projection,
                                    t.have && cqrs_snapshot_parts(&t.snapshot, agg->projection->name, id, &from, &v,
                                                                  &time_max)
                                        ? &from
                                        : NULL,
                                    evs.v, evs.n, &doc, &exists, &err)) {
    cqrs_log_error(call->ctx->log, "time travel failed", "readModel", agg->projection->name, "error", err.message,
                   NULL);
    cqrs_http_reply_error(req, 500, "the history cannot be replayed", NULL);
  } else if (!exists) {
    cqrs_http_reply_error(req, 404, as_of ? "it did not exist yet at asOf" : agg->read->not_found, NULL);
  } else if (!as_of && (evs.n ? evs.v[evs.n - 1].version : t.version) != at_version) {
    cqrs_http_reply_error(req, 404, "no such version of it (atVersion is beyond its last)", NULL);
  } else {
    char vs[24];
    snprintf(vs, sizeof vs, "%" PRId64, cqrs_single_read_version(&doc));
    cqrs_http_req_add_header(req, "X-Read-Model-Version", vs);
    cqrs_routes_freshness(req, call, CQRS_ROUTES_HISTORY);
    size_t len;
    char *json = cqrs_single_read_json(&doc, &len);
    cqrs_http_reply_json(req, 200, json, len);
    bson_free(json);
  }
done:
  bson_destroy(&doc);
  cqrs_events_release(&evs);
  if (t.have) bson_destroy(&t.snapshot);
  if (t.snapshots) mongoc_collection_destroy(t.snapshots);
  if (history) mongoc_collection_destroy(history);
  mongoc_client_pool_push(call->ctx->pool, client);
}

void cqrs_routes_find_aggregate(cqrs_http_req_t *req, const cqrs_routes_call_t *call,
                                const cqrs_routes_aggregate_t *agg, const char *id, const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *raw_as_of, *raw_version;
  char as_of[32];
  int64_t at_version;
  if (!cqrs_params_time(p, "asOf", &raw_as_of, as_of, &err) ||
      !cqrs_params_int(p, "atVersion", 1, INT64_MAX, &raw_version, &at_version, &err))
    goto invalid;
  if (!raw_as_of && !raw_version) {
    cqrs_routes_find_one(req, call, agg->read, id, p);
    return;
  }
  if (raw_as_of && raw_version) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "atVersion", "asOf and atVersion exclude each other");
    goto invalid;
  }
  static const char *const wait[] = {CQRS_ROUTES_WAIT_PARAMS, NULL};
  for (const char *const *w = wait; *w; w++)
    if (cqrs_params_get(p, *w)) {
      cqrs_error_set(&err, CQRS_ERR_INVALID, *w, "%s does not combine with asOf or atVersion", *w);
      goto invalid;
    }
  time_travel(req, call, agg, id, raw_as_of ? as_of : NULL, at_version);
  return;
invalid:
  cqrs_routes_reply_invalid(req, &err);
}

/* ---- the route ---- */

static const char *const SINGLE_PARAMS[] = {CQRS_ROUTES_WAIT_PARAMS, CQRS_ROUTES_TIME_PARAMS, NULL};
static const char *const HISTORY_PARAMS[] = {"limit", "cursor", NULL};

static void aggregate_cb(cqrs_http_req_t *req, const cqrs_routes_call_t *call) {
  const cqrs_routes_aggregate_t *agg = call->arg;
  const char *tail = cqrs_http_req_tail(req);
  size_t len = strlen(tail), suffix = strlen(HISTORY_SUFFIX);
  bool is_history = len > suffix && strcmp(tail + len - suffix, HISTORY_SUFFIX) == 0;
  cqrs_params_t *p = cqrs_routes_query_params(req, is_history ? HISTORY_PARAMS : SINGLE_PARAMS,
                                              is_history ? NULL : agg->id_param);
  if (!p) return;
  if (is_history) {
    char *id = bson_strndup(tail, len - suffix);
    cqrs_params_add(p, agg->id_param, id, NULL);
    bson_free(id);
    history(req, call, agg, p);
  } else {
    agg->get(req, call, p);
  }
  cqrs_params_destroy(p);
}

void cqrs_routes_add_aggregate(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx, const cqrs_routes_aggregate_t *agg) {
  cqrs_routes_add_arg(http, ctx, "GET", agg->path, agg->label, aggregate_cb, agg);
}
