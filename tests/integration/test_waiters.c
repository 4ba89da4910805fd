/* The waiter hub (query-svc/waiters.h) over real loopback HTTP, against a
 * store that is not there: a waiter is answered 503 at its deadline when the
 * store never answered; stopping the hub answers every waiter 503 once, and
 * later waits at once; nothing leaks (run it under the sanitizers). */
#include "testkit.h"
#include "waiters.h"

#include "cqrs/mongo.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_STORE "{\"error\":\"the read store did not answer\"}"
#define STOPPING "{\"error\":\"the service is stopping\"}"

static const cqrs_single_read_t READ = {"user_profiles", "_id", NULL, "no such user"};

static cqrs_config_t cfg;
static mongoc_client_pool_t *pool;
static cqrs_tenant_store_t *store;
static cqrs_metrics_t *metrics;
static cqrs_log_t log_ = {"integration_waiters", CQRS_LOG_ERROR};
static cqrs_waiters_t *hub;
static cqrs_http_server_t *srv;
static int port;

/* GET /wait/<value>?waitMs=M: waits for version 1 of <value>. */
static void wait_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  const char *ms = cqrs_http_req_query(req, "waitMs");
  cqrs_waiters_wait(hub, req, CQRS_TENANT_DEFAULT, &READ, cqrs_http_req_tail(req), 1, ms ? atoll(ms) : 100);
}

static void setup(void) {
  cqrs_error_t err = {0};
  char uri[96];
  snprintf(uri, sizeof uri, "MONGO_URI=mongodb://127.0.0.1:%d", tk_free_port()); /* nothing listens */
  char *envp[] = {uri, "MONGO_TIMEOUT_MS=300", NULL};
  cr_assert(cqrs_config_load(&cfg, envp, 0, &err), "%s", err.message);
  pool = cqrs_mongo_pool_new(&cfg, "integration_waiters", &err);
  cr_assert_not_null(pool, "%s", err.message);
  store = cqrs_tenant_store_new("integration_waiters", 1000);
  metrics = cqrs_metrics_new();
  cqrs_waiters_config_t wcfg = {pool, store, &log_, metrics, 5, cfg.mongo_timeout_ms, NULL};
  hub = cqrs_waiters_new(&wcfg, &err);
  cr_assert_not_null(hub, "%s", err.message);
  srv = cqrs_http_server_new(0, 2, 1024, &err);
  cr_assert_not_null(srv, "%s", err.message);
  cqrs_http_server_route(srv, "GET", "/wait/", "/wait/{value}", wait_cb, NULL);
  cr_assert(cqrs_http_server_start(srv, &err), "%s", err.message);
  port = cqrs_http_server_port(srv);
}

/* The order query-svc's main uses: the hub, then HTTP, then the rest. */
static void teardown(void) {
  cqrs_waiters_stop(hub);
  cqrs_http_server_destroy(srv);
  cqrs_waiters_destroy(hub);
  mongoc_client_pool_destroy(pool);
  cqrs_tenant_store_destroy(store);
  cqrs_metrics_destroy(metrics);
  cqrs_config_cleanup(&cfg);
}

TestSuite(waiters, .init = setup, .fini = teardown, .timeout = 60);

static double metric(const char *series) {
  size_t len, n = strlen(series);
  char *text = cqrs_metrics_render(metrics, &len);
  double v = -1;
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, series, n) == 0 && p[n] == ' ') v = strtod(p + n + 1, NULL);
  free(text);
  return v;
}

/* Waits (bounded) until series reads v. The hub counts an answer after it
 * hands the answer to the HTTP loop, so a client can hold its response a
 * moment before the counter moves. */
static void await_metric(const char *series, double v) {
  for (int i = 0; i < 1000 && metric(series) != v; i++) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  cr_assert_eq(metric(series), v, "%s", series);
}

typedef struct {
  pthread_t thread;
  char path[64];
  tk_response_t r;
} get_t;

static void *get_main(void *arg) {
  get_t *g = arg;
  tk_http("GET", port, g->path, NULL, 0, &g->r);
  return NULL;
}

Test(waiters, a_waiter_the_store_never_answered_gets_503_at_its_deadline) {
  tk_response_t r;
  cr_assert(tk_http("GET", port, "/wait/u1?waitMs=100", NULL, 0, &r), "no answer");
  cr_expect_eq(r.status, 503);
  cr_expect_str_eq(r.body, NO_STORE);
  cr_expect_null(strstr(r.headers, "X-Stale"), "%s", r.headers);
  tk_response_cleanup(&r);
  await_metric("read_waits_total{outcome=\"error\"}", 1);
  cr_expect_geq(metric("read_wait_polls_total"), 1);
  await_metric("read_waiters", 0);
}

Test(waiters, stopping_answers_every_waiter_503_once_and_later_waits_at_once) {
  get_t gets[5];
  for (int i = 0; i < 5; i++) {
    memset(&gets[i], 0, sizeof gets[i]);
    snprintf(gets[i].path, sizeof gets[i].path, "/wait/v%d?waitMs=10000", i % 2); /* two values */
    cr_assert_eq(pthread_create(&gets[i].thread, NULL, get_main, &gets[i]), 0);
  }
  await_metric("read_waiters", 5);
  cqrs_waiters_stop(hub);
  for (int i = 0; i < 5; i++) {
    pthread_join(gets[i].thread, NULL);
    cr_expect_eq(gets[i].r.status, 503, "%s: %d", gets[i].path, gets[i].r.status);
    cr_expect_str_eq(gets[i].r.body ? gets[i].r.body : "", STOPPING);
    tk_response_cleanup(&gets[i].r);
  }
  await_metric("read_waiters", 0);
  tk_response_t r;
  tk_http("GET", port, "/wait/late?waitMs=10000", NULL, 0, &r);
  cr_expect_eq(r.status, 503);
  cr_expect_str_eq(r.body, STOPPING);
  tk_response_cleanup(&r);
  await_metric("read_waits_total{outcome=\"error\"}", 6);
  cqrs_waiters_stop(hub); /* twice is fine */
}
