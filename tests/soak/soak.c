/* soak: the soak run's load (tests/soak/run.sh, `make soak`). A mixed HTTP
 * load on a fixed population of users: profile updates through command-svc
 * and point reads, email lookups and order lists through query-svc.
 *
 *   soak seed <command-port> <query-port> <users> <tag> <workers>
 *       creates users 0..users-1 (ids derived from tag), closed loop, and
 *       waits until query-svc shows them
 *   soak max <command-port> <query-port> <users> <tag> <seconds> <workers>
 *       the mix as fast as <workers> connections go (closed loop): the
 *       measured maximum rate
 *   soak run <command-port> <query-port> <users> <tag> <rate> <seconds> <interval-s> <workers>
 *       the mix at a fixed rate (open loop: request i is due at i / rate, and
 *       its latency counts from then, so a stall shows as latency instead of
 *       as fewer requests); one result line per interval as it completes
 *
 * SOAK_TOKEN, when set, is sent as "Authorization: Bearer <token>". Each
 * mode prints key=value lines on stdout and exits 1 when a request failed.
 *
 * Why no creates in the mix: command-svc keeps every aggregate's state in
 * memory (about 790 bytes each, BENCHMARKS.md), so a load that creates
 * aggregates grows memory by design; the soak looks for growth that is not
 * by design. */
#include "bench_http.h"
#include "bench_stats.h"

#include "cqrs/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 10000 /* an answer later than this is no answer */
#define MAX_WORKERS 2048
#define SHOW_ERRORS 5 /* the first failures' answers go to stderr */

typedef enum { OP_UPDATE, OP_READ, OP_BY_EMAIL, OP_ORDERS, OP_CREATE } op_t;

typedef struct {
  int cmd_port, query_port;
  long users;
  const char *tag;
  char auth[4096]; /* the extra header line, or "" */
} target_t;

static void user_id(const target_t *t, long j, char id[CQRS_UUID_LEN]) {
  char name[128];
  snprintf(name, sizeof name, "soak-%s-user-%ld", t->tag, j);
  cqrs_uuid_from_name(name, id);
}

/* Request i of the mix, by i % 20: 5 profile updates (25%), 12 point reads
 * (60%), 2 lookups by email (10%), 1 list of a user's orders (5%); the user
 * is spread over the population. */
static op_t op_of(long i) {
  long k = i % 20;
  return k < 5 ? OP_UPDATE : k < 17 ? OP_READ : k < 19 ? OP_BY_EMAIL : OP_ORDERS;
}

static bool ok_status(op_t op, int status) {
  return op == OP_UPDATE || op == OP_CREATE ? status == 201 || status == 200 : status == 200;
}

/* Sends request i of kind op (series names the commandIds) on cmd or query;
 * the status into *status (0: no answer). */
static void send_one(const target_t *t, bh_conn_t *cmd, bh_conn_t *query, op_t op, long i, const char *series,
                     int *status) {
  long j = op == OP_CREATE ? i : (i * 7919) % t->users;
  char id[CQRS_UUID_LEN], path[256], body[512];
  user_id(t, j, id);
  bh_resp_t r;
  bool answered;
  switch (op) {
  case OP_CREATE:
    snprintf(body, sizeof body,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"soak-%s-%s-%ld\",\"aggregateId\":\"%s\","
             "\"email\":\"soak-%s-%ld@example.com\",\"name\":\"Soak User %ld\"}",
             t->tag, series, i, id, t->tag, j, j);
    answered = bh_request(cmd, "POST", "/v1/commands", body, &r);
    break;
  case OP_UPDATE:
    snprintf(body, sizeof body,
             "{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"soak-%s-%s-%ld\",\"aggregateId\":\"%s\","
             "\"changes\":{\"name\":\"Soak %s %ld\"}}",
             t->tag, series, i, id, series, i);
    answered = bh_request(cmd, "POST", "/v1/commands", body, &r);
    break;
  case OP_READ:
    snprintf(path, sizeof path, "/v1/users/%s", id);
    answered = bh_request(query, "GET", path, NULL, &r);
    break;
  case OP_BY_EMAIL:
    snprintf(path, sizeof path, "/v1/users?email=soak-%s-%ld%%40example.com", t->tag, j);
    answered = bh_request(query, "GET", path, NULL, &r);
    break;
  default:
    snprintf(path, sizeof path, "/v1/orders?userId=%s", id);
    answered = bh_request(query, "GET", path, NULL, &r);
    break;
  }
  *status = answered ? r.status : 0;
  bool ok = ok_status(op, *status);
  static atomic_int shown;
  if (!ok && atomic_fetch_add(&shown, 1) < SHOW_ERRORS)
    fprintf(stderr, "[soak] request %ld (%s): %d %.300s\n", i, series, *status, answered && r.body ? r.body : "(no answer)");
  if (answered) free(r.body);
}

/* ---- workers: one thread, one connection to each service ---- */

typedef struct {
  const target_t *t;
  const char *series;
  op_t fixed;     /* OP_CREATE for seed, else the mix */
  bool mixed;
  long total;     /* requests in all; -1: until deadline */
  int64_t t0, interval_us, deadline; /* open loop when interval_us > 0 */
  atomic_long next, failed;
  atomic_long ok_in_time; /* closed loop: answered as expected before the deadline */
  int64_t *lat_us;   /* per request (total known), -1: failed */
  uint8_t *is_write; /* per request */
  atomic_long *done_in; /* per reporting bucket, how many finished */
  long per_bucket;
  atomic_long send_lag_max_us;
  /* closed loop without a total: latencies into a shared buffer */
  pthread_mutex_t mu;
  int64_t *buf;
  size_t n, cap;
} load_t;

static void *worker(void *arg) {
  load_t *l = arg;
  bh_conn_t cmd = {.port = l->t->cmd_port, .fd = -1, .timeout_ms = TIMEOUT_MS, .extra = l->t->auth};
  bh_conn_t query = {.port = l->t->query_port, .fd = -1, .timeout_ms = TIMEOUT_MS, .extra = l->t->auth};
  for (;;) {
    long i = atomic_fetch_add(&l->next, 1);
    if (l->total >= 0 && i >= l->total) break;
    int64_t due = bs_now_us();
    if (l->interval_us > 0) {
      due = l->t0 + i * l->interval_us;
      bs_sleep_until_us(due);
      int64_t lag = bs_now_us() - due, seen = atomic_load(&l->send_lag_max_us);
      while (lag > seen && !atomic_compare_exchange_weak(&l->send_lag_max_us, &seen, lag)) {
      }
    } else if (l->deadline && due >= l->deadline) {
      break;
    }
    op_t op = l->mixed ? op_of(i) : l->fixed;
    int status;
    send_one(l->t, &cmd, &query, op, i, l->series, &status);
    int64_t done = bs_now_us(), lat = done - due;
    bool ok = ok_status(op, status);
    if (ok && l->deadline && done <= l->deadline) atomic_fetch_add(&l->ok_in_time, 1);
    if (!ok) atomic_fetch_add(&l->failed, 1);
    if (l->lat_us) {
      l->lat_us[i] = ok ? lat : -1;
      l->is_write[i] = op == OP_UPDATE || op == OP_CREATE;
      if (l->done_in) atomic_fetch_add(&l->done_in[i / l->per_bucket], 1);
    } else if (ok) {
      pthread_mutex_lock(&l->mu);
      if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        int64_t *grown = realloc(l->buf, cap * sizeof *grown);
        if (grown) l->buf = grown, l->cap = cap;
      }
      if (l->n < l->cap) l->buf[l->n++] = lat;
      pthread_mutex_unlock(&l->mu);
    }
  }
  bh_close(&cmd);
  bh_close(&query);
  return NULL;
}

static int start_workers(load_t *l, int workers, pthread_t *th) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int started = 0;
  for (int i = 0; i < workers; i++)
    if (pthread_create(&th[started], &attr, worker, l) == 0) started++;
  pthread_attr_destroy(&attr);
  return started;
}

/* ---- modes ---- */

static int seed(const target_t *t, int workers) {
  load_t l = {.t = t, .series = "seed", .fixed = OP_CREATE, .total = t->users};
  pthread_mutex_init(&l.mu, NULL);
  pthread_t th[MAX_WORKERS];
  int64_t t0 = bs_now_us();
  int n = start_workers(&l, workers, th);
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
  double secs = (double)(bs_now_us() - t0) / 1e6;
  /* visible: every 97th user and the last, waited for */
  long invisible = 0;
  bh_conn_t q = {.port = t->query_port, .fd = -1, .timeout_ms = 15000, .extra = t->auth};
  for (long j = 0;; j += 97) {
    if (j >= t->users) j = t->users - 1;
    char id[CQRS_UUID_LEN], path[160];
    user_id(t, j, id);
    snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=10000", id);
    bh_resp_t r;
    bool answered = bh_request(&q, "GET", path, NULL, &r);
    if (!answered || r.status != 200 || r.stale) {
      if (invisible++ < SHOW_ERRORS)
        fprintf(stderr, "[soak] user %ld not visible: %d%s %.300s\n", j, answered ? r.status : 0,
                r.stale ? " (stale)" : "", r.body ? r.body : "(no answer)");
    }
    free(r.body);
    if (j == t->users - 1) break;
  }
  bh_close(&q);
  printf("seed users=%ld failed=%ld seconds=%.1f rate=%.0f invisible_samples=%ld\n", t->users,
         atomic_load(&l.failed), secs, (double)t->users / secs, invisible);
  free(l.buf);
  return atomic_load(&l.failed) || invisible ? 1 : 0;
}

static int max_rate(const target_t *t, int seconds, int workers) {
  load_t l = {.t = t, .series = "max", .mixed = true, .total = -1};
  pthread_mutex_init(&l.mu, NULL);
  pthread_t th[MAX_WORKERS];
  int64_t t0 = bs_now_us();
  l.deadline = t0 + (int64_t)seconds * 1000000;
  int n = start_workers(&l, workers, th);
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
  double secs = (double)(bs_now_us() - t0) / 1e6;
  qsort(l.buf, l.n, sizeof *l.buf, bs_cmp_i64);
  /* the rate: answers within the window, over the window (a request still
   * out at its end is not counted; it can take TIMEOUT_MS more) */
  printf("max requests=%zu failed=%ld seconds=%d workers=%d rate=%.0f p50_ms=%.1f p99_ms=%.1f drain_s=%.1f\n", l.n,
         atomic_load(&l.failed), seconds, n, (double)atomic_load(&l.ok_in_time) / seconds, bs_pct_ms(l.buf, l.n, 0.5),
         bs_pct_ms(l.buf, l.n, 0.99), secs - seconds);
  free(l.buf);
  return atomic_load(&l.failed) ? 1 : 0;
}

/* The stats of requests [from, to): all, writes only, reads only. */
static void report_bucket(const load_t *l, int k, long from, long to, double interval_s, int64_t *scratch) {
  size_t n = 0, nw = 0;
  long failed = 0;
  for (long i = from; i < to; i++)
    if (l->lat_us[i] < 0) failed++;
    else scratch[n++] = l->lat_us[i];
  qsort(scratch, n, sizeof *scratch, bs_cmp_i64);
  double p50 = bs_pct_ms(scratch, n, 0.5), p99 = bs_pct_ms(scratch, n, 0.99), p999 = bs_pct_ms(scratch, n, 0.999),
         max = n ? (double)scratch[n - 1] / 1000.0 : -1;
  for (long i = from; i < to; i++)
    if (l->lat_us[i] >= 0 && l->is_write[i]) scratch[nw++] = l->lat_us[i];
  qsort(scratch, nw, sizeof *scratch, bs_cmp_i64);
  double wp99 = bs_pct_ms(scratch, nw, 0.99);
  size_t nr = 0;
  for (long i = from; i < to; i++)
    if (l->lat_us[i] >= 0 && !l->is_write[i]) scratch[nr++] = l->lat_us[i];
  qsort(scratch, nr, sizeof *scratch, bs_cmp_i64);
  double rp99 = bs_pct_ms(scratch, nr, 0.99);
  printf("interval k=%d end_s=%.0f requests=%ld ok=%zu failed=%ld rate=%.0f p50_ms=%.1f p99_ms=%.1f p999_ms=%.1f "
         "max_ms=%.1f write_p99_ms=%.1f read_p99_ms=%.1f\n",
         k, (double)(k + 1) * interval_s, to - from, n, failed, (double)n / interval_s, p50, p99, p999, max, wp99, rp99);
  fflush(stdout);
}

static int run(const target_t *t, int rate, int seconds, int interval_s, int workers) {
  load_t l = {.t = t, .series = "run", .mixed = true, .total = (long)rate * seconds};
  pthread_mutex_init(&l.mu, NULL);
  l.interval_us = 1000000 / rate;
  l.per_bucket = (long)rate * interval_s;
  int buckets = (int)((l.total + l.per_bucket - 1) / l.per_bucket);
  l.lat_us = malloc((size_t)l.total * sizeof *l.lat_us);
  l.is_write = calloc((size_t)l.total, 1);
  l.done_in = calloc((size_t)buckets, sizeof *l.done_in);
  int64_t *scratch = malloc((size_t)l.per_bucket * sizeof *scratch);
  if (!l.lat_us || !l.is_write || !l.done_in || !scratch) {
    fprintf(stderr, "[soak] out of memory for %ld requests\n", l.total);
    return 2;
  }
  pthread_t th[MAX_WORKERS];
  l.t0 = bs_now_us() + 50000;
  int n = start_workers(&l, workers, th);
  for (int k = 0; k < buckets; k++) {
    long from = (long)k * l.per_bucket, to = from + l.per_bucket < l.total ? from + l.per_bucket : l.total;
    while (atomic_load(&l.done_in[k]) < to - from) usleep(100000);
    report_bucket(&l, k, from, to, (double)(to - from) / rate, scratch);
  }
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
  int64_t *all = malloc((size_t)l.total * sizeof *all);
  size_t ok = 0;
  for (long i = 0; all && i < l.total; i++)
    if (l.lat_us[i] >= 0) all[ok++] = l.lat_us[i];
  qsort(all, ok, sizeof *all, bs_cmp_i64);
  printf("run rate=%d seconds=%d workers=%d requests=%ld ok=%zu failed=%ld p50_ms=%.1f p99_ms=%.1f p999_ms=%.1f "
         "send_lag_max_ms=%.1f\n",
         rate, seconds, n, l.total, ok, atomic_load(&l.failed), bs_pct_ms(all, ok, 0.5), bs_pct_ms(all, ok, 0.99),
         bs_pct_ms(all, ok, 0.999), (double)atomic_load(&l.send_lag_max_us) / 1000.0);
  long failed = atomic_load(&l.failed);
  free(all), free(scratch), free(l.lat_us), free(l.is_write), free(l.done_in);
  return failed ? 1 : 0;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s seed <command-port> <query-port> <users> <tag> <workers>\n"
          "       %s max <command-port> <query-port> <users> <tag> <seconds> <workers>\n"
          "       %s run <command-port> <query-port> <users> <tag> <rate> <seconds> <interval-s> <workers>\n"
          "SOAK_TOKEN: a credential sent as Authorization: Bearer\n",
          argv0, argv0, argv0);
  return 2;
}

static int workers_arg(const char *s) {
  int w = atoi(s);
  return w < 1 ? 1 : w > MAX_WORKERS ? MAX_WORKERS : w;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return usage(argv[0]);
  if (argc < 6) return usage(argv[0]);
  target_t t = {.cmd_port = atoi(argv[2]), .query_port = atoi(argv[3]), .users = atol(argv[4]), .tag = argv[5]};
  if (t.users < 1) return usage(argv[0]);
  const char *token = getenv("SOAK_TOKEN");
  if (token && *token) snprintf(t.auth, sizeof t.auth, "Authorization: Bearer %s\r\n", token);
  if (strcmp(argv[1], "seed") == 0 && argc == 7) return seed(&t, workers_arg(argv[6]));
  if (strcmp(argv[1], "max") == 0 && argc == 8) return max_rate(&t, atoi(argv[6]), workers_arg(argv[7]));
  if (strcmp(argv[1], "run") == 0 && argc == 10 && atoi(argv[6]) > 0 && atoi(argv[7]) > 0 && atoi(argv[8]) > 0)
    return run(&t, atoi(argv[6]), atoi(argv[7]), atoi(argv[8]), workers_arg(argv[9]));
  return usage(argv[0]);
}
