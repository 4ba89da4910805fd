/* Configuration from the environment. Pure: reads an envp array, so tests can
 * pass their own. */
#include "cqrs/alloc.h"
#include "cqrs/config.h"
#include "cqrs/event.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cqrs_config_env(char *const *envp, const char *name) {
  size_t n = strlen(name);
  for (char *const *e = envp; e && *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

static char *dup_or(char *const *envp, const char *name, const char *dflt) {
  const char *v = cqrs_config_env(envp, name);
  return cqrs_xstrdup(v && *v ? v : dflt);
}

/* An integer variable within [min, max]; absent or empty means dflt. */
static bool int_var(char *const *envp, const char *name, long dflt, long min, long max,
                    long *out, cqrs_error_t *err) {
  const char *v = cqrs_config_env(envp, name);
  if (!v || !*v) {
    *out = dflt;
    return true;
  }
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || *end || n < min || n > max) {
    cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must be an integer in [%ld, %ld], got \"%s\"",
                   name, min, max, v);
    return false;
  }
  *out = n;
  return true;
}

/* A duration in seconds: "<n>" or "<n>s", "<n>m", "<n>h", within [1, max_s];
 * absent or empty means dflt. */
static bool duration_var(char *const *envp, const char *name, long dflt, long max_s, long *out,
                         cqrs_error_t *err) {
  const char *v = cqrs_config_env(envp, name);
  if (!v || !*v) {
    *out = dflt;
    return true;
  }
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  long unit = *end == 'h' ? 3600 : *end == 'm' ? 60 : 1;
  if (*end == 'h' || *end == 'm' || *end == 's') end++;
  if (errno || *end || n < 1 || n > max_s / unit) {
    cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must be a duration like 90s, 30m or 24h (at most %lds), got \"%s\"",
                   name, max_s, v);
    return false;
  }
  *out = n * unit;
  return true;
}

/* SAGA_SIGNING_KEY: absent, or at least 32 bytes. */
static bool load_saga(cqrs_config_t *cfg, char *const *envp, cqrs_error_t *err) {
  long timeout, stuck;
  if (!duration_var(envp, "ORDER_PROCESSING_TIMEOUT", 86400, 366L * 86400, &timeout, err) ||
      !duration_var(envp, "SAGA_STUCK_AFTER", 3600, 366L * 86400, &stuck, err))
    return false;
  const char *key = cqrs_config_env(envp, "SAGA_SIGNING_KEY");
  if (key && *key && strlen(key) < 32) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "SAGA_SIGNING_KEY", "SAGA_SIGNING_KEY must have at least 32 bytes");
    return false;
  }
  cfg->order_processing_timeout_s = (int)timeout;
  cfg->saga_stuck_after_s = (int)stuck;
  cfg->saga_signing_key = key && *key ? cqrs_xstrdup(key) : NULL;
  return true;
}

/* KAFKA_SASL_MECHANISM -> sasl.mechanism */
static char *kafka_prop_name(const char *var, size_t len) {
  char *p = cqrs_xstrndup(var + 6, len - 6);
  for (char *c = p; *c; c++) *c = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
  return p;
}

static void load_kafka_props(cqrs_config_t *cfg, char *const *envp) {
  for (char *const *e = envp; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq || strncmp(*e, "KAFKA_", 6) != 0 || (size_t)(eq - *e) <= 6) continue;
    if (strncmp(*e, "KAFKA_BROKERS=", 14) == 0) continue;
    /* Kubernetes service links for a Service named "kafka" (KAFKA_PORT,
     * KAFKA_SERVICE_HOST, ...) are not librdkafka properties. */
    if (strncmp(*e, "KAFKA_PORT", 10) == 0 || strncmp(*e, "KAFKA_SERVICE_", 14) == 0) continue;
    cqrs_kv_t *grown = cqrs_xrealloc(cfg->kafka_props, (cfg->n_kafka_props + 1) * sizeof *grown);
    cfg->kafka_props = grown;
    grown[cfg->n_kafka_props].key = kafka_prop_name(*e, (size_t)(eq - *e));
    grown[cfg->n_kafka_props].value = cqrs_xstrdup(eq + 1);
    cfg->n_kafka_props++;
  }
}

static char *dup_or_null(char *const *envp, const char *name) {
  const char *v = cqrs_config_env(envp, name);
  return v && *v ? cqrs_xstrdup(v) : NULL;
}

/* The AUTH_* variables, each on its own; cqrs_auth_new checks how they combine. */
static bool load_auth(cqrs_config_t *cfg, char *const *envp, cqrs_error_t *err) {
  const char *on = cqrs_config_env(envp, "AUTH");
  if (on && *on && strcmp(on, "on") != 0 && strcmp(on, "off") != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "AUTH", "AUTH must be on or off, got \"%s\"", on);
    return false;
  }
  cfg->auth_enabled = !(on && strcmp(on, "off") == 0);
  long refresh, leeway;
  if (!int_var(envp, "AUTH_JWKS_REFRESH_S", 300, 1, 86400, &refresh, err) ||
      !int_var(envp, "AUTH_LEEWAY_S", 30, 0, 600, &leeway, err))
    return false;
  cfg->auth_jwks_refresh_s = (int)refresh;
  cfg->auth_leeway_s = (int)leeway;
  const char *secret = cqrs_config_env(envp, "AUTH_HS256_SECRET");
  if (secret && *secret && strlen(secret) < 32) {
    /* never echo the secret, not even its length */
    cqrs_error_set(err, CQRS_ERR_INVALID, "AUTH_HS256_SECRET", "AUTH_HS256_SECRET must have at least 32 bytes");
    return false;
  }
  const char *file = cqrs_config_env(envp, "AUTH_JWKS_FILE"), *url = cqrs_config_env(envp, "AUTH_JWKS_URL");
  if (file && *file && url && *url) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "AUTH_JWKS_URL", "set AUTH_JWKS_FILE or AUTH_JWKS_URL, not both");
    return false;
  }
  if (url && *url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "AUTH_JWKS_URL", "AUTH_JWKS_URL must be an http:// or https:// URL");
    return false;
  }
  const char *claim = cqrs_config_env(envp, "AUTH_TENANT_CLAIM");
  cfg->auth_tenant_claim = cqrs_xstrdup(claim && *claim ? claim : "tenant");
  cfg->auth_jwks_file = dup_or_null(envp, "AUTH_JWKS_FILE");
  cfg->auth_jwks_url = dup_or_null(envp, "AUTH_JWKS_URL");
  cfg->auth_issuer = dup_or_null(envp, "AUTH_ISSUER");
  cfg->auth_audience = dup_or_null(envp, "AUTH_AUDIENCE");
  cfg->auth_hs256_secret = dup_or_null(envp, "AUTH_HS256_SECRET");
  return true;
}

/* One STALENESS_OBJECTIVES entry at s ("name=ms", up to ',' or the end): its
 * name (length *name_len) and value; false when it is not one. */
static bool objective_entry(const char *s, size_t *name_len, long *ms, const char **next) {
  const char *eq = strchr(s, '='), *end = strchr(s, ',');
  if (!end) end = s + strlen(s);
  *next = *end ? end + 1 : end;
  if (!eq || eq >= end || eq == s) return false;
  *name_len = (size_t)(eq - s);
  char *stop;
  errno = 0;
  *ms = strtol(eq + 1, &stop, 10);
  return !errno && stop == end && stop != eq + 1 && *ms >= 1 && *ms <= 86400000;
}

static bool objectives_valid(const char *s, cqrs_error_t *err) {
  for (const char *p = s; *p;) {
    size_t len;
    long ms;
    if (!objective_entry(p, &len, &ms, &p)) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "STALENESS_OBJECTIVES",
                     "STALENESS_OBJECTIVES must be <read model>=<ms in 1..86400000>, comma-separated");
      return false;
    }
  }
  return true;
}

int cqrs_config_staleness_objective(const cqrs_config_t *cfg, const char *read_model) {
  size_t want = strlen(read_model);
  for (const char *p = cfg->staleness_objectives; p && *p;) {
    const char *entry = p;
    size_t len;
    long ms;
    if (!objective_entry(p, &len, &ms, &p)) break; /* checked at load */
    if (len == want && strncmp(entry, read_model, len) == 0) return (int)ms;
  }
  return cfg->staleness_objective_ms;
}

bool cqrs_config_load(cqrs_config_t *cfg, char *const *envp, int default_http_port,
                      cqrs_error_t *err) {
  memset(cfg, 0, sizeof *cfg);
  long port, threads, body, timeout, parts, repl, grace, bulk, conc;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  if (!int_var(envp, "HTTP_PORT", default_http_port, 1, 65535, &port, err) ||
      !int_var(envp, "HTTP_THREADS", cores, 1, 256, &threads, err) ||
      !int_var(envp, "MAX_BODY_BYTES", 1 << 20, 1024, 64 << 20, &body, err) ||
      !int_var(envp, "COMMAND_TIMEOUT_MS", 5000, 100, 600000, &timeout, err) ||
      !int_var(envp, "TOPIC_PARTITIONS", 6, 1, 10000, &parts, err) ||
      !int_var(envp, "TOPIC_REPLICATION", -1, -1, 32, &repl, err) ||
      !int_var(envp, "SHUTDOWN_GRACE_MS", 10000, 0, 600000, &grace, err) ||
      !int_var(envp, "MONGO_BULK_MAX", 100, 1, 100000, &bulk, err) ||
      !int_var(envp, "MONGO_WRITE_CONCURRENCY", 4, 1, 64, &conc, err))
    return false;
  cqrs_log_level_t level = CQRS_LOG_INFO;
  const char *lv = cqrs_config_env(envp, "LOG_LEVEL");
  if (lv && *lv && !cqrs_log_level_parse(lv, &level)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "LOG_LEVEL",
                   "LOG_LEVEL must be debug, info, warn or error, got \"%s\"", lv);
    return false;
  }
  const char *poison = cqrs_config_env(envp, "POISON_POLICY");
  if (poison && *poison && strcmp(poison, "dlq") != 0 && strcmp(poison, "halt") != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "POISON_POLICY", "POISON_POLICY must be dlq or halt, got \"%s\"", poison);
    return false;
  }
  cfg->poison_halt = poison && strcmp(poison, "halt") == 0;
  long tick, store_timeout, rl_commands, rl_queries, in_flight, restore_timeout;
  if (!int_var(envp, "WAIT_TICK_MS", 10, 1, 1000, &tick, err) ||
      !int_var(envp, "COMMAND_MAX_IN_FLIGHT", 2048, 1, 1000000, &in_flight, err) ||
      !int_var(envp, "RESTORE_TIMEOUT_MS", 120000, 100, 86400000, &restore_timeout, err) ||
      !int_var(envp, "MONGO_TIMEOUT_MS", 0, 0, 600000, &store_timeout, err) ||
      !int_var(envp, "RATE_LIMIT_COMMANDS", 0, 0, 10000000, &rl_commands, err) ||
      !int_var(envp, "RATE_LIMIT_QUERIES", 0, 0, 10000000, &rl_queries, err))
    return false;
  long lanes, batch, every, linger;
  if (!int_var(envp, "SNAPSHOT_EVERY", CQRS_SNAPSHOT_EVERY_DEFAULT, 0, 1000000, &every, err) ||
      !int_var(envp, "COMMAND_LANES", 1, 1, 64, &lanes, err) ||
      !int_var(envp, "COMMAND_BATCH_MAX", 2000, 1, 100000, &batch, err) ||
      !int_var(envp, "COMMAND_TXN_LINGER_MS", CQRS_COMMAND_TXN_LINGER_MS_DEFAULT, 0, 1000, &linger, err))
    return false;
  cfg->command_txn_linger_ms = (int)linger;
  cfg->command_lanes = (int)lanes;
  cfg->snapshot_every = (int)every;
  cfg->command_batch_max = (int)batch;
  long staleness;
  if (!int_var(envp, "STALENESS_OBJECTIVE_MS", 5000, 1, 86400000, &staleness, err)) return false;
  const char *objectives = cqrs_config_env(envp, "STALENESS_OBJECTIVES");
  if (objectives && *objectives && !objectives_valid(objectives, err)) return false;
  cfg->staleness_objective_ms = (int)staleness;
  cfg->staleness_objectives = objectives && *objectives ? cqrs_xstrdup(objectives) : NULL;
  cfg->rate_limit_commands = (int)rl_commands;
  cfg->rate_limit_queries = (int)rl_queries;
  cfg->wait_tick_ms = (int)tick;
  cfg->restore_timeout_ms = (int)restore_timeout;
  cfg->mongo_timeout_ms = (int)store_timeout;
  cfg->http_port = (int)port;
  cfg->http_threads = (int)threads;
  cfg->max_body_bytes = (size_t)body;
  cfg->command_timeout_ms = (int)timeout;
  cfg->command_max_in_flight = (int)in_flight;
  cfg->topic_partitions = (int)parts;
  cfg->topic_replication = (int)repl;
  cfg->shutdown_grace_ms = (int)grace;
  cfg->mongo_bulk_max = (int)bulk;
  cfg->mongo_write_concurrency = (int)conc;
  cfg->log_level = level;
  cfg->kafka_brokers = dup_or(envp, "KAFKA_BROKERS", "127.0.0.1:9092");
  cfg->mongo_uri = dup_or(envp, "MONGO_URI", "mongodb://127.0.0.1:27017");
  cfg->mongo_db = dup_or(envp, "MONGO_DB", "cqrs");
  cfg->schema_registry_url = dup_or(envp, "SCHEMA_REGISTRY_URL", CQRS_SCHEMA_REGISTRY_DEFAULT);
  const char *projections = cqrs_config_env(envp, "PROJECTIONS");
  cfg->projections = projections && *projections ? cqrs_xstrdup(projections) : NULL;
  const char *pg = cqrs_config_env(envp, "FERRETDB_PG_URI");
  cfg->ferretdb_pg_uri = pg && *pg ? cqrs_xstrdup(pg) : NULL;
  if (!load_auth(cfg, envp, err)) {
    cqrs_config_cleanup(cfg);
    return false;
  }
  if (!load_saga(cfg, envp, err)) {
    cqrs_config_cleanup(cfg);
    return false;
  }
  const char *prefix = cqrs_config_env(envp, "TOPIC_PREFIX");
  cfg->topic_prefix = cqrs_xstrdup(prefix ? prefix : "cqrs."); /* an empty prefix is allowed */
  load_kafka_props(cfg, envp);
  return true;
}

void cqrs_config_cleanup(cqrs_config_t *cfg) {
  if (!cfg) return;
  free(cfg->kafka_brokers);
  free(cfg->mongo_uri);
  free(cfg->mongo_db);
  free(cfg->ferretdb_pg_uri);
  free(cfg->projections);
  free(cfg->staleness_objectives);
  free(cfg->schema_registry_url);
  free(cfg->topic_prefix);
  free(cfg->auth_jwks_file);
  free(cfg->auth_jwks_url);
  free(cfg->auth_issuer);
  free(cfg->auth_audience);
  free(cfg->auth_tenant_claim);
  if (cfg->auth_hs256_secret) explicit_bzero(cfg->auth_hs256_secret, strlen(cfg->auth_hs256_secret));
  free(cfg->auth_hs256_secret);
  if (cfg->saga_signing_key) explicit_bzero(cfg->saga_signing_key, strlen(cfg->saga_signing_key));
  free(cfg->saga_signing_key);
  for (size_t i = 0; i < cfg->n_kafka_props; i++) {
    free(cfg->kafka_props[i].key);
    free(cfg->kafka_props[i].value);
  }
  free(cfg->kafka_props);
  memset(cfg, 0, sizeof *cfg);
}

void cqrs_config_projector_group(const char *projection, bool rebuild, char *out, size_t n) {
  snprintf(out, n, "projector-%s%s", projection, rebuild ? "-rebuild" : "");
}

char *cqrs_config_topic(const cqrs_config_t *cfg, const char *name) {
  size_t n = strlen(cfg->topic_prefix) + strlen(name) + 1;
  char *t = cqrs_xmalloc(n);
  snprintf(t, n, "%s%s", cfg->topic_prefix, name);
  return t;
}
