/* End to end: the schema registry in admin-svc (Confluent's REST API under
 * /v1/schemas) against the real broker, with authentication on: the
 * contract's schemas present after start, register / list / versions / ids /
 * lookup, compatibility per level incl. the transitive ones, 409 with
 * reasons, config per subject, who may read and write, two replicas racing
 * for one subject, a late record for a taken version losing (also after a
 * restart), persistence across a restart, and the official Confluent
 * Python client (tests/registry/venv.sh) reading it. */
#include "testkit.h"
#include "tk_auth.h"

#include "cqrs/event_schema.h"
#include "cqrs/json.h"
#include "cqrs/schemas.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SR "/v1/schemas"
#define SR_TYPE "Content-Type: application/vnd.schemaregistry.v1+json\r\n"

static tk_env_t env;
static pid_t admin;
static tk_auth_t *auth;
static char *platform, *reader, *writer_only;

static void start_admin(void) {
  const char *extra[TK_AUTH_ENV_MAX];
  admin = tk_start(&env, TK_ADMIN, tk_auth_env(auth, (const char *const[]){"TOPIC_REPLICATION=1", NULL}, extra));
}

static void setup(void) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  tk_auth_put_tenant(&env, "acme", CQRS_TENANT_ACTIVE); /* a tenant's token needs its tenant */
  start_admin();
  platform = tk_auth_token(auth, NULL, "platform:admin", 600);
  reader = tk_auth_token(auth, "acme", "queries:read", 600);
  writer_only = tk_auth_token(auth, "acme", "commands:write", 600);
}

static void teardown(void) {
  if (admin > 0) tk_stop(admin, SIGTERM);
  admin = 0;
  tk_auth_destroy(auth);
  auth = NULL;
  free(platform);
  free(reader);
  free(writer_only);
}

TestSuite(registry, .init = setup, .fini = teardown, .timeout = 300);

static int call_at(int port, const char *method, const char *path, const char *credential, const char *body,
                   tk_response_t *r) {
  tk_auth_http(method, port, path, credential, body ? SR_TYPE : NULL, body, r);
  return r->status;
}

/* A request to admin-svc that must answer want; the body (free it). */
static char *expect_at(int port, int want, const char *method, const char *path, const char *credential,
                       const char *body) {
  tk_response_t r;
  int status = call_at(port, method, path, credential, body, &r);
  cr_assert_eq(status, want, "%s %s answered %d, not %d: %s", method, path, status, want, r.body ? r.body : "");
  if (want < 300)
    cr_assert_not_null(strstr(r.headers, "application/vnd.schemaregistry.v1+json"), "content type: %s", r.headers);
  char *out = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  return out;
}

static char *expect(int want, const char *method, const char *path, const char *credential, const char *body) {
  return expect_at(env.admin_port, want, method, path, credential, body);
}

/* {"schemaType":"JSON","schema":"<schema, escaped>"}: a string to free. */
static char *body_of(const char *schema) {
  bson_string_t *b = bson_string_new("{\"schemaType\":\"JSON\",\"schema\":");
  cqrs_json_append_string(b, schema);
  bson_string_append_c(b, '}');
  return bson_string_free(b, false);
}

/* Registers schema under subject; the answer's id. */
static long register_ok(int port, const char *subject, const char *schema) {
  char path[256], *body = body_of(schema);
  snprintf(path, sizeof path, SR "/subjects/%s/versions", subject);
  char *b = expect_at(port, 200, "POST", path, platform, body);
  char *p = strstr(b, "\"id\":");
  cr_assert_not_null(p, "no id: %s", b);
  long id = strtol(p + 5, NULL, 10);
  cr_assert_gt(id, 0, "%s", b);
  free(b);
  bson_free(body);
  return id;
}

/* Closed object schemas over fields id (required) and, as named, note and extra. */
#define S_V1 "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}},\"required\":[\"id\"]," \
             "\"additionalProperties\":false}"
#define S_NOTE_REQUIRED                                                                                       \
  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"note\":{\"type\":\"string\"}},"         \
  "\"required\":[\"id\",\"note\"],\"additionalProperties\":false}"
#define S_NOTE_REQUIRED_EXTRA                                                                                 \
  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"note\":{\"type\":\"string\"},"          \
  "\"extra\":{\"type\":\"integer\"}},\"required\":[\"id\",\"note\"],\"additionalProperties\":false}"

Test(registry, the_contract_schemas_are_there_after_start) {
  char *subjects = expect(200, "GET", SR "/subjects", reader, NULL);
  const cqrs_event_type_t *rows[64];
  size_t n = cqrs_event_types_by_version(rows, 64);
  for (size_t i = 0; i < n; i++) {
    char quoted[160], path[256];
    snprintf(quoted, sizeof quoted, "\"%s\"", rows[i]->name);
    cr_assert_not_null(strstr(subjects, quoted), "%s not in %s", rows[i]->name, subjects);
    /* Each (type, version) is registered as that version of its subject. */
    char *schema = cqrs_event_json_schema(rows[i], NULL), *body = body_of(schema);
    snprintf(path, sizeof path, SR "/subjects/%s", rows[i]->name);
    char *b = expect(200, "POST", path, reader, body);
    char want[32];
    snprintf(want, sizeof want, "\"version\":%d,", rows[i]->version);
    cr_assert_not_null(strstr(b, want), "%s v%d: %s", rows[i]->name, rows[i]->version, b);
    free(b);
    bson_free(body);
    bson_free(schema);
  }
  free(subjects);
}

Test(registry, register_list_versions_ids_and_lookup) {
  long id = register_ok(env.admin_port, "Widget", S_V1);
  cr_assert_eq(register_ok(env.admin_port, "Widget", S_V1), id, "the same schema again: the same id");
  /* Whitespace does not make a schema new. */
  cr_assert_eq(register_ok(env.admin_port, "Widget", "{ \"type\": \"object\", \"properties\": {\"id\": {\"type\": "
                                                     "\"string\"}}, \"required\": [\"id\"], "
                                                     "\"additionalProperties\": false }"),
               id);
  char *b = expect(200, "GET", SR "/subjects/Widget/versions", reader, NULL);
  cr_assert_str_eq(b, "[1]");
  free(b);
  b = expect(200, "GET", SR "/subjects/Widget/versions/latest", reader, NULL);
  char want[64];
  snprintf(want, sizeof want, "\"version\":1,\"id\":%ld,\"schemaType\":\"JSON\"", id);
  cr_assert_not_null(strstr(b, want), "%s", b);
  char *subject = tk_json_string(b, "subject"), *schema = tk_json_string(b, "schema");
  cr_assert_str_eq(subject, "Widget");
  free(subject);
  free(b);
  char path[128];
  snprintf(path, sizeof path, SR "/schemas/ids/%ld", id);
  b = expect(200, "GET", path, reader, NULL);
  char *by_id = tk_json_string(b, "schema");
  cr_assert_str_eq(by_id, schema, "the schema by id is the version's");
  free(by_id);
  free(b);
  b = expect(200, "GET", SR "/subjects/Widget/versions/1/schema", reader, NULL);
  cr_assert_str_eq(b, schema);
  free(b);
  free(schema);
  /* The same schema under another subject: the same id (ids are global). */
  cr_assert_eq(register_ok(env.admin_port, "Gadget", S_V1), id);

  char *body = body_of(S_V1), *other = body_of(S_NOTE_REQUIRED);
  b = expect(200, "POST", SR "/subjects/Widget", reader, body);
  cr_assert_not_null(strstr(b, "\"version\":1"), "%s", b);
  free(b);
  static const struct {
    int status;
    const char *method, *path, *code;
    bool other_body;
  } errors[] = {
      {404, "POST", SR "/subjects/Widget", "40403", true},
      {404, "POST", SR "/subjects/Nobody", "40401", false},
      {404, "GET", SR "/subjects/Nobody/versions", "40401", false},
      {404, "GET", SR "/subjects/Widget/versions/7", "40402", false},
      {422, "GET", SR "/subjects/Widget/versions/first", "42202", false},
      {404, "GET", SR "/schemas/ids/7", "40403", false},
      {404, "GET", SR "/nothing/here", "404", false},
  };
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
    b = expect(errors[i].status, errors[i].method, errors[i].path, reader,
               strcmp(errors[i].method, "POST") == 0 ? (errors[i].other_body ? other : body) : NULL);
    char code[32];
    snprintf(code, sizeof code, "{\"error_code\":%s,\"message\":", errors[i].code);
    cr_assert(strstr(b, code) == b, "%s %s: %s", errors[i].method, errors[i].path, b);
    free(b);
  }
  /* Not JSON Schema, or not a schema at all: 422 42201 naming why. */
  static const struct {
    const char *body, *says;
  } invalid[] = {
      {"{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"x\\\",\\\"fields\\\":[]}\"}", "AVRO"},
      {"{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\";\"}", "PROTOBUF"},
      {"{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"text\\\"}\"}", "unknown type 'text'"},
      {"{\"schemaType\":\"JSON\",\"schema\":\"{\\\"oneOf\\\":[]}\"}", "'oneOf' is not supported"},
      {"{\"schemaType\":\"JSON\",\"schema\":\"not json\"}", "Invalid schema"},
      {"{\"schemaType\":\"JSON\"}", "schema"},
  };
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    b = expect(422, "POST", SR "/subjects/Widget/versions", platform, invalid[i].body);
    cr_assert(strstr(b, "{\"error_code\":42201,") == b, "%s", b);
    cr_assert_not_null(strstr(b, invalid[i].says), "%s: %s", invalid[i].body, b);
    free(b);
  }
  bson_free(body);
  bson_free(other);
}

/* POST /compatibility/... for candidate; whether compatible, messages into *out (free). */
static bool compatible(const char *subject, const char *version, const char *candidate, char **out) {
  char path[256], *body = body_of(candidate);
  snprintf(path, sizeof path, SR "/compatibility/subjects/%s/versions/%s?verbose=true", subject, version);
  char *b = expect(200, "POST", path, reader, body);
  bson_free(body);
  bool ok = strstr(b, "\"is_compatible\":true") != NULL;
  cr_assert(ok || strstr(b, "\"is_compatible\":false"), "%s", b);
  cr_assert_not_null(strstr(b, "\"messages\":["), "%s", b);
  *out = b;
  return ok;
}

static void set_level(const char *subject, const char *level) {
  char path[256], body[96];
  snprintf(path, sizeof path, subject ? SR "/config/%s" : SR "/config", subject ? subject : "");
  snprintf(body, sizeof body, "{\"compatibility\":\"%s\"}", level);
  char *b = expect(200, "PUT", path, platform, body);
  cr_assert_not_null(strstr(b, level), "%s", b);
  free(b);
}

Test(registry, compatibility_per_level_and_transitive) {
  char *msgs;
  /* Version 1 without note; version 2 requires note (allowed under NONE). */
  set_level("Ledger", "NONE");
  register_ok(env.admin_port, "Ledger", S_V1);
  register_ok(env.admin_port, "Ledger", S_NOTE_REQUIRED);
  /* The candidate adds an optional field: it reads version 2's data but not
   * version 1's (which has no note). */
  set_level("Ledger", "BACKWARD");
  cr_assert(compatible("Ledger", "latest", S_NOTE_REQUIRED_EXTRA, &msgs), "%s", msgs);
  free(msgs);
  cr_assert_not(compatible("Ledger", "1", S_NOTE_REQUIRED_EXTRA, &msgs), "against version 1 alone");
  cr_assert_not_null(strstr(msgs, "field 'note' is required by the new schema but absent from version 1"), "%s", msgs);
  free(msgs);
  set_level("Ledger", "BACKWARD_TRANSITIVE");
  cr_assert_not(compatible("Ledger", "latest", S_NOTE_REQUIRED_EXTRA, &msgs));
  cr_assert_not_null(strstr(msgs, "BACKWARD_TRANSITIVE: field 'note' is required by the new schema but absent from "
                                  "version 1"),
                     "%s", msgs);
  free(msgs);
  set_level("Ledger", "FORWARD");
  cr_assert_not(compatible("Ledger", "latest", S_NOTE_REQUIRED_EXTRA, &msgs));
  cr_assert_not_null(strstr(msgs, "FORWARD: field 'extra' is written by the new schema but not allowed by version 2"),
                     "%s", msgs);
  free(msgs);
  set_level("Ledger", "FULL");
  cr_assert_not(compatible("Ledger", "latest", S_NOTE_REQUIRED_EXTRA, &msgs));
  free(msgs);
  set_level("Ledger", "FULL_TRANSITIVE");
  cr_assert_not(compatible("Ledger", "latest", S_NOTE_REQUIRED_EXTRA, &msgs));
  free(msgs);
  set_level("Ledger", "NONE");
  cr_assert(compatible("Ledger", "latest", S_NOTE_REQUIRED_EXTRA, &msgs));
  free(msgs);

  /* Registration under BACKWARD_TRANSITIVE: 409 with the rule, field and version. */
  set_level("Ledger", "BACKWARD_TRANSITIVE");
  char *body = body_of(S_NOTE_REQUIRED_EXTRA);
  char *b = expect(409, "POST", SR "/subjects/Ledger/versions", platform, body);
  cr_assert(strstr(b, "{\"error_code\":409,") == b, "%s", b);
  cr_assert_not_null(strstr(b, "BACKWARD_TRANSITIVE: field 'note' is required by the new schema but absent from "
                               "version 1"),
                     "%s", b);
  free(b);
  b = expect(200, "GET", SR "/subjects/Ledger/versions", reader, NULL);
  cr_assert_str_eq(b, "[1,2]", "a refused schema is not registered");
  free(b);
  /* ...and accepted under BACKWARD, which looks at the latest only. */
  set_level("Ledger", "BACKWARD");
  register_ok(env.admin_port, "Ledger", S_NOTE_REQUIRED_EXTRA);
  b = expect(200, "GET", SR "/subjects/Ledger/versions", reader, NULL);
  cr_assert_str_eq(b, "[1,2,3]");
  free(b);
  bson_free(body);
}

Test(registry, config_global_and_per_subject) {
  char *b = expect(200, "GET", SR "/config", reader, NULL);
  cr_assert_str_eq(b, "{\"compatibilityLevel\":\"BACKWARD_TRANSITIVE\"}", "the default: %s", b);
  free(b);
  register_ok(env.admin_port, "Config1", S_V1);
  b = expect(404, "GET", SR "/config/Config1", reader, NULL);
  cr_assert(strstr(b, "{\"error_code\":40408,") == b, "%s", b);
  free(b);
  b = expect(200, "GET", SR "/config/Config1?defaultToGlobal=true", reader, NULL);
  cr_assert_str_eq(b, "{\"compatibilityLevel\":\"BACKWARD_TRANSITIVE\"}");
  free(b);
  set_level("Config1", "FULL");
  b = expect(200, "GET", SR "/config/Config1", reader, NULL);
  cr_assert_str_eq(b, "{\"compatibilityLevel\":\"FULL\"}");
  free(b);
  /* The subject's level governs it: adding an optional field is not FULL. */
  char *body = body_of("{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"n\":{\"type\":"
                       "\"integer\"}},\"required\":[\"id\"],\"additionalProperties\":false}");
  free(expect(409, "POST", SR "/subjects/Config1/versions", platform, body));
  bson_free(body);
  b = expect(422, "PUT", SR "/config", platform, "{\"compatibility\":\"SIDEWAYS\"}");
  cr_assert(strstr(b, "{\"error_code\":42203,") == b, "%s", b);
  free(b);
  set_level(NULL, "FORWARD");
  b = expect(200, "GET", SR "/config", reader, NULL);
  cr_assert_str_eq(b, "{\"compatibilityLevel\":\"FORWARD\"}");
  free(b);
  set_level(NULL, "BACKWARD_TRANSITIVE");
}

Test(registry, who_may_read_and_write) {
  tk_response_t r;
  cr_assert_eq(call_at(env.admin_port, "GET", SR "/subjects", NULL, NULL, &r), 401);
  tk_response_cleanup(&r);
  cr_assert_eq(call_at(env.admin_port, "GET", SR "/subjects", writer_only, NULL, &r), 403);
  tk_response_cleanup(&r);
  char *admin_scope = tk_auth_token(auth, "acme", "admin", 600);
  free(expect(200, "GET", SR "/subjects", admin_scope, NULL));
  char *body = body_of(S_V1);
  /* Writes are the platform's: a tenant's admin may read, not register. */
  cr_assert_eq(call_at(env.admin_port, "POST", SR "/subjects/Mine/versions", admin_scope, body, &r), 403);
  tk_response_cleanup(&r);
  cr_assert_eq(call_at(env.admin_port, "PUT", SR "/config", reader, "{\"compatibility\":\"NONE\"}", &r), 403);
  tk_response_cleanup(&r);
  cr_assert_eq(call_at(env.admin_port, "GET", SR "/nothing", NULL, NULL, &r), 401, "nothing said before auth");
  tk_response_cleanup(&r);
  bson_free(body);
  free(admin_scope);
}

/* A second admin-svc on the same topics, AUTH=off (loopback). */
static pid_t start_replica(tk_env_t *off) {
  *off = env;
  off->admin_port = tk_free_port();
  const char *extra[] = {"AUTH=off", "TOPIC_REPLICATION=1", NULL};
  return tk_start(off, TK_ADMIN, extra);
}

typedef struct {
  int port;
  const char *credential;
  int base;
  long ids[5];
} racer_t;

static void *race(void *arg) {
  racer_t *r = arg;
  for (int i = 0; i < 5; i++) {
    char schema[256], *body, path[] = SR "/subjects/Race/versions";
    snprintf(schema, sizeof schema, "{\"type\":\"object\",\"description\":\"schema %d\"}", r->base + i);
    body = body_of(schema);
    tk_response_t resp;
    tk_auth_http("POST", r->port, path, r->credential, SR_TYPE, body, &resp);
    char *p = resp.status == 200 && resp.body ? strstr(resp.body, "\"id\":") : NULL;
    r->ids[i] = p ? strtol(p + 5, NULL, 10) : -resp.status;
    tk_response_cleanup(&resp);
    bson_free(body);
  }
  return NULL;
}

Test(registry, two_replicas_racing_never_share_a_version) {
  tk_env_t off;
  pid_t replica = start_replica(&off);
  set_level("Race", "NONE");
  racer_t a = {.port = env.admin_port, .credential = platform, .base = 0};
  racer_t b = {.port = off.admin_port, .credential = NULL, .base = 100};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, race, &a);
  pthread_create(&tb, NULL, race, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  for (int i = 0; i < 5; i++) {
    cr_assert_gt(a.ids[i], 0, "replica 1, schema %d: %ld", i, a.ids[i]);
    cr_assert_gt(b.ids[i], 0, "replica 2, schema %d: %ld", i, b.ids[i]);
  }
  /* Ten schemas, ten versions, on both replicas alike, each schema at one. */
  char *one = expect(200, "GET", SR "/subjects/Race/versions", reader, NULL);
  cr_assert_str_eq(one, "[1,2,3,4,5,6,7,8,9,10]");
  for (int v = 1; v <= 10; v++) {
    char path[128];
    snprintf(path, sizeof path, SR "/subjects/Race/versions/%d", v);
    char *x = expect(200, "GET", path, reader, NULL), *y = expect_at(off.admin_port, 200, "GET", path, NULL, NULL);
    cr_assert_str_eq(x, y, "the replicas disagree on version %d", v);
    free(x);
    free(y);
  }
  free(one);
  tk_stop(replica, SIGTERM);
}

Test(registry, survives_a_restart) {
  long id = register_ok(env.admin_port, "Durable", S_V1);
  set_level("Durable", "NONE");
  register_ok(env.admin_port, "Durable", S_NOTE_REQUIRED);
  char *before = expect(200, "GET", SR "/subjects", reader, NULL);
  char *contract = expect(200, "GET", SR "/subjects/OrderCreated/versions", reader, NULL);
  tk_stop(admin, SIGTERM);
  start_admin();
  char *after = expect(200, "GET", SR "/subjects", reader, NULL);
  cr_assert_str_eq(after, before);
  char *b = expect(200, "GET", SR "/subjects/Durable/versions", reader, NULL);
  cr_assert_str_eq(b, "[1,2]");
  free(b);
  b = expect(200, "GET", SR "/config/Durable", reader, NULL);
  cr_assert_str_eq(b, "{\"compatibilityLevel\":\"NONE\"}");
  free(b);
  cr_assert_eq(register_ok(env.admin_port, "Durable", S_V1), id, "the id after a restart");
  /* The contract's schemas are not registered again. */
  b = expect(200, "GET", SR "/subjects/OrderCreated/versions", reader, NULL);
  cr_assert_str_eq(b, contract);
  free(b);
  free(before);
  free(after);
  free(contract);
}

Test(registry, the_confluent_python_client_reads_it) {
  tk_env_t off;
  pid_t replica = start_replica(&off);
  FILE *venv = popen(CQRS_SOURCE_DIR "/tests/registry/venv.sh", "r");
  cr_assert_not_null(venv);
  char python[1024] = "";
  cr_assert_not_null(fgets(python, sizeof python, venv), "tests/registry/venv.sh printed nothing");
  python[strcspn(python, "\n")] = '\0';
  cr_assert_eq(pclose(venv), 0, "tests/registry/venv.sh failed");
  const cqrs_event_type_t *rows[1];
  cqrs_event_types_by_version(rows, 1);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "%s " CQRS_SOURCE_DIR "/tests/registry/client_check.py http://127.0.0.1:%d/v1/schemas %s 2>&1", python,
           off.admin_port, rows[0]->name);
  FILE *run = popen(cmd, "r");
  cr_assert_not_null(run);
  char out[8192] = "";
  size_t n = fread(out, 1, sizeof out - 1, run);
  out[n] = '\0';
  int rc = pclose(run);
  tk_stop(replica, SIGTERM);
  cr_assert_eq(rc, 0, "the Confluent client failed:\n%s", out);
  cr_assert_not_null(strstr(out, "\nok\n"), "%s", out);
}

/* A record for a version already taken (what the loser of a race writes)
 * changes nothing, now or after a restart: the first record wins. */
Test(registry, a_late_record_for_a_taken_version_loses) {
  long id = register_ok(env.admin_port, "Taken", S_V1);
  cqrs_error_t err = {0};
  char *loser = cqrs_schema_canonical(S_NOTE_REQUIRED, strlen(S_NOTE_REQUIRED), NULL, &err);
  cr_assert_not_null(loser, "%s", err.message);
  int32_t loser_id = cqrs_schema_id(loser);
  char *key = cqrs_schemas_version_key("Taken", 1, loser_id), *value = cqrs_schemas_version_json("Taken", 1,
                                                                                                 loser_id, loser, NULL);
  char topic[128];
  tk_kafka_produce(&env, tk_topic(&env, CQRS_TOPIC_SCHEMAS, topic), 0, key, value, NULL);
  /* Registering afterwards reads past that record: the loser is not version 1... */
  set_level("Taken", "NONE");
  long second = register_ok(env.admin_port, "Taken", S_NOTE_REQUIRED);
  cr_assert_eq(second, loser_id);
  char *b = expect(200, "GET", SR "/subjects/Taken/versions", reader, NULL);
  cr_assert_str_eq(b, "[1,2]", "the late record took no version of its own");
  free(b);
  char want[64];
  snprintf(want, sizeof want, "\"version\":1,\"id\":%ld,", id);
  b = expect(200, "GET", SR "/subjects/Taken/versions/1", reader, NULL);
  cr_assert_not_null(strstr(b, want), "%s", b);
  free(b);
  /* ...and a reader starting from the beginning agrees. */
  tk_stop(admin, SIGTERM);
  start_admin();
  b = expect(200, "GET", SR "/subjects/Taken/versions/1", reader, NULL);
  cr_assert_not_null(strstr(b, want), "after a restart: %s", b);
  free(b);
  snprintf(want, sizeof want, "\"version\":2,\"id\":%ld,", (long)loser_id);
  b = expect(200, "GET", SR "/subjects/Taken/versions/2", reader, NULL);
  cr_assert_not_null(strstr(b, want), "after a restart: %s", b);
  free(b);
  free(key);
  free(value);
  bson_free(loser);
}
