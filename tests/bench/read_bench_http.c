/* read_bench wait-applied and visible (read_bench.h): what the benchmark asks
 * the services over HTTP (bench_http.h). */
#include "read_bench.h"
#include "bench_stats.h"

#include "bench_http.h"

#include "cqrs/util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- wait-applied ---- */

#define USER_PROFILES "projection=\"user_profiles\""

static double applied_count(int port) {
  char *m = bh_metrics(port);
  double v = m ? bh_metric_sum(m, "events_applied_total", USER_PROFILES) : -1;
  free(m);
  return v;
}

/* The rate is counted from the first sample that saw applied events (the
 * projector's first batch committed) to the sample that saw all of them, over
 * the events applied in between; since_start also counts the start, the
 * consumer group joins and the index checks. */
int rb_wait_applied(int port, long count, int timeout_s) {
  int64_t t0 = bs_now_us(), t_first = 0, deadline = t0 + (int64_t)timeout_s * 1000000;
  double first = 0, v = 0;
  while (bs_now_us() < deadline) {
    v = applied_count(port);
    int64_t t = bs_now_us();
    if (v > 0 && !t_first) t_first = t, first = v;
    if (v >= (double)count) {
      double total = (double)(t - t0) / 1e6, window = (double)(t - t_first) / 1e6;
      printf("projector applied=%.0f since_start_s=%.2f first_applied_after_s=%.2f first_sample=%.0f "
             "apply_window_s=%.2f events_per_s=%.0f events_per_s_since_start=%.0f\n",
             v, total, (double)(t_first - t0) / 1e6, first, window,
             window > 0 ? ((double)count - first) / window : 0.0, (double)count / total);
      return 0;
    }
    usleep(5000);
  }
  printf("projector applied=%.0f of %ld: timed out after %d s\n", v, count, timeout_s);
  return 1;
}

/* ---- visible ---- */

typedef struct {
  int cmd_port, query_port, proj_port, wait_ms;
  long total;
  int64_t t0, interval_us;
  char run[16];
  atomic_long next;
  atomic_bool done;
  pthread_barrier_t connected, go; /* every worker's connections open before the clock starts */
  int64_t *ack_us, *vis_us, *lag_us; /* per command; -1 when it failed */
  atomic_long failed_cmd, read_no_answer, read_status, stale;
  double lag_max, waiters_max; /* sampled */
} visible_t;

static void *visible_main(void *arg) {
  visible_t *v = arg;
  int to = v->wait_ms + 5000; /* the read answers by waitMs, stale or not: no answer 5 s later is a failure */
  bh_conn_t cmd = {.port = v->cmd_port, .fd = -1, .timeout_ms = 15000};
  bh_conn_t query = {.port = v->query_port, .fd = -1, .timeout_ms = to};
  /* Connected first: measured from a cold start, the first 1,000 commands
   * (one per worker) also timed 2,000 TCP connects and the services'
   * first requests on them, a harness's start rather than the steady rate. */
  bh_resp_t hello;
  if (bh_request(&cmd, "GET", "/healthz", NULL, &hello)) free(hello.body);
  if (bh_request(&query, "GET", "/healthz", NULL, &hello)) free(hello.body);
  pthread_barrier_wait(&v->connected);
  pthread_barrier_wait(&v->go);
  for (long i; (i = atomic_fetch_add(&v->next, 1)) < v->total;) {
    int64_t due = v->t0 + i * v->interval_us;
    bs_sleep_until_us(due);
    char cid[96], id[CQRS_UUID_LEN], body[512], path[160];
    snprintf(cid, sizeof cid, "visible-%s-%ld", v->run, i);
    cqrs_uuid_from_name(cid, id);
    snprintf(body, sizeof body,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"%s\",\"aggregateId\":\"%s\",\"email\":"
             "\"visible%ld@example.com\",\"name\":\"Visible User %ld\"}",
             cid, id, i, i);
    int64_t sent = bs_now_us();
    v->lag_us[i] = sent - due;
    v->ack_us[i] = v->vis_us[i] = -1;
    bh_resp_t r;
    bool ok = bh_request(&cmd, "POST", "/v1/commands", body, &r) && r.status == 201;
    free(r.body);
    if (!ok) {
      atomic_fetch_add(&v->failed_cmd, 1);
      continue;
    }
    v->ack_us[i] = bs_now_us() - sent;
    snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=%d", id, v->wait_ms);
    bool answered = bh_request(&query, "GET", path, NULL, &r);
    ok = answered && r.status == 200 && !r.stale;
    free(r.body);
    if (!ok) {
      atomic_fetch_add(!answered ? &v->read_no_answer : r.status != 200 ? &v->read_status : &v->stale, 1);
      continue;
    }
    v->vis_us[i] = bs_now_us() - sent;
  }
  bh_close(&cmd);
  bh_close(&query);
  return NULL;
}

/* The services' view meanwhile: projector lag (user_profiles, all
 * partitions) and query-svc's waiting reads, every 500 ms. */
static void *sampler_main(void *arg) {
  visible_t *v = arg;
  /* with BENCH_VISIBLE_DUMP, the projector's share every 500 ms too: "<ms
   * from the start> <events> <p50 ms> <p99 ms> <batches written> <write
   * p50 ms> <write p99 ms>" in <file>.projector */
  const char *path = getenv("BENCH_VISIBLE_DUMP");
  char proj_path[512];
  snprintf(proj_path, sizeof proj_path, "%s.projector", path ? path : "");
  FILE *f = path && *path ? fopen(proj_path, "w") : NULL;
  bh_histogram_t prev = {0}, cur, wprev = {0}, wcur;
  while (!atomic_load(&v->done)) {
    char *m = bh_metrics(v->proj_port);
    if (m) {
      double lag = bh_metric_sum(m, "projection_lag_events", USER_PROFILES);
      if (lag > v->lag_max) v->lag_max = lag;
      bh_histogram_read(m, "projector_event_delay_seconds", USER_PROFILES, &cur);
      bh_histogram_read(m, "projector_write_seconds", USER_PROFILES, &wcur);
      if (f && prev.n && cur.n == prev.n)
        fprintf(f, "%.0f %.0f %.1f %.1f %.0f %.1f %.1f\n", (double)(bs_now_us() - v->t0) / 1000.0,
                cur.count[cur.n - 1] - prev.count[prev.n - 1], bh_histogram_quantile_ms(&prev, &cur, 0.5),
                bh_histogram_quantile_ms(&prev, &cur, 0.99),
                wcur.n && wprev.n ? wcur.count[wcur.n - 1] - wprev.count[wprev.n - 1] : -1,
                bh_histogram_quantile_ms(&wprev, &wcur, 0.5), bh_histogram_quantile_ms(&wprev, &wcur, 0.99));
      prev = cur;
      wprev = wcur;
      free(m);
    }
    if ((m = bh_metrics(v->query_port)) != NULL) {
      double w = bh_metric_sum(m, "read_waiters", NULL);
      if (w > v->waiters_max) v->waiters_max = w;
      free(m);
    }
    for (int i = 0; i < 10 && !atomic_load(&v->done); i++) usleep(50000);
  }
  if (f) fclose(f);
  return NULL;
}

typedef struct {
  double tx_sum, tx_count, timeouts, polls, applied, waits_fresh, waits_stale;
  bh_histogram_t proj_delay; /* user_profiles' projector_event_delay_seconds */
} counters_t;

/* A service whose /metrics did not answer leaves its fields NAN ("nan" in
 * the result line). */
static counters_t counters(const visible_t *v) {
  counters_t c = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, {0}};
  char *m = bh_metrics(v->cmd_port);
  if (m) {
    c.tx_sum = bh_metric_sum(m, "transaction_duration_seconds_sum", NULL);
    c.tx_count = bh_metric_sum(m, "transaction_duration_seconds_count", NULL);
    c.timeouts = bh_metric_sum(m, "command_timeouts_total", NULL);
    free(m);
  }
  if ((m = bh_metrics(v->query_port)) != NULL) {
    c.polls = bh_metric_sum(m, "read_wait_polls_total", NULL);
    c.waits_fresh = bh_metric_sum(m, "read_waits_total", "fresh");
    c.waits_stale = bh_metric_sum(m, "read_waits_total", "stale");
    free(m);
  }
  if ((m = bh_metrics(v->proj_port)) != NULL) {
    c.applied = bh_metric_sum(m, "events_applied_total", USER_PROFILES);
    bh_histogram_read(m, "projector_event_delay_seconds", USER_PROFILES, &c.proj_delay);
    free(m);
  }
  return c;
}

static size_t collect(const int64_t *in, long n, int64_t *out) {
  size_t k = 0;
  for (long i = 0; i < n; i++)
    if (in[i] >= 0) out[k++] = in[i];
  qsort(out, k, sizeof *out, bs_cmp_i64);
  return k;
}

/* BENCH_VISIBLE_DUMP=<file>: one line per command, "<i> <sent at, ms from
 * the start> <answered after, ms> <visible after, ms>" (-1: never), to see
 * when the slow ones were sent (together, or spread over the run). */
static void dump(const visible_t *v) {
  const char *path = getenv("BENCH_VISIBLE_DUMP");
  FILE *f = path && *path ? fopen(path, "w") : NULL;
  if (!f) return;
  for (long i = 0; i < v->total; i++)
    fprintf(f, "%ld %.1f %.1f %.1f\n", i, (double)(i * v->interval_us) / 1000.0,
            v->ack_us[i] >= 0 ? (double)v->ack_us[i] / 1000.0 : -1.0,
            v->vis_us[i] >= 0 ? (double)v->vis_us[i] / 1000.0 : -1.0);
  fclose(f);
}

int rb_visible(int cmd_port, int query_port, int proj_port, int rate, int seconds, int wait_ms) {
  /* One thread per command in flight, each with a kept-alive connection to
   * each service: at 1,000/s with a second of latency that is 1,000. */
  long total = (long)rate * seconds;
  int workers = total < 1000 ? (int)total : 1000;
  visible_t *v = calloc(1, sizeof *v);
  v->cmd_port = cmd_port;
  v->query_port = query_port;
  v->proj_port = proj_port;
  v->wait_ms = wait_ms;
  v->total = total;
  v->interval_us = 1000000 / rate;
  char rnd[CQRS_UUID_LEN];
  cqrs_uuid_random(rnd);
  snprintf(v->run, sizeof v->run, "%.8s", rnd);
  v->ack_us = calloc((size_t)v->total, sizeof(int64_t));
  v->vis_us = calloc((size_t)v->total, sizeof(int64_t));
  v->lag_us = calloc((size_t)v->total, sizeof(int64_t));
  pthread_t *th = calloc((size_t)workers, sizeof *th);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_barrier_init(&v->connected, NULL, (unsigned)workers + 1);
  pthread_barrier_init(&v->go, NULL, (unsigned)workers + 1);
  int started = 0;
  for (int i = 0; i < workers; i++)
    if (pthread_create(&th[started], &attr, visible_main, v) == 0) started++;
  if (started < workers) {
    fprintf(stderr, "visible: started %d of %d worker threads\n", started, workers);
    exit(1);
  }
  pthread_barrier_wait(&v->connected);
  counters_t before = counters(v);
  v->t0 = bs_now_us() + 50000;
  pthread_t sampler;
  pthread_create(&sampler, NULL, sampler_main, v);
  pthread_barrier_wait(&v->go);
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&v->connected);
  pthread_barrier_destroy(&v->go);
  double secs = (double)(bs_now_us() - v->t0) / 1e6;
  atomic_store(&v->done, true);
  pthread_join(sampler, NULL);
  counters_t after = counters(v);
  pthread_attr_destroy(&attr);
  free(th);
  dump(v);
  int64_t *s = malloc((size_t)v->total * sizeof *s);
  size_t nv = collect(v->vis_us, v->total, s);
  double vp50 = bs_pct_ms(s, nv, 0.5), vp99 = bs_pct_ms(s, nv, 0.99), vmax = nv ? (double)s[nv - 1] / 1000.0 : -1;
  size_t na = collect(v->ack_us, v->total, s);
  double ap50 = bs_pct_ms(s, na, 0.5), ap99 = bs_pct_ms(s, na, 0.99);
  size_t nl = collect(v->lag_us, v->total, s);
  double lmax = nl ? (double)s[nl - 1] / 1000.0 : -1;
  /* after the command's answer: the projector and the waiting read */
  for (long i = 0; i < v->total; i++) v->lag_us[i] = v->vis_us[i] >= 0 ? v->vis_us[i] - v->ack_us[i] : -1;
  size_t nw = collect(v->lag_us, v->total, s);
  double wp50 = bs_pct_ms(s, nw, 0.5), wp99 = bs_pct_ms(s, nw, 0.99);
  double txn = after.tx_count - before.tx_count;
  printf("visible rate=%d seconds=%d commands=%ld accepted=%zu visible=%zu stale=%ld read_no_answer=%ld "
         "read_non200=%ld p50_ms=%.1f p99_ms=%.1f max_ms=%.1f ack_p50_ms=%.1f ack_p99_ms=%.1f after_ack_p50_ms=%.1f "
         "after_ack_p99_ms=%.1f send_lag_max_ms=%.1f "
         "workers=%d elapsed_s=%.1f tx=%.0f tx_mean_ms=%.1f cmd_timeouts=%.0f proj_lag_max=%.0f applied=%.0f "
         "waiters_max=%.0f wait_polls=%.0f waits_fresh=%.0f waits_stale=%.0f proj_delay_p50_ms=%.1f "
         "proj_delay_p99_ms=%.1f\n",
         rate, seconds, v->total, na, nv, atomic_load(&v->stale), atomic_load(&v->read_no_answer),
         atomic_load(&v->read_status), vp50, vp99, vmax, ap50, ap99, wp50, wp99, lmax, started, secs, txn,
         txn > 0 ? (after.tx_sum - before.tx_sum) / txn * 1000.0 : -1, after.timeouts - before.timeouts, v->lag_max,
         after.applied - before.applied, v->waiters_max, after.polls - before.polls,
         after.waits_fresh - before.waits_fresh, after.waits_stale - before.waits_stale,
         bh_histogram_quantile_ms(&before.proj_delay, &after.proj_delay, 0.5),
         bh_histogram_quantile_ms(&before.proj_delay, &after.proj_delay, 0.99));
  bool all = (long)nv == v->total;
  free(s);
  free(v->ack_us), free(v->vis_us), free(v->lag_us);
  free(v);
  return all ? 0 : 1;
}

