/* End to end, query-svc with authentication on: tenants a and b hold the same
 * ids with different documents, in their own databases "<db>_a" and
 * "<db>_b". Every query route of docs/openapi/query-svc.json (point reads,
 * lists, by email, POST /v1/query with every queryType, waits with
 * minVersion, the aggregates' histories, events by type, asOf / atVersion)
 * answers a's token with a's documents only; an id (or a version) only b has
 * is 404 for a, and events of a type only b has an empty page. No token is 401 with WWW-Authenticate: Bearer; a token that does
 * not verify is 401 error="invalid_token"; a token without queries:read is
 * 403; X-Tenant-Id naming b with a's token is 403; and once tenant a is
 * deleted (a control record), a's token is 401 within a bounded wait. With
 * RATE_LIMIT_QUERIES, a reading past its rate gets 429 with Retry-After while
 * b reads on.
 *
 * Tokens are ES256 JWTs signed with a key made here; the JWKS goes to a file
 * query-svc reads (AUTH_JWKS_FILE). Tenants are made active or deleted by
 * producing control records to the test's TOPIC_PREFIX + "control", as
 * admin-svc does (tests/support/tk_auth.h). */
#include "testkit.h"
#include "tk_auth.h"

#include "cqrs/control.h"
#include "cqrs/events.h"
#include "cqrs/json.h"

#include <criterion/criterion.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static tk_env_t env;
static pid_t query_pid;
static tk_auth_t *auth;
static char *token_a, *token_b, *token_a_write, *token_c;
static mongoc_client_t *store; /* the test's own connection, to write documents straight in */

static char *make_token(const char *tenant, const char *scope) { return tk_auth_token(auth, tenant, scope, 3600); }

/* Inserts the JSON documents (NULL-ended) into tenant's read model. */
static void insert(const char *tenant, const char *read_model, const char *const *docs) {
  char db[128];
  mongoc_collection_t *coll = mongoc_client_get_collection(store, tk_tenant_db(&env, tenant, db), read_model);
  for (const char *const *d = docs; *d; d++) {
    bson_error_t error;
    bson_t *doc = bson_new_from_json((const uint8_t *)*d, -1, &error);
    cr_assert_not_null(doc, "%s: %s", *d, error.message);
    cr_assert(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error), "insert: %s", error.message);
    bson_destroy(doc);
  }
  mongoc_collection_destroy(coll);
}

/* Sets the name and version of tenant's user id. */
static void update_user(const char *tenant, const char *id, const char *name, int version) {
  char db[128];
  mongoc_collection_t *coll = mongoc_client_get_collection(store, tk_tenant_db(&env, tenant, db), "user_profiles");
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
  bson_t *update = BCON_NEW("$set", "{", "name", BCON_UTF8(name), "version", BCON_INT64(version), "}");
  bson_error_t error;
  cr_assert(mongoc_collection_update_one(coll, filter, update, NULL, NULL, &error), "update: %s", error.message);
  bson_destroy(filter);
  bson_destroy(update);
  mongoc_collection_destroy(coll);
}

static void drop_tenant_dbs(void) {
  for (const char *const *t = (const char *const[]){"a", "b", NULL}; *t; t++) {
    char name[128];
    mongoc_database_t *db = mongoc_client_get_database(store, tk_tenant_db(&env, *t, name));
    mongoc_database_drop(db, NULL);
    mongoc_database_destroy(db);
  }
}

/* One event of tenant's aggregate, as the event_history projection records
 * it (projector-svc/projections/event_history.c), so the history routes, the
 * events by type and asOf / atVersion (which fold these) have something to
 * read. data: the event's data, encoded by its descriptor. */
static void insert_event(const char *tenant, const cqrs_event_type_t *type, const char *id, int64_t version,
                         const char *time, const cqrs_event_data_t *data) {
  char db[128], event_id[160], hour[16];
  snprintf(event_id, sizeof event_id, "%s-%s-%s-%lld", tenant, type->aggregate_type, id, (long long)version);
  snprintf(hour, sizeof hour, "%.13s", time);
  bson_t doc = BSON_INITIALIZER, d = BSON_INITIALIZER;
  type->encode(data, &d);
  BSON_APPEND_UTF8(&doc, "_id", event_id);
  BSON_APPEND_UTF8(&doc, "eventId", event_id);
  BSON_APPEND_UTF8(&doc, "type", type->name);
  BSON_APPEND_INT32(&doc, "schemaVersion", type->version);
  BSON_APPEND_UTF8(&doc, "aggregateType", type->aggregate_type);
  BSON_APPEND_UTF8(&doc, "aggregateId", id);
  BSON_APPEND_INT64(&doc, "version", version);
  BSON_APPEND_UTF8(&doc, "time", time);
  BSON_APPEND_UTF8(&doc, "tenant", tenant);
  BSON_APPEND_DOCUMENT(&doc, "data", &d);
  BSON_APPEND_INT64(&doc, "versionBlock", (version - 1) / 100);
  BSON_APPEND_UTF8(&doc, "timeHour", hour);
  mongoc_collection_t *coll = mongoc_client_get_collection(store, tk_tenant_db(&env, tenant, db), "event_history");
  bson_error_t error;
  cr_assert(mongoc_collection_insert_one(coll, &doc, NULL, NULL, &error), "insert: %s", error.message);
  mongoc_collection_destroy(coll);
  bson_destroy(&d);
  bson_destroy(&doc);
}

#define T1 "2026-01-01T00:10:00.000Z"
#define T2 "2026-01-01T01:10:00.000Z"

/* The histories: u1, o1 and c1 with one event in a (marked "of-a") and two
 * in b (marked "of-b"), at the same times, so a window, a version or a moment
 * that finds b's finds a's too; u-only-b, o-only-b and c-only-b in b only. A
 * version 2 exists in b only. */
static void seed_history(void) {
  cqrs_order_item_t item_a = {.product = "of-a", .quantity = 1, .price = 1},
                    item_b = {.product = "of-b", .quantity = 1, .price = 1};
  for (const char *const *t = (const char *const[]){"a", "b", NULL}; *t; t++) {
    bool b = strcmp(*t, "b") == 0;
    const char *mark = b ? "of-b" : "of-a";
    bson_t items = BSON_INITIALIZER;
    cqrs_order_item_append(&items, 0, b ? &item_b : &item_a);
    for (const char *const *id = (const char *const[]){"", "only-b", NULL}; *id && (b || !**id); id++) {
      char u[32], o[32], c[32], email[64];
      snprintf(u, sizeof u, "u%s", **id ? "-only-b" : "1");
      snprintf(o, sizeof o, "o%s", **id ? "-only-b" : "1");
      snprintf(c, sizeof c, "c%s", **id ? "-only-b" : "1");
      snprintf(email, sizeof email, "%s@example.com", u);
      insert_event(*t, &cqrs_user_created_event, u, 1, T1,
                   &(cqrs_event_data_t){.user_created = {.user_id = u, .email = email, .name = mark, .created_at = T1}});
      insert_event(*t, &cqrs_order_created_event, o, 1, T1,
                   &(cqrs_event_data_t){.order_created = {.order_id = o, .user_id = "u1", .items = items,
                                                          .total_amount = 1, .currency = "EUR", .created_at = T1}});
      insert_event(*t, &cqrs_customer_registered_event, c, 1, T1,
                   &(cqrs_event_data_t){.customer_registered = {.customer_id = c, .email = email, .name = mark,
                                                                .registered_at = T1}});
    }
    if (b) {
      insert_event(*t, &cqrs_user_profile_updated_event, "u1", 2, T2,
                   &(cqrs_event_data_t){.user_profile_updated = {.user_id = "u1", .changes = {.name = "of-b v2"},
                                                                 .updated_at = T2}});
      insert_event(*t, &cqrs_order_status_updated_event, "o1", 2, T2,
                   &(cqrs_event_data_t){.order_status_updated = {.order_id = "o1", .status = "Processing",
                                                                 .previous_status = "Created", .updated_at = T2,
                                                                 .reason = "of-b"}});
      insert_event(*t, &cqrs_customer_suspended_event, "c1", 2, T2,
                   &(cqrs_event_data_t){.customer_suspended = {.customer_id = "c1", .reason = "of-b",
                                                               .suspended_at = T2}});
    }
    bson_destroy(&items);
  }
}

/* The same ids in a and b; every document of a says "of-a", of b "of-b".
 * b's copies are at version 5, a's at 1: a wait for version 3 that read b's
 * would be answered fresh. */
static void seed(void) {
  insert("a", "user_profiles",
         (const char *[]){"{\"_id\":\"u1\",\"userId\":\"u1\",\"email\":\"shared@example.com\",\"name\":\"of-a\","
                          "\"createdAt\":\"2026-01-01T00:00:00Z\",\"version\":1}",
                          NULL});
  insert("b", "user_profiles",
         (const char *[]){"{\"_id\":\"u1\",\"userId\":\"u1\",\"email\":\"shared@example.com\",\"name\":\"of-b\","
                          "\"createdAt\":\"2025-01-01T00:00:00Z\",\"version\":5}",
                          "{\"_id\":\"u-only-b\",\"userId\":\"u-only-b\",\"email\":\"onlyb@example.com\","
                          "\"name\":\"of-b\",\"createdAt\":\"2025-01-01T00:00:00Z\",\"version\":1}",
                          NULL});
  insert("a", "order_summaries",
         (const char *[]){"{\"_id\":\"o1\",\"orderId\":\"o1\",\"userId\":\"u1\",\"status\":\"Created\",\"note\":\"of-a\","
                          "\"createdAt\":\"2026-01-01T00:00:00Z\",\"version\":1}",
                          NULL});
  insert("b", "order_summaries",
         (const char *[]){"{\"_id\":\"o1\",\"orderId\":\"o1\",\"userId\":\"u1\",\"status\":\"Created\",\"note\":\"of-b\","
                          "\"createdAt\":\"2025-01-01T00:00:00Z\",\"version\":5}",
                          "{\"_id\":\"o-only-b\",\"orderId\":\"o-only-b\",\"userId\":\"u1\",\"status\":\"Created\","
                          "\"note\":\"of-b\",\"createdAt\":\"2025-01-01T00:00:00Z\",\"version\":1}",
                          NULL});
  insert("a", "customers",
         (const char *[]){"{\"_id\":\"c1\",\"customerId\":\"c1\",\"email\":\"cust@example.com\",\"name\":\"of-a\","
                          "\"status\":\"ACTIVE\",\"registrationDate\":\"2026-01-01T00:00:00Z\",\"version\":1}",
                          NULL});
  insert("b", "customers",
         (const char *[]){"{\"_id\":\"c1\",\"customerId\":\"c1\",\"email\":\"cust@example.com\",\"name\":\"of-b\","
                          "\"status\":\"ACTIVE\",\"registrationDate\":\"2025-01-01T00:00:00Z\",\"version\":5}",
                          "{\"_id\":\"c-only-b\",\"customerId\":\"c-only-b\",\"email\":\"cust2@example.com\","
                          "\"name\":\"of-b\",\"status\":\"ACTIVE\",\"registrationDate\":\"2025-01-01T00:00:00Z\","
                          "\"version\":1}",
                          NULL});
}

/* One request with token (NULL: no Authorization) and extra header lines. */
static void call(const char *method, const char *path, const char *body, const char *token, const char *extra,
                 tk_response_t *r) {
  tk_auth_http(method, env.query_port, path, token, extra, body, r);
}

typedef struct {
  const char *token;
  int want;
} await_t;

/* Waits until a GET of /v1/users/u1 with token answers want (the registry
 * learns of control records within about a second). */
static void await_status(const char *token, int want) {
  tk_response_t r = {0};
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    call("GET", "/v1/users/u1", NULL, token, NULL, &r);
    if (r.status == want) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    cr_assert_lt(now.tv_sec - start.tv_sec, 15, "GET /v1/users/u1 never answered %d (last %d: %s)", want, r.status,
                 r.body ? r.body : "");
    tk_response_cleanup(&r);
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL); /* between polls of an awaited condition */
  }
  tk_response_cleanup(&r);
}

/* Starts query-svc with AUTH=on and rate_limit (a RATE_LIMIT_QUERIES=
 * setting, or NULL), seeds a's and b's read models and makes both active. */
static void start(const char *rate_limit) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  const char *extra[TK_AUTH_ENV_MAX];
  query_pid =
      tk_start(&env, TK_QUERY, tk_auth_env(auth, (const char *const[]){"WAIT_TICK_MS=10", rate_limit, NULL}, extra));
  store = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(store);
  seed();
  seed_history();
  token_a = make_token("a", "queries:read");
  token_b = make_token("b", "queries:read commands:write");
  token_a_write = make_token("a", "commands:write");
  token_c = make_token("c", "queries:read");
  tk_auth_put_tenant(&env, "a", CQRS_TENANT_ACTIVE);
  tk_auth_put_tenant(&env, "b", CQRS_TENANT_ACTIVE);
  await_status(token_a, 200);
  await_status(token_b, 200);
}

static void setup(void) { start(NULL); }

static void teardown(void) {
  if (query_pid > 0) tk_stop(query_pid, SIGTERM);
  if (store) {
    drop_tenant_dbs();
    mongoc_client_destroy(store);
  }
  tk_auth_destroy(auth);
  free(token_a);
  free(token_b);
  free(token_a_write);
  free(token_c);
}

TestSuite(query_tenants, .init = setup, .fini = teardown, .timeout = 240);

/* Every query route, once per way of reaching it. */
typedef struct {
  const char *method, *path, *body;
} route_t;

static const route_t ROUTES[] = {
    {"GET", "/v1/users/u1", NULL},
    {"GET", "/v1/users?email=shared@example.com", NULL},
    {"GET", "/v1/orders/o1", NULL},
    {"GET", "/v1/orders?userId=u1", NULL},
    {"GET", "/v1/orders?status=Created", NULL},
    {"GET", "/v1/customers/c1", NULL},
    {"GET", "/v1/customers?status=ACTIVE", NULL},
    {"GET", "/v1/customers?emailPrefix=cust", NULL},
    {"POST", "/v1/query", "{\"queryType\":\"GetUserProfile\",\"userId\":\"u1\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetUserByEmail\",\"email\":\"shared@example.com\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"o1\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetOrdersByUser\",\"userId\":\"u1\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetOrdersByStatus\",\"status\":\"Created\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetCustomerById\",\"customerId\":\"c1\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetActiveCustomers\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"SearchCustomersByEmail\",\"emailPrefix\":\"cust\"}"},
    /* waits: b's copies are at version 5, a's at 1, so each answers a's
     * document stale, where b's would have been fresh */
    {"GET", "/v1/users/u1?minVersion=3&waitMs=300", NULL},
    {"GET", "/v1/users?email=shared@example.com&minVersion=3&waitMs=300", NULL},
    {"GET", "/v1/orders/o1?minVersion=3&waitMs=300", NULL},
    {"GET", "/v1/customers/c1?minVersion=3&waitMs=300", NULL},
    {"POST", "/v1/query", "{\"queryType\":\"GetUserProfile\",\"userId\":\"u1\",\"minVersion\":3,\"waitMs\":300}"},
    {"POST", "/v1/query",
     "{\"queryType\":\"GetUserByEmail\",\"email\":\"shared@example.com\",\"minVersion\":3,\"waitMs\":300}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"o1\",\"minVersion\":3,\"waitMs\":300}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetCustomerById\",\"customerId\":\"c1\",\"minVersion\":3,\"waitMs\":300}"},
    /* the histories (seed_history: a's and b's events at the same times and versions) */
    {"GET", "/v1/users/u1/history", NULL},
    {"GET", "/v1/orders/o1/history", NULL},
    {"GET", "/v1/customers/c1/history", NULL},
    {"GET", "/v1/users/u1/history?limit=1", NULL},
    /* events by type: an open window (one query), a closed one (hour by hour), newest first */
    {"GET", "/v1/events?type=UserCreated", NULL},
    {"GET", "/v1/events?type=OrderCreated&from=2026-01-01T00:00:00Z&to=2026-01-01T03:00:00Z", NULL},
    {"GET", "/v1/events?type=CustomerRegistered&from=2026-01-01T00:00:00Z&order=newest", NULL},
    /* time travel, folded from a's history */
    {"GET", "/v1/users/u1?asOf=2026-01-01T00:30:00Z", NULL},
    {"GET", "/v1/users/u1?atVersion=1", NULL},
    {"GET", "/v1/orders/o1?asOf=2026-01-01T00:30:00Z", NULL},
    {"GET", "/v1/orders/o1?atVersion=1", NULL},
    {"GET", "/v1/customers/c1?asOf=2026-01-01T00:30:00%2B00:00", NULL},
    {"GET", "/v1/customers/c1?atVersion=1", NULL},
    {"POST", "/v1/query", "{\"queryType\":\"GetUserProfile\",\"userId\":\"u1\",\"asOf\":\"2026-01-01T00:30:00Z\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"o1\",\"atVersion\":1}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetCustomerById\",\"customerId\":\"c1\",\"asOf\":\"2026-01-01T00:30:00Z\"}"},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

/* Reads only b has: 404 for a, as if absent (with and without a wait). */
static const route_t ONLY_B[] = {
    {"GET", "/v1/users/u-only-b", NULL},
    {"GET", "/v1/users?email=onlyb@example.com", NULL},
    {"GET", "/v1/orders/o-only-b", NULL},
    {"GET", "/v1/customers/c-only-b", NULL},
    {"GET", "/v1/users/u-only-b?minVersion=1&waitMs=300", NULL},
    {"GET", "/v1/orders/o-only-b?minVersion=1&waitMs=300", NULL},
    {"POST", "/v1/query", "{\"queryType\":\"GetUserProfile\",\"userId\":\"u-only-b\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetUserByEmail\",\"email\":\"onlyb@example.com\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"o-only-b\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetCustomerById\",\"customerId\":\"c-only-b\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetCustomerById\",\"customerId\":\"c-only-b\",\"minVersion\":1,\"waitMs\":300}"},
    /* histories only b has, and versions only b's aggregates reached */
    {"GET", "/v1/users/u-only-b/history", NULL},
    {"GET", "/v1/orders/o-only-b/history", NULL},
    {"GET", "/v1/customers/c-only-b/history", NULL},
    {"GET", "/v1/users/u-only-b?asOf=2026-01-01T00:30:00Z", NULL},
    {"GET", "/v1/users/u1?atVersion=2", NULL},
    {"GET", "/v1/orders/o1?atVersion=2", NULL},
    {"GET", "/v1/customers/c1?atVersion=2", NULL},
    {"POST", "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"o-only-b\",\"asOf\":\"2026-01-01T00:30:00Z\"}"},
    {"POST", "/v1/query", "{\"queryType\":\"GetCustomerById\",\"customerId\":\"c1\",\"atVersion\":2}"},
};

/* Lists where only b has events: an empty page for a, b's events for b. */
static const route_t EMPTY_FOR_A[] = {
    {"GET", "/v1/events?type=UserProfileUpdated", NULL},
    {"GET", "/v1/events?type=CustomerSuspended&from=2026-01-01T00:00:00Z&to=2026-01-01T03:00:00Z", NULL},
    {"GET", "/v1/events?type=OrderStatusUpdated&order=newest", NULL},
};

static bool is_wait(const route_t *r) {
  return strstr(r->path, "minVersion") || (r->body && strstr(r->body, "minVersion"));
}

/* "items" of a list answer, counted by their name or note markers. */
static int count(const char *body, const char *marker) {
  int n = 0;
  for (const char *p = body; (p = strstr(p, marker)); p += strlen(marker)) n++;
  return n;
}

Test(query_tenants, every_route_answers_a_only_with_as_documents) {
  for (size_t i = 0; i < N_ROUTES; i++) {
    const route_t *rt = &ROUTES[i];
    tk_response_t r;
    call(rt->method, rt->path, rt->body, token_a, NULL, &r);
    const char *what = rt->body ? rt->body : rt->path;
    cr_assert_eq(r.status, 200, "%s %s answered %d: %s", rt->method, what, r.status, r.body ? r.body : "");
    cr_assert_eq(count(r.body, "of-b"), 0, "%s %s gave a b's document: %s", rt->method, what, r.body);
    cr_assert_eq(count(r.body, "of-a"), 1, "%s %s: want a's one document: %s", rt->method, what, r.body);
    bool stale = r.headers && strcasestr(r.headers, "X-Stale: true");
    cr_assert_eq(stale, is_wait(rt), "%s %s: X-Stale %s (a's version is 1: a wait for 3 ends stale)", rt->method,
                 what, stale ? "set" : "absent");
    tk_response_cleanup(&r);
    /* b, with the same request, sees only b's */
    call(rt->method, rt->path, rt->body, token_b, NULL, &r);
    cr_assert_eq(r.status, 200, "b: %s %s answered %d", rt->method, what, r.status);
    cr_assert_eq(count(r.body, "of-a"), 0, "b: %s %s gave a's document: %s", rt->method, what, r.body);
    cr_assert_geq(count(r.body, "of-b"), 1, "b: %s %s: %s", rt->method, what, r.body);
    tk_response_cleanup(&r);
  }
  for (size_t i = 0; i < sizeof ONLY_B / sizeof ONLY_B[0]; i++) {
    const route_t *rt = &ONLY_B[i];
    tk_response_t r;
    call(rt->method, rt->path, rt->body, token_a, NULL, &r);
    const char *what = rt->body ? rt->body : rt->path;
    cr_assert_eq(r.status, 404, "a: %s %s (only b has it) answered %d: %s", rt->method, what, r.status,
                 r.body ? r.body : "");
    cr_assert_eq(count(r.body, "of-b"), 0);
    tk_response_cleanup(&r);
    call(rt->method, rt->path, rt->body, token_b, NULL, &r);
    cr_assert_eq(r.status, 200, "b: %s %s answered %d", rt->method, what, r.status);
    tk_response_cleanup(&r);
  }
  for (size_t i = 0; i < sizeof EMPTY_FOR_A / sizeof EMPTY_FOR_A[0]; i++) {
    const route_t *rt = &EMPTY_FOR_A[i];
    tk_response_t r;
    call(rt->method, rt->path, rt->body, token_a, NULL, &r);
    cr_assert_eq(r.status, 200, "a: %s answered %d: %s", rt->path, r.status, r.body ? r.body : "");
    cr_assert_not_null(strstr(r.body, "\"items\":[]"), "a: %s is not empty: %s", rt->path, r.body);
    tk_response_cleanup(&r);
    call(rt->method, rt->path, rt->body, token_b, NULL, &r);
    cr_assert_eq(r.status, 200, "b: %s answered %d", rt->path, r.status);
    cr_assert_geq(count(r.body, "of-b"), 1, "b: %s: %s", rt->path, r.body);
    tk_response_cleanup(&r);
  }
}

/* A read waiting on the hub is answered from its own tenant's database: b's
 * u1 is at version 5 all along, a's reaches 2 only after the wait began. */
typedef struct {
  pthread_t thread;
  tk_response_t r;
  const char *path;
} waiting_t;

static void *wait_main(void *arg) {
  waiting_t *w = arg;
  call("GET", w->path, NULL, token_a, NULL, &w->r);
  return NULL;
}

/* The value of the series "<name> <v>" in a /metrics text; -1 when absent. */
static double metric_in(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

static bool waiters_are(const char *body, void *want) { return metric_in(body, "read_waiters") == *(double *)want; }

static void await_waiters(double n) {
  tk_response_t m;
  cr_assert(tk_await_get(env.query_port, "/metrics", 200, waiters_are, &n, 10000, &m),
            "read_waiters never reached %g", n);
  tk_response_cleanup(&m);
}

Test(query_tenants, a_waiting_read_is_answered_from_its_tenants_document_only) {
  static const char *const paths[] = {"/v1/users/u1?minVersion=2&waitMs=8000",
                                      "/v1/users?email=shared@example.com&minVersion=3&waitMs=8000"};
  for (int i = 0; i < 2; i++) {
    await_waiters(0);
    waiting_t w = {.path = paths[i]};
    cr_assert_eq(pthread_create(&w.thread, NULL, wait_main, &w), 0);
    await_waiters(1);
    char name[32];
    snprintf(name, sizeof name, "of-a v%d", i + 2);
    update_user("a", "u1", name, i + 2);
    pthread_join(w.thread, NULL);
    cr_assert_eq(w.r.status, 200, "%s answered %d: %s", paths[i], w.r.status, w.r.body ? w.r.body : "");
    cr_assert(strstr(w.r.body, name), "%s: want a's new document, got %s", paths[i], w.r.body);
    cr_assert_null(strcasestr(w.r.headers, "X-Stale"), "%s: fresh, not stale", paths[i]);
    tk_response_cleanup(&w.r);
  }
  if (getenv("FERRETDB_PG_URI")) {
    /* The read by _id went through the version probe, in a's own schema: had
     * it asked another schema, FerretDB would have had no table there and
     * the hub would have fallen back to finds, fetching nothing this way. */
    tk_response_t m;
    tk_http("GET", env.query_port, "/metrics", NULL, 0, &m);
    cr_assert_geq(metric_in(m.body, "read_wait_fetches_total"), 1, "the version probe never served a's wait");
    tk_response_cleanup(&m);
  }
}

Test(query_tenants, credentials_that_do_not_allow_reading_are_refused_on_every_route) {
  for (size_t i = 0; i < N_ROUTES; i++) {
    const route_t *rt = &ROUTES[i];
    const char *what = rt->body ? rt->body : rt->path;
    tk_response_t r;
    call(rt->method, rt->path, rt->body, NULL, NULL, &r);
    cr_assert_eq(r.status, 401, "no token: %s %s answered %d", rt->method, what, r.status);
    cr_assert_not_null(strcasestr(r.headers, "WWW-Authenticate: Bearer"), "no token: %s", r.headers);
    cr_assert_eq(count(r.body, "of-"), 0);
    tk_response_cleanup(&r);

    call(rt->method, rt->path, rt->body, "not.a.token", NULL, &r);
    cr_assert_eq(r.status, 401, "bad token: %s %s answered %d", rt->method, what, r.status);
    cr_assert_not_null(strcasestr(r.headers, "error=\"invalid_token\""), "bad token: %s", r.headers);
    cr_assert_null(strstr(r.body, "not.a.token"), "the credential is echoed: %s", r.body);
    tk_response_cleanup(&r);

    call(rt->method, rt->path, rt->body, token_a_write, NULL, &r);
    cr_assert_eq(r.status, 403, "commands:write only: %s %s answered %d", rt->method, what, r.status);
    cr_assert_eq(count(r.body, "of-"), 0);
    tk_response_cleanup(&r);

    call(rt->method, rt->path, rt->body, token_a, "X-Tenant-Id: b\r\n", &r);
    cr_assert_eq(r.status, 403, "a's token naming b: %s %s answered %d", rt->method, what, r.status);
    cr_assert_eq(count(r.body, "of-"), 0);
    tk_response_cleanup(&r);

    call(rt->method, rt->path, rt->body, token_c, NULL, &r);
    cr_assert_eq(r.status, 401, "a tenant never created: %s %s answered %d", rt->method, what, r.status);
    tk_response_cleanup(&r);
  }
  /* A platform administrator belongs to no tenant: it reads no tenant's
   * documents, with or without queries:read among its scopes. */
  for (const char *const *scope = (const char *const[]){"platform:admin", "platform:admin queries:read", NULL}; *scope;
       scope++) {
    char *platform = make_token(NULL, *scope);
    for (size_t i = 0; i < N_ROUTES; i++) {
      tk_response_t r;
      call(ROUTES[i].method, ROUTES[i].path, ROUTES[i].body, platform, NULL, &r);
      cr_assert_eq(r.status, 403, "platform token (%s): %s %s answered %d: %s", *scope, ROUTES[i].method,
                   ROUTES[i].body ? ROUTES[i].body : ROUTES[i].path, r.status, r.body ? r.body : "");
      cr_assert_eq(count(r.body, "of-"), 0);
      tk_response_cleanup(&r);
    }
    free(platform);
  }
  /* A header that agrees with the credential is fine. */
  tk_response_t r;
  call("GET", "/v1/users/u1", NULL, token_a, "X-Tenant-Id: a\r\n", &r);
  cr_assert_eq(r.status, 200, "X-Tenant-Id: a with a's token answered %d", r.status);
  tk_response_cleanup(&r);
  /* The open routes stay open. */
  for (const char *const *p = (const char *const[]){"/healthz", "/readyz", "/metrics", "/openapi.json", NULL}; *p;
       p++) {
    call("GET", *p, NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s without a token answered %d", *p, r.status);
    tk_response_cleanup(&r);
  }
}

Test(query_tenants, a_deleted_tenants_token_is_refused_within_seconds_and_others_read_on) {
  tk_auth_put_tenant(&env, "a", CQRS_TENANT_DELETED);
  await_status(token_a, 401);
  tk_response_t r;
  call("GET", "/v1/users/u1", NULL, token_a, NULL, &r);
  cr_assert_eq(r.status, 401);
  cr_assert_not_null(strcasestr(r.headers, "WWW-Authenticate: Bearer"));
  tk_response_cleanup(&r);
  call("GET", "/v1/users/u1", NULL, token_b, NULL, &r);
  cr_assert_eq(r.status, 200, "b reads on: %d", r.status);
  cr_assert(strstr(r.body, "of-b"));
  tk_response_cleanup(&r);
}

/* ---- fairness: per-tenant query rate limits ---- */

#define RATE 5 /* RATE_LIMIT_QUERIES of this suite: a burst of 2 * RATE, then RATE a second */

static void setup_limited(void) {
  char rate[64];
  snprintf(rate, sizeof rate, "RATE_LIMIT_QUERIES=%d", RATE);
  start(rate);
}

TestSuite(query_fairness, .init = setup_limited, .fini = teardown, .timeout = 120);

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a reads as fast as it can until refused (at most 200 reads): its bucket is
 * empty then. Returns the reads answered 200; r holds the 429. */
static int flood_until_limited(tk_response_t *r) {
  int ok = 0;
  for (int i = 0; i < 200; i++) {
    call("GET", "/v1/users/u1", NULL, token_a, NULL, r);
    if (r->status == 429) return ok;
    cr_assert_eq(r->status, 200, "a's read %d answered %d: %s", i, r->status, r->body ? r->body : "");
    ok++;
    tk_response_cleanup(r);
  }
  cr_assert_fail("a read 200 times with RATE_LIMIT_QUERIES=%d and was never refused", RATE);
  return ok;
}

Test(query_fairness, a_tenant_over_its_query_rate_gets_429_with_retry_after_and_the_other_reads_on) {
  int64_t started = now_ms();
  tk_response_t r;
  int ok = flood_until_limited(&r);
  double seconds = (double)(now_ms() - started) / 1000.0;
  /* the bucket: a burst of 2 * RATE (less what setup's reads took), then RATE a second */
  cr_assert_leq(ok, 2 * RATE + RATE * seconds + 1, "a read %d times in %.1f s at %d/s", ok, seconds, RATE);
  char *retry = strcasestr(r.headers, "Retry-After: ");
  cr_assert_not_null(retry, "a 429 without Retry-After: %s", r.headers);
  char *end = NULL;
  long secs = strtol(retry + strlen("Retry-After: "), &end, 10);
  cr_assert(secs >= 1 && (*end == '\r' || *end == '\n'), "Retry-After is not whole seconds >= 1: %s", r.headers);
  cr_assert_eq(count(r.body, "of-"), 0, "a 429 carried a document: %s", r.body);
  tk_response_cleanup(&r);

  /* b, while a is refused: every read of a burst answered, on every kind of route */
  static const route_t b_reads[] = {
      {"GET", "/v1/users/u1", NULL},
      {"GET", "/v1/orders?userId=u1", NULL},
      {"GET", "/v1/customers/c1/history", NULL},
      {"GET", "/v1/events?type=UserCreated", NULL},
      {"POST", "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"o1\"}"},
  };
  for (size_t i = 0; i < sizeof b_reads / sizeof b_reads[0]; i++) {
    call(b_reads[i].method, b_reads[i].path, b_reads[i].body, token_b, NULL, &r);
    cr_assert_eq(r.status, 200, "b's %s while a was limited answered %d: %s", b_reads[i].path, r.status,
                 r.body ? r.body : "");
    cr_assert_geq(count(r.body, "of-b"), 1, "%s", r.body);
    tk_response_cleanup(&r);
  }
  /* a is still refused right after (b's reads took nothing of a's bucket) */
  call("GET", "/v1/users/u1", NULL, token_a, NULL, &r);
  cr_assert_eq(r.status, 429, "a after b's reads answered %d", r.status);
  tk_response_cleanup(&r);
  /* every route is behind the limit: a POST /v1/query too */
  call("POST", "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"o1\"}", token_a, NULL, &r);
  cr_assert_eq(r.status, 429, "a's POST /v1/query answered %d", r.status);
  tk_response_cleanup(&r);

  /* the bucket refills: after Retry-After, a reads again */
  struct timespec pause = {secs, 100 * 1000000L};
  nanosleep(&pause, NULL); /* the time the answer told the client to wait is the scenario */
  call("GET", "/v1/users/u1", NULL, token_a, NULL, &r);
  cr_assert_eq(r.status, 200, "a after waiting Retry-After (%ld s) answered %d", secs, r.status);
  cr_assert_eq(count(r.body, "of-a"), 1);
  tk_response_cleanup(&r);

  /* counted per tenant: a limited, b never */
  tk_http("GET", env.query_port, "/metrics", NULL, 0, &r);
  cr_assert_geq(metric_in(r.body, "rate_limited_total{tenant=\"a\"}"), 2, "a's refusals are not counted");
  cr_assert_null(strstr(r.body, "rate_limited_total{tenant=\"b\"}"), "b was counted as limited");
  tk_response_cleanup(&r);
}
