/* End to end: command-svc with authentication on, against the real local
 * stack. Tokens are signed by the test with its own key (tools/cqrs-token);
 * tenants are made active by control records the test writes, as admin-svc
 * would. HTTP and Kafka ingress alike: the tenant comes from the credential,
 * the same aggregate id in two tenants is two aggregates, a bad credential
 * yields 401 and appends nothing, and no credential reaches the log. */
#include "testkit.h"
#include "tk_auth.h"
#include "token.h"

#include "cqrs/auth.h"
#include "cqrs/control.h"
#include "cqrs/util.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AWAIT_MS 30000

static tk_env_t env;
static pid_t command_pid;
static tk_auth_t *auth; /* remembers every credential the test sent, to prove none reached the log */
static char log_path[512];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A token for tenant with scope, signed by the test's key ("Bearer ..."
 * form, malloc'd). */
static char *bearer(const char *tenant, const char *scope) {
  char *jwt = tk_auth_token(auth, tenant, scope, 600);
  char *b;
  cr_assert_gt(asprintf(&b, "Bearer %s", jwt), 0);
  free(jwt);
  return b;
}

static void setup(void) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  snprintf(log_path, sizeof log_path, "%s/%scommand-svc.log", CQRS_TEST_LOG_DIR, env.prefix);
  /* Tenants known before the start: /readyz waits until they are read. */
  tk_auth_put_tenant(&env, "acme", CQRS_TENANT_ACTIVE);
  tk_auth_put_tenant(&env, "globex", CQRS_TENANT_ACTIVE);
  const char *extra[TK_AUTH_ENV_MAX];
  command_pid = tk_start(&env, TK_COMMAND, tk_auth_env(auth, NULL, extra));
}

static void teardown(void) {
  if (command_pid > 0) tk_stop(command_pid, SIGTERM);
  command_pid = 0;
  tk_auth_destroy(auth);
  auth = NULL;
}

TestSuite(command_auth, .init = setup, .fini = teardown, .timeout = 300);

/* POSTs json with extra header lines ("Name: value\r\n"; may be NULL). */
static tk_response_t post(const char *headers, const char *json) {
  tk_response_t r;
  tk_http_headers("POST", env.command_port, "/v1/commands", headers ? headers : "", json, strlen(json), &r);
  return r;
}

static char *auth_header(const char *bearer_value) {
  char *h;
  cr_assert_gt(asprintf(&h, "Authorization: %s\r\n", bearer_value), 0);
  return h;
}

/* The header block has the line "name: value" (name case-insensitively). */
static bool has_header(const tk_response_t *r, const char *name, const char *value) {
  char want[256];
  snprintf(want, sizeof want, "%s: %s\r\n", name, value);
  return r->headers && strcasestr(r->headers, want) != NULL;
}

/* The events caused by command_id (ce_causationid); *n gets how many. The
 * first one's key and ce_tenant go to key and tenant (malloc'd) when given. */
static size_t events_of(const char *command_id, char **key, char **tenant) {
  char topic[128];
  size_t n, found = 0;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  for (size_t i = 0; i < n; i++) {
    if (!ev[i].ce_causationid || strcmp(ev[i].ce_causationid, command_id) != 0) continue;
    if (found++ == 0) {
      if (key) *key = ev[i].key ? strdup(ev[i].key) : NULL;
      if (tenant) *tenant = ev[i].ce_tenant ? strdup(ev[i].ce_tenant) : NULL;
    }
  }
  tk_records_free(ev, n);
  return found;
}

/* Who the first event of command command_id says caused it: "<ce_authtype>
 * <ce_authid>" (malloc'd). Fails the test when it has no event. */
static char *actor_of(const char *command_id) {
  char topic[128], *actor = NULL;
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  for (size_t i = 0; i < n && !actor; i++) {
    if (!ev[i].ce_causationid || strcmp(ev[i].ce_causationid, command_id) != 0) continue;
    const char *type = "(none)", *id = "(none)";
    for (size_t h = 0; h < ev[i].n_headers; h++) {
      if (strcmp(ev[i].headers[h].name, CQRS_EVENT_AUTHTYPE_HEADER) == 0) type = ev[i].headers[h].value;
      if (strcmp(ev[i].headers[h].name, CQRS_EVENT_AUTHID_HEADER) == 0) id = ev[i].headers[h].value;
    }
    cr_assert_gt(asprintf(&actor, "%s %s", type, id), 0);
  }
  tk_records_free(ev, n);
  cr_assert_not_null(actor, "command %s has no event", command_id);
  return actor;
}

/* Waits for the command-results record keyed key; returns its value. */
static char *await_result(const char *key) {
  char *value = tk_await_result(&env, key, AWAIT_MS, NULL);
  cr_assert_not_null(value, "no result keyed %s on command-results within %d ms", key, AWAIT_MS);
  return value;
}

/* No credential the test used appears in the service's log, which did log
 * the refusals (so it is the right file and the level shows them). */
static void assert_log_has_no_credential(const char *refusal) { tk_auth_assert_log_clean(auth, log_path, refusal); }

#define CREATE_USER(cid, agg)                                                                                 \
  "{\"commandType\":\"CreateUser\",\"commandId\":\"" cid "\",\"aggregateId\":\"" agg "\","                   \
  "\"email\":\"ann@example.com\",\"name\":\"Ann\"}"

Test(command_auth, http_needs_a_valid_credential_with_the_scope) {
  const char *json = CREATE_USER("h-1", "u-h1");
  tk_response_t r = post(NULL, json);
  cr_expect_eq(r.status, 401, "no credential: %d %s", r.status, r.body);
  cr_expect(has_header(&r, "WWW-Authenticate", "Bearer"), "%s", r.headers);
  tk_response_cleanup(&r);

  /* a token signed by a key the service does not trust */
  char *other_key = NULL, *other_jwks = NULL;
  cqrs_error_t err = {0};
  cr_assert(cqrs_token_keygen("ES256", &other_key, &other_jwks, &err), "%s", err.message);
  char *claims = cqrs_token_claims(TK_AUTH_ISSUER, TK_AUTH_AUDIENCE, "mallory", "acme", "commands:write",
                                   (int64_t)time(NULL), 600);
  char *forged = cqrs_token_sign(other_key, claims, &err);
  cr_assert_not_null(forged);
  tk_auth_remember(auth, forged);
  char bad[4096];
  snprintf(bad, sizeof bad, "Authorization: Bearer %s\r\n", forged);
  r = post(bad, json);
  cr_expect_eq(r.status, 401, "forged token: %d %s", r.status, r.body);
  cr_expect(has_header(&r, "WWW-Authenticate", "Bearer error=\"invalid_token\""), "%s", r.headers);
  cr_expect(!r.body || !strstr(r.body, forged), "the token is echoed");
  tk_response_cleanup(&r);
  free(claims), free(other_key), free(other_jwks), free(forged);

  char *reader = bearer("acme", "queries:read"), *h = auth_header(reader);
  r = post(h, json);
  cr_expect_eq(r.status, 403, "queries:read only: %d %s", r.status, r.body);
  tk_response_cleanup(&r);
  free(reader), free(h);

  char *writer = bearer("acme", "commands:write");
  h = auth_header(writer);
  char *h_other;
  cr_assert_gt(asprintf(&h_other, "%sX-Tenant-Id: globex\r\n", h), 0);
  r = post(h_other, json);
  cr_expect_eq(r.status, 403, "X-Tenant-Id naming another tenant: %d %s", r.status, r.body);
  tk_response_cleanup(&r);
  free(h_other);

  r = post(h, "{\"commandType\":\"CreateUser\",\"commandId\":\"h-t\",\"aggregateId\":\"u-ht\",\"tenantId\":\"globex\","
              "\"email\":\"ann@example.com\",\"name\":\"Ann\"}");
  cr_expect_eq(r.status, 403, "a tenantId member naming another tenant: %d %s", r.status, r.body);
  tk_response_cleanup(&r);

  cr_expect_eq(events_of("h-1", NULL, NULL), 0, "a refused command appended");
  cr_expect_eq(events_of("h-t", NULL, NULL), 0, "a refused command appended");

  r = post(h, json);
  cr_assert_eq(r.status, 201, "valid: %d %s", r.status, r.body);
  char *agg = tk_json_string(r.body, "aggregateId");
  cr_expect_str_eq(agg, "u-h1", "answers carry the plain aggregateId");
  free(agg);
  tk_response_cleanup(&r);
  char *key = NULL, *tenant = NULL;
  cr_expect_eq(events_of("h-1", &key, &tenant), 1);
  cr_expect_str_eq(tenant, "acme", "ce_tenant");
  cr_expect_str_eq(key, "acme/u-h1", "the event's key is the aggregate key");
  free(key), free(tenant);
  char *result = await_result("acme/h-1");
  cr_expect_eq(tk_json_int(result, "status"), 201, "%s", result);
  free(result);
  free(writer), free(h);

  assert_log_has_no_credential("authentication failed");
}

Test(command_auth, the_same_aggregate_id_in_two_tenants_is_two_aggregates) {
  const char *tenants[] = {"acme", "globex"};
  for (int i = 0; i < 2; i++) {
    char *b = bearer(tenants[i], "commands:write queries:read"), *h = auth_header(b);
    /* the same commandId too: idempotency is per tenant */
    tk_response_t r = post(h, CREATE_USER("twin-1", "u-twin"));
    cr_expect_eq(r.status, 201, "tenant %s: %d %s", tenants[i], r.status, r.body);
    cr_expect_eq(tk_json_int(r.body, "version"), 1, "tenant %s: %s", tenants[i], r.body);
    tk_response_cleanup(&r);
    free(b), free(h);
  }
  char topic[128];
  size_t n, seen[2] = {0};
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  for (size_t i = 0; i < n; i++) {
    if (!ev[i].ce_subject || strcmp(ev[i].ce_subject, "u-twin") != 0) continue;
    cr_assert_not_null(ev[i].ce_tenant, "an event without ce_tenant");
    for (int t = 0; t < 2; t++) seen[t] += strcmp(ev[i].ce_tenant, tenants[t]) == 0;
    cr_expect_eq(ev[i].version, 1);
    char want[64];
    snprintf(want, sizeof want, "%s/u-twin", ev[i].ce_tenant);
    cr_expect_str_eq(ev[i].key, want);
  }
  tk_records_free(ev, n);
  cr_expect(seen[0] == 1 && seen[1] == 1, "one UserCreated per tenant, found %zu and %zu", seen[0], seen[1]);
  char *a = await_result("acme/twin-1"), *b = await_result("globex/twin-1");
  cr_expect_eq(tk_json_int(a, "version"), 1);
  cr_expect_eq(tk_json_int(b, "version"), 1);
  char *ea = tk_json_string(a, "eventId"), *eb = tk_json_string(b, "eventId");
  cr_expect(ea && eb && strcmp(ea, eb) != 0, "two events: %s %s", a, b);
  free(ea), free(eb), free(a), free(b);
}

/* The partition of the aggregate key, as command-svc computes it. */
static int32_t owner_partition(const char *key) {
  return rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), 3, NULL, NULL);
}

/* On partition of topic name: for "commands", the records whose commandId
 * member is command_id; for "events", the events it caused (ce_causationid). */
static size_t records_on(const char *name, const char *command_id, int32_t partition) {
  char topic[128];
  bool events = strcmp(name, "events") == 0;
  size_t n, found = 0;
  tk_record_t *rs = tk_kafka_read_all(&env, tk_topic(&env, name, topic), &n);
  for (size_t i = 0; i < n; i++) {
    if (rs[i].partition != partition) continue;
    if (events) {
      found += rs[i].ce_causationid && strcmp(rs[i].ce_causationid, command_id) == 0;
    } else {
      char *cid = tk_json_string(rs[i].value, "commandId");
      found += cid && strcmp(cid, command_id) == 0;
      free(cid);
    }
  }
  tk_records_free(rs, n);
  return found;
}

Test(command_auth, kafka_records_are_authenticated_like_http) {
  char topic[128];
  tk_topic(&env, "commands", topic);
  char *writer = bearer("globex", "commands:write"), *reader = bearer("globex", "queries:read");

  /* valid: applied as the credential's tenant, whatever the key says */
  const char *h_ok[] = {"authorization", writer, NULL};
  tk_kafka_produce(&env, topic, -1, "k-1", CREATE_USER("k-1", "u-k1"), h_ok);
  char *res = await_result("globex/k-1");
  cr_expect_eq(tk_json_int(res, "status"), 201, "%s", res);
  free(res);
  char *key = NULL, *tenant = NULL;
  cr_expect_eq(events_of("k-1", &key, &tenant), 1);
  cr_expect_str_eq(tenant, "globex");
  cr_expect_str_eq(key, "globex/u-k1");
  free(key), free(tenant);

  /* on a partition that does not own the aggregate: forwarded with its
   * credential, then applied by the owner */
  int32_t wrong = (owner_partition("globex/u-k2") + 1) % 3;
  tk_kafka_produce(&env, topic, wrong, "globex/u-k2", CREATE_USER("k-2", "u-k2"), h_ok);
  res = await_result("globex/k-2");
  cr_expect_eq(tk_json_int(res, "status"), 201, "forwarded: %s", res);
  free(res);
  cr_expect_eq(events_of("k-2", NULL, NULL), 1);
  /* where things landed: the record as sent on the wrong partition, its
   * forwarded copy on the aggregate's own, and the event on the aggregate's
   * partition of events (without forwarding, the wrong one would decide it) */
  int32_t own = owner_partition("globex/u-k2");
  cr_expect_eq(records_on("commands", "k-2", wrong), 1, "the record as produced, on partition %d", wrong);
  cr_expect_eq(records_on("commands", "k-2", own), 1, "no forwarded copy on the aggregate's partition %d", own);
  cr_expect_eq(records_on("events", "k-2", own), 1, "the event is not on the aggregate's partition %d", own);
  /* the owner verified the credential it kept: the events say whose it is */
  char *actor = actor_of("k-2");
  cr_expect_str_eq(actor, CQRS_AUTHTYPE_APP_USER " " TK_AUTH_SUBJECT, "the forwarded command's events");
  free(actor);

  /* none, a bad one, one without the scope: a result, nothing appended */
  tk_kafka_produce(&env, topic, -1, "globex/u-k3", CREATE_USER("k-3", "u-k3"), NULL);
  const char *h_bad[] = {"authorization", "Bearer not.a.token", NULL};
  tk_kafka_produce(&env, topic, -1, "globex/u-k4", CREATE_USER("k-4", "u-k4"), h_bad);
  const char *h_reader[] = {"authorization", reader, NULL};
  tk_kafka_produce(&env, topic, -1, "globex/u-k5", CREATE_USER("k-5", "u-k5"), h_reader);
  /* a good one after them: the loop went on */
  tk_kafka_produce(&env, topic, -1, "globex/u-k6", CREATE_USER("k-6", "u-k6"), h_ok);
  res = await_result("/k-3");
  cr_expect_eq(tk_json_int(res, "status"), 401, "no credential: %s", res);
  free(res);
  res = await_result("/k-4");
  cr_expect_eq(tk_json_int(res, "status"), 401, "bad credential: %s", res);
  free(res);
  res = await_result("globex/k-5");
  cr_expect_eq(tk_json_int(res, "status"), 403, "no scope: %s", res);
  free(res);
  res = await_result("globex/k-6");
  cr_expect_eq(tk_json_int(res, "status"), 201, "%s", res);
  free(res);
  cr_expect_eq(events_of("k-3", NULL, NULL), 0);
  cr_expect_eq(events_of("k-4", NULL, NULL), 0);
  cr_expect_eq(events_of("k-5", NULL, NULL), 0);
  cr_expect_eq(events_of("k-6", NULL, NULL), 1);
  free(writer), free(reader);

  assert_log_has_no_credential("command record refused");
}

Test(command_auth, an_api_key_works_on_both_ingresses_until_revoked) {
  cqrs_apikey_rec_t rec;
  char key[CQRS_API_KEY_LEN + 1];
  tk_auth_issue_apikey(auth, "acme", CQRS_SCOPE_COMMANDS_WRITE, &rec, key);
  char *b, *h;
  cr_assert_gt(asprintf(&b, "Bearer %s", key), 0);
  h = auth_header(b);

  /* the key reaches the registry within a moment: await its first 201 */
  tk_response_t r = post(h, CREATE_USER("ak-1", "u-ak1"));
  int64_t deadline = now_ms() + 5000;
  while (r.status == 401 && now_ms() < deadline) {
    tk_response_cleanup(&r);
    nap(50);
    r = post(h, CREATE_USER("ak-1", "u-ak1"));
  }
  cr_assert_eq(r.status, 201, "HTTP with an API key: %d %s", r.status, r.body);
  tk_response_cleanup(&r);
  char *tenant = NULL;
  cr_expect_eq(events_of("ak-1", NULL, &tenant), 1);
  cr_expect_str_eq(tenant, "acme");
  free(tenant);

  char topic[128];
  tk_topic(&env, "commands", topic);
  const char *hk[] = {"authorization", b, NULL};
  tk_kafka_produce(&env, topic, -1, "acme/u-ak2", CREATE_USER("ak-2", "u-ak2"), hk);
  char *res = await_result("acme/ak-2");
  cr_expect_eq(tk_json_int(res, "status"), 201, "Kafka with an API key: %s", res);
  free(res);
  /* the key's id says who, never the key */
  char *actor = actor_of("ak-2"), want[64];
  snprintf(want, sizeof want, CQRS_AUTHTYPE_API_KEY " apikey:%s", rec.key_id);
  cr_expect_str_eq(actor, want);
  cr_expect_null(strstr(actor, key + 5 + CQRS_KEY_ID_LEN + 1), "the key's secret is in the event");
  free(actor);

  /* revoked: a record the loop takes after that is refused, within 5 s */
  rec.revoked = true;
  cqrs_time_now_rfc3339(rec.revoked_at);
  tk_auth_put_apikey(&env, &rec);
  int status = 0;
  deadline = now_ms() + 5000;
  for (int i = 0; status != 401 && now_ms() < deadline; i++) {
    char cid[32], agg[32], json[512], results[128];
    snprintf(cid, sizeof cid, "ak-r%d", i);
    snprintf(agg, sizeof agg, "u-akr%d", i);
    snprintf(json, sizeof json,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"%s\",\"aggregateId\":\"%s\","
             "\"email\":\"ann@example.com\",\"name\":\"Ann\"}",
             cid, agg);
    tk_kafka_produce(&env, topic, -1, NULL, json, hk);
    /* 201 while the revocation is on its way; then 401 (keyed without a tenant) */
    char *done = NULL;
    int64_t wait_until = now_ms() + AWAIT_MS;
    while (!done && now_ms() < wait_until) {
      size_t n;
      tk_record_t *rs = tk_kafka_read_all(&env, tk_topic(&env, "command-results", results), &n);
      for (size_t j = 0; j < n && !done; j++) {
        if (!rs[j].key) continue;
        const char *slash = strchr(rs[j].key, '/');
        if (slash && strcmp(slash + 1, cid) == 0) done = strdup(rs[j].value);
      }
      tk_records_free(rs, n);
      if (!done) nap(50);
    }
    cr_assert_not_null(done, "no result for %s", cid);
    status = (int)tk_json_int(done, "status");
    free(done);
  }
  cr_expect_eq(status, 401, "the revoked key still works on the Kafka ingress after 5 s");
  r = post(h, CREATE_USER("ak-3", "u-ak3"));
  cr_expect_eq(r.status, 401, "HTTP with a revoked key: %d %s", r.status, r.body);
  tk_response_cleanup(&r);
  free(b), free(h);
  assert_log_has_no_credential("command record refused");
}

/* The second tier of Kafka ingress: a tenant's own command topic
 * (<prefix>tenant.<tenant>.commands), created after command-svc started, is
 * found by its scan and read as that tenant's. A record there is decided as
 * acme's; one with globex's credential is refused 403 and appends nothing; one
 * on a partition that does not own its aggregate is forwarded on acme's topic;
 * and after a restart nothing there is decided twice (its offsets were
 * committed with the transactions). */
Test(command_auth, a_tenants_own_topic_is_read_as_that_tenants) {
  char own[128];
  tk_topic(&env, "tenant.acme.commands", own);
  tk_kafka_create_topic(&env, own, 3);
  char *acme = bearer("acme", "commands:write"), *globex = bearer("globex", "commands:write");
  const char *h_acme[] = {"authorization", acme, NULL}, *h_globex[] = {"authorization", globex, NULL};

  tk_kafka_produce(&env, own, -1, "acme/u-own1", CREATE_USER("own-1", "u-own1"), h_acme);
  char *res = await_result("acme/own-1"); /* AWAIT_MS: the topics are listed every 10 s */
  cr_expect_eq(tk_json_int(res, "status"), 201, "%s", res);
  free(res);
  char *key = NULL, *tenant = NULL;
  cr_expect_eq(events_of("own-1", &key, &tenant), 1);
  cr_expect_str_eq(tenant, "acme");
  cr_expect_str_eq(key, "acme/u-own1");
  free(key), free(tenant);

  tk_kafka_produce(&env, own, -1, "acme/u-own2", CREATE_USER("own-2", "u-own2"), h_globex);
  res = await_result("globex/own-2");
  cr_expect_eq(tk_json_int(res, "status"), 403, "globex's credential on acme's topic: %s", res);
  free(res);
  cr_expect_eq(events_of("own-2", NULL, NULL), 0);

  int32_t right = owner_partition("acme/u-own3"), wrong = (right + 1) % 3;
  tk_kafka_produce(&env, own, wrong, "acme/u-own3", CREATE_USER("own-3", "u-own3"), h_acme);
  res = await_result("acme/own-3");
  cr_expect_eq(tk_json_int(res, "status"), 201, "forwarded: %s", res);
  free(res);
  cr_expect_eq(records_on("tenant.acme.commands", "own-3", right), 1, "no forwarded copy on acme's partition %d",
               right);
  cr_expect_eq(records_on("commands", "own-3", right), 0, "forwarded to the shared topic");
  cr_expect_eq(records_on("events", "own-3", right), 1);

  tk_stop(command_pid, SIGTERM);
  const char *extra[TK_AUTH_ENV_MAX];
  command_pid = tk_start(&env, TK_COMMAND, tk_auth_env(auth, NULL, extra));
  tk_kafka_produce(&env, own, -1, "acme/u-own4", CREATE_USER("own-4", "u-own4"), h_acme);
  res = await_result("acme/own-4");
  cr_expect_eq(tk_json_int(res, "status"), 201, "after a restart: %s", res);
  free(res);
  size_t results = 0;
  free(tk_await_result(&env, "acme/own-1", AWAIT_MS, &results));
  cr_expect_eq(results, 1, "own-1 decided again after the restart: its offset was not committed");
  free(acme), free(globex);
}
