/* GET /v1/events?type=&from=&to=&order=: the events of one type whose time is
 * in [from, to), oldest or newest first, in keyset pages, from the
 * event_history read model (its (type, time) index). */
#include "../routes.h"

#include <string.h>

static const char *const ORDERS[] = {"oldest", "newest", NULL};
static const char *const PARAMS[] = {"type", "from", "to", "order", "limit", "cursor", NULL};

/* The filter {type, time: {$gte: from, $lt: to}} (bounds only when given). */
static void window(const char *type, const char *from, const char *to, bson_t *filter) {
  bson_init(filter);
  BSON_APPEND_UTF8(filter, CQRS_HISTORY_TYPE, type);
  if (!from[0] && !to[0]) return;
  bson_t range;
  BSON_APPEND_DOCUMENT_BEGIN(filter, CQRS_HISTORY_TIME, &range);
  if (from[0]) BSON_APPEND_UTF8(&range, "$gte", from);
  if (to[0]) BSON_APPEND_UTF8(&range, "$lt", to);
  bson_append_document_end(filter, &range);
}

static void events(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *type, *order = "oldest", *raw;
  char from[32], to[32];
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
  bson_t filter;
  window(type, from, to, &filter);
  /* A cursor continues one order of one list: the other order's is refused. */
  const cqrs_routes_page_t page = {CQRS_ROUTES_HISTORY, newest ? "Events:newest" : "Events:oldest", &filter,
                                   CQRS_HISTORY_TIME, newest, NULL, CQRS_HISTORY_VERSION_BLOCK};
  cqrs_routes_find_page_with(req, call, &page, p);
  bson_destroy(&filter);
  return;
invalid:
  cqrs_routes_reply_invalid(req, &err);
}

static void events_cb(cqrs_http_req_t *req, const cqrs_routes_call_t *call) {
  cqrs_params_t *p = cqrs_routes_query_params(req, PARAMS, NULL);
  if (!p) return;
  events(req, call, p);
  cqrs_params_destroy(p);
}

void cqrs_routes_events(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  cqrs_routes_add(http, ctx, "GET", "/v1/events", "/v1/events", events_cb);
}
