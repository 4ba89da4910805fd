/* read_bench wait-applied and visible (read_bench.h): what the benchmark asks
 * the services over HTTP, with a minimal keep-alive loopback client. */
#include "read_bench.h"

#include "cqrs/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void sleep_until_us(int64_t t) {
  for (int64_t d; (d = t - rb_now_us()) > 0;) {
    struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
    nanosleep(&ts, NULL);
  }
}

/* ---- a minimal loopback HTTP/1.1 client, keep-alive ---- */

typedef struct {
  int status;
  char *body; /* NUL-terminated, may be NULL */
  bool stale; /* X-Stale: true */
} http_resp_t;

typedef struct {
  int port, fd, timeout_ms;
} conn_t;

static bool conn_open(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) return false;
  struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0) return true;
  close(c->fd);
  c->fd = -1;
  return false;
}

static void conn_close(conn_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* One request on c (connecting when needed); the response read by its
 * Content-Length, or to the end when it has none. *nothing: the connection
 * failed, not timed out, before a byte of the answer (a kept-alive connection
 * the server closed meanwhile: worth one retry). */
static bool conn_once(conn_t *c, const char *req, size_t n, http_resp_t *r, bool *nothing) {
  *nothing = true;
  if (c->fd < 0 && !conn_open(c)) return false;
  if (send(c->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) return false;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  char *hdr_end = NULL;
  long want = -1;
  bool close_after = false;
  for (;;) {
    if (hdr_end && want >= 0 && len >= (size_t)(hdr_end + 4 - buf) + (size_t)want) break;
    if (cap - len < 1024) {
      size_t off = hdr_end ? (size_t)(hdr_end - buf) : 0;
      buf = realloc(buf, cap *= 2);
      if (hdr_end) hdr_end = buf + off;
    }
    ssize_t got = recv(c->fd, buf + len, cap - len - 1, 0);
    if (got <= 0) {
      if (hdr_end && want < 0 && got == 0) break; /* body to the end */
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) *nothing = false; /* timed out: no retry */
      free(buf);
      conn_close(c);
      return false;
    }
    *nothing = false;
    len += (size_t)got;
    buf[len] = 0;
    if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
      *hdr_end = 0;
      for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0) want = atol(h + 17);
        if (strncasecmp(h + 2, "X-Stale:", 8) == 0) r->stale = true;
        if (strncasecmp(h + 2, "Connection: close", 17) == 0) close_after = true;
      }
      *hdr_end = '\r';
    }
  }
  if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || !hdr_end) {
    free(buf);
    conn_close(c);
    return false;
  }
  r->status = atoi(buf + 9);
  size_t body = (size_t)(hdr_end + 4 - buf);
  memmove(buf, buf + body, len - body);
  buf[len - body] = 0;
  r->body = buf;
  if (close_after || want < 0) conn_close(c);
  return true;
}

static bool conn_do(conn_t *c, const char *method, const char *path, const char *body, http_resp_t *r) {
  memset(r, 0, sizeof *r);
  char req[1024];
  int n;
  if (body) n = snprintf(req, sizeof req,
                         "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         method, path, c->port, strlen(body), body);
  else n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", method, path, c->port);
  if (n < 0 || (size_t)n >= sizeof req) return false;
  bool reused = c->fd >= 0, nothing;
  if (conn_once(c, req, (size_t)n, r, &nothing)) return true;
  conn_close(c);
  /* a kept-alive connection the server had closed: once more on a new one */
  return reused && nothing && conn_once(c, req, (size_t)n, r, &nothing);
}

/* One request on its own connection. */
static bool http_do(int port, const char *method, const char *path, const char *body, int timeout_ms,
                    http_resp_t *r) {
  conn_t c = {.port = port, .fd = -1, .timeout_ms = timeout_ms};
  bool ok = conn_do(&c, method, path, body, r);
  conn_close(&c);
  return ok;
}

/* ---- /metrics ---- */

/* Sum of the samples of metric name whose labels contain label (NULL: all). */
static double metric_sum(const char *text, const char *name, const char *label) {
  double sum = 0;
  size_t nl = strlen(name);
  for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
    if (*l == '#' || strncmp(l, name, nl) != 0 || (l[nl] != '{' && l[nl] != ' ')) continue;
    const char *eol = strchr(l, '\n');
    size_t len = eol ? (size_t)(eol - l) : strlen(l);
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
    if (label && !strstr(line, label)) continue;
    const char *sp = strrchr(line, ' ');
    if (sp) sum += strtod(sp + 1, NULL);
  }
  return sum;
}

static char *metrics_get(int port) {
  http_resp_t r;
  if (!http_do(port, "GET", "/metrics", NULL, 2000, &r)) return NULL;
  if (r.status != 200) {
    free(r.body);
    return NULL;
  }
  return r.body;
}

/* ---- wait-applied ---- */

#define USER_PROFILES "projection=\"user_profiles\""

static double applied_count(int port) {
  char *m = metrics_get(port);
  double v = m ? metric_sum(m, "events_applied_total", USER_PROFILES) : -1;
  free(m);
  return v;
}

/* The rate is counted from the first sample that saw applied events (the
 * projector's first batch committed) to the sample that saw all of them, over
 * the events applied in between; since_start also counts the start, the
 * consumer group joins and the index checks. */
int rb_wait_applied(int port, long count, int timeout_s) {
  int64_t t0 = rb_now_us(), t_first = 0, deadline = t0 + (int64_t)timeout_s * 1000000;
  double first = 0, v = 0;
  while (rb_now_us() < deadline) {
    v = applied_count(port);
    int64_t t = rb_now_us();
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
  int64_t *ack_us, *vis_us, *lag_us; /* per command; -1 when it failed */
  atomic_long failed_cmd, read_no_answer, read_status, stale;
  double lag_max, waiters_max; /* sampled */
} visible_t;

static void *visible_main(void *arg) {
  visible_t *v = arg;
  int to = v->wait_ms + 5000; /* the read answers by waitMs, stale or not: no answer 5 s later is a failure */
  conn_t cmd = {.port = v->cmd_port, .fd = -1, .timeout_ms = 15000};
  conn_t query = {.port = v->query_port, .fd = -1, .timeout_ms = to};
  for (long i; (i = atomic_fetch_add(&v->next, 1)) < v->total;) {
    int64_t due = v->t0 + i * v->interval_us;
    sleep_until_us(due);
    char cid[96], id[CQRS_UUID_LEN], body[512], path[160];
    snprintf(cid, sizeof cid, "visible-%s-%ld", v->run, i);
    cqrs_uuid_from_name(cid, id);
    snprintf(body, sizeof body,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"%s\",\"aggregateId\":\"%s\",\"email\":"
             "\"visible%ld@example.com\",\"name\":\"Visible User %ld\"}",
             cid, id, i, i);
    int64_t sent = rb_now_us();
    v->lag_us[i] = sent - due;
    v->ack_us[i] = v->vis_us[i] = -1;
    http_resp_t r;
    bool ok = conn_do(&cmd, "POST", "/v1/commands", body, &r) && r.status == 201;
    free(r.body);
    if (!ok) {
      atomic_fetch_add(&v->failed_cmd, 1);
      continue;
    }
    v->ack_us[i] = rb_now_us() - sent;
    snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=%d", id, v->wait_ms);
    bool answered = conn_do(&query, "GET", path, NULL, &r);
    ok = answered && r.status == 200 && !r.stale;
    free(r.body);
    if (!ok) {
      atomic_fetch_add(!answered ? &v->read_no_answer : r.status != 200 ? &v->read_status : &v->stale, 1);
      continue;
    }
    v->vis_us[i] = rb_now_us() - sent;
  }
  conn_close(&cmd);
  conn_close(&query);
  return NULL;
}

/* The services' view meanwhile: projector lag (user_profiles, all
 * partitions) and query-svc's waiting reads, every 500 ms. */
static void *sampler_main(void *arg) {
  visible_t *v = arg;
  while (!atomic_load(&v->done)) {
    char *m = metrics_get(v->proj_port);
    if (m) {
      double lag = metric_sum(m, "projection_lag_events", USER_PROFILES);
      if (lag > v->lag_max) v->lag_max = lag;
      free(m);
    }
    if ((m = metrics_get(v->query_port)) != NULL) {
      double w = metric_sum(m, "read_waiters", NULL);
      if (w > v->waiters_max) v->waiters_max = w;
      free(m);
    }
    for (int i = 0; i < 10 && !atomic_load(&v->done); i++) usleep(50000);
  }
  return NULL;
}

typedef struct {
  double tx_sum, tx_count, timeouts, polls, applied, waits_fresh, waits_stale;
} counters_t;

/* A service whose /metrics did not answer leaves its fields NAN ("nan" in
 * the result line). */
static counters_t counters(const visible_t *v) {
  counters_t c = {NAN, NAN, NAN, NAN, NAN, NAN, NAN};
  char *m = metrics_get(v->cmd_port);
  if (m) {
    c.tx_sum = metric_sum(m, "transaction_duration_seconds_sum", NULL);
    c.tx_count = metric_sum(m, "transaction_duration_seconds_count", NULL);
    c.timeouts = metric_sum(m, "command_timeouts_total", NULL);
    free(m);
  }
  if ((m = metrics_get(v->query_port)) != NULL) {
    c.polls = metric_sum(m, "read_wait_polls_total", NULL);
    c.waits_fresh = metric_sum(m, "read_waits_total", "fresh");
    c.waits_stale = metric_sum(m, "read_waits_total", "stale");
    free(m);
  }
  if ((m = metrics_get(v->proj_port)) != NULL) {
    c.applied = metric_sum(m, "events_applied_total", USER_PROFILES);
    free(m);
  }
  return c;
}

static size_t collect(const int64_t *in, long n, int64_t *out) {
  size_t k = 0;
  for (long i = 0; i < n; i++)
    if (in[i] >= 0) out[k++] = in[i];
  qsort(out, k, sizeof *out, rb_cmp_i64);
  return k;
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
  counters_t before = counters(v);
  pthread_t sampler;
  pthread_create(&sampler, NULL, sampler_main, v);
  v->t0 = rb_now_us() + 50000;
  pthread_t *th = calloc((size_t)workers, sizeof *th);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int started = 0;
  for (int i = 0; i < workers; i++)
    if (pthread_create(&th[started], &attr, visible_main, v) == 0) started++;
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  double secs = (double)(rb_now_us() - v->t0) / 1e6;
  atomic_store(&v->done, true);
  pthread_join(sampler, NULL);
  counters_t after = counters(v);
  pthread_attr_destroy(&attr);
  free(th);
  int64_t *s = malloc((size_t)v->total * sizeof *s);
  size_t nv = collect(v->vis_us, v->total, s);
  double vp50 = rb_pct_ms(s, nv, 0.5), vp99 = rb_pct_ms(s, nv, 0.99), vmax = nv ? (double)s[nv - 1] / 1000.0 : -1;
  size_t na = collect(v->ack_us, v->total, s);
  double ap50 = rb_pct_ms(s, na, 0.5), ap99 = rb_pct_ms(s, na, 0.99);
  size_t nl = collect(v->lag_us, v->total, s);
  double lmax = nl ? (double)s[nl - 1] / 1000.0 : -1;
  /* after the command's answer: the projector and the waiting read */
  for (long i = 0; i < v->total; i++) v->lag_us[i] = v->vis_us[i] >= 0 ? v->vis_us[i] - v->ack_us[i] : -1;
  size_t nw = collect(v->lag_us, v->total, s);
  double wp50 = rb_pct_ms(s, nw, 0.5), wp99 = rb_pct_ms(s, nw, 0.99);
  double txn = after.tx_count - before.tx_count;
  printf("visible rate=%d seconds=%d commands=%ld accepted=%zu visible=%zu stale=%ld read_no_answer=%ld "
         "read_non200=%ld p50_ms=%.1f p99_ms=%.1f max_ms=%.1f ack_p50_ms=%.1f ack_p99_ms=%.1f after_ack_p50_ms=%.1f "
         "after_ack_p99_ms=%.1f send_lag_max_ms=%.1f "
         "workers=%d elapsed_s=%.1f tx=%.0f tx_mean_ms=%.1f cmd_timeouts=%.0f proj_lag_max=%.0f applied=%.0f "
         "waiters_max=%.0f wait_polls=%.0f waits_fresh=%.0f waits_stale=%.0f\n",
         rate, seconds, v->total, na, nv, atomic_load(&v->stale), atomic_load(&v->read_no_answer),
         atomic_load(&v->read_status), vp50, vp99, vmax, ap50, ap99, wp50, wp99, lmax, started, secs, txn,
         txn > 0 ? (after.tx_sum - before.tx_sum) / txn * 1000.0 : -1, after.timeouts - before.timeouts, v->lag_max,
         after.applied - before.applied, v->waiters_max, after.polls - before.polls,
         after.waits_fresh - before.waits_fresh, after.waits_stale - before.waits_stale);
  bool all = (long)nv == v->total;
  free(s);
  free(v->ack_us), free(v->vis_us), free(v->lag_us);
  free(v);
  return all ? 0 : 1;
}

