/* GET /v1/events?type=&from=&to=&order=: the events of one type whose time is
 * in [from, to), oldest or newest first, in keyset pages on (time, _id), from
 * the event_history read model. A window of at most HOURS_MAX hours is read
 * hour by hour (each query an equality on timeHour, which FerretDB v1 pushes
 * down to PostgreSQL, so a page costs the hours it spans, not every event of
 * the type); a wider or open window is one query (its (type, time) index
 * serves it on MongoDB; on FerretDB it reads every event of the type). */
#include "../cursor.h"
#include "../routes.h"

#include "cqrs/json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define HOURS_MAX 168

static const char *const ORDERS[] = {"oldest", "newest", NULL};
static const char *const PARAMS[] = {"type", "from", "to", "order", "limit", "cursor", NULL};

/* The filter {type, time: {$gte: from, $lt: to}} (bounds only when given). */
static void window(bson_t *filter, const char *type, const char *from, const char *to) {
  BSON_APPEND_UTF8(filter, CQRS_HISTORY_TYPE, type);
  if (!from[0] && !to[0]) return;
  bson_t range;
  BSON_APPEND_DOCUMENT_BEGIN(filter, CQRS_HISTORY_TIME, &range);
  if (from[0]) BSON_APPEND_UTF8(&range, "$gte", from);
  if (to[0]) BSON_APPEND_UTF8(&range, "$lt", to);
  bson_append_document_end(filter, &range);
}

/* Hours since the epoch of an events' time ("2026-03-01T12:..."). */
static int64_t hour_of(const char *t) {
  struct tm tm = {0};
  if (sscanf(t, "%4d-%2d-%2dT%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour) != 4) return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) / 3600;
}

static void hour_text(int64_t h, char out[CQRS_HISTORY_HOUR_LEN + 1]) {
  char full[32];
  cqrs_params_format_time(h * 3600 * 1000, full);
  memcpy(out, full, CQRS_HISTORY_HOUR_LEN);
  out[CQRS_HISTORY_HOUR_LEN] = '\0';
}

typedef struct {
  const char *type, *from, *to, *list;
  bool newest;
  int limit;
  bool after; /* a cursor: continue past (after_t, after_id) */
  const char *after_t;
  const bson_value_t *after_id;
} window_t;

/* One hour's query: the window's filter, the hour, and past the cursor
 * (time beyond it, or the same time and _id beyond it). */
static void hour_filter(const window_t *w, const char *hour, bool past_cursor, bson_t *filter) {
  window(filter, w->type, w->from, w->to);
  BSON_APPEND_UTF8(filter, CQRS_HISTORY_TIME_HOUR, hour);
  if (!past_cursor) return;
  const char *beyond = w->newest ? "$lt" : "$gt";
  bson_t or, alt, cmp;
  BSON_APPEND_ARRAY_BEGIN(filter, "$or", &or);
  BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &alt);
  BSON_APPEND_DOCUMENT_BEGIN(&alt, CQRS_HISTORY_TIME, &cmp);
  BSON_APPEND_UTF8(&cmp, beyond, w->after_t);
  bson_append_document_end(&alt, &cmp);
  bson_append_document_end(&or, &alt);
  BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &alt);
  BSON_APPEND_UTF8(&alt, CQRS_HISTORY_TIME, w->after_t);
  BSON_APPEND_DOCUMENT_BEGIN(&alt, "_id", &cmp);
  BSON_APPEND_VALUE(&cmp, beyond, w->after_id);
  bson_append_document_end(&alt, &cmp);
  bson_append_document_end(&or, &alt);
  bson_append_array_end(filter, &or);
}

typedef struct {
  const window_t *w;
  int64_t start, first, last, dir;
} hours_t;

/* Segment i (cqrs_routes_segments_t): the i-th hour from start in the order
 * asked, past the cursor in the first; none beyond the window. */
static bool hour_cb(void *ctx, size_t i, const bson_value_t *last_key, bson_t *filter, bson_t *sort) {
  const hours_t *hs = ctx;
  (void)last_key;
  int64_t h = hs->start + (int64_t)i * hs->dir;
  if (h < hs->first || h > hs->last) return false;
  char hour[CQRS_HISTORY_HOUR_LEN + 1];
  hour_text(h, hour);
  hour_filter(hs->w, hour, hs->w->after && i == 0, filter);
  BSON_APPEND_INT32(sort, CQRS_HISTORY_TIME, (int)hs->dir);
  BSON_APPEND_INT32(sort, "_id", (int)hs->dir);
  return true;
}

/* The page, hour by hour from the cursor's hour (or the window's first, in
 * the order asked) to the window's last. */
static void by_hour(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const window_t *w) {
  cqrs_error_t err = {0};
  int64_t first = hour_of(w->from), last = hour_of(w->to), dir = w->newest ? -1 : 1;
  hours_t hs = {w, w->after ? hour_of(w->after_t) : (w->newest ? last : first), first, last, dir};
  const cqrs_routes_segments_t s = {CQRS_ROUTES_HISTORY, CQRS_HISTORY_TIME, &cqrs_routes_history_item, false,
                                    hour_cb, &hs};
  bson_string_t *out = bson_string_new("{\"items\":[");
  bson_value_t last_t = {0}, last_id = {0};
  int n = 0;
  bool more = false;
  if (!cqrs_routes_read_segments(call, &s, w->limit, out, &n, &more, &last_t, &last_id, &err)) {
    cqrs_routes_reply_no_store(req, call, CQRS_ROUTES_HISTORY, err.message);
  } else {
    char *next = more ? cqrs_cursor_encode(w->list, CQRS_HISTORY_TIME, &last_t, &last_id) : NULL;
    cqrs_routes_end_page(out, next);
    bson_free(next);
    cqrs_routes_freshness(req, call, CQRS_ROUTES_HISTORY);
    cqrs_http_reply_json(req, 200, out->str, out->len);
  }
  bson_string_free(out, true);
  bson_value_destroy(&last_t);
  bson_value_destroy(&last_id);
}

static void events(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *type, *order = "oldest", *raw, *text;
  char from[32], to[32];
  int limit;
  bson_value_t after_t = {0}, after_id = {0};
  if (!cqrs_params_string(p, "type", true, 128, &type, &err)) goto invalid;
  if (!cqrs_event_type_find(type)) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "type", "unknown event type \"%.64s\"", type);
    goto invalid;
  }
  if (!cqrs_params_time(p, "from", &raw, from, &err) || !cqrs_params_time(p, "to", &raw, to, &err) ||
      (cqrs_params_get(p, "order") && !cqrs_params_enum(p, "order", ORDERS, &order, &err)))
    goto invalid;
  if (from[0] && to[0] && strcmp(from, to) > 0) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "to", "to is before from");
    goto invalid;
  }
  bool newest = strcmp(order, "newest") == 0;
  /* A cursor continues one order of one list: the other order's is refused. */
  const char *list = newest ? "Events:newest" : "Events:oldest";
  if (from[0] && to[0] && hour_of(to) - hour_of(from) < HOURS_MAX) {
    if (!cqrs_params_limit(p, &limit, &err) || !cqrs_params_cursor(p, &text, &err) ||
        (text && !cqrs_cursor_decode(text, list, CQRS_HISTORY_TIME, &after_t, &after_id, &err)))
      goto invalid;
    if (text && after_t.value_type != BSON_TYPE_UTF8) {
      cqrs_error_set(&err, CQRS_ERR_INVALID, "cursor", "cursor is not a cursor of this list");
      goto invalid;
    }
    window_t w = {type, from, to, list, newest, limit, text != NULL,
                  text ? after_t.value.v_utf8.str : NULL, &after_id};
    by_hour(req, call, &w);
    goto done;
  }
  bson_t filter = BSON_INITIALIZER;
  window(&filter, type, from, to);
  const cqrs_routes_page_t page = {CQRS_ROUTES_HISTORY, list, &filter, CQRS_HISTORY_TIME, newest, NULL,
                                   &cqrs_routes_history_item};
  cqrs_routes_find_page_with(req, call, &page, p);
  bson_destroy(&filter);
  goto done;
invalid:
  cqrs_routes_reply_invalid(req, &err);
done:
  bson_value_destroy(&after_t);
  bson_value_destroy(&after_id);
}

static void events_cb(cqrs_http_req_t *req, const cqrs_routes_call_t *call) {
  cqrs_params_t *p = cqrs_routes_query_params(req, PARAMS, NULL);
  if (!p) return;
  events(req, call, p);
  cqrs_params_destroy(p);
}

static void add_routes(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  cqrs_routes_add(http, ctx, "GET", "/v1/events", "/v1/events", events_cb);
}

const cqrs_routes_resource_t cqrs_routes_events = {CQRS_ROUTES_HISTORY, NULL, add_routes};
