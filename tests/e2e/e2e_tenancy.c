/* End to end, issue 15 on the whole system: admin-svc, command-svc,
 * projector-svc and query-svc with authentication on, against the real local
 * stack. A platform administrator creates tenants t1 and t2 through admin-svc
 * and issues t1 an API key there; t2 uses a JWT. Then:
 *   - the same aggregate id in t1 and t2 is two aggregates, each tenant reads
 *     back its own document (read-your-writes) and lists only its own; a
 *     header naming the other tenant is 403;
 *   - a credential without the scope is 403 (a queries:read key sending a
 *     command, a tenant credential on admin-svc's tenant routes);
 *   - rate limits are per tenant: t1 flooding gets 429 + Retry-After while
 *     t2's command is accepted; on Kafka ingress too (429 results with
 *     retryAfter, nothing appended), where saga-svc's signed commands are
 *     never limited;
 *   - a revoked key is 401 on command-svc and query-svc within 5 s while the
 *     tenant's JWT goes on working;
 *   - a deleted tenant's JWT is 401 on every service within 5 s, its
 *     read-model database goes, and the other tenant goes on as before;
 *   - no service log holds a key or token the test used.
 * Each test starts the services it needs side by side, in its own topic
 * prefix and databases; tokens are signed by the test (tests/support/tk_auth.h). */
#include "testkit.h"
#include "tk_auth.h"

#include "cqrs/json.h"
#include "cqrs/result.h"
#include "cqrs/saga_sign.h"

#include <criterion/criterion.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SERVICES 4         /* tk_service_t: TK_COMMAND .. TK_ADMIN */
#define PROPAGATE_MS 5000  /* a control record reaches every service within this (issue 15) */
#define READ_WAIT_MS 10000 /* waitMs of a read-your-writes read (the API's maximum) */
#define DROP_MS 30000      /* a deleted tenant's database is dropped within this */
#define RATE 5             /* RATE_LIMIT_COMMANDS of the rate test: burst 2 * RATE */
#define KAFKA_FLOOD 40     /* records t1 sends straight to Kafka in the Kafka rate test */
#define OWN_FLOOD 30       /* records t1 sends to its own topic in the own-topic rate test */
#define SAGA_KEY "tenancy-test-saga-signing-key-0123456789"
#define ALL ((1u << TK_COMMAND) | (1u << TK_PROJECTOR) | (1u << TK_QUERY) | (1u << TK_ADMIN))
#define REFUSED "request refused: authentication failed" /* what a 401 logs (without the credential) */

static tk_env_t env;
static tk_auth_t *auth;
static pid_t pids[SERVICES];
static char *platform; /* a platform:admin JWT */
static mongoc_client_t *mongo;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL); /* between polls of an awaited condition */
}

static void setup(void) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  platform = tk_auth_token(auth, NULL, "platform:admin", 600);
  mongoc_init();
  cr_assert_not_null(mongo = mongoc_client_new(env.mongo_uri));
}

static void drop_db(const char *tenant) {
  char name[128];
  mongoc_database_t *db = mongoc_client_get_database(mongo, tk_tenant_db(&env, tenant, name));
  mongoc_database_drop(db, NULL);
  mongoc_database_destroy(db);
}

static void teardown(void) {
  for (int s = 0; s < SERVICES; s++)
    if (pids[s] > 0) tk_stop(pids[s], SIGTERM);
  memset(pids, 0, sizeof pids);
  if (mongo) {
    drop_db("t1");
    drop_db("t2");
    mongoc_client_destroy(mongo);
  }
  mongo = NULL;
  free(platform);
  platform = NULL;
  tk_auth_destroy(auth);
  auth = NULL;
}

TestSuite(tenancy, .init = setup, .fini = teardown, .timeout = 150);

/* Starts the services in mask (bits 1 << tk_service_t) side by side with
 * AUTH=on; command-svc also gets command_extra (NULL-terminated, may be NULL). */
static void start(unsigned mask, const char *const *command_extra) {
  char logs[SERVICES][512];
  for (int s = 0; s < SERVICES; s++) {
    if (!(mask & (1u << s))) continue;
    const char *extra[TK_AUTH_ENV_MAX];
    pids[s] = tk_spawn(&env, (tk_service_t)s, tk_auth_env(auth, s == TK_COMMAND ? command_extra : NULL, extra),
                       logs[s]);
  }
  for (int s = 0; s < SERVICES; s++)
    if (mask & (1u << s)) tk_await_ready(&env, (tk_service_t)s, pids[s], logs[s]);
}

/* One request to svc with credential (NULL: none) and extra header lines (may be NULL). */
static int call(tk_service_t svc, const char *method, const char *path, const char *credential, const char *headers,
                const char *body, tk_response_t *r) {
  tk_auth_http(method, tk_port(&env, svc), path, credential, headers, body, r);
  return r->status;
}

/* call, failing the test unless it answers want; returns the body (free it). */
static char *expect(int want, tk_service_t svc, const char *method, const char *path, const char *credential,
                    const char *headers, const char *body) {
  tk_response_t r;
  int status = call(svc, method, path, credential, headers, body, &r);
  cr_assert_eq(status, want, "%s %s %s%s%s answered %d, not %d: %s", tk_service_name(svc), method, path,
               body ? " " : "", body ? body : "", status, want, r.body ? r.body : "");
  char *out = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  return out;
}

/* Repeats the request until it answers want or the monotonic deadline passes;
 * true when it did, with r holding that answer (else the last one). */
static bool await_status(int want, int64_t deadline, tk_service_t svc, const char *method, const char *path,
                         const char *credential, const char *body, tk_response_t *r) {
  for (;;) {
    if (call(svc, method, path, credential, NULL, body, r) == want) return true;
    if (now_ms() > deadline) return false;
    tk_response_cleanup(r);
    nap(50);
  }
}

/* A CreateUser command (aggregateId NULL: one is generated). */
static char *create_user(const char *aggregate_id, const char *email, const char *name) {
  char *json;
  char id[128] = "";
  if (aggregate_id) snprintf(id, sizeof id, ",\"aggregateId\":\"%s\"", aggregate_id);
  cr_assert_gt(asprintf(&json, "{\"commandType\":\"CreateUser\"%s,\"email\":\"%s\",\"name\":\"%s\"}", id, email,
                        name),
               0);
  return json;
}

/* Sends a CreateUser as credential until command-svc knows the credential (a
 * new tenant or key reaches it within PROPAGATE_MS), and fails the test unless
 * it is then accepted as version 1. */
static void create_user_as(const char *credential, const char *aggregate_id, const char *email, const char *name) {
  char *json = create_user(aggregate_id, email, name);
  tk_response_t r;
  bool ok = await_status(201, now_ms() + PROPAGATE_MS, TK_COMMAND, "POST", "/v1/commands", credential, json, &r);
  cr_assert(ok, "CreateUser %s answered %d, not 201, for %d ms: %s", aggregate_id ? aggregate_id : "", r.status,
            PROPAGATE_MS, r.body ? r.body : "");
  cr_assert_eq(tk_json_int(r.body, "version"), 1, "%s", r.body);
  tk_response_cleanup(&r);
  free(json);
}

/* The read-your-writes read of user id as credential: waits for version 1. */
static char *read_user(const char *credential, const char *id) {
  char path[256];
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=%d", id, READ_WAIT_MS);
  tk_response_t r;
  call(TK_QUERY, "GET", path, credential, NULL, NULL, &r);
  cr_assert_eq(r.status, 200, "GET %s answered %d: %s", path, r.status, r.body ? r.body : "");
  cr_assert_null(strcasestr(r.headers, "X-Stale"), "GET %s answered stale", path);
  char *body = strdup(r.body);
  tk_response_cleanup(&r);
  return body;
}

/* The string at dotted path of json, or NULL when it is absent or not a string
 * (malloc'd). */
static char *string_at(const char *json, const char *path) {
  bson_t *doc = cqrs_json_parse(json, strlen(json), NULL);
  bson_iter_t it, found;
  char *v = doc && bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &found) &&
                    BSON_ITER_HOLDS_UTF8(&found)
                ? strdup(bson_iter_utf8(&found, NULL))
                : NULL;
  if (doc) bson_destroy(doc);
  return v;
}

/* Reads user id's history as credential (waiting for it: the history is a
 * read model of its own) and checks who its first event says caused it. */
static void expect_actor(const char *credential, const char *id, const char *type, const char *actor_id) {
  char path[256];
  snprintf(path, sizeof path, "/v1/users/%s/history", id);
  tk_response_t r;
  bool ok = await_status(200, now_ms() + READ_WAIT_MS, TK_QUERY, "GET", path, credential, NULL, &r);
  cr_assert(ok, "GET %s answered %d: %s", path, r.status, r.body ? r.body : "");
  char *t = string_at(r.body, "items.0.actor.type"), *i = string_at(r.body, "items.0.actor.id");
  cr_expect(t && strcmp(t, type) == 0 && i && strcmp(i, actor_id) == 0, "%s: the actor is not %s %s: %s", path, type,
            actor_id, r.body);
  free(t), free(i);
  tk_response_cleanup(&r);
}

static void expect_field(const char *json, const char *key, const char *want) {
  char *v = tk_json_string(json, key);
  cr_assert(v && strcmp(v, want) == 0, "%s: %s is %s, not %s", json, key, v ? v : "absent", want);
  free(v);
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static void create_tenant(const char *tenant) {
  char body[128];
  snprintf(body, sizeof body, "{\"tenantId\":\"%s\"}", tenant);
  char *b = expect(201, TK_ADMIN, "POST", "/v1/admin/tenants", platform, NULL, body);
  expect_field(b, "state", "active");
  free(b);
}

/* Issues tenant a key with scopes (a JSON array) through admin-svc; returns
 * the key (remembered for the log check) and its id in key_id (free both). */
static char *issue_key(const char *tenant, const char *scopes, char **key_id) {
  char path[128], body[256];
  snprintf(path, sizeof path, "/v1/admin/tenants/%s/keys", tenant);
  snprintf(body, sizeof body, "{\"scopes\":%s}", scopes);
  char *b = expect(201, TK_ADMIN, "POST", path, platform, NULL, body);
  char *key = tk_json_string(b, "key");
  *key_id = tk_json_string(b, "keyId");
  cr_assert(key && *key_id, "%s", b);
  tk_auth_remember(auth, key);
  free(b);
  return key;
}

/* No log of the services in mask holds a credential the test used; each of
 * must_have's (services in must_mask) logged a refusal. */
static void assert_logs_clean(unsigned mask, unsigned must_mask) {
  for (int s = 0; s < SERVICES; s++) {
    if (!(mask & (1u << s))) continue;
    char path[512];
    tk_auth_assert_log_clean(auth, tk_log_path(&env, (tk_service_t)s, path), must_mask & (1u << s) ? REFUSED : NULL);
  }
}

static bool database_exists(const char *tenant) {
  char db[128];
  tk_tenant_db(&env, tenant, db);
  bson_error_t e;
  /* A database exists while it holds a collection. Not listDatabases: the
   * store sizes every database for it, which on a store shared with many test
   * databases takes long enough to exhaust its connection pool. */
  mongoc_database_t *d = mongoc_client_get_database(mongo, db);
  char **names = mongoc_database_get_collection_names_with_opts(d, NULL, &e);
  mongoc_database_destroy(d);
  cr_assert_not_null(names, "listCollections: %s", e.message);
  bool found = names[0] != NULL;
  bson_strfreev(names);
  return found;
}

Test(tenancy, the_same_aggregate_id_in_two_tenants_and_who_may_do_what) {
  start(ALL, NULL);
  create_tenant("t1");
  create_tenant("t2");
  char *key1_id, *key1 = issue_key("t1", "[\"commands:write\",\"queries:read\"]", &key1_id);
  char *jwt2 = tk_auth_token(auth, "t2", "commands:write queries:read admin", 600);

  /* The same aggregate id in both, different data: two aggregates at version 1. */
  create_user_as(key1, "u-same", "twin@example.com", "of-t1");
  create_user_as(jwt2, "u-same", "twin@example.com", "of-t2");
  create_user_as(jwt2, "u-only-t2", "only@example.com", "of-t2");

  /* Each reads its own back, never the other's. */
  char *b = read_user(key1, "u-same");
  expect_field(b, "name", "of-t1");
  cr_assert_eq(count(b, "of-t2"), 0, "t1 read t2's document: %s", b);
  free(b);
  b = read_user(jwt2, "u-same");
  expect_field(b, "name", "of-t2");
  cr_assert_eq(count(b, "of-t1"), 0, "t2 read t1's document: %s", b);
  free(b);
  free(read_user(jwt2, "u-only-t2"));
  /* Each event says who caused it: the JWT's sub, the API key's id (never the key). */
  expect_actor(jwt2, "u-same", CQRS_AUTHTYPE_APP_USER, TK_AUTH_SUBJECT);
  char actor[64];
  snprintf(actor, sizeof actor, "apikey:%s", key1_id);
  expect_actor(key1, "u-same", CQRS_AUTHTYPE_API_KEY, actor);
  /* t2's documents are all in place (read above): t1's list and reads show none. */
  b = expect(200, TK_QUERY, "GET", "/v1/users?email=twin@example.com", key1, NULL, NULL);
  cr_assert_eq(count(b, "of-t1"), 1, "t1's list: %s", b);
  cr_assert_eq(count(b, "of-t2"), 0, "t1's list shows t2's document: %s", b);
  free(b);
  /* Another tenant's document is absent, exactly as if it did not exist. */
  b = expect(404, TK_QUERY, "GET", "/v1/users?email=only@example.com", key1, NULL, NULL);
  cr_assert_eq(count(b, "of-t2"), 0, "t1's read shows t2's document: %s", b);
  free(b);
  char *absent = expect(404, TK_QUERY, "GET", "/v1/users/u-nobody", key1, NULL, NULL);
  b = expect(404, TK_QUERY, "GET", "/v1/users/u-only-t2", key1, NULL, NULL);
  cr_assert_str_eq(b, absent, "t2's document does not look absent to t1");
  free(b), free(absent);
  b = expect(200, TK_QUERY, "GET", "/v1/users?email=twin@example.com", jwt2, NULL, NULL);
  cr_assert(count(b, "of-t2") == 1 && count(b, "of-t1") == 0, "t2's list: %s", b);
  free(b);

  /* A header naming the other tenant: 403, on both sides. */
  char *json = create_user("u-named", "named@example.com", "of-t1");
  free(expect(403, TK_COMMAND, "POST", "/v1/commands", key1, "X-Tenant-Id: t2\r\n", json));
  free(expect(403, TK_QUERY, "GET", "/v1/users/u-same", key1, "X-Tenant-Id: t2\r\n", NULL));
  free(expect(403, TK_QUERY, "GET", "/v1/users/u-same", jwt2, "X-Tenant-Id: t1\r\n", NULL));

  /* Scopes: a queries:read key sending a command is 403 (once command-svc knows it). */
  char *reader_id, *reader = issue_key("t1", "[\"queries:read\"]", &reader_id);
  tk_response_t r;
  bool known =
      await_status(403, now_ms() + PROPAGATE_MS, TK_COMMAND, "POST", "/v1/commands", reader, json, &r);
  cr_assert(known, "a queries:read key sending a command answered %d: %s", r.status, r.body ? r.body : "");
  cr_assert_not_null(strcasestr(r.headers, "insufficient_scope"), "%s", r.headers);
  tk_response_cleanup(&r);
  free(expect(200, TK_QUERY, "GET", "/v1/users/u-same", reader, NULL, NULL));
  /* A tenant credential, even with admin, is no platform administrator. */
  free(expect(403, TK_ADMIN, "GET", "/v1/admin/tenants", key1, NULL, NULL));
  free(expect(403, TK_ADMIN, "GET", "/v1/admin/tenants", jwt2, NULL, NULL));
  free(expect(403, TK_ADMIN, "POST", "/v1/admin/tenants", jwt2, NULL, "{\"tenantId\":\"t3\"}"));
  free(expect(403, TK_ADMIN, "GET", "/v1/admin/tenants/t2", jwt2, NULL, NULL));
  free(expect(403, TK_ADMIN, "DELETE", "/v1/admin/tenants/t1", jwt2, NULL, NULL));
  /* ...and a platform administrator sends no tenant's commands. */
  free(expect(403, TK_COMMAND, "POST", "/v1/commands", platform, NULL, json));

  free(expect(401, TK_COMMAND, "POST", "/v1/commands", "not.a.token", NULL, json));
  free(expect(401, TK_QUERY, "GET", "/v1/users/u-same", "not.a.token", NULL, NULL));
  assert_logs_clean(ALL, (1u << TK_COMMAND) | (1u << TK_QUERY));
  free(json);
  free(key1), free(key1_id), free(reader), free(reader_id), free(jwt2);
}

/* t1 sends commands far faster than RATE from a thread until told to stop. */
typedef struct {
  const char *credential;
  atomic_bool stop;
  atomic_int accepted, limited, other;
  int other_status;
  char retry_after[32]; /* the first 429's Retry-After ("" when it had none) */
  int64_t started, stopped;
} flood_t;

static void *flood_main(void *arg) {
  flood_t *f = arg;
  f->started = now_ms();
  for (int i = 0; !atomic_load(&f->stop) && now_ms() - f->started < 60000; i++) {
    char id[32];
    snprintf(id, sizeof id, "u-flood-%d", i);
    char *json = create_user(id, "flood@example.com", "of-t1");
    tk_response_t r;
    int status = call(TK_COMMAND, "POST", "/v1/commands", f->credential, NULL, json, &r);
    if (status == 201) {
      atomic_fetch_add(&f->accepted, 1);
    } else if (status == 429) {
      const char *h = r.headers ? strcasestr(r.headers, "\nRetry-After:") : NULL;
      if (atomic_load(&f->limited) == 0 && h) sscanf(h + 13, " %31[^\r\n]", f->retry_after);
      atomic_fetch_add(&f->limited, 1);
    } else {
      f->other_status = status;
      atomic_fetch_add(&f->other, 1);
    }
    tk_response_cleanup(&r);
    free(json);
    nap(20); /* 50 a second at most: ten times RATE */
  }
  f->stopped = now_ms();
  return NULL;
}

/* Waits (bounded: commands may be slow on a loaded machine) until the flood
 * has been refused more than n times. */
static bool await_limited(flood_t *f, int n) {
  int64_t deadline = now_ms() + 20000;
  while (atomic_load(&f->limited) <= n && now_ms() < deadline) nap(10);
  return atomic_load(&f->limited) > n;
}

/* The rate test's end: rate_limited_total counted t1 and never t2, and no
 * service log holds a credential. */
static void assert_limited_t1_only(void) {
  tk_response_t m;
  cr_assert(tk_http("GET", env.command_port, "/metrics", NULL, 0, &m) && m.status == 200);
  cr_assert_not_null(strstr(m.body, "rate_limited_total{tenant=\"t1\"}"), "no rate_limited_total for t1");
  cr_assert_null(strstr(m.body, "rate_limited_total{tenant=\"t2\"}"), "t2 was counted as limited");
  tk_response_cleanup(&m);
  assert_logs_clean((1u << TK_ADMIN) | (1u << TK_COMMAND), 0);
}

Test(tenancy, one_tenant_flooding_commands_is_limited_alone) {
  char rate[64];
  snprintf(rate, sizeof rate, "RATE_LIMIT_COMMANDS=%d", RATE);
  start((1u << TK_ADMIN) | (1u << TK_COMMAND), (const char *const[]){rate, NULL});
  create_tenant("t1");
  create_tenant("t2");
  char *jwt1 = tk_auth_token(auth, "t1", "commands:write", 600);
  char *jwt2 = tk_auth_token(auth, "t2", "commands:write", 600);
  create_user_as(jwt1, "u-first-1", "first@example.com", "of-t1");
  create_user_as(jwt2, "u-first-2", "first@example.com", "of-t2");

  flood_t f = {.credential = jwt1};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, flood_main, &f), 0);
  bool limited = await_limited(&f, 0);
  /* While t1 is being refused, t2's command goes through... */
  int before = atomic_load(&f.limited);
  char *json = create_user("u-meanwhile", "meanwhile@example.com", "of-t2");
  tk_response_t r = {0};
  int t2_status = limited ? call(TK_COMMAND, "POST", "/v1/commands", jwt2, NULL, json, &r) : 0;
  /* ...and t1 goes on being refused after it. */
  bool still = limited && await_limited(&f, before);
  atomic_store(&f.stop, true);
  pthread_join(th, NULL);
  cr_assert(limited, "t1 sent %d commands at up to 50/s with RATE_LIMIT_COMMANDS=%d and none got 429",
            atomic_load(&f.accepted), RATE);
  cr_assert_eq(t2_status, 201, "t2's command while t1 was limited answered %d: %s", t2_status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  cr_assert(still, "t1 was no longer refused after t2's command");
  cr_assert_eq(atomic_load(&f.other), 0, "t1's flood got %d answers neither 201 nor 429 (e.g. %d)",
               atomic_load(&f.other), f.other_status);

  /* Retry-After: whole seconds, at least 1. */
  char *end = NULL;
  long secs = strtol(f.retry_after, &end, 10);
  cr_assert(f.retry_after[0] && *end == '\0' && secs >= 1, "Retry-After is \"%s\"", f.retry_after);
  /* The bucket: a burst of 2 * RATE, then RATE a second (one more for rounding). */
  double seconds = (double)(f.stopped - f.started) / 1000.0;
  int accepted = atomic_load(&f.accepted);
  cr_assert_leq(accepted, 2 * RATE + RATE * seconds + 1, "t1 got %d commands through in %.1f s at %d/s", accepted,
                seconds, RATE);
  cr_assert_geq(accepted, RATE, "t1 got only %d commands through in %.1f s at %d/s", accepted, seconds, RATE);

  assert_limited_t1_only();
  free(json), free(jwt1), free(jwt2);
}

/* Kafka ingress is limited as HTTP is, in the command loop where both meet:
 * t1's records past its rate get 429 results with retryAfter and append
 * nothing, while t2's record is decided; saga-svc's signed commands of t1
 * are not limited (a saga cannot wait and retry). */
Test(tenancy, kafka_ingress_is_limited_per_tenant_and_saga_commands_are_not) {
  char rate[64];
  snprintf(rate, sizeof rate, "RATE_LIMIT_COMMANDS=%d", RATE);
  start((1u << TK_ADMIN) | (1u << TK_COMMAND), (const char *const[]){rate, "SAGA_SIGNING_KEY=" SAGA_KEY, NULL});
  create_tenant("t1");
  create_tenant("t2");
  char *jwt1 = tk_auth_token(auth, "t1", "commands:write", 600);
  char *jwt2 = tk_auth_token(auth, "t2", "commands:write", 600);
  create_user_as(jwt1, "u-k-first-1", "first@example.com", "of-t1"); /* command-svc knows both tenants */
  create_user_as(jwt2, "u-k-first-2", "first@example.com", "of-t2");
  char topic[128], *b1, *b2;
  tk_topic(&env, "commands", topic);
  cr_assert_gt(asprintf(&b1, "Bearer %s", jwt1), 0);
  cr_assert_gt(asprintf(&b2, "Bearer %s", jwt2), 0);
  const char *h1[] = {"authorization", b1, NULL}, *h2[] = {"authorization", b2, NULL};

  int64_t started = now_ms();
  for (int i = 0; i < KAFKA_FLOOD; i++) {
    char id[32], key[64], json[256];
    snprintf(id, sizeof id, "u-kflood-%d", i);
    snprintf(key, sizeof key, "t1/%s", id);
    snprintf(json, sizeof json,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"kf-%d\",\"aggregateId\":\"%s\","
             "\"email\":\"kflood-%d@example.com\",\"name\":\"of-t1\"}",
             i, id, i);
    tk_kafka_produce(&env, topic, -1, key, json, h1);
  }
  tk_kafka_produce(&env, topic, -1, "t2/u-k-meanwhile",
                   "{\"commandType\":\"CreateUser\",\"commandId\":\"k2-1\",\"aggregateId\":\"u-k-meanwhile\","
                   "\"email\":\"meanwhile@example.com\",\"name\":\"of-t2\"}",
                   h2);
  /* saga-svc's commands of t1 while t1 is over its rate: a status for orders
   * that do not exist, so each is decided (404), never refused 429 */
  for (int i = 0; i < 3; i++) {
    char json[256], key[64], sig[CQRS_SAGA_SIGNATURE_LEN];
    snprintf(key, sizeof key, "t1/o-none-%d", i);
    snprintf(json, sizeof json,
             "{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"ks-%d\",\"aggregateId\":\"o-none-%d\","
             "\"status\":\"Cancelled\"}",
             i, i);
    cr_assert(cqrs_saga_sign(SAGA_KEY, "t1", json, strlen(json), sig));
    const char *hs[] = {CQRS_SAGA_TENANT_HEADER, "t1", CQRS_SAGA_SIGNATURE_HEADER, sig, NULL};
    tk_kafka_produce(&env, topic, -1, key, json, hs);
  }

  int accepted = 0, limited = 0;
  char refused[KAFKA_FLOOD][16];
  for (int i = 0; i < KAFKA_FLOOD; i++) {
    char key[64];
    snprintf(key, sizeof key, "t1/kf-%d", i);
    char *res = tk_await_result(&env, key, 30000, NULL);
    cr_assert_not_null(res, "no result for %s", key);
    int status = (int)tk_json_int(res, "status");
    if (status == 201) {
      accepted++;
    } else {
      cr_assert_eq(status, 429, "t1's record %d: %s", i, res);
      cr_assert_geq(cqrs_result_retry_after(res, strlen(res)), 1, "a 429 result without retryAfter: %s", res);
      snprintf(refused[limited++], sizeof refused[0], "kf-%d", i);
    }
    free(res);
  }
  double seconds = (double)(now_ms() - started) / 1000.0;
  char *res = tk_await_result(&env, "t2/k2-1", 30000, NULL);
  cr_assert_not_null(res, "no result for t2's record");
  cr_expect_eq(tk_json_int(res, "status"), 201, "t2's record while t1 was limited: %s", res);
  free(res);
  for (int i = 0; i < 3; i++) {
    char key[64];
    snprintf(key, sizeof key, "t1/ks-%d", i);
    res = tk_await_result(&env, key, 30000, NULL);
    cr_assert_not_null(res, "no result for the saga's record %d", i);
    cr_expect_eq(tk_json_int(res, "status"), 404, "a saga command of t1 over its rate: %s", res);
    free(res);
  }
  cr_assert_gt(limited, 0, "t1 sent %d records to Kafka at once with RATE_LIMIT_COMMANDS=%d and none got 429",
               KAFKA_FLOOD, RATE);
  /* the bucket: the burst (less the HTTP command before), then RATE a second */
  cr_assert_leq(accepted, 2 * RATE + RATE * seconds + 1, "t1 got %d records through in %.1f s at %d/s", accepted,
                seconds, RATE);

  /* a refused record appended nothing */
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  int appended = 0, appended_refused = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ev[i].ce_causationid || strncmp(ev[i].ce_causationid, "kf-", 3) != 0) continue;
    appended++;
    for (int j = 0; j < limited; j++) appended_refused += strcmp(ev[i].ce_causationid, refused[j]) == 0;
  }
  tk_records_free(ev, n);
  cr_expect_eq(appended_refused, 0, "%d events of records answered 429", appended_refused);
  cr_expect_eq(appended, accepted, "%d events for %d accepted records", appended, accepted);

  assert_limited_t1_only();
  free(b1), free(b2), free(jwt1), free(jwt2);
}

/* A tenant's own command topic is a queue of its own (command-svc's
 * tenant_topics.h): t1 over its rate there is not refused, its records wait
 * in its topic and are decided at its rate, every one 201, none 429. */
Test(tenancy, a_tenants_own_topic_waits_at_its_rate_instead_of_refusing) {
  char own[128], rate[64];
  tk_topic(&env, "tenant.t1.commands", own);
  tk_kafka_create_topic(&env, own, 3); /* TOPIC_PARTITIONS of the tests: found when command-svc starts */
  snprintf(rate, sizeof rate, "RATE_LIMIT_COMMANDS=%d", RATE);
  start((1u << TK_ADMIN) | (1u << TK_COMMAND), (const char *const[]){rate, NULL});
  create_tenant("t1");
  char *jwt1 = tk_auth_token(auth, "t1", "commands:write", 600), *b1;
  cr_assert_gt(asprintf(&b1, "Bearer %s", jwt1), 0);
  const char *h1[] = {"authorization", b1, NULL};

  int64_t started = now_ms();
  for (int i = 0; i < OWN_FLOOD; i++) {
    char id[32], key[64], json[256];
    snprintf(id, sizeof id, "u-own-%d", i);
    snprintf(key, sizeof key, "t1/%s", id);
    snprintf(json, sizeof json,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"own-%d\",\"aggregateId\":\"%s\","
             "\"email\":\"own-%d@example.com\",\"name\":\"of-t1\"}",
             i, id, i);
    tk_kafka_produce(&env, own, -1, key, json, h1);
  }
  for (int i = 0; i < OWN_FLOOD; i++) {
    char key[64];
    snprintf(key, sizeof key, "t1/own-%d", i);
    char *res = tk_await_result(&env, key, 60000, NULL);
    cr_assert_not_null(res, "no result for %s", key);
    cr_assert_eq(tk_json_int(res, "status"), 201, "t1's record %d on its own topic: %s", i, res);
    free(res);
  }
  double seconds = (double)(now_ms() - started) / 1000.0;
  /* at its rate all the same: the burst (less the tenant's creation, which
   * took none: platform), then RATE a second */
  cr_expect_leq(OWN_FLOOD, 2 * RATE + RATE * seconds + 1, "%d records decided in %.1f s at %d/s", OWN_FLOOD,
                seconds, RATE);
  cr_expect_gt(tk_metric(env.command_port, "tenant_topic_waits_total{tenant=\"t1\"}"), 0,
               "t1's records never waited: was it over its rate?");
  cr_expect_leq(tk_metric(env.command_port, "rate_limited_total{tenant=\"t1\"}"), 0, "t1 was refused"); /* -1: none */
  free(b1), free(jwt1);
}

/* Awaits a 401 with error="invalid_token" from svc for credential, counting
 * from since: fails the test unless it comes within PROPAGATE_MS. */
static void await_refused(int64_t since, tk_service_t svc, const char *method, const char *path,
                          const char *credential, const char *body, const char *what) {
  tk_response_t r;
  bool ok = await_status(401, since + PROPAGATE_MS, svc, method, path, credential, body, &r);
  int64_t took = now_ms() - since;
  cr_assert(ok, "%s: %s %s still answered %d after %lld ms: %s", what, tk_service_name(svc), path, r.status,
            (long long)took, r.body ? r.body : "");
  cr_assert(took <= PROPAGATE_MS, "%s: %s took %lld ms", what, tk_service_name(svc), (long long)took);
  cr_assert_not_null(strstr(r.headers, "error=\"invalid_token\""), "%s: %s", what, r.headers);
  tk_response_cleanup(&r);
}

Test(tenancy, a_revoked_key_is_refused_everywhere_within_5_s) {
  start((1u << TK_ADMIN) | (1u << TK_COMMAND) | (1u << TK_QUERY), NULL);
  create_tenant("t1");
  char *key_id, *key = issue_key("t1", "[\"commands:write\",\"queries:read\"]", &key_id);
  char *jwt1 = tk_auth_token(auth, "t1", "commands:write queries:read", 600);
  create_user_as(key, "u-k1", "k1@example.com", "of-t1");
  /* query-svc knows the key too (no projector here: the user is not there yet). */
  tk_response_t r;
  cr_assert(await_status(404, now_ms() + PROPAGATE_MS, TK_QUERY, "GET", "/v1/users/u-k1", key, NULL, &r),
            "query-svc answered the key %d", r.status);
  tk_response_cleanup(&r);

  char path[128];
  snprintf(path, sizeof path, "/v1/admin/tenants/t1/keys/%s", key_id);
  char *b = expect(200, TK_ADMIN, "DELETE", path, platform, NULL, NULL);
  int64_t revoked = now_ms();
  cr_assert_not_null(strstr(b, "\"revoked\":true"), "%s", b);
  free(b);
  /* A command per try without an aggregateId: a new user each time it is still taken. */
  char *json = create_user(NULL, "k2@example.com", "of-t1");
  await_refused(revoked, TK_COMMAND, "POST", "/v1/commands", key, json, "a revoked key");
  await_refused(revoked, TK_QUERY, "GET", "/v1/users/u-k1", key, NULL, "a revoked key");

  /* The tenant's JWT works on. */
  create_user_as(jwt1, "u-k3", "k3@example.com", "of-t1");
  free(expect(404, TK_QUERY, "GET", "/v1/users/u-k3", jwt1, NULL, NULL));
  assert_logs_clean((1u << TK_ADMIN) | (1u << TK_COMMAND) | (1u << TK_QUERY), (1u << TK_COMMAND) | (1u << TK_QUERY));
  free(json), free(key), free(key_id), free(jwt1);
}

Test(tenancy, a_deleted_tenant_is_refused_everywhere_and_its_read_models_go) {
  start(ALL, NULL);
  create_tenant("t1");
  create_tenant("t2");
  char *jwt1 = tk_auth_token(auth, "t1", "commands:write queries:read", 600);
  char *jwt2 = tk_auth_token(auth, "t2", "commands:write queries:read admin", 600);
  create_user_as(jwt1, "u-d", "d@example.com", "of-t1");
  create_user_as(jwt2, "u-d", "d@example.com", "of-t2");
  free(read_user(jwt1, "u-d"));
  free(read_user(jwt2, "u-d"));
  cr_assert(database_exists("t2"), "t2's read models are not in %s_t2", env.db);
  free(expect(200, TK_ADMIN, "GET", "/v1/admin/tenants/t2/keys", jwt2, NULL, NULL));

  char *b = expect(200, TK_ADMIN, "DELETE", "/v1/admin/tenants/t2", platform, NULL, NULL);
  int64_t deleted = now_ms();
  expect_field(b, "state", "deleted");
  free(b);
  char *json = create_user(NULL, "d2@example.com", "of-t2");
  await_refused(deleted, TK_COMMAND, "POST", "/v1/commands", jwt2, json, "a deleted tenant's JWT");
  await_refused(deleted, TK_QUERY, "GET", "/v1/users/u-d", jwt2, NULL, "a deleted tenant's JWT");
  await_refused(deleted, TK_ADMIN, "GET", "/v1/admin/tenants/t2/keys", jwt2, NULL, "a deleted tenant's JWT");

  /* Its database goes (projector-svc follows the control topic). */
  int64_t deadline = now_ms() + DROP_MS;
  bool gone;
  while (!(gone = !database_exists("t2")) && now_ms() < deadline) nap(100);
  cr_assert(gone, "%s_t2 is still there %d ms after t2's deletion", env.db, DROP_MS);

  /* t1 goes on: its document, its commands, its reads of new writes. */
  b = read_user(jwt1, "u-d");
  expect_field(b, "name", "of-t1");
  free(b);
  create_user_as(jwt1, "u-after", "after@example.com", "of-t1");
  free(read_user(jwt1, "u-after"));
  cr_assert(database_exists("t1"), "t1's read models went with t2's");
  assert_logs_clean(ALL, (1u << TK_COMMAND) | (1u << TK_QUERY) | (1u << TK_ADMIN));
  free(json), free(jwt1), free(jwt2);
}
