/* A saga's compensation as a user sees it, under light load (not a test; run
 * through tests/bench/saga_run.sh, phase "visible"): issue 13's "visible on
 * GET /v1/orders/{id} within 1 s of the order's creation".
 *
 *   saga_visible <command_port> <query_port> <rate> <seconds> [wait_ms]
 *
 * At <rate> orders a second for <seconds>, POST /v1/commands CreateOrder for a
 * user that does not exist, then GET /v1/orders/{id}?minVersion=2&waitMs=<wait_ms>
 * (2000) until the order reads Cancelled with USER_NOT_FOUND: the
 * order_placement saga's RecordUserOrder was refused with 404 and it
 * compensated. Latency from sending the POST to that answer; the POST's own
 * answer apart. One line of results on stdout; exit 1 when an order was
 * not seen compensated. Services on 127.0.0.1 with AUTH=off, or
 * BENCH_TOKEN set to a credential with commands:write and queries:read. */
#include "bench_http.h"
#include "bench_stats.h"

#include "cqrs/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 64

typedef struct {
  int cmd_port, query_port, wait_ms;
  long total;
  int64_t t0, interval_us;
  char run[40], auth[4096];
  atomic_long next, failed_cmd, not_compensated;
  int64_t *ack_us, *vis_us; /* per order; -1 when it failed */
} visible_t;

/* The compensation is visible: the order reads Cancelled for USER_NOT_FOUND. */
static bool compensated(const char *body) {
  return body && strstr(body, "\"status\":\"Cancelled\"") && strstr(body, "\"cancellationReason\":\"USER_NOT_FOUND\"");
}

/* The aggregateId member of a command's answer, into id. */
static bool aggregate_id(const char *body, char id[CQRS_UUID_LEN]) {
  const char *p = body ? strstr(body, "\"aggregateId\":\"") : NULL;
  if (!p) return false;
  p += strlen("\"aggregateId\":\"");
  size_t n = strcspn(p, "\"");
  if (n != CQRS_UUID_LEN - 1) return false;
  memcpy(id, p, n);
  id[n] = '\0';
  return true;
}

static void *order_main(void *arg) {
  visible_t *v = arg;
  const char *extra = v->auth[0] ? v->auth : NULL;
  bh_conn_t cmd = {.port = v->cmd_port, .fd = -1, .timeout_ms = 15000, .extra = extra};
  bh_conn_t query = {.port = v->query_port, .fd = -1, .timeout_ms = v->wait_ms + 5000, .extra = extra};
  for (long i; (i = atomic_fetch_add(&v->next, 1)) < v->total;) {
    bs_sleep_until_us(v->t0 + i * v->interval_us);
    char cid[96], nobody[CQRS_UUID_LEN], id[CQRS_UUID_LEN], body[512], path[160];
    snprintf(cid, sizeof cid, "saga-visible-%s-%ld", v->run, i);
    cqrs_uuid_random(nobody);
    snprintf(body, sizeof body,
             "{\"commandType\":\"CreateOrder\",\"commandId\":\"%s\",\"userId\":\"%s\",\"totalAmount\":2,"
             "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":2}]}",
             cid, nobody);
    int64_t sent = bs_now_us();
    v->ack_us[i] = v->vis_us[i] = -1;
    bh_resp_t r;
    bool ok = bh_request(&cmd, "POST", "/v1/commands", body, &r) && r.status == 201 && aggregate_id(r.body, id);
    free(r.body);
    if (!ok) {
      atomic_fetch_add(&v->failed_cmd, 1);
      continue;
    }
    v->ack_us[i] = bs_now_us() - sent;
    /* Version 2 is the compensation (version 1 the creation); a read that
     * waited its waitMs out answers stale, and is asked again, until
     * wait_ms has passed since the POST. */
    snprintf(path, sizeof path, "/v1/orders/%s?minVersion=2&waitMs=%d", id, v->wait_ms);
    bool seen = false;
    while (!seen && bs_now_us() - sent < (int64_t)v->wait_ms * 1000) {
      if (!bh_request(&query, "GET", path, NULL, &r)) break;
      seen = r.status == 200 && !r.stale && compensated(r.body);
      free(r.body);
    }
    if (!seen) {
      atomic_fetch_add(&v->not_compensated, 1);
      continue;
    }
    v->vis_us[i] = bs_now_us() - sent;
  }
  bh_close(&cmd);
  bh_close(&query);
  return NULL;
}

/* The measured values of v[0..n) (those >= 0), sorted, into out; their count. */
static size_t measured(const int64_t *v, long n, int64_t *out) {
  size_t k = 0;
  for (long i = 0; i < n; i++)
    if (v[i] >= 0) out[k++] = v[i];
  qsort(out, k, sizeof *out, bs_cmp_i64);
  return k;
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 6 || atoi(argv[3]) < 1 || atoi(argv[4]) < 1) {
    fprintf(stderr, "usage: %s <command_port> <query_port> <rate> <seconds> [wait_ms]\n", argv[0]);
    return 2;
  }
  visible_t v = {.cmd_port = atoi(argv[1]), .query_port = atoi(argv[2]), .wait_ms = argc == 6 ? atoi(argv[5]) : 2000};
  int rate = atoi(argv[3]);
  v.total = (long)rate * atoi(argv[4]);
  v.interval_us = 1000000 / rate;
  snprintf(v.run, sizeof v.run, "%lld", (long long)bs_now_us());
  const char *token = getenv("BENCH_TOKEN");
  if (token && *token) snprintf(v.auth, sizeof v.auth, "Authorization: Bearer %s\r\n", token);
  v.ack_us = calloc((size_t)v.total, sizeof *v.ack_us);
  v.vis_us = calloc((size_t)v.total, sizeof *v.vis_us);
  int64_t *s = calloc((size_t)v.total, sizeof *s);
  if (!v.ack_us || !v.vis_us || !s) abort();
  /* Enough workers that an order waiting for its compensation does not hold
   * back the next ones' sends: rate x (wait + 1 s), bounded. */
  int workers = rate * (v.wait_ms / 1000 + 1);
  if (workers > MAX_WORKERS) workers = MAX_WORKERS;
  pthread_t t[MAX_WORKERS];
  v.t0 = bs_now_us() + 50000;
  for (int i = 0; i < workers; i++) pthread_create(&t[i], NULL, order_main, &v);
  for (int i = 0; i < workers; i++) pthread_join(t[i], NULL);
  size_t nv = measured(v.vis_us, v.total, s);
  size_t within = 0;
  for (size_t i = 0; i < nv; i++) within += s[i] <= 1000000;
  double p50 = bs_pct_ms(s, nv, 0.5), p99 = bs_pct_ms(s, nv, 0.99), max = nv ? (double)s[nv - 1] / 1000.0 : -1;
  size_t na = measured(v.ack_us, v.total, s);
  printf("saga_visible rate=%d orders=%ld compensated_visible=%zu within_1s=%zu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f "
         "command_answered_p50_ms=%.1f command_answered_p99_ms=%.1f failed_commands=%ld not_compensated=%ld\n",
         rate, v.total, nv, within, p50, p99, max, bs_pct_ms(s, na, 0.5), bs_pct_ms(s, na, 0.99),
         atomic_load(&v.failed_cmd), atomic_load(&v.not_compensated));
  free(v.ack_us);
  free(v.vis_us);
  free(s);
  return nv == (size_t)v.total ? 0 : 1;
}
