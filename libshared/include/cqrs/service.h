/* What every service process does the same way: configuration, logger,
 * metrics, the HTTP server with /healthz, /readyz and /metrics, and waiting
 * for SIGTERM. Each main.c wires its own parts around this. */
#ifndef CQRS_SERVICE_H
#define CQRS_SERVICE_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/http.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include <bson/bson.h>
#include <stdint.h>

/* /readyz asks this: true when the service's Kafka and Mongo connections work. */
typedef bool (*cqrs_ready_cb)(void *ctx, cqrs_error_t *err);

/* /readyz's details: appends members (",\"name\":<JSON>") to its 200 body,
 * things an operator should see that do not make the service unready (e.g.
 * query-svc's read models staler than their objective). */
typedef void (*cqrs_ready_detail_cb)(void *ctx, bson_string_t *body);

/* cqrs_service_wait asks this: true (with err saying what) when a part of the
 * service failed for good and the process must stop and exit non-zero. */
typedef bool (*cqrs_failed_cb)(void *ctx, cqrs_error_t *err);

typedef struct {
  const char *name;
  cqrs_config_t cfg;
  cqrs_log_t log;
  cqrs_metrics_t *metrics;
  cqrs_http_server_t *http;
  cqrs_ready_cb ready;
  void *ready_ctx;
  cqrs_ready_detail_cb ready_detail;
  void *ready_detail_ctx;
  cqrs_failed_cb failed;
  void *failed_ctx;
  int64_t started_ms;
  const char *openapi; /* borrowed; NULL: GET /openapi.json answers 404 */
  size_t openapi_len;
} cqrs_service_t;

/* Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread (call it first in
 * main, before any thread starts, so every thread inherits the mask), reads the
 * configuration from envp, and binds the HTTP port with the health and metrics
 * routes. False with err (and a log line) on bad configuration or a busy port. */
bool cqrs_service_init(cqrs_service_t *svc, const char *name, int default_http_port,
                       char *const *envp, cqrs_error_t *err);

/* Flags of cqrs_service_init_ex. */
enum {
  /* With AUTH=off, HTTP listens on 127.0.0.1 only: a service whose routes
   * must never be open to the network unauthenticated (admin-svc). */
  CQRS_SERVICE_LOOPBACK_WITHOUT_AUTH = 1u << 0,
  /* Its handlers wait on a store (query-svc's finds): HTTP_THREADS defaults to
   * CQRS_BLOCKING_THREADS_PER_CORE x cores instead of cores, so more than one
   * read per core is in flight. */
  CQRS_SERVICE_BLOCKING_HANDLERS = 1u << 1,
};

/* Event loops per core of a service with CQRS_SERVICE_BLOCKING_HANDLERS.
 * Measured (BENCHMARKS.md, "Read side", point reads at 20,000 documents, the
 * machine quiet): query-svc answered 1,969 reads/s with 2 loops on 2 cores
 * and 2,260/s with 8, against 2,238/s (2 threads) to 2,516-2,714/s (16
 * threads) of raw libmongoc finds: 0.73-0.78 of the raw rate became
 * 0.83-0.90. */
#define CQRS_BLOCKING_THREADS_PER_CORE 4

/* As cqrs_service_init, with flags (CQRS_SERVICE_* bits). */
bool cqrs_service_init_ex(cqrs_service_t *svc, const char *name, int default_http_port, char *const *envp,
                          unsigned flags, cqrs_error_t *err);

/* Sets the readiness check (before start). */
void cqrs_service_set_ready(cqrs_service_t *svc, cqrs_ready_cb cb, void *ctx);

/* Sets /readyz's details (before start). */
void cqrs_service_set_ready_detail(cqrs_service_t *svc, cqrs_ready_detail_cb cb, void *ctx);

/* Makes cqrs_service_wait also return when cb reports a failure; it is asked
 * every 100 ms from the waiting thread. Set before waiting. */
void cqrs_service_set_failed(cqrs_service_t *svc, cqrs_failed_cb cb, void *ctx);

/* Makes GET /openapi.json answer json (len bytes, borrowed: it must outlive
 * the service; it is not copied). Until then that route answers 404. Call
 * before start. */
void cqrs_service_set_openapi(cqrs_service_t *svc, const char *json, size_t len);

/* Each service binary's OpenAPI document, NUL-terminated, embedded at build
 * time from docs/openapi/<service>.json (docs/openapi/embed.cmake). */
extern const char *const cqrs_openapi_json;
extern const size_t cqrs_openapi_json_len;

/* Starts serving HTTP and logs where. */
bool cqrs_service_start(cqrs_service_t *svc, cqrs_error_t *err);

/* Blocks until SIGTERM or SIGINT, or until the failure check (if set) reports
 * a failure, and logs which; then arms a watchdog: if the process has not
 * exited SHUTDOWN_GRACE_MS later, it logs that and exits 1. Returns true on a
 * signal, false on a failure (the caller then exits non-zero). */
bool cqrs_service_wait(cqrs_service_t *svc);

/* Stops HTTP and frees everything. Safe on a zeroed or half-initialised svc. */
void cqrs_service_cleanup(cqrs_service_t *svc);

#endif
