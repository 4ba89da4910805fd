/* Configuration from an envp array (cqrs/config.h): defaults, overrides,
 * KAFKA_* pass-through and the variables that are refused. */
#include "cqrs/config.h"
#include "cqrs/freshness.h"
#include "unit.h"

#include <stdlib.h>

static cqrs_config_t cfg;
static cqrs_error_t err;

static void cleanup(void) { cqrs_config_cleanup(&cfg); }

TestSuite(config, .fini = cleanup);

static bool load(char *const *envp, int port) {
  cqrs_error_clear(&err);
  return cqrs_config_load(&cfg, envp, port, &err);
}

static const char *prop(const char *key) {
  for (size_t i = 0; i < cfg.n_kafka_props; i++)
    if (strcmp(cfg.kafka_props[i].key, key) == 0) return cfg.kafka_props[i].value;
  return NULL;
}

Test(config, defaults) {
  char *envp[] = {"PATH=/usr/bin", "HOME=/root", NULL};
  cr_assert(load(envp, 8081), "%s", err.message);
  cr_assert_str_eq(cfg.kafka_brokers, "127.0.0.1:9092");
  cr_assert_str_eq(cfg.mongo_uri, "mongodb://127.0.0.1:27017");
  cr_assert_str_eq(cfg.mongo_db, "cqrs");
  cr_assert_str_eq(cfg.topic_prefix, "cqrs.");
  cr_assert_eq(cfg.http_port, 8081);
  cr_assert_eq(cfg.log_level, CQRS_LOG_INFO);
  cr_assert_eq(cfg.n_kafka_props, 0);
  cr_assert_eq(cfg.max_body_bytes, 1 << 20);
  cr_assert_eq(cfg.command_timeout_ms, 5000);
  cr_assert_eq(cfg.topic_partitions, 6);
  cr_assert_eq(cfg.topic_replication, -1);
  cr_assert_eq(cfg.shutdown_grace_ms, 10000);
  cr_assert_eq(cfg.restore_timeout_ms, 120000);
  cr_assert_geq(cfg.http_threads, 1);
}

Test(config, null_and_empty_envp) {
  cr_assert(load(NULL, 8080));
  cr_assert_str_eq(cfg.kafka_brokers, "127.0.0.1:9092");
  cr_assert_eq(cfg.http_port, 8080);
  cqrs_config_cleanup(&cfg);
  char *empty[] = {NULL};
  cr_assert(load(empty, 8082));
  cr_assert_eq(cfg.http_port, 8082);
}

Test(config, default_port_is_per_service) {
  char *envp[] = {NULL};
  cr_assert(load(envp, 8082));
  cr_assert_eq(cfg.http_port, 8082);
}

Test(config, overrides) {
  char *envp[] = {"KAFKA_BROKERS=k1:9092,k2:9092", "MONGO_URI=mongodb://m:27018", "MONGO_DB=other",
                  "TOPIC_PREFIX=t1.", "HTTP_PORT=9999", "LOG_LEVEL=debug", "MAX_BODY_BYTES=2048",
                  "COMMAND_TIMEOUT_MS=250", "TOPIC_PARTITIONS=3", "TOPIC_REPLICATION=1",
                  "SHUTDOWN_GRACE_MS=0", "HTTP_THREADS=2", "RESTORE_TIMEOUT_MS=5000", NULL};
  cr_assert(load(envp, 8080), "%s", err.message);
  cr_assert_str_eq(cfg.kafka_brokers, "k1:9092,k2:9092");
  cr_assert_str_eq(cfg.mongo_uri, "mongodb://m:27018");
  cr_assert_str_eq(cfg.mongo_db, "other");
  cr_assert_str_eq(cfg.topic_prefix, "t1.");
  cr_assert_eq(cfg.http_port, 9999);
  cr_assert_eq(cfg.log_level, CQRS_LOG_DEBUG);
  cr_assert_eq(cfg.max_body_bytes, 2048);
  cr_assert_eq(cfg.command_timeout_ms, 250);
  cr_assert_eq(cfg.topic_partitions, 3);
  cr_assert_eq(cfg.topic_replication, 1);
  cr_assert_eq(cfg.shutdown_grace_ms, 0);
  cr_assert_eq(cfg.http_threads, 2);
  cr_assert_eq(cfg.restore_timeout_ms, 5000);
  cr_assert_eq(cfg.n_kafka_props, 0, "KAFKA_BROKERS is not a librdkafka property");
}

Test(config, log_level_any_case) {
  char *warn[] = {"LOG_LEVEL=WARN", NULL};
  cr_assert(load(warn, 8080));
  cr_assert_eq(cfg.log_level, CQRS_LOG_WARN);
  cqrs_config_cleanup(&cfg);
  char *error[] = {"LOG_LEVEL=Error", NULL};
  cr_assert(load(error, 8080));
  cr_assert_eq(cfg.log_level, CQRS_LOG_ERROR);
}

Test(config, kafka_properties) {
  char *envp[] = {"KAFKA_BROKERS=b:9092", "KAFKA_SASL_MECHANISM=PLAIN", "KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                  "KAFKA_SASL_PASSWORD=p=w", "NOT_KAFKA_X=1", NULL};
  cr_assert(load(envp, 8080), "%s", err.message);
  cr_assert_eq(cfg.n_kafka_props, 3);
  cr_assert_str_eq(prop("sasl.mechanism"), "PLAIN");
  cr_assert_str_eq(prop("security.protocol"), "SASL_SSL");
  cr_assert_str_eq(prop("sasl.password"), "p=w", "the value is everything after the first '='");
  for (size_t i = 0; i < cfg.n_kafka_props; i++) {
    cr_assert_str_neq(cfg.kafka_props[i].key, "brokers");
    cr_assert_str_neq(cfg.kafka_props[i].value, "b:9092");
  }
  cr_assert_str_eq(cfg.kafka_brokers, "b:9092");
}

static void assert_refused(const char *var, const char *field) {
  char *envp[] = {(char *)var, NULL};
  cr_assert_not(load(envp, 8080), "accepted %s", var);
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, field, "%s", var);
  cr_assert_neq(err.message[0], '\0');
  /* "cfg then holds nothing to free" */
  cr_assert_null(cfg.kafka_brokers);
  cr_assert_null(cfg.kafka_props);
}

Test(config, bad_http_port) {
  assert_refused("HTTP_PORT=abc", "HTTP_PORT");
  assert_refused("HTTP_PORT=70000", "HTTP_PORT");
  assert_refused("HTTP_PORT=0", "HTTP_PORT");
  assert_refused("HTTP_PORT=-80", "HTTP_PORT");
  assert_refused("HTTP_PORT=80x", "HTTP_PORT");
}

Test(config, http_port_bounds) {
  char *lo[] = {"HTTP_PORT=1", NULL};
  cr_assert(load(lo, 8080));
  cr_assert_eq(cfg.http_port, 1);
  cqrs_config_cleanup(&cfg);
  char *hi[] = {"HTTP_PORT=65535", NULL};
  cr_assert(load(hi, 8080));
  cr_assert_eq(cfg.http_port, 65535);
}

Test(config, bad_log_level) {
  assert_refused("LOG_LEVEL=verbose", "LOG_LEVEL");
  assert_refused("LOG_LEVEL=infos", "LOG_LEVEL");
}

Test(config, bad_tuning_knobs) {
  assert_refused("MAX_BODY_BYTES=10", "MAX_BODY_BYTES");
  assert_refused("COMMAND_TIMEOUT_MS=fast", "COMMAND_TIMEOUT_MS");
  assert_refused("TOPIC_PARTITIONS=0", "TOPIC_PARTITIONS");
  assert_refused("RESTORE_TIMEOUT_MS=0", "RESTORE_TIMEOUT_MS");
}

Test(config, refusal_with_null_err) {
  char *envp[] = {"HTTP_PORT=abc", NULL};
  cr_assert_not(cqrs_config_load(&cfg, envp, 8080, NULL));
}

Test(config, empty_topic_prefix_allowed) {
  char *envp[] = {"TOPIC_PREFIX=", NULL};
  cr_assert(load(envp, 8080));
  cr_assert_str_eq(cfg.topic_prefix, "");
  char *t = cqrs_config_topic(&cfg, "events");
  cr_assert_str_eq(t, "events");
  free(t);
}

Test(config, empty_values_mean_default) {
  char *envp[] = {"HTTP_PORT=", "LOG_LEVEL=", "KAFKA_BROKERS=", "MONGO_DB=", NULL};
  cr_assert(load(envp, 8081), "%s", err.message);
  cr_assert_eq(cfg.http_port, 8081);
  cr_assert_eq(cfg.log_level, CQRS_LOG_INFO);
  cr_assert_str_eq(cfg.kafka_brokers, "127.0.0.1:9092");
  cr_assert_str_eq(cfg.mongo_db, "cqrs");
}

Test(config, name_must_match_exactly) {
  char *envp[] = {"HTTP_PORTX=1", "MONGO_DB_X=nope", NULL};
  cr_assert(load(envp, 8080));
  cr_assert_eq(cfg.http_port, 8080);
  cr_assert_str_eq(cfg.mongo_db, "cqrs");
}

Test(config, topic_name) {
  char *envp[] = {NULL};
  cr_assert(load(envp, 8080));
  char *t = cqrs_config_topic(&cfg, "commands");
  cr_assert_str_eq(t, "cqrs.commands");
  free(t);
  cqrs_config_cleanup(&cfg);
  char *custom[] = {"TOPIC_PREFIX=test-42.", NULL};
  cr_assert(load(custom, 8080));
  t = cqrs_config_topic(&cfg, "command-results");
  cr_assert_str_eq(t, "test-42.command-results");
  free(t);
}

Test(config, cleanup_twice_and_zeroed) {
  cqrs_config_t zero = {0};
  cqrs_config_cleanup(&zero);
  char *envp[] = {"KAFKA_CLIENT_ID=x", NULL};
  cr_assert(load(envp, 8080));
  cqrs_config_cleanup(&cfg);
  cqrs_config_cleanup(&cfg);
  cr_assert_null(cfg.kafka_brokers);
}

Test(config, wait_tick_and_store_timeout) {
  char *defaults[] = {NULL};
  cr_assert(load(defaults, 8081), "%s", err.message);
  cr_assert_eq(cfg.wait_tick_ms, 10);
  cr_assert_eq(cfg.mongo_timeout_ms, 0, "0: each service picks its own default");
  cqrs_config_cleanup(&cfg);
  char *envp[] = {"WAIT_TICK_MS=25", "MONGO_TIMEOUT_MS=1500", NULL};
  cr_assert(load(envp, 8081), "%s", err.message);
  cr_assert_eq(cfg.wait_tick_ms, 25);
  cr_assert_eq(cfg.mongo_timeout_ms, 1500);
  cqrs_config_cleanup(&cfg);
  assert_refused("WAIT_TICK_MS=0", "WAIT_TICK_MS");
  assert_refused("WAIT_TICK_MS=1001", "WAIT_TICK_MS");
  assert_refused("MONGO_TIMEOUT_MS=-1", "MONGO_TIMEOUT_MS");
  assert_refused("MONGO_TIMEOUT_MS=soon", "MONGO_TIMEOUT_MS");
}

Test(config, rate_limits_per_tenant) {
  char *defaults[] = {NULL};
  cr_assert(load(defaults, 8080), "%s", err.message);
  cr_assert_eq(cfg.rate_limit_commands, 0, "no limit unless configured");
  cr_assert_eq(cfg.rate_limit_queries, 0);
  cqrs_config_cleanup(&cfg);
  char *envp[] = {"RATE_LIMIT_COMMANDS=200", "RATE_LIMIT_QUERIES=1000", NULL};
  cr_assert(load(envp, 8080), "%s", err.message);
  cr_assert_eq(cfg.rate_limit_commands, 200);
  cr_assert_eq(cfg.rate_limit_queries, 1000);
  cqrs_config_cleanup(&cfg);
  assert_refused("RATE_LIMIT_COMMANDS=-1", "RATE_LIMIT_COMMANDS");
  assert_refused("RATE_LIMIT_QUERIES=lots", "RATE_LIMIT_QUERIES");
}

Test(config, command_max_in_flight) {
  char *defaults[] = {NULL};
  cr_assert(load(defaults, 8080), "%s", err.message);
  cr_assert_eq(cfg.command_max_in_flight, 2048);
  cqrs_config_cleanup(&cfg);
  char *envp[] = {"COMMAND_MAX_IN_FLIGHT=4", NULL};
  cr_assert(load(envp, 8080), "%s", err.message);
  cr_assert_eq(cfg.command_max_in_flight, 4);
  cqrs_config_cleanup(&cfg);
  assert_refused("COMMAND_MAX_IN_FLIGHT=0", "COMMAND_MAX_IN_FLIGHT");
  assert_refused("COMMAND_MAX_IN_FLIGHT=many", "COMMAND_MAX_IN_FLIGHT");
}

Test(config, command_txn_linger) {
  char *defaults[] = {NULL};
  cr_assert(load(defaults, 8080), "%s", err.message);
  cr_assert_eq(cfg.command_txn_linger_ms, CQRS_COMMAND_TXN_LINGER_MS_DEFAULT);
  cqrs_config_cleanup(&cfg);
  char *envp[] = {"COMMAND_TXN_LINGER_MS=0", NULL};
  cr_assert(load(envp, 8080), "%s", err.message);
  cr_assert_eq(cfg.command_txn_linger_ms, 0, "0: a transaction as soon as a command is there");
  cqrs_config_cleanup(&cfg);
  assert_refused("COMMAND_TXN_LINGER_MS=-1", "COMMAND_TXN_LINGER_MS");
  assert_refused("COMMAND_TXN_LINGER_MS=1001", "COMMAND_TXN_LINGER_MS");
  assert_refused("COMMAND_TXN_LINGER_MS=soon", "COMMAND_TXN_LINGER_MS");
}

Test(config, snapshots_and_projections) {
  char *defaults[] = {NULL};
  cr_assert(load(defaults, 8082), "%s", err.message);
  cr_assert_eq(cfg.snapshot_every, CQRS_SNAPSHOT_EVERY_DEFAULT);
  cr_assert_null(cfg.projections, "every projection");
  cqrs_config_cleanup(&cfg);
  char *envp[] = {"SNAPSHOT_EVERY=0", "PROJECTIONS=user_profiles,event_history", NULL};
  cr_assert(load(envp, 8082), "%s", err.message);
  cr_assert_eq(cfg.snapshot_every, 0, "0: no snapshots");
  cr_assert_str_eq(cfg.projections, "user_profiles,event_history");
  cqrs_config_cleanup(&cfg);
  assert_refused("SNAPSHOT_EVERY=-1", "SNAPSHOT_EVERY");
  assert_refused("SNAPSHOT_EVERY=often", "SNAPSHOT_EVERY");
}

Test(config, auth_defaults) {
  char *envp[] = {NULL};
  cr_assert(load(envp, 8080), "%s", err.message);
  cr_assert(cfg.auth_enabled, "secure by default: AUTH is on unless set to off");
  cr_assert_null(cfg.auth_jwks_file);
  cr_assert_null(cfg.auth_jwks_url);
  cr_assert_null(cfg.auth_issuer);
  cr_assert_null(cfg.auth_audience);
  cr_assert_null(cfg.auth_hs256_secret, "HS256 is refused unless a secret is set");
  cr_assert_str_eq(cfg.auth_tenant_claim, "tenant");
  cr_assert_eq(cfg.auth_jwks_refresh_s, 300);
  cr_assert_eq(cfg.auth_leeway_s, 30);
}

Test(config, auth_overrides) {
  char *envp[] = {"AUTH=off", "AUTH_JWKS_URL=https://idp.example/jwks", "AUTH_JWKS_REFRESH_S=60",
                  "AUTH_ISSUER=https://idp.example/", "AUTH_AUDIENCE=cqrs", "AUTH_TENANT_CLAIM=org",
                  "AUTH_HS256_SECRET=0123456789abcdef0123456789abcdef", "AUTH_LEEWAY_S=0", NULL};
  cr_assert(load(envp, 8080), "%s", err.message);
  cr_assert_not(cfg.auth_enabled);
  cr_assert_str_eq(cfg.auth_jwks_url, "https://idp.example/jwks");
  cr_assert_eq(cfg.auth_jwks_refresh_s, 60);
  cr_assert_str_eq(cfg.auth_issuer, "https://idp.example/");
  cr_assert_str_eq(cfg.auth_audience, "cqrs");
  cr_assert_str_eq(cfg.auth_tenant_claim, "org");
  cr_assert_str_eq(cfg.auth_hs256_secret, "0123456789abcdef0123456789abcdef");
  cr_assert_eq(cfg.auth_leeway_s, 0);
  cqrs_config_cleanup(&cfg);
  char *file[] = {"AUTH=on", "AUTH_JWKS_FILE=keys/jwks.json", NULL};
  cr_assert(load(file, 8080), "%s", err.message);
  cr_assert(cfg.auth_enabled);
  cr_assert_str_eq(cfg.auth_jwks_file, "keys/jwks.json");
}

Test(config, bad_auth_settings) {
  assert_refused("AUTH=no", "AUTH");
  assert_refused("AUTH=OFF", "AUTH");
  assert_refused("AUTH_JWKS_REFRESH_S=0", "AUTH_JWKS_REFRESH_S");
  assert_refused("AUTH_LEEWAY_S=-1", "AUTH_LEEWAY_S");
  assert_refused("AUTH_LEEWAY_S=a", "AUTH_LEEWAY_S");
  assert_refused("AUTH_JWKS_URL=ftp://idp/jwks", "AUTH_JWKS_URL");
}

Test(config, short_hs256_secret_refused_without_echo) {
  char *envp[] = {"AUTH_HS256_SECRET=too-short-secret", NULL};
  cr_assert_not(load(envp, 8080));
  cr_assert_str_eq(err.field, "AUTH_HS256_SECRET");
  cr_assert_null(strstr(err.message, "too-short-secret"), "the error never echoes the secret");
  cr_assert_null(cfg.auth_tenant_claim);
}

Test(config, jwks_file_and_url_exclusive) {
  char *envp[] = {"AUTH_JWKS_FILE=jwks.json", "AUTH_JWKS_URL=http://127.0.0.1/jwks", NULL};
  cr_assert_not(load(envp, 8080));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, "AUTH_JWKS_URL");
  cr_assert_null(cfg.kafka_brokers);
}

Test(config, staleness_objectives_default_and_per_read_model) {
  char *none[] = {NULL};
  cr_assert(load(none, 8081), "%s", err.message);
  cr_assert_eq(cfg.staleness_objective_ms, 5000);
  cr_assert_eq(cqrs_config_staleness_objective(&cfg, "customers"), 5000);
  cqrs_config_cleanup(&cfg);
  char *envp[] = {"STALENESS_OBJECTIVE_MS=2000", "STALENESS_OBJECTIVES=event_history=60000,customers=100", NULL};
  cr_assert(load(envp, 8081), "%s", err.message);
  cr_assert_eq(cqrs_config_staleness_objective(&cfg, "event_history"), 60000);
  cr_assert_eq(cqrs_config_staleness_objective(&cfg, "customers"), 100);
  cr_assert_eq(cqrs_config_staleness_objective(&cfg, "user_profiles"), 2000);
  cr_assert_eq(cqrs_config_staleness_objective(&cfg, "custom"), 2000, "a prefix is not a name");
}

Test(config, bad_staleness_objectives_are_refused) {
  static const char *const bad[] = {"STALENESS_OBJECTIVES=customers",       "STALENESS_OBJECTIVES=customers=",
                                    "STALENESS_OBJECTIVES==100",            "STALENESS_OBJECTIVES=customers=0",
                                    "STALENESS_OBJECTIVES=a=1,b=x",         "STALENESS_OBJECTIVES=a=1,,b=2",
                                    "STALENESS_OBJECTIVE_MS=0",             NULL};
  for (const char *const *b = bad; *b; b++) {
    char *envp[] = {(char *)*b, NULL};
    cr_assert_not(load(envp, 8081), "%s was taken", *b);
    cr_assert_eq(err.code, CQRS_ERR_INVALID);
    cr_assert(strncmp(err.field, "STALENESS_OBJECTIVE", 19) == 0, "%s: %s", *b, err.field);
  }
}

Test(config, a_progress_report_gives_the_lag_since_caught_up) {
  cqrs_progress_t never = {-1, 0, 1000};
  cr_assert_eq(cqrs_progress_lag_ms(&never, 5000), -1, "never caught up: unknown");
  cqrs_progress_t p = {0, 1000, 1000};
  cr_assert_eq(cqrs_progress_lag_ms(&p, 1000), 0);
  cr_assert_eq(cqrs_progress_lag_ms(&p, 4500), 3500, "grows while nothing vouches for it");
  cr_assert_eq(cqrs_progress_lag_ms(&p, 900), 0, "a clock behind gives no negative lag");
}

/* The sagas' settings (issue 13). */
Test(config, saga_settings) {
  char *none[] = {NULL};
  cr_assert(load(none, 8084), "%s", err.message);
  cr_assert_eq(cfg.order_processing_timeout_s, 86400, "24h by default");
  cr_assert_eq(cfg.saga_stuck_after_s, 3600);
  cr_assert_null(cfg.saga_signing_key, "no key unless given: saga commands are refused");
  cqrs_config_cleanup(&cfg);
  char *envp[] = {"ORDER_PROCESSING_TIMEOUT=90m", "SAGA_STUCK_AFTER=45",
                  "SAGA_SIGNING_KEY=0123456789abcdef0123456789abcdef", NULL};
  cr_assert(load(envp, 8084), "%s", err.message);
  cr_assert_eq(cfg.order_processing_timeout_s, 5400);
  cr_assert_eq(cfg.saga_stuck_after_s, 45);
  cr_assert_str_eq(cfg.saga_signing_key, "0123456789abcdef0123456789abcdef");
  cqrs_config_cleanup(&cfg);
  assert_refused("ORDER_PROCESSING_TIMEOUT=soon", "ORDER_PROCESSING_TIMEOUT");
  assert_refused("ORDER_PROCESSING_TIMEOUT=0", "ORDER_PROCESSING_TIMEOUT");
  assert_refused("ORDER_PROCESSING_TIMEOUT=2d", "ORDER_PROCESSING_TIMEOUT");
  assert_refused("SAGA_SIGNING_KEY=short", "SAGA_SIGNING_KEY");
}

/* admin-svc reads the lag of the group projector-svc consumes in: one name. */
Test(config, projector_group_names) {
  char g[CQRS_GROUP_MAX];
  cqrs_config_projector_group("user_profiles", false, g, sizeof g);
  cr_assert_str_eq(g, "projector-user_profiles");
  cqrs_config_projector_group("user_profiles", true, g, sizeof g);
  cr_assert_str_eq(g, "projector-user_profiles-rebuild");
}
