/* Test support for end-to-end tests: a small blocking HTTP client, starting
 * and stopping the service binaries, awaiting conditions with a deadline, and
 * reading JSON answers. */
#ifndef CQRS_TESTKIT_H
#define CQRS_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cqrs/event.h"

typedef struct {
  int status; /* 0 when the connection failed */
  char *body; /* NUL-terminated; free with tk_response_cleanup */
  size_t len;
  char *headers; /* raw header block */
} tk_response_t;

/* A TCP connection to host:port (IPv4), with send and receive timeouts of
 * timeout_ms (0: none); the fd, or -1 when it cannot be made. */
int tk_connect(const char *host, int port, int timeout_ms);

/* True when a TCP connection to host:port (IPv4) is accepted; the connection
 * is closed at once. */
bool tk_port_open(const char *host, int port);

/* One HTTP/1.1 request to 127.0.0.1:port (Connection: close). body may be NULL.
 * Returns false (status 0) when the server cannot be reached. */
bool tk_http(const char *method, int port, const char *path, const char *body, size_t len, tk_response_t *out);

/* The value of the sample series (its name and labels exactly as /metrics
 * writes them, e.g. "transactions_total{outcome=\"committed\",lane=\"0\"}")
 * on port's /metrics, matched as a whole line; -1 when absent or unreadable. */
double tk_metric(int port, const char *series);
/* tk_http with extra request headers: "Name: value\r\n" lines. */
bool tk_http_headers(const char *method, int port, const char *path, const char *headers, const char *body,
                     size_t len, tk_response_t *out);
/* tk_http_headers, giving up (status 0) when connecting, sending or
 * receiving stalls longer than timeout_ms (the others wait 30 s): for a
 * client that retries elsewhere, as the fault suite's load does. */
bool tk_http_timeout(const char *method, int port, const char *path, const char *headers, const char *body,
                     size_t len, int timeout_ms, tk_response_t *out);
void tk_response_cleanup(tk_response_t *r);

/* A string member of a JSON object (malloc'd), or NULL. */
char *tk_json_string(const char *json, const char *key);
/* An integer member of a JSON object, or INT64_MIN. */
int64_t tk_json_int(const char *json, const char *key);
/* True when the member is present and JSON null. */
bool tk_json_is_null(const char *json, const char *key);

/* The isolated environment of one test run: its ports, topic prefix and database. */
typedef struct {
  int command_port, query_port, projector_port;
  int admin_port; /* admin-svc (TK_ADMIN) */
  int saga_port;  /* saga-svc (TK_SAGA) */
  char prefix[64];
  char db[64];
  char brokers[256];
  char mongo_uri[256];
} tk_env_t;

/* Fills env with free ports and a unique prefix/db; fails the test with a clear
 * message when Kafka or MongoDB cannot be reached. */
void tk_env_init(tk_env_t *env);

/* A TCP port free on every interface right now, below the ephemeral range
 * (so no outgoing connection takes it before a service binds it). */
int tk_free_port(void);

/* TK_ADMIN is admin-svc, TK_SAGA saga-svc; tk_start_all starts the first three only. */
typedef enum { TK_COMMAND, TK_PROJECTOR, TK_QUERY, TK_ADMIN, TK_SAGA } tk_service_t;

/* The HTTP port of svc in env. */
int tk_port(const tk_env_t *env, tk_service_t svc);
/* The binary's name of svc, e.g. "admin-svc" (static). */
const char *tk_service_name(tk_service_t svc);
/* The log file of svc started with env: CQRS_TEST_LOG_DIR/<prefix><name>.log. */
const char *tk_log_path(const tk_env_t *env, tk_service_t svc, char out[512]);

/* Starts a service with env's settings (see tk_start) without waiting for it;
 * log receives the path of its log file. */
pid_t tk_spawn(const tk_env_t *env, tk_service_t svc, const char *const *extra, char log[512]);

/* Runs `projector-svc --rebuild <projection> --from-beginning` with env's
 * settings to the end (bounded: 180 s) and returns its wait status. */
int tk_rebuild(const tk_env_t *env, const char *projection);
/* The same with `--tenant <tenant>` (tenant NULL: none, every tenant). */
int tk_rebuild_tenant(const tk_env_t *env, const char *projection, const char *tenant);
/* The --postgresql-url argument of a FerretDB a test starts on PostgreSQL pg
 * (a URI without a query string): with the pool the local stack gives its own
 * FerretDB (deploy/local/lib.sh, FERRETDB_POOL_MAX_CONNS: FerretDB's default
 * of 50 deadlocks under 50 concurrent update commands). */
void tk_ferretdb_url_arg(const char *pg, char *out, size_t cap);

/* Runs projector-svc with args (NULL-terminated) and env's settings to the
 * end (bounded: 180 s) and returns its wait status. */
int tk_projector_cli(const tk_env_t *env, char *const *args);

/* The database holding tenant's read models: "<env->db>_<tenant>"
 * (cqrs/tenant.h). Tests with AUTH=off write as tenant "default". */
const char *tk_tenant_db(const tk_env_t *env, const char *tenant, char out[128]);

/* Starts a service with env's settings (plus extra "NAME=value" strings,
 * NULL-terminated, may be NULL); its log goes to CQRS_TEST_LOG_DIR. Waits
 * (bounded) until /readyz answers 200 and returns its pid; fails the test
 * otherwise. */
pid_t tk_start(const tk_env_t *env, tk_service_t svc, const char *const *extra);

/* Waits (bounded, 60 s) until the service tk_spawn started as pid answers
 * 200 on /readyz and returns pid; fails the test, naming log, when it exits
 * or does not become ready. tk_spawn several, then await each: they start
 * side by side. */
pid_t tk_await_ready(const tk_env_t *env, tk_service_t svc, pid_t pid, const char *log);

/* Starts all three services (command, projector, query) into pids, indexed
 * by tk_service_t; tk_stop_all sends them SIGTERM and reaps those still set. */
void tk_start_all(const tk_env_t *env, pid_t pids[3]);
void tk_stop_all(pid_t pids[3]);

/* Sends sig to pid and reaps it (bounded; SIGKILL after 15 s). Returns the
 * exit status as waitpid gives it. */
int tk_stop(pid_t pid, int sig);

/* POSTs the JSON printf(fmt, ...) to env's command-svc /v1/commands, fails
 * the test unless it answers want, and returns the body (free it). */
char *tk_command(const tk_env_t *env, int want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Repeats a GET until its status is want and pred (may be NULL) accepts the
 * body, or timeout_ms passes. Between tries it waits 50 ms: the condition is
 * awaited, not assumed. Returns true when met; r holds the last answer. */
bool tk_await_get(int port, const char *path, int want, bool (*pred)(const char *body, void *ctx), void *ctx,
                  int timeout_ms, tk_response_t *r);

/* One record read back from Kafka: key, value and the headers the tests need. */
typedef struct {
  char *key;
  char *value;
  int32_t partition;
  int64_t offset;
  char *ce_type, *ce_subject, *ce_causationid, *traceparent, *ce_tenant;
  char *ce_id, *ce_time;
  int64_t version; /* ce_aggregateversion, 0 when absent */
  /* every header, names and values owned (values NUL-terminated too): what
   * cqrs_event_from_record decodes */
  cqrs_header_t *headers;
  size_t n_headers;
  char *ce_dataschema, *ce_schemaversion; /* the event's schema (NULL when absent) */
  char *dlq_error, *dlq_projection;       /* a dead letter's reason and projection */
} tk_record_t;

/* Reads every committed record of topic (read_committed, all partitions, from
 * the beginning to the current end). *n gets the count; free with
 * tk_records_free. Fails the test when Kafka does not answer. */
tk_record_t *tk_kafka_read_all(const tk_env_t *env, const char *topic, size_t *n);
void tk_records_free(tk_record_t *r, size_t n);

/* The value (malloc'd) of the command-results record keyed key
 * ("<tenant>/<commandId>"), awaited (re-read every 100 ms) up to timeout_ms;
 * NULL when none came. *count (may be NULL) gets how many records carry key. */
char *tk_await_result(const tk_env_t *env, const char *key, int timeout_ms, size_t *count);

/* Produces one record (key may be NULL) to topic, on partition (-1: the
 * default partitioner), with headers: "name", "value" pairs ending in NULL
 * (may be NULL). Waits until Kafka has it; fails the test otherwise. */
/* Creates topic with partitions (replication 1; an existing one is fine).
 * Fails the test when Kafka does not. */
void tk_kafka_create_topic(const tk_env_t *env, const char *topic, int partitions);

void tk_kafka_produce(const tk_env_t *env, const char *topic, int32_t partition, const char *key,
                      const char *value, const char *const *headers);

/* Produces an event of type on aggregate_type id at aggregate version to
 * env's topic name ("events", or "events.dlq" with dlq_* headers in extra)
 * the way writers did before schema versions: CloudEvents headers without
 * ce_dataschema, with ce_schemaversion only when schema_version is not NULL,
 * then extra ("name", "value" pairs ending in NULL; may be NULL); keyed
 * "default/<id>" in the partition command-svc would choose (the tests' topics
 * have 3), ce_id "<type>-<id>-<version>". Fails the test when Kafka does not
 * take it. */
void tk_produce_raw_event(const tk_env_t *env, const char *name, const char *type, const char *aggregate_type,
                          const char *id, int version, const char *schema_version, const char *data,
                          const char *const *extra);

/* The record of aggregate_id's event at version (0: its first) on env's
 * events topic; fails the test when there is none. Free it with
 * tk_records_free(r, 1). */
tk_record_t *tk_event_record(const tk_env_t *env, const char *aggregate_id, int64_t version);

/* Produces rec again, byte for byte (key, value, every header), to its
 * partition of topic: a redelivery as a consumer would meet it. Waits until
 * Kafka has it; fails the test otherwise. */
void tk_kafka_reproduce(const tk_env_t *env, const char *topic, const tk_record_t *rec);

/* Produces evs[0..n) to env's events topic as command-svc writes events
 * (CloudEvents headers, key "<tenant>/<aggregateId>", the data as JSON), in
 * order; ev.data is the event's data document, ev.tenant must be set. Waits
 * until Kafka has them all; fails the test otherwise. */
void tk_produce_events(const tk_env_t *env, const cqrs_event_t *evs, size_t n);
/* One event as tk_produce_events writes it, to partition of the events topic
 * whatever its key: to put it behind a given record. */
void tk_produce_event_on(const tk_env_t *env, const cqrs_event_t *ev, int32_t partition);

/* prefix + name into out. */
const char *tk_topic(const tk_env_t *env, const char *name, char out[128]);

#endif
