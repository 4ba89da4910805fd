/* Service scaffolding: config, log, metrics, health routes, signals. */
#include "cqrs/service.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void block_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  pthread_sigmask(SIG_BLOCK, set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static void healthz_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  static const char body[] = "{\"status\":\"ok\"}";
  cqrs_http_reply_json(req, 200, body, sizeof body - 1);
}

static void readyz_cb(cqrs_http_req_t *req, void *ctx) {
  cqrs_service_t *svc = ctx;
  cqrs_error_t err = {0};
  if (svc->ready && !svc->ready(svc->ready_ctx, &err)) {
    cqrs_http_reply_error(req, 503, err.message, NULL);
    return;
  }
  bson_string_t *body = bson_string_new("{\"status\":\"ready\"");
  if (svc->ready_detail) svc->ready_detail(svc->ready_detail_ctx, body);
  bson_string_append_c(body, '}');
  cqrs_http_reply_json(req, 200, body->str, body->len);
  bson_string_free(body, true);
}

static void metrics_cb(cqrs_http_req_t *req, void *ctx) {
  cqrs_service_t *svc = ctx;
  cqrs_metrics_set(svc->metrics, "process_uptime_seconds", NULL,
                   (double)(cqrs_time_monotonic_ms() - svc->started_ms) / 1000.0);
  size_t len;
  char *text = cqrs_metrics_render(svc->metrics, &len);
  cqrs_http_reply(req, 200, "text/plain; version=0.0.4", text, len);
  free(text);
}

static void openapi_cb(cqrs_http_req_t *req, void *ctx) {
  cqrs_service_t *svc = ctx;
  if (!svc->openapi) {
    cqrs_http_reply_error(req, 404, "no OpenAPI document", NULL);
    return;
  }
  cqrs_http_reply_json(req, 200, svc->openapi, svc->openapi_len);
}

static void http_observer(const char *route, int status, int64_t micros, void *ctx) {
  cqrs_service_t *svc = ctx;
  char labels[160];
  snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route, status);
  cqrs_metrics_observe(svc->metrics, "http_request_duration_seconds", labels, (double)micros / 1e6);
}

bool cqrs_service_init(cqrs_service_t *svc, const char *name, int default_http_port,
                       char *const *envp, cqrs_error_t *err) {
  return cqrs_service_init_ex(svc, name, default_http_port, envp, 0, err);
}

bool cqrs_service_init_ex(cqrs_service_t *svc, const char *name, int default_http_port, char *const *envp,
                          unsigned flags, cqrs_error_t *err) {
  sigset_t set;
  block_signals(&set);
  memset(svc, 0, sizeof *svc);
  svc->name = name;
  svc->log.service = name;
  svc->log.level = CQRS_LOG_INFO;
  svc->started_ms = cqrs_time_monotonic_ms();
  if (!cqrs_config_load(&svc->cfg, envp, default_http_port, err)) {
    cqrs_log_error(&svc->log, "bad configuration", "error", err->message, "variable", err->field, NULL);
    return false;
  }
  svc->log.level = svc->cfg.log_level;
  if ((flags & CQRS_SERVICE_BLOCKING_HANDLERS) && !cqrs_config_env(envp, "HTTP_THREADS")) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = (cores < 1 ? 1 : cores) * CQRS_BLOCKING_THREADS_PER_CORE;
    svc->cfg.http_threads = (int)(threads > 256 ? 256 : threads);
  }
  svc->metrics = cqrs_metrics_new();
  cqrs_metrics_describe(svc->metrics, "process_uptime_seconds", CQRS_METRIC_GAUGE,
                        "Seconds since the process started.");
  cqrs_metrics_describe(svc->metrics, "http_request_duration_seconds", CQRS_METRIC_HISTOGRAM,
                        "HTTP request latency by route and status.");
  const char *bind = NULL;
  if ((flags & CQRS_SERVICE_LOOPBACK_WITHOUT_AUTH) && !svc->cfg.auth_enabled) {
    bind = "127.0.0.1";
    cqrs_log_warn(&svc->log, "AUTH=off: serving HTTP on loopback only", "address", bind, NULL);
  }
  svc->http = cqrs_http_server_new_at(bind, svc->cfg.http_port, svc->cfg.http_threads, svc->cfg.max_body_bytes,
                                      err);
  if (!svc->http) {
    cqrs_log_error(&svc->log, "cannot serve HTTP", "error", err->message, NULL);
    return false;
  }
  cqrs_http_server_set_observer(svc->http, http_observer, svc);
  cqrs_http_server_route(svc->http, "GET", "/healthz", "/healthz", healthz_cb, svc);
  cqrs_http_server_route(svc->http, "GET", "/readyz", "/readyz", readyz_cb, svc);
  cqrs_http_server_route(svc->http, "GET", "/metrics", "/metrics", metrics_cb, svc);
  cqrs_http_server_route(svc->http, "GET", "/openapi.json", "/openapi.json", openapi_cb, svc);
  return true;
}

void cqrs_service_set_ready(cqrs_service_t *svc, cqrs_ready_cb cb, void *ctx) {
  svc->ready = cb;
  svc->ready_ctx = ctx;
}

void cqrs_service_set_ready_detail(cqrs_service_t *svc, cqrs_ready_detail_cb cb, void *ctx) {
  svc->ready_detail = cb;
  svc->ready_detail_ctx = ctx;
}

void cqrs_service_set_failed(cqrs_service_t *svc, cqrs_failed_cb cb, void *ctx) {
  svc->failed = cb;
  svc->failed_ctx = ctx;
}

void cqrs_service_set_openapi(cqrs_service_t *svc, const char *json, size_t len) {
  svc->openapi = json;
  svc->openapi_len = len;
}

bool cqrs_service_start(cqrs_service_t *svc, cqrs_error_t *err) {
  if (!cqrs_http_server_start(svc->http, err)) {
    cqrs_log_error(&svc->log, "cannot start HTTP", "error", err->message, NULL);
    return false;
  }
  char port[16], threads[16];
  snprintf(port, sizeof port, "%d", cqrs_http_server_port(svc->http));
  snprintf(threads, sizeof threads, "%d", svc->cfg.http_threads);
  cqrs_log_info(&svc->log, "listening", "port", port, "httpThreads", threads, NULL);
  return true;
}

typedef struct {
  cqrs_log_t log;
  int grace_ms;
} grace_t;

/* The stop must finish within the grace period (Kubernetes sends SIGKILL
 * after terminationGracePeriodSeconds anyway): past it, say so and exit. */
static void *grace_main(void *arg) {
  grace_t *g = arg;
  struct timespec ts = {g->grace_ms / 1000, (long)(g->grace_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  char ms[16];
  snprintf(ms, sizeof ms, "%d", g->grace_ms);
  cqrs_log_error(&g->log, "stop took longer than the grace period; exiting now", "graceMs", ms, NULL);
  _exit(1);
  return NULL;
}

bool cqrs_service_wait(cqrs_service_t *svc) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  /* Signals stay blocked (cqrs_service_init): take them here, and between
   * them ask the failure check. */
  const struct timespec tick = {0, 100 * 1000000L};
  cqrs_error_t err = {0};
  int sig = -1;
  bool failed = false;
  while (sig != SIGTERM && sig != SIGINT && !failed) {
    sig = sigtimedwait(&set, NULL, svc->failed ? &tick : NULL);
    failed = sig < 0 && svc->failed && svc->failed(svc->failed_ctx, &err);
  }
  char ms[16];
  snprintf(ms, sizeof ms, "%d", svc->cfg.shutdown_grace_ms);
  if (failed)
    cqrs_log_error(&svc->log, "stopping after a fatal error", "error", err.message, "graceMs", ms, NULL);
  else
    cqrs_log_info(&svc->log, "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", "graceMs", ms, NULL);
  static grace_t g; /* lives until exit: the watchdog may outlive cleanup */
  g.log = svc->log;
  g.grace_ms = svc->cfg.shutdown_grace_ms;
  pthread_t t;
  if (pthread_create(&t, NULL, grace_main, &g) == 0) pthread_detach(t);
  return !failed;
}

void cqrs_service_cleanup(cqrs_service_t *svc) {
  if (!svc) return;
  cqrs_http_server_destroy(svc->http);
  svc->http = NULL;
  cqrs_metrics_destroy(svc->metrics);
  svc->metrics = NULL;
  cqrs_config_cleanup(&svc->cfg);
}
