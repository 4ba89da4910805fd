/* End to end, saga-svc with authentication on (issue 13 + issue 15): the
 * services run with AUTH=on and one SAGA_SIGNING_KEY; tenants acme and globex
 * are active. saga-svc's commands carry the tenant of the event that started
 * the saga and are accepted by command-svc only when signed with the key
 * (cqrs/saga_sign.h): a forged signature gets 401, a signed command of a type
 * sagas do not send gets 403, and neither changes anything. In admin-svc a
 * tenant's administrator lists and reads only its own tenant's sagas (another
 * tenant's is 404), a platform administrator all of them, and the keyset
 * pages of the list walk every saga once. */
#include "testkit.h"
#include "tk_auth.h"

#include "cqrs/json.h"
#include "cqrs/saga_sign.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AWAIT_MS 30000
#define KEY "e2e-saga-signing-key-0123456789abcdef"

static tk_env_t env;
static tk_auth_t *auth;
static pid_t pids[3], saga, admin;

static void teardown(void) {
  if (admin > 0) tk_stop(admin, SIGTERM);
  admin = 0;
  if (saga > 0) tk_stop(saga, SIGTERM);
  saga = 0;
  tk_stop_all(pids);
  tk_auth_destroy(auth);
  auth = NULL;
}

TestSuite(sagas_auth, .fini = teardown, .timeout = 300);

static void start(void) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  tk_auth_put_tenant(&env, "acme", CQRS_TENANT_ACTIVE);
  tk_auth_put_tenant(&env, "globex", CQRS_TENANT_ACTIVE);
  const char *extra[TK_AUTH_ENV_MAX];
  const char *const more[] = {"SAGA_SIGNING_KEY=" KEY, NULL};
  tk_auth_env(auth, more, extra);
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, extra);
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, extra);
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, extra);
  saga = tk_start(&env, TK_SAGA, extra);
}

/* POSTs a command as tenant; asserts want; returns the aggregateId. */
static char *command(const char *tenant, int want, const char *json) {
  char *token = tk_auth_token(auth, tenant, "commands:write queries:read", 600);
  tk_response_t r;
  cr_assert(tk_auth_http("POST", env.command_port, "/v1/commands", token, NULL, json, &r));
  cr_assert_eq(r.status, want, "%s: %d %s", json, r.status, r.body);
  char *id = tk_json_string(r.body, "aggregateId");
  tk_response_cleanup(&r);
  free(token);
  return id;
}

/* Waits until tenant's GET /v1/orders/{id} says status with reason (NULL: null). */
static void await_order(const char *tenant, const char *id, const char *status, const char *reason) {
  char *token = tk_auth_token(auth, tenant, "queries:read", 600), path[256], *last = NULL;
  snprintf(path, sizeof path, "/v1/orders/%s", id);
  bool ok = false;
  for (int i = 0; i < AWAIT_MS / 50 && !ok; i++) {
    tk_response_t r;
    if (tk_auth_http("GET", env.query_port, path, token, NULL, NULL, &r) && r.status == 200) {
      char *s = tk_json_string(r.body, "status"), *why = tk_json_string(r.body, "cancellationReason");
      ok = s && strcmp(s, status) == 0 &&
           (reason ? why && strcmp(why, reason) == 0 : tk_json_is_null(r.body, "cancellationReason"));
      free(s);
      free(why);
      free(last);
      last = strdup(r.body);
    }
    tk_response_cleanup(&r);
    if (!ok) usleep(50 * 1000);
  }
  cr_assert(ok, "%s's order %s never became %s/%s (last: %s)", tenant, id, status, reason ? reason : "null",
            last ? last : "none");
  free(last);
  free(token);
}

/* Waits until tenant's history of order id holds version 2 and returns it
 * (free it). */
static char *await_history(const char *tenant, const char *id) {
  char *token = tk_auth_token(auth, tenant, "queries:read", 600), path[256], *body = NULL;
  snprintf(path, sizeof path, "/v1/orders/%s/history", id);
  for (int i = 0; i < AWAIT_MS / 50 && !body; i++) {
    tk_response_t r;
    if (tk_auth_http("GET", env.query_port, path, token, NULL, NULL, &r) && r.status == 200 &&
        strstr(r.body, "\"version\":2"))
      body = strdup(r.body);
    tk_response_cleanup(&r);
    if (!body) usleep(50 * 1000);
  }
  cr_assert_not_null(body, "%s's history of %s never showed version 2", tenant, id);
  free(token);
  return body;
}

/* The command-results record keyed key (waits for it). */
static char *await_result(const char *key) {
  char topic[128];
  for (int i = 0; i < AWAIT_MS / 100; i++) {
    size_t n = 0;
    tk_record_t *res = tk_kafka_read_all(&env, tk_topic(&env, "command-results", topic), &n);
    char *found = NULL;
    for (size_t j = 0; j < n && !found; j++)
      if (res[j].key && strcmp(res[j].key, key) == 0) found = strdup(res[j].value);
    tk_records_free(res, n);
    if (found) return found;
    usleep(100 * 1000);
  }
  cr_assert_fail("no result keyed %s within %d ms", key, AWAIT_MS);
  return NULL;
}

/* The tenants of the Cancelled transitions of order id in the log. */
static size_t cancels_of(const char *id, const char *tenant) {
  char topic[128];
  size_t n = 0, count = 0;
  tk_record_t *recs = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  for (size_t i = 0; i < n; i++) {
    if (!recs[i].ce_subject || strcmp(recs[i].ce_subject, id) != 0 || !recs[i].ce_type ||
        strcmp(recs[i].ce_type, "OrderStatusUpdated") != 0)
      continue;
    char *status = tk_json_string(recs[i].value, "status");
    count += status && strcmp(status, "Cancelled") == 0 && recs[i].ce_tenant && strcmp(recs[i].ce_tenant, tenant) == 0;
    free(status);
  }
  tk_records_free(recs, n);
  return count;
}

/* Waits until saga-svc's /metrics series reaches want. */
static void await_metric(const char *series, double want) {
  double v = 0;
  for (int i = 0; i < AWAIT_MS / 50 && v < want; i++) {
    tk_response_t r;
    tk_http("GET", env.saga_port, "/metrics", NULL, 0, &r);
    for (char *line = r.body; line && *line;) {
      char *nl = strchr(line, '\n');
      size_t n = strlen(series);
      if (strncmp(line, series, n) == 0 && line[n] == ' ') v = strtod(line + n + 1, NULL);
      line = nl ? nl + 1 : NULL;
    }
    tk_response_cleanup(&r);
    if (v < want) usleep(50 * 1000);
  }
  cr_assert_geq(v, want, "%s stayed at %g", series, v);
}

#define ORDER(user) "{\"commandType\":\"CreateOrder\",\"userId\":\"" user "\",\"totalAmount\":1," \
                    "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}]}"

Test(sagas_auth, a_saga_acts_in_the_tenant_of_its_event_with_a_signed_command) {
  start();
  /* the same user id exists in globex only: acme's order names no acme user */
  free(command("globex", 201, "{\"commandType\":\"CreateUser\",\"aggregateId\":\"u-twin\","
                              "\"email\":\"twin@example.com\",\"name\":\"Twin\"}"));
  char *acme = command("acme", 201, ORDER("u-twin")), *globex = command("globex", 201, ORDER("u-twin"));
  await_order("acme", acme, "Cancelled", "USER_NOT_FOUND");
  cr_assert_eq(cancels_of(acme, "acme"), 1, "cancelled once, in acme");
  /* its history says who: the user who placed it, saga-svc (a service account) who cancelled it */
  char *history = await_history("acme", acme);
  cr_expect(strstr(history, "{\"type\":\"" CQRS_AUTHTYPE_APP_USER "\",\"id\":\"" TK_AUTH_SUBJECT "\"}") &&
                strstr(history, "{\"type\":\"" CQRS_AUTHTYPE_SERVICE_ACCOUNT "\",\"id\":\"saga-svc\"}"),
            "%s", history);
  free(history);
  /* globex's order names a globex user: its placement saga completes, nothing cancelled */
  await_metric("sagas{type=\"order_placement\",state=\"completed\"}", 1);
  await_metric("sagas{type=\"order_placement\",state=\"compensated\"}", 1);
  await_order("globex", globex, "Created", NULL);
  cr_assert_eq(cancels_of(globex, "globex"), 0);
  free(acme);
  free(globex);
}

Test(sagas_auth, a_forged_or_overreaching_saga_record_changes_nothing) {
  start();
  char *order = command("acme", 201, ORDER("u-nobody-yet"));
  char topic[128], key[160], value[512], sig[CQRS_SAGA_SIGNATURE_LEN];
  tk_topic(&env, "commands", topic);
  snprintf(key, sizeof key, "acme/%s", order);
  /* a signature made with another key */
  snprintf(value, sizeof value,
           "{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"forged-1\",\"aggregateId\":\"%s\","
           "\"status\":\"Delivered\"}",
           order);
  cr_assert(cqrs_saga_sign("not-the-key-not-the-key-not-the-key!", "acme", value, strlen(value), sig));
  const char *forged[] = {CQRS_SAGA_TENANT_HEADER, "acme", CQRS_SAGA_SIGNATURE_HEADER, sig, NULL};
  tk_kafka_produce(&env, topic, -1, key, value, forged);
  char *res = await_result("/forged-1");
  cr_expect_eq(tk_json_int(res, "status"), 401, "%s", res);
  free(res);
  /* the right key, but a command type sagas never send */
  snprintf(value, sizeof value,
           "{\"commandType\":\"CreateUser\",\"commandId\":\"over-1\",\"aggregateId\":\"u-over\","
           "\"email\":\"over@example.com\",\"name\":\"Over\"}");
  cr_assert(cqrs_saga_sign(KEY, "acme", value, strlen(value), sig));
  const char *over[] = {CQRS_SAGA_TENANT_HEADER, "acme", CQRS_SAGA_SIGNATURE_HEADER, sig, NULL};
  tk_kafka_produce(&env, topic, -1, "acme/u-over", value, over);
  res = await_result("acme/over-1");
  cr_expect_eq(tk_json_int(res, "status"), 403, "%s", res);
  free(res);
  /* a valid signature moved to another tenant */
  snprintf(value, sizeof value,
           "{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"moved-1\",\"aggregateId\":\"%s\","
           "\"status\":\"Processing\"}",
           order);
  cr_assert(cqrs_saga_sign(KEY, "acme", value, strlen(value), sig));
  const char *moved[] = {CQRS_SAGA_TENANT_HEADER, "globex", CQRS_SAGA_SIGNATURE_HEADER, sig, NULL};
  tk_kafka_produce(&env, topic, -1, key, value, moved);
  res = await_result("/moved-1");
  cr_expect_eq(tk_json_int(res, "status"), 401, "%s", res);
  free(res);
  /* a valid signature for a tenant that is not active (never created) */
  snprintf(value, sizeof value,
           "{\"commandType\":\"RecordUserOrder\",\"commandId\":\"inactive-1\",\"aggregateId\":\"u-1\","
           "\"orderId\":\"o-1\"}");
  cr_assert(cqrs_saga_sign(KEY, "initech", value, strlen(value), sig));
  const char *inactive[] = {CQRS_SAGA_TENANT_HEADER, "initech", CQRS_SAGA_SIGNATURE_HEADER, sig, NULL};
  tk_kafka_produce(&env, topic, -1, "initech/u-1", value, inactive);
  res = await_result("/inactive-1");
  cr_expect_eq(tk_json_int(res, "status"), 401, "%s", res);
  free(res);
  /* the order is cancelled by its saga only (no such user), never Delivered */
  await_order("acme", order, "Cancelled", "USER_NOT_FOUND");
  cr_assert_eq(cancels_of(order, "acme"), 1);
  /* neither the key nor a credential reached a log; the refusal did */
  char path[512];
  tk_auth_remember(auth, KEY);
  tk_auth_assert_log_clean(auth, tk_log_path(&env, TK_COMMAND, path), "a saga signature that does not verify");
  tk_auth_assert_log_clean(auth, tk_log_path(&env, TK_SAGA, path), NULL);
  free(order);
}

/* ---- inspection by tenant (admin-svc) ---- */

#define SAGAS_MAX 64

/* The sagas a credential sees, walked page by page with limit per page. */
typedef struct {
  char id[SAGAS_MAX][80], tenant[SAGAS_MAX][32], key[SAGAS_MAX][80];
  size_t n;
  int pages;
} seen_t;

/* GET /v1/admin/sagas?limit=<limit>[&cursor=...] from the first page to the
 * last as credential into out: fails the test on a repeated saga, a page
 * beyond limit, or a page out of sagaId order. */
static void walk(const char *credential, int limit, seen_t *out) {
  memset(out, 0, sizeof *out);
  char *cursor = NULL;
  do {
    char path[256];
    snprintf(path, sizeof path, "/v1/admin/sagas?limit=%d%s%s", limit, cursor ? "&cursor=" : "", cursor ? cursor : "");
    tk_response_t r;
    cr_assert(tk_auth_http("GET", env.admin_port, path, credential, NULL, NULL, &r));
    cr_assert_eq(r.status, 200, "%s: %d %s", path, r.status, r.body);
    bson_t *doc = cqrs_json_parse(r.body, strlen(r.body), NULL);
    cr_assert_not_null(doc, "%s", r.body);
    bson_iter_t it, items;
    cr_assert(bson_iter_init_find(&it, doc, "items") && bson_iter_recurse(&it, &items), "%s", r.body);
    int on_page = 0;
    while (bson_iter_next(&items)) {
      bson_t item;
      uint32_t len;
      const uint8_t *data;
      bson_iter_document(&items, &len, &data);
      cr_assert(bson_init_static(&item, data, len));
      const char *id = NULL, *tenant = NULL, *key = NULL;
      cr_assert(cqrs_json_get_string(&item, "sagaId", NULL, true, 79, &id, NULL) &&
                    cqrs_json_get_string(&item, "tenant", NULL, true, 31, &tenant, NULL) &&
                    cqrs_json_get_string(&item, "key", NULL, true, 79, &key, NULL),
                "%s", r.body);
      for (size_t i = 0; i < out->n; i++) cr_assert_str_neq(out->id[i], id, "saga %s listed twice", id);
      cr_assert(out->n == 0 || strcmp(out->id[out->n - 1], id) < 0, "%s after %s", id, out->id[out->n - 1]);
      cr_assert_lt(out->n, SAGAS_MAX);
      snprintf(out->id[out->n], sizeof out->id[0], "%s", id);
      snprintf(out->tenant[out->n], sizeof out->tenant[0], "%s", tenant);
      snprintf(out->key[out->n], sizeof out->key[0], "%s", key);
      out->n++;
      on_page++;
    }
    cr_assert_leq(on_page, limit, "%s: %d items", path, on_page);
    free(cursor);
    cursor = NULL;
    if (bson_iter_init_find(&it, doc, "nextCursor") && BSON_ITER_HOLDS_UTF8(&it)) {
      cursor = strdup(bson_iter_utf8(&it, NULL));
      cr_assert_eq(on_page, limit, "a page with a next one is full: %s", r.body);
    }
    bson_destroy(doc);
    tk_response_cleanup(&r);
    out->pages++;
  } while (cursor);
}

static size_t of_tenant(const seen_t *s, const char *tenant) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) n += strcmp(s->tenant[i], tenant) == 0;
  return n;
}

static bool keyed(const seen_t *s, const char *key) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->key[i], key) == 0) return true;
  return false;
}

static int admin_get(const char *credential, const char *path, char **body) {
  tk_response_t r;
  cr_assert(tk_auth_http("GET", env.admin_port, path, credential, NULL, NULL, &r));
  int status = r.status;
  if (body) *body = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  return status;
}

#define ACME_ORDERS 4
#define GLOBEX_ORDERS 2

Test(sagas_auth, a_tenant_administrator_sees_only_its_own_sagas_and_pages_walk_every_one_once) {
  start();
  const char *extra[TK_AUTH_ENV_MAX];
  admin = tk_start(&env, TK_ADMIN, tk_auth_env(auth, NULL, extra));
  char *acme[ACME_ORDERS], *globex[GLOBEX_ORDERS];
  for (int i = 0; i < ACME_ORDERS; i++) acme[i] = command("acme", 201, ORDER("u-nobody"));
  for (int i = 0; i < GLOBEX_ORDERS; i++) globex[i] = command("globex", 201, ORDER("u-nobody"));
  for (int i = 0; i < ACME_ORDERS; i++) await_order("acme", acme[i], "Cancelled", "USER_NOT_FOUND");
  for (int i = 0; i < GLOBEX_ORDERS; i++) await_order("globex", globex[i], "Cancelled", "USER_NOT_FOUND");

  /* the platform administrator sees every saga of both tenants: each order
   * started a placement and a deadline saga */
  char *platform = tk_auth_token(auth, NULL, "platform:admin", 600);
  seen_t all;
  size_t want = 2 * (ACME_ORDERS + GLOBEX_ORDERS);
  for (int i = 0; i < AWAIT_MS / 100; i++) {
    walk(platform, 500, &all);
    if (all.n >= want) break;
    usleep(100 * 1000); /* admin-svc follows saga-state */
  }
  cr_assert_eq(all.n, want, "the platform administrator sees %zu sagas, not %zu", all.n, want);
  cr_assert_eq(of_tenant(&all, "acme"), 2 * ACME_ORDERS);
  cr_assert_eq(of_tenant(&all, "globex"), 2 * GLOBEX_ORDERS);
  /* the same walked in pages of 5: every saga once, none skipped */
  seen_t paged;
  walk(platform, 5, &paged);
  cr_assert_eq(paged.n, all.n);
  cr_assert_geq(paged.pages, 3);
  for (size_t i = 0; i < all.n; i++) cr_assert_str_eq(paged.id[i], all.id[i], "page walk differs at %zu", i);

  /* acme's administrator, in pages of 3: acme's sagas, all of them, only them */
  char *acme_admin = tk_auth_token(auth, "acme", "admin", 600);
  seen_t mine;
  walk(acme_admin, 3, &mine);
  cr_assert_eq(mine.n, 2 * ACME_ORDERS, "acme's administrator sees %zu sagas", mine.n);
  cr_assert_eq(of_tenant(&mine, "acme"), mine.n, "acme's administrator sees another tenant's saga");
  cr_assert_geq(mine.pages, 3);
  for (int i = 0; i < ACME_ORDERS; i++) cr_assert(keyed(&mine, acme[i]), "acme's order %s has no saga listed", acme[i]);
  /* globex's sagas are not there for acme, as if they did not exist */
  char path[256], *body;
  for (size_t i = 0; i < all.n; i++) {
    snprintf(path, sizeof path, "/v1/admin/sagas/%s", all.id[i]);
    bool own = strcmp(all.tenant[i], "acme") == 0;
    int status = admin_get(acme_admin, path, &body);
    cr_assert_eq(status, own ? 200 : 404, "acme's administrator: %s answered %d: %s", path, status, body);
    if (!own) cr_assert_null(strstr(body, all.key[i]), "a 404 named the saga's key: %s", body);
    free(body);
    cr_assert_eq(admin_get(platform, path, NULL), 200, "the platform administrator: %s", path);
  }
  snprintf(path, sizeof path, "/v1/admin/sagas?key=%s", globex[0]);
  cr_assert_eq(admin_get(acme_admin, path, &body), 200);
  cr_assert_str_eq(body, "{\"items\":[],\"nextCursor\":null}", "acme filtering by globex's order: %s", body);
  free(body);
  /* globex's administrator the other way round */
  char *globex_admin = tk_auth_token(auth, "globex", "admin", 600);
  walk(globex_admin, 3, &mine);
  cr_assert_eq(mine.n, 2 * GLOBEX_ORDERS);
  cr_assert_eq(of_tenant(&mine, "globex"), mine.n);
  /* a tenant credential without the admin scope */
  char *reader = tk_auth_token(auth, "acme", "queries:read commands:write", 600);
  cr_assert_eq(admin_get(reader, "/v1/admin/sagas", NULL), 403);
  cr_assert_eq(admin_get(NULL, "/v1/admin/sagas", NULL), 401);
  for (int i = 0; i < ACME_ORDERS; i++) free(acme[i]);
  for (int i = 0; i < GLOBEX_ORDERS; i++) free(globex[i]);
  free(platform), free(acme_admin), free(globex_admin), free(reader);
}
