/* GET /v1/orders/{orderId} (GetOrder), GET /v1/orders?userId= (GetOrdersByUser)
 * and GET /v1/orders?status= (GetOrdersByStatus) from order_summaries. */
#include "../routes.h"

#include <string.h>

#define COLLECTION "order_summaries"
#define ID_MAX 128

static const cqrs_single_read_t ORDER_BY_ID = {COLLECTION, "_id", NULL, "no such order"};


static void get_order(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p);

/* GET /v1/orders/{orderId} (then and now) and its history. */
static const cqrs_routes_aggregate_t ORDER = {"/v1/orders/", "/v1/orders/{orderId}", "orderId", "order",
                                              &ORDER_BY_ID, &cqrs_order_summaries_projection, "no such order",
                                              get_order};

static void get_order(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *id;
  if (!cqrs_params_string(p, "orderId", true, ID_MAX, &id, &err)) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  cqrs_routes_find_aggregate(req, call, &ORDER, id, p);
}

/* Orders whose field equals the parameter of the same name, oldest first. */
static void list_orders(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p,
                        const char *list, const char *field, const char *const *allowed) {
  cqrs_error_t err = {0};
  const char *value;
  bool ok = allowed ? cqrs_params_enum(p, field, allowed, &value, &err)
                    : cqrs_params_string(p, field, true, ID_MAX, &value, &err);
  if (!ok) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, field, value);
  cqrs_routes_find_page(req, call, COLLECTION, list, &filter, "createdAt", p);
  bson_destroy(&filter);
}

static void orders_by_user(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  list_orders(req, call, p, "GetOrdersByUser", "userId", NULL);
}

static void orders_by_status(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  list_orders(req, call, p, "GetOrdersByStatus", "status", cqrs_order_statuses);
}

/* Single reads also take minVersion and waitMs, or asOf / atVersion
 * (cqrs_routes_find_aggregate). */
static const char *const GET_ORDER_PARAMS[] = {"orderId", CQRS_ROUTES_WAIT_PARAMS, CQRS_ROUTES_TIME_PARAMS, NULL};
static const char *const BY_USER_PARAMS[] = {"userId", "limit", "cursor", NULL};
static const char *const BY_STATUS_PARAMS[] = {"status", "limit", "cursor", NULL};
static const char *const LIST_PARAMS[] = {"userId", "status", "limit", "cursor", NULL};

static const cqrs_routes_query_t QUERIES[] = {
    {"GetOrder", GET_ORDER_PARAMS, get_order},
    {"GetOrdersByUser", BY_USER_PARAMS, orders_by_user},
    {"GetOrdersByStatus", BY_STATUS_PARAMS, orders_by_status},
    {NULL, NULL, NULL},
};

static void find_orders_cb(cqrs_http_req_t *req, const cqrs_routes_call_t *call) {
  cqrs_params_t *p = cqrs_routes_query_params(req, LIST_PARAMS, NULL);
  cqrs_error_t err = {0};
  const char *by;
  if (!p) return;
  if (!cqrs_params_one_of(p, "userId", "status", &by, &err))
    cqrs_routes_reply_invalid(req, &err);
  else if (strcmp(by, "userId") == 0)
    orders_by_user(req, call, p);
  else
    orders_by_status(req, call, p);
  cqrs_params_destroy(p);
}

static void add_routes(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  cqrs_routes_add_aggregate(http, ctx, &ORDER);
  cqrs_routes_add(http, ctx, "GET", "/v1/orders", "/v1/orders", find_orders_cb);
}

const cqrs_routes_resource_t cqrs_routes_orders = {COLLECTION, QUERIES, add_routes};
