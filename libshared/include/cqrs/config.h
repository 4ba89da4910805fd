/* Service configuration, read once at start from the environment (API.md's
 * table plus a few tuning knobs) and passed down; never a global. */
#ifndef CQRS_CONFIG_H
#define CQRS_CONFIG_H

#include "cqrs/error.h"
#include "cqrs/log.h"

#include <stdbool.h>
#include <stddef.h>

/* SNAPSHOT_EVERY's default (projector-svc/projections/snapshots.c says why). */
#define CQRS_SNAPSHOT_EVERY_DEFAULT 100
/* COMMAND_TXN_LINGER_MS's default (command-svc/command_loop.c says why). */
#define CQRS_COMMAND_TXN_LINGER_MS_DEFAULT 30

typedef struct {
  char *key;   /* librdkafka property, e.g. "sasl.mechanism" */
  char *value;
} cqrs_kv_t;

typedef struct {
  char *kafka_brokers;       /* KAFKA_BROKERS */
  cqrs_kv_t *kafka_props;    /* every other KAFKA_* variable, as librdkafka properties */
  size_t n_kafka_props;
  char *mongo_uri;           /* MONGO_URI */
  char *mongo_db;            /* MONGO_DB */
  char *topic_prefix;        /* TOPIC_PREFIX */
  int http_port;             /* HTTP_PORT */
  int http_threads;          /* HTTP_THREADS: event loops sharing the port (default: cores) */
  cqrs_log_level_t log_level;/* LOG_LEVEL */
  size_t max_body_bytes;     /* MAX_BODY_BYTES: larger request bodies get 413 (1 MiB) */
  int command_timeout_ms;    /* COMMAND_TIMEOUT_MS: HTTP wait for a command result (5000) */
  int command_lanes;         /* COMMAND_LANES: command loops per command-svc, each a consumer group member
                              * with its own transactional producer, so transactions overlap (1; README,
                              * "Why lanes") */
  int command_batch_max;     /* COMMAND_BATCH_MAX: command records per lane transaction, at most (2000) */
  int command_txn_linger_ms; /* COMMAND_TXN_LINGER_MS: a lane begins a transaction at most this often,
                              * gathering the commands that arrive meanwhile (0: as soon as it has one;
                              * default CQRS_COMMAND_TXN_LINGER_MS_DEFAULT; README, "Why lanes") */
  int command_max_in_flight; /* COMMAND_MAX_IN_FLIGHT: HTTP commands awaiting their result at once per
                              * replica; past it, 503 with Retry-After (2048) */
  int topic_partitions;      /* TOPIC_PARTITIONS: partitions of topics we create (6) */
  int topic_replication;     /* TOPIC_REPLICATION: replicas of topics we create (-1: broker default) */
  int shutdown_grace_ms;     /* SHUTDOWN_GRACE_MS: how long SIGTERM may take (10000) */
  int restore_timeout_ms;    /* RESTORE_TIMEOUT_MS: how long command-svc may take to restore its assigned
                              * partitions, broker outages included, before it exits for a restart (120000) */
  int mongo_bulk_max;        /* MONGO_BULK_MAX: writes per bulk command (100; see projector-svc) */
  int mongo_write_concurrency; /* MONGO_WRITE_CONCURRENCY: bulk commands in flight per projection (4) */
  char *ferretdb_pg_uri;     /* FERRETDB_PG_URI: the PostgreSQL behind FerretDB, for its GIN indexes; NULL: none */
  bool poison_halt;          /* POISON_POLICY: "dlq" (default) or "halt" (projector-svc, saga-svc) */
  char *projections;         /* PROJECTIONS: the read models this projector-svc maintains, comma-separated
                              * names; NULL: every one */
  int snapshot_every;        /* SNAPSHOT_EVERY: projector-svc snapshots each time-travel read model every
                              * this many versions of an aggregate, and query-svc starts time travel from
                              * them (both must agree); 0: no snapshots (CQRS_SNAPSHOT_EVERY_DEFAULT) */
  int wait_tick_ms;          /* WAIT_TICK_MS: how often query-svc re-reads for waiting reads (10) */
  int mongo_timeout_ms;      /* MONGO_TIMEOUT_MS: bound on each store wait (server selection, connect,
                              * socket); 0 (default): the service's own default */
  /* Authentication (cqrs/auth.h says how they combine). */
  bool auth_enabled;         /* AUTH: "on" (default) or "off" */
  char *auth_jwks_file;      /* AUTH_JWKS_FILE: a JWKS on disk; NULL: none */
  char *auth_jwks_url;       /* AUTH_JWKS_URL: a JWKS over HTTP(S); NULL: none (not both) */
  int auth_jwks_refresh_s;   /* AUTH_JWKS_REFRESH_S: how often the JWKS is re-read (300) */
  char *auth_issuer;         /* AUTH_ISSUER: the JWT "iss" required; NULL: unset */
  char *auth_audience;       /* AUTH_AUDIENCE: the JWT "aud" required; NULL: unset */
  char *auth_tenant_claim;   /* AUTH_TENANT_CLAIM: the claim naming the tenant ("tenant") */
  char *auth_hs256_secret;   /* AUTH_HS256_SECRET: enables HS256 (>= 32 bytes); NULL: HS256 refused.
                              * A secret: never log it */
  int auth_leeway_s;         /* AUTH_LEEWAY_S: clock skew allowed on exp/nbf/iat (30) */
  /* Fairness (cqrs/ratelimit.h): requests per second per tenant, burst twice that; 0: none */
  int rate_limit_commands;   /* RATE_LIMIT_COMMANDS: command-svc (0) */
  int rate_limit_queries;    /* RATE_LIMIT_QUERIES: query-svc (0) */
  /* Freshness (cqrs/freshness.h): how stale a read model may be before it is
   * reported as breaching its objective (query-svc). */
  int staleness_objective_ms; /* STALENESS_OBJECTIVE_MS: every read model's (5000) */
  char *staleness_objectives; /* STALENESS_OBJECTIVES: "<read model>=<ms>,..." overrides; NULL: none */
  /* Schemas (cqrs/event.h): the registry events' ce_dataschema points at */
  char *schema_registry_url;  /* SCHEMA_REGISTRY_URL (CQRS_SCHEMA_REGISTRY_DEFAULT: admin-svc on loopback) */
  /* Sagas (saga-svc; command-svc for the first two). Durations take "<n>", "<n>s", "<n>m" or "<n>h". */
  int order_processing_timeout_s; /* ORDER_PROCESSING_TIMEOUT: an order's default processBy after createdAt (24h) */
  char *saga_signing_key;    /* SAGA_SIGNING_KEY: HMAC key saga-svc signs its commands with and command-svc
                              * checks them with (>= 32 bytes); NULL: saga commands refused.
                              * A secret: never log it */
  int saga_stuck_after_s;    /* SAGA_STUCK_AFTER: a running saga untouched this long lists as stuck (1h) */
} cqrs_config_t;

/* Reads cfg from envp (a NULL-terminated "NAME=value" array such as environ)
 * with default_http_port for HTTP_PORT. On a bad value, returns false with err
 * naming the variable; cfg then holds nothing to free. cfg is caller-owned
 * storage; release it with cqrs_config_cleanup. */
bool cqrs_config_load(cqrs_config_t *cfg, char *const *envp, int default_http_port,
                      cqrs_error_t *err);

/* Frees what cqrs_config_load allocated. Safe on a zeroed cfg. */
void cqrs_config_cleanup(cqrs_config_t *cfg);

/* read_model's staleness objective in ms: its STALENESS_OBJECTIVES entry,
 * else STALENESS_OBJECTIVE_MS. Can't fail. */
int cqrs_config_staleness_objective(const cqrs_config_t *cfg, const char *read_model);

/* The full name of a topic: prefix + name. Caller frees with free(). */
char *cqrs_config_topic(const cqrs_config_t *cfg, const char *name);

/* The value of variable name in envp ("NAME=value" strings, NULL-terminated;
 * envp may be NULL), or NULL when it is not set. Borrowed from envp. */
const char *cqrs_config_env(char *const *envp, const char *name);

/* The consumer group of projection's apply loop, as cqrs_kafka_consumer_new
 * takes it (TOPIC_PREFIX is added there): "projector-<projection>", or with
 * rebuild "projector-<projection>-rebuild" (a rebuild commits nothing: its
 * name only has to differ from the live one). projector-svc consumes in it;
 * admin-svc reads its committed offsets as the projection's lag. Into out (n
 * bytes, CQRS_GROUP_MAX is room for any projection name; cut when longer).
 * Can't fail. */
#define CQRS_GROUP_MAX 160
void cqrs_config_projector_group(const char *projection, bool rebuild, char *out, size_t n);

#endif
