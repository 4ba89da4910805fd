/* GET /v1/customers/{customerId} (GetCustomerById), GET
 * /v1/customers?status= (GetActiveCustomers) and GET
 * /v1/customers?emailPrefix= (SearchCustomersByEmail) from customers. */
#include "../routes.h"

#include <string.h>

#define COLLECTION "customers"
#define ID_MAX 128

static const cqrs_single_read_t CUSTOMER_BY_ID = {COLLECTION, "_id", NULL, "no such customer"};
#define EMAIL_MAX 320
/* U+10FFFF, the greatest code point: every string that starts with a prefix
 * sorts before prefix + this (bar those continuing with it). */
#define MAX_CODE_POINT "\xf4\x8f\xbf\xbf"

static void get_customer(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p);

/* GET /v1/customers/{customerId} (then and now) and its history. */
static const cqrs_routes_aggregate_t CUSTOMER = {"/v1/customers/", "/v1/customers/{customerId}", "customerId",
                                                 "customer", &CUSTOMER_BY_ID, &cqrs_customers_projection,
                                                 "no such customer", get_customer};

static void get_customer(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *id;
  if (!cqrs_params_string(p, "customerId", true, ID_MAX, &id, &err)) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  cqrs_routes_find_aggregate(req, call, &CUSTOMER, id, p);
}

static void customers_by_status(cqrs_http_req_t *req, const cqrs_routes_call_t *call,
                                const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *status;
  if (!cqrs_params_enum(p, "status", cqrs_customer_statuses, &status, &err)) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "status", status);
  cqrs_routes_find_page(req, call, COLLECTION, "GetActiveCustomers", &filter, "registrationDate", p);
  bson_destroy(&filter);
}

/* The seed query GetActiveCustomers means what it says: ACTIVE customers, with
 * no further parameter; a status given with it must be ACTIVE. */
static void active_customers(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  const char *status = cqrs_params_get(p, "status");
  if (status && strcmp(status, CQRS_CUSTOMER_ACTIVE) != 0) {
    cqrs_error_t err = {0};
    cqrs_error_set(&err, CQRS_ERR_INVALID, "status",
                   "GetActiveCustomers lists ACTIVE customers: status must be ACTIVE or absent");
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  cqrs_params_t *q = cqrs_params_new();
  static const char *const copied[] = {"limit", "cursor", NULL};
  for (const char *const *c = copied; *c; c++)
    if (cqrs_params_get(p, *c)) cqrs_params_add(q, *c, cqrs_params_get(p, *c), NULL);
  cqrs_params_add(q, "status", CQRS_CUSTOMER_ACTIVE, NULL);
  customers_by_status(req, call, q);
  cqrs_params_destroy(q);
}

/* A range on email rather than a regex: it uses the email index and needs no
 * escaping of the prefix. */
static void customers_by_email(cqrs_http_req_t *req, const cqrs_routes_call_t *call,
                               const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *prefix;
  if (!cqrs_params_string(p, "emailPrefix", true, EMAIL_MAX, &prefix, &err)) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  char *upper = bson_strdup_printf("%s" MAX_CODE_POINT, prefix);
  bson_t filter = BSON_INITIALIZER, range;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "email", &range);
  BSON_APPEND_UTF8(&range, "$gte", prefix);
  BSON_APPEND_UTF8(&range, "$lt", upper);
  bson_append_document_end(&filter, &range);
  cqrs_routes_find_page(req, call, COLLECTION, "SearchCustomersByEmail", &filter, "email", p);
  bson_destroy(&filter);
  bson_free(upper);
}

/* Single reads also take minVersion and waitMs, or asOf / atVersion
 * (cqrs_routes_find_aggregate). */
static const char *const GET_PARAMS[] = {"customerId", CQRS_ROUTES_WAIT_PARAMS, CQRS_ROUTES_TIME_PARAMS, NULL};
static const char *const BY_STATUS_PARAMS[] = {"status", "limit", "cursor", NULL};
static const char *const BY_EMAIL_PARAMS[] = {"emailPrefix", "limit", "cursor", NULL};
static const char *const LIST_PARAMS[] = {"status", "emailPrefix", "limit", "cursor", NULL};

static const cqrs_routes_query_t QUERIES[] = {
    {"GetCustomerById", GET_PARAMS, get_customer},
    {"GetActiveCustomers", BY_STATUS_PARAMS, active_customers},
    {"SearchCustomersByEmail", BY_EMAIL_PARAMS, customers_by_email},
    {NULL, NULL, NULL},
};

static void find_customers_cb(cqrs_http_req_t *req, const cqrs_routes_call_t *call) {
  cqrs_params_t *p = cqrs_routes_query_params(req, LIST_PARAMS, NULL);
  cqrs_error_t err = {0};
  const char *by;
  if (!p) return;
  if (!cqrs_params_one_of(p, "status", "emailPrefix", &by, &err))
    cqrs_routes_reply_invalid(req, &err);
  else if (strcmp(by, "status") == 0)
    customers_by_status(req, call, p);
  else
    customers_by_email(req, call, p);
  cqrs_params_destroy(p);
}

static void add_routes(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  cqrs_routes_add_aggregate(http, ctx, &CUSTOMER);
  cqrs_routes_add(http, ctx, "GET", "/v1/customers", "/v1/customers", find_customers_cb);
}

const cqrs_routes_resource_t cqrs_routes_customers = {COLLECTION, QUERIES, add_routes};
