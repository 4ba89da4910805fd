/* Test support for services with authentication on: keys, tokens, control
 * records, and credentials kept out of logs. */
#include "tk_auth.h"
#include "token.h"

#include "cqrs/auth.h"
#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOPIC_TIMEOUT_MS 15000

struct tk_auth {
  const tk_env_t *env;
  char *signing_key; /* private JWK */
  char jwks_path[512];
  char jwks_env[600]; /* "AUTH_JWKS_FILE=<jwks_path>" */
  char **secrets;     /* every credential the test used, for tk_auth_assert_log_clean */
  size_t n_secrets, cap_secrets;
};

tk_auth_t *tk_auth_new(const tk_env_t *env) {
  tk_auth_t *a = calloc(1, sizeof *a);
  cr_assert_not_null(a);
  a->env = env;
  char *jwks = NULL;
  cqrs_error_t err = {0};
  cr_assert(cqrs_token_keygen("ES256", &a->signing_key, &jwks, &err), "keygen: %s", err.message);
  mkdir(CQRS_TEST_LOG_DIR, 0755);
  snprintf(a->jwks_path, sizeof a->jwks_path, "%s/%sjwks.json", CQRS_TEST_LOG_DIR, env->prefix);
  FILE *f = fopen(a->jwks_path, "w");
  cr_assert_not_null(f, "cannot write %s", a->jwks_path);
  fputs(jwks, f);
  cr_assert_eq(fclose(f), 0, "cannot write %s", a->jwks_path);
  free(jwks);
  snprintf(a->jwks_env, sizeof a->jwks_env, "AUTH_JWKS_FILE=%s", a->jwks_path);
  return a;
}

void tk_auth_destroy(tk_auth_t *a) {
  if (!a) return;
  unlink(a->jwks_path);
  for (size_t i = 0; i < a->n_secrets; i++) free(a->secrets[i]);
  free(a->secrets);
  free(a->signing_key);
  free(a);
}

const char *const *tk_auth_env(const tk_auth_t *a, const char *const *more, const char *out[TK_AUTH_ENV_MAX]) {
  size_t n = 0;
  out[n++] = "AUTH=on";
  out[n++] = a->jwks_env;
  out[n++] = "AUTH_ISSUER=" TK_AUTH_ISSUER;
  out[n++] = "AUTH_AUDIENCE=" TK_AUTH_AUDIENCE;
  for (const char *const *m = more; m && *m; m++) {
    cr_assert_lt(n, TK_AUTH_ENV_MAX - 1, "more than %d settings for tk_auth_env", TK_AUTH_ENV_MAX - 5);
    out[n++] = *m;
  }
  out[n] = NULL;
  return out;
}

const char *tk_auth_jwks_path(const tk_auth_t *a) { return a->jwks_path; }

const char *tk_auth_signing_key(const tk_auth_t *a) { return a->signing_key; }

void tk_auth_remember(tk_auth_t *a, const char *credential) {
  if (a->n_secrets == a->cap_secrets) {
    a->cap_secrets = a->cap_secrets ? 2 * a->cap_secrets : 16;
    a->secrets = realloc(a->secrets, a->cap_secrets * sizeof *a->secrets);
    cr_assert_not_null(a->secrets);
  }
  cr_assert_not_null(a->secrets[a->n_secrets++] = strdup(credential));
}

char *tk_auth_token(tk_auth_t *a, const char *tenant, const char *scope, int ttl_s) {
  cqrs_error_t err = {0};
  char *claims =
      cqrs_token_claims(TK_AUTH_ISSUER, TK_AUTH_AUDIENCE, TK_AUTH_SUBJECT, tenant, scope, (int64_t)time(NULL), ttl_s);
  cr_assert_not_null(claims);
  char *jwt = cqrs_token_sign(a->signing_key, claims, &err);
  cr_assert_not_null(jwt, "signing: %s", err.message);
  free(claims);
  tk_auth_remember(a, jwt);
  return jwt;
}

char *tk_auth_header(const char *credential) {
  char *h;
  cr_assert_gt(asprintf(&h, "Authorization: Bearer %s\r\n", credential), 0);
  return h;
}

bool tk_auth_http(const char *method, int port, const char *path, const char *credential, const char *headers,
                  const char *body, tk_response_t *out) {
  char *all;
  cr_assert_gt(asprintf(&all, "%s%s%s%s", credential ? "Authorization: Bearer " : "", credential ? credential : "",
                        credential ? "\r\n" : "", headers ? headers : ""),
               -1);
  bool ok = tk_http_headers(method, port, path, all, body, body ? strlen(body) : 0, out);
  free(all);
  return ok;
}

/* The control topic as every service creates it (compacted, one partition),
 * so records written before a service starts land where it reads. An
 * existing topic is left as it is. */
static void ensure_control_topic(const tk_env_t *env) {
  char errstr[256];
  cqrs_error_t err = {0};
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env->brokers, errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  bool ok = cqrs_kafka_topic_ensure(rk, env->prefix, CQRS_TOPIC_CONTROL, 1, 1, TOPIC_TIMEOUT_MS, &err);
  rd_kafka_destroy(rk);
  cr_assert(ok, "creating the control topic: %s", err.message);
}

static void put_record(const tk_env_t *env, char *key, char *value) {
  cr_assert(key && value, "out of memory");
  ensure_control_topic(env);
  char topic[128];
  tk_kafka_produce(env, tk_topic(env, CQRS_TOPIC_CONTROL, topic), -1, key, value, NULL);
  free(key);
  free(value);
}

void tk_auth_put_tenant(const tk_env_t *env, const char *tenant, cqrs_tenant_state_t state) {
  cqrs_tenant_rec_t rec = {.state = state};
  snprintf(rec.tenant, sizeof rec.tenant, "%s", tenant);
  cqrs_time_now_rfc3339(rec.created_at);
  if (state == CQRS_TENANT_DELETED) cqrs_time_now_rfc3339(rec.deleted_at);
  put_record(env, cqrs_control_tenant_key(tenant), cqrs_control_tenant_json(&rec, NULL));
}

void tk_auth_put_apikey(const tk_env_t *env, const cqrs_apikey_rec_t *rec) {
  put_record(env, cqrs_control_apikey_key(rec->key_id), cqrs_control_apikey_json(rec, NULL));
}

void tk_auth_issue_apikey(tk_auth_t *a, const char *tenant, unsigned scopes, cqrs_apikey_rec_t *rec,
                          char key[CQRS_API_KEY_LEN + 1]) {
  char now[40];
  cqrs_time_now_rfc3339(now);
  cqrs_error_t err = {0};
  cr_assert(cqrs_apikey_new(tenant, scopes, now, rec, key, &err), "issuing a key: %s", err.message);
  tk_auth_remember(a, key);
  tk_auth_put_apikey(a->env, rec);
}

/* The part of credential that is secret on its own (borrowed): a JWT's
 * signature, an API key's secret; NULL when too short to tell. */
static const char *secret_part(const char *credential) {
  bool apikey = strncmp(credential, "cqrs_", 5) == 0;
  const char *sep = strrchr(credential, apikey ? '_' : '.');
  return sep && strlen(sep + 1) > 8 ? sep + 1 : NULL;
}

void tk_auth_assert_log_clean(const tk_auth_t *a, const char *path, const char *must_have) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "no log at %s", path);
  char *line = NULL;
  size_t cap = 0;
  bool seen = false;
  for (size_t n = 1; getline(&line, &cap, f) > 0; n++) {
    seen |= must_have && strstr(line, must_have) != NULL;
    for (size_t i = 0; i < a->n_secrets; i++) {
      const char *secret = secret_part(a->secrets[i]);
      /* The line itself is not printed: it would put the credential in the test's output. */
      cr_assert(!strstr(line, a->secrets[i]) && !(secret && strstr(line, secret)),
                "%s:%zu holds credential %zu the test used (or its secret part)", path, n, i);
    }
  }
  free(line);
  fclose(f);
  cr_assert(!must_have || seen, "%s has no \"%s\" line", path, must_have);
}
