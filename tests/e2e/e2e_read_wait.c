/* End to end, waiting reads and store outages on query-svc: many waiting
 * reads cost one find per tick, not one per waiter; a wait that runs out
 * answers stale or 404; a waiting read by email answers the first user in
 * sort order; minVersion and waitMs out of range answer 400 naming them, a
 * query body over the limit 413; and a store that is down, hung or stops
 * answering mid-wait gives 503 with a clear error instead of a hang, on reads
 * and on /readyz. */
#include "testkit.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 10
#define N_WAITERS 50
#define NO_STORE_BODY "{\"error\":\"the read store did not answer\"}"

static tk_env_t env;
static pid_t pids[3];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- helpers ---- */

/* A sample of query-svc's /metrics: the value of the line "<series> <v>"
 * (series with its labels, e.g. read_waits_total{outcome="fresh"}); -1 when
 * absent. */
static double metric_in(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

static double metric(int port, const char *series) {
  tk_response_t r;
  tk_http("GET", port, "/metrics", NULL, 0, &r);
  cr_assert_eq(r.status, 200, "GET /metrics answered %d", r.status);
  double v = metric_in(r.body, series);
  tk_response_cleanup(&r);
  cr_assert_geq(v, 0, "no %s in /metrics", series);
  return v;
}

typedef struct {
  const char *series;
  double want;
} metric_want_t;

static bool metric_is(const char *body, void *arg) {
  const metric_want_t *m = arg;
  return metric_in(body, m->series) == m->want;
}

/* Waits until query-svc's /metrics shows series at v. The hub counts an
 * answer just after it hands it to the HTTP loop, so a client can hold its
 * response a moment before the counter moves. */
static void await_metric(int port, const char *series, double v) {
  tk_response_t r;
  metric_want_t m = {series, v};
  bool ok = tk_await_get(port, "/metrics", 200, metric_is, &m, 30000, &r);
  cr_assert(ok, "%s never reached %g (last: %g)", series, v, r.body ? metric_in(r.body, series) : -1);
  tk_response_cleanup(&r);
}

/* Waits until query-svc holds exactly n waiting reads. */
static void await_waiters(int port, int n) { await_metric(port, "read_waiters", n); }

static void command(const char *json) {
  tk_response_t r;
  tk_http("POST", env.command_port, "/v1/commands", json, strlen(json), &r);
  cr_assert(r.status == 201 || r.status == 200, "%s answered %d: %s", json, r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
}

static void create_user(const char *id, const char *email, const char *name) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateUser\",\"aggregateId\":\"%.200s\",\"email\":\"%.200s\",\"name\":\"%.200s\"}",
           id, email, name);
  command(json);
}

/* create_user, then waits until query-svc reads it. */
static void create_visible_user(const char *id, const char *email, const char *name) {
  create_user(id, email, name);
  char path[256];
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=10000", id);
  tk_response_t r;
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, 200, "the created user: %d %s", r.status, r.body);
  tk_response_cleanup(&r);
}

static void rename_user(const char *id, const char *name) {
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"%s\"}}",
           id, name);
  command(json);
}

static bool has_header(const tk_response_t *r, const char *line) { return r->headers && strstr(r->headers, line); }

/* One GET on its own thread (the client's own timeout is 30 s). */
typedef struct {
  pthread_t thread;
  int port;
  char path[256];
  tk_response_t r;
} get_t;

static void *get_main(void *arg) {
  get_t *g = arg;
  tk_http("GET", g->port, g->path, NULL, 0, &g->r);
  return NULL;
}

static void get_start(get_t *g, int port, const char *path) {
  memset(g, 0, sizeof *g);
  g->port = port;
  snprintf(g->path, sizeof g->path, "%s", path);
  cr_assert_eq(pthread_create(&g->thread, NULL, get_main, g), 0);
}

/* ---- with the three services ---- */

static void setup(void) {
  tk_env_init(&env);
  static const char *const tick[] = {"WAIT_TICK_MS=10", NULL};
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, tick);
}

static void teardown(void) { tk_stop_all(pids); }

TestSuite(read_wait, .init = setup, .fini = teardown, .timeout = 300);

Test(read_wait, fifty_reads_waiting_before_their_creates_cost_one_find_per_tick_not_per_waiter) {
  static get_t gets[N_WAITERS];
  char ids[N_WAITERS][96];
  const char *pg = getenv("FERRETDB_PG_URI"); /* the version probe's, see below */
  /* The projector makes a tenant's collection when it meets the tenant's first
   * event; until then the probe has no table to ask and the hub reads through
   * the store. One user first, so every round below goes through the probe. */
  char first[128], first_email[160], first_path[256];
  snprintf(first, sizeof first, "waiter-%s-first", env.db);
  snprintf(first_email, sizeof first_email, "%s@example.com", first);
  create_user(first, first_email, "First");
  snprintf(first_path, sizeof first_path, "/v1/users/%s?minVersion=1&waitMs=10000", first);
  tk_response_t fr;
  cr_assert(tk_await_get(env.query_port, first_path, 200, NULL, NULL, 30000, &fr), "the first user never showed");
  tk_response_cleanup(&fr);
  double polls0 = metric(env.query_port, "read_wait_polls_total");
  double fresh0 = metric(env.query_port, "read_waits_total{outcome=\"fresh\"}");
  double fetches0 = pg && *pg ? metric(env.query_port, "read_wait_fetches_total") : 0;
  int64_t start = now_ms();
  for (int i = 0; i < N_WAITERS; i++) {
    snprintf(ids[i], sizeof ids[i], "waiter-%s-%02d", env.db, i);
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=10000", ids[i]);
    get_start(&gets[i], env.query_port, path);
  }
  /* Every read has looked once, found nothing and is waiting... */
  await_waiters(env.query_port, N_WAITERS);
  /* ...before any of the documents exists. */
  for (int i = 0; i < N_WAITERS; i++) {
    char email[160];
    snprintf(email, sizeof email, "%.95s@example.com", ids[i]);
    create_user(ids[i], email, "Waiter");
  }
  for (int i = 0; i < N_WAITERS; i++) pthread_join(gets[i].thread, NULL);
  int64_t elapsed = now_ms() - start;
  for (int i = 0; i < N_WAITERS; i++) {
    tk_response_t *r = &gets[i].r;
    char want[160];
    snprintf(want, sizeof want, "\"userId\":\"%.95s\"", ids[i]);
    cr_expect_eq(r->status, 200, "GET %s answered %d: %s", gets[i].path, r->status, r->body ? r->body : "");
    cr_expect(r->body && strstr(r->body, want), "GET %s: %s", gets[i].path, r->body ? r->body : "");
    cr_expect(r->body && !strstr(r->body, "\"_id\""), "the document goes out without _id: %s", r->body);
    cr_expect_not(has_header(r, "X-Stale"), "a fresh answer is not stale: %s", r->headers);
    tk_response_cleanup(r);
  }
  double polls = metric(env.query_port, "read_wait_polls_total") - polls0;
  await_metric(env.query_port, "read_waits_total{outcome=\"fresh\"}", fresh0 + N_WAITERS);
  /* The hub sends one find per tick for all waiters of a read (50 values fit
   * one $in), and its rounds start at least WAIT_TICK_MS apart; it polls only
   * while someone waits, which is inside [start, start + elapsed]. So the
   * finds are at most elapsed / TICK_MS + 1 however many wait: the bound does
   * not grow with the 50 waiters. A poller per waiter would have made about
   * 50 times as many. (The +2 covers rounding at both ends.) */
  double bound = (double)elapsed / TICK_MS + 2;
  cr_log_info("%d waiters answered in %lld ms with %g finds (bound %g)", N_WAITERS, (long long)elapsed, polls, bound);
  cr_expect_leq(polls, bound, "%g finds for %d waiters in %lld ms: more than one per %d ms tick", polls, N_WAITERS,
                (long long)elapsed, TICK_MS);
  cr_expect_gt(polls, 0, "the waiters were answered by the hub's finds");
  /* On FerretDB over PostgreSQL the hub's poll asks PostgreSQL for the
   * versions (an index scan, not FerretDB's whole-table $in) and reads each
   * document through the store once, when its version moved: 50 reads. */
  if (pg && *pg) {
    double fetches = metric(env.query_port, "read_wait_fetches_total") - fetches0;
    cr_expect_eq(fetches, N_WAITERS, "documents read by the version probe: %g", fetches);
  }
}

/* Fifty documents written in one batch (created while the projector was
 * stopped, applied together when it starts again) with a read waiting on
 * each: the hub's poll reads them side by side on several of the pool's
 * clients (version_probe.c, PROBE_FETCHERS), once each, and every waiter gets
 * its own document. */
Test(read_wait, fifty_documents_written_at_once_are_read_once_each_and_each_waiter_gets_its_own) {
  const char *pg = getenv("FERRETDB_PG_URI");
  cr_assert(pg && *pg, "this test is about the version probe: FERRETDB_PG_URI must name the store's PostgreSQL");
  static get_t gets[N_WAITERS];
  char ids[N_WAITERS][96];
  char first[128], first_email[160];
  snprintf(first, sizeof first, "batch-%s-first", env.db);
  snprintf(first_email, sizeof first_email, "%s@example.com", first);
  create_visible_user(first, first_email, "First"); /* the probe has a table to ask from here on */
  double fetches0 = metric(env.query_port, "read_wait_fetches_total");
  tk_stop(pids[TK_PROJECTOR], SIGTERM);
  pids[TK_PROJECTOR] = 0;
  for (int i = 0; i < N_WAITERS; i++) { /* in the log, not yet in the store */
    char email[160], name[32];
    snprintf(ids[i], sizeof ids[i], "batch-%s-%02d", env.db, i);
    snprintf(email, sizeof email, "%.95s@example.com", ids[i]);
    snprintf(name, sizeof name, "Batch %02d", i);
    create_user(ids[i], email, name);
  }
  for (int i = 0; i < N_WAITERS; i++) {
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%.95s?minVersion=1&waitMs=10000", ids[i]);
    get_start(&gets[i], env.query_port, path);
  }
  await_waiters(env.query_port, N_WAITERS);
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  for (int i = 0; i < N_WAITERS; i++) pthread_join(gets[i].thread, NULL);
  for (int i = 0; i < N_WAITERS; i++) {
    tk_response_t *r = &gets[i].r;
    char want_id[160], want_name[48];
    snprintf(want_id, sizeof want_id, "\"userId\":\"%.95s\"", ids[i]);
    snprintf(want_name, sizeof want_name, "\"name\":\"Batch %02d\"", i);
    cr_expect_eq(r->status, 200, "GET %s answered %d: %s", gets[i].path, r->status, r->body ? r->body : "");
    cr_expect(r->body && strstr(r->body, want_id) && strstr(r->body, want_name), "GET %s: %s", gets[i].path,
              r->body ? r->body : "");
    cr_expect_not(has_header(r, "X-Stale"), "a fresh answer is not stale: %s", r->headers);
    tk_response_cleanup(r);
  }
  double fetches = metric(env.query_port, "read_wait_fetches_total") - fetches0;
  cr_expect_eq(fetches, N_WAITERS, "documents read by the version probe: %g", fetches);
}

Test(read_wait, a_version_never_reached_answers_stale_and_an_absent_document_404_after_wait_ms) {
  char id[96], path[256];
  snprintf(id, sizeof id, "stale-%s", env.db);
  create_visible_user(id, "stale@example.com", "Stale");
  tk_response_t r;
  double stale0 = metric(env.query_port, "read_waits_total{outcome=\"stale\"}");

  snprintf(path, sizeof path, "/v1/users/%s?minVersion=2&waitMs=300", id);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 200, "%d %s", r.status, r.body);
  cr_expect(has_header(&r, "X-Stale: true"), "version 2 never comes: %s", r.headers);
  cr_expect(r.body && strstr(r.body, id) && strstr(r.body, "\"version\":1"), "the current document: %s", r.body);
  tk_response_cleanup(&r);

  snprintf(path, sizeof path, "/v1/users/absent-%s?minVersion=1&waitMs=300", env.db);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 404, "%d %s", r.status, r.body);
  cr_expect(has_header(&r, "X-Stale: true"), "%s", r.headers);
  cr_expect_str_eq(r.body, "{\"error\":\"no such user\"}");
  tk_response_cleanup(&r);

  /* POST /v1/query waits the same way. */
  char q[256];
  snprintf(q, sizeof q, "{\"queryType\":\"GetUserProfile\",\"userId\":\"%s\",\"minVersion\":2,\"waitMs\":200}", id);
  tk_http("POST", env.query_port, "/v1/query", q, strlen(q), &r);
  cr_expect_eq(r.status, 200);
  cr_expect(has_header(&r, "X-Stale: true"), "%s", r.headers);
  tk_response_cleanup(&r);
  await_metric(env.query_port, "read_waits_total{outcome=\"stale\"}", stale0 + 3);
}

/* Asserts that r is a 400 in JSON whose "field" is param and whose message
 * names it. */
static void expect_400_naming(const tk_response_t *r, const char *param, const char *what) {
  cr_expect_eq(r->status, 400, "%s answered %d: %s", what, r->status, r->body ? r->body : "");
  cr_expect(has_header(r, "Content-Type: application/json"), "%s: %s", what, r->headers ? r->headers : "");
  char *field = r->body ? tk_json_string(r->body, "field") : NULL;
  char *error = r->body ? tk_json_string(r->body, "error") : NULL;
  cr_expect(field && strcmp(field, param) == 0, "%s: the 400 names %s, not %s: %s", what, field ? field : "nothing",
            param, r->body ? r->body : "");
  cr_expect(error && strstr(error, param), "%s: the message does not name %s: %s", what, param, r->body ? r->body : "");
  free(field);
  free(error);
}

/* minVersion and waitMs out of their range, or not integers, are the
 * client's mistake: 400 naming the parameter, on every single read and on
 * POST /v1/query (in the body, as a string or as a number), for a document
 * that exists (the same read without them answers 200). */
Test(read_wait, a_bad_min_version_or_wait_ms_answers_400_naming_it) {
  char id[96], path[512], body[512];
  snprintf(id, sizeof id, "bad-%s", env.db);
  create_visible_user(id, "bad@example.com", "Bad");
  tk_response_t r;

  static const struct {
    const char *param, *value;
  } bad[] = {
      {"minVersion", "abc"}, {"minVersion", "-1"}, {"minVersion", "1.5"}, {"minVersion", "9223372036854775808"},
      {"minVersion", "1x"},  {"waitMs", "abc"},     {"waitMs", "-1"},      {"waitMs", "10001"},
      {"waitMs", "99999999999999999999"},
  };
  /* routes taking them: a user by id, by email, an order by id (absent: 404 without them) */
  const char *routes[] = {"/v1/users/%s?", "/v1/users?email=bad@example.com&", "/v1/orders/%s?"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (size_t k = 0; k < sizeof routes / sizeof routes[0]; k++) {
      char base[256];
      snprintf(base, sizeof base, routes[k], id);
      snprintf(path, sizeof path, "%s%s=%s", base, bad[i].param, bad[i].value);
      tk_http("GET", env.query_port, path, NULL, 0, &r);
      expect_400_naming(&r, bad[i].param, path);
      tk_response_cleanup(&r);
    }
    snprintf(body, sizeof body, "{\"queryType\":\"GetUserProfile\",\"userId\":\"%s\",\"%s\":\"%s\"}", id, bad[i].param,
             bad[i].value);
    tk_http("POST", env.query_port, "/v1/query", body, strlen(body), &r);
    expect_400_naming(&r, bad[i].param, body);
    tk_response_cleanup(&r);
  }
  /* as JSON numbers in the body */
  static const char *const numbers[][2] = {{"minVersion", "-1"}, {"waitMs", "-5"}, {"waitMs", "10001"}};
  for (size_t i = 0; i < 3; i++) {
    snprintf(body, sizeof body, "{\"queryType\":\"GetUserProfile\",\"userId\":\"%s\",\"%s\":%s}", id, numbers[i][0],
             numbers[i][1]);
    tk_http("POST", env.query_port, "/v1/query", body, strlen(body), &r);
    expect_400_naming(&r, numbers[i][0], body);
    tk_response_cleanup(&r);
  }
  /* the bounds themselves are fine */
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=0&waitMs=10000", id);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 200, "%s answered %d: %s", path, r.status, r.body);
  tk_response_cleanup(&r);
}

/* A body over MAX_BODY_BYTES (default 1 MiB, API.md) to POST /v1/query: 413
 * in JSON naming the limit, and query-svc goes on answering. */
Test(read_wait, a_query_body_over_the_limit_answers_413_in_json) {
  size_t limit = 1 << 20, len = limit + 1;
  char *body = malloc(len + 1);
  int head = snprintf(body, len + 1, "{\"queryType\":\"GetUserProfile\",\"userId\":\"");
  memset(body + head, 'x', len - (size_t)head - 2);
  memcpy(body + len - 2, "\"}", 3);
  tk_response_t r;
  tk_http("POST", env.query_port, "/v1/query", body, len, &r);
  cr_expect_eq(r.status, 413, "a body of %zu bytes answered %d: %s", len, r.status, r.body ? r.body : "");
  cr_expect(has_header(&r, "Content-Type: application/json"), "%s", r.headers ? r.headers : "");
  char *error = r.body ? tk_json_string(r.body, "error") : NULL;
  cr_expect(error && strstr(error, "1048576"), "the 413 does not name the limit: %s", r.body ? r.body : "");
  free(error);
  tk_response_cleanup(&r);
  /* one byte less is read (and answered 404: no such user) */
  memcpy(body + len - 3, "\"}", 3);
  tk_http("POST", env.query_port, "/v1/query", body, len - 1, &r);
  cr_expect_eq(r.status, 404, "a body of %zu bytes answered %d: %s", len - 1, r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  free(body);
  tk_http("GET", env.query_port, "/readyz", NULL, 0, &r);
  cr_expect_eq(r.status, 200, "query-svc after the 413: %d", r.status);
  tk_response_cleanup(&r);
}

Test(read_wait, a_read_by_email_waits_for_the_first_user_in_sort_order_not_any_user_with_the_email) {
  char a[96], b[96], email[160], path[512];
  snprintf(a, sizeof a, "first-%s", env.db);
  snprintf(b, sizeof b, "second-%s", env.db);
  snprintf(email, sizeof email, "shared.%s@example.com", env.db);
  tk_response_t r;
  /* A is created (and visible) before B: A sorts first by createdAt. */
  create_user(a, email, "A1");
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=10000", a);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, 200);
  tk_response_cleanup(&r);
  create_user(b, email, "B1");
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=1&waitMs=10000", b);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, 200);
  tk_response_cleanup(&r);

  get_t g;
  snprintf(path, sizeof path, "/v1/users?email=%s&minVersion=2&waitMs=10000", email);
  get_start(&g, env.query_port, path);
  await_waiters(env.query_port, 1);
  /* B reaches version 2 while the email read waits: the read answers A, so
   * B's version must not end the wait. */
  rename_user(b, "B2");
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=2&waitMs=10000", b);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, 200);
  cr_assert_not(has_header(&r, "X-Stale"), "B reached version 2: %s", r.body);
  tk_response_cleanup(&r);
  rename_user(a, "A2");
  pthread_join(g.thread, NULL);
  cr_expect_eq(g.r.status, 200, "%d %s", g.r.status, g.r.body);
  cr_expect_not(has_header(&g.r, "X-Stale"), "%s", g.r.headers);
  cr_expect(g.r.body && strstr(g.r.body, a) && strstr(g.r.body, "\"A2\""), "A at version 2, not B: %s", g.r.body);
  tk_response_cleanup(&g.r);
}

/* ---- a misbehaving store in front of query-svc alone ---- */

/* A TCP listener on loopback that plays the store: HANG accepts and never
 * answers; HANG_ON_IN relays to the real store until a client sends a
 * command with an $in (only the waiter hub does), and from then on relays
 * nothing more on any connection: the store hangs mid-wait. */
typedef enum { HANG, HANG_ON_IN } fake_mode_t;

#define MAX_CONNS 64

typedef struct {
  fake_mode_t mode;
  int port;
  int listen_fd;
  int stop_pipe[2]; /* written once to stop every thread */
  char upstream_host[128];
  int upstream_port;
  atomic_bool hung;
  pthread_t acceptor;
  pthread_t conns[MAX_CONNS];
  int conn_fds[MAX_CONNS][2];
  atomic_int n_conns;
} fake_store_t;

typedef struct {
  fake_store_t *fs;
  int client, server;
} relay_t;

static bool has_in(const char *buf, ssize_t n) {
  static const char key[] = "$in"; /* a BSON key: "$in" and its NUL */
  for (ssize_t i = 0; i + (ssize_t)sizeof key <= n; i++)
    if (memcmp(buf + i, key, sizeof key) == 0) return true;
  return false;
}

/* Relays both ways until a side closes or the store is stopped; once hung,
 * reads and drops. */
static void *relay_main(void *arg) {
  relay_t *rl = arg;
  fake_store_t *fs = rl->fs;
  char buf[65536];
  for (;;) {
    struct pollfd p[3] = {{rl->client, POLLIN, 0}, {rl->server, POLLIN, 0}, {fs->stop_pipe[0], POLLIN, 0}};
    int nfds = rl->server >= 0 ? 3 : 1;
    if (rl->server < 0) p[1] = p[2], nfds = 2;
    if (poll(p, (nfds_t)nfds, -1) < 0) break;
    if (p[nfds - 1].revents) break; /* stop */
    if (p[0].revents) {
      ssize_t n = read(rl->client, buf, sizeof buf);
      if (n <= 0) break;
      if (fs->mode == HANG_ON_IN && has_in(buf, n)) atomic_store(&fs->hung, true);
      if (rl->server >= 0 && !atomic_load(&fs->hung) && write(rl->server, buf, (size_t)n) != n) break;
    }
    if (rl->server >= 0 && p[1].revents) {
      ssize_t n = read(rl->server, buf, sizeof buf);
      if (n <= 0) break;
      if (!atomic_load(&fs->hung) && write(rl->client, buf, (size_t)n) != n) break;
    }
  }
  free(rl);
  return NULL;
}

static int connect_upstream(const fake_store_t *fs) { return tk_connect(fs->upstream_host, fs->upstream_port, 0); }

static void *acceptor_main(void *arg) {
  fake_store_t *fs = arg;
  for (;;) {
    struct pollfd p[2] = {{fs->listen_fd, POLLIN, 0}, {fs->stop_pipe[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0 || p[1].revents) break;
    int c = accept(fs->listen_fd, NULL, NULL);
    if (c < 0) continue;
    int i = atomic_load(&fs->n_conns);
    if (i == MAX_CONNS) {
      close(c);
      continue;
    }
    relay_t *rl = malloc(sizeof *rl);
    rl->fs = fs;
    rl->client = c;
    rl->server = fs->mode == HANG ? -1 : connect_upstream(fs);
    fs->conn_fds[i][0] = c;
    fs->conn_fds[i][1] = rl->server;
    pthread_create(&fs->conns[i], NULL, relay_main, rl);
    atomic_store(&fs->n_conns, i + 1);
  }
  return NULL;
}

static void fake_store_start(fake_store_t *fs, fake_mode_t mode) {
  memset(fs, 0, sizeof *fs);
  fs->mode = mode;
  snprintf(fs->upstream_host, sizeof fs->upstream_host, "127.0.0.1");
  fs->upstream_port = 27017;
  /* The real store, from MONGO_URI's first host (mongodb://[user@]host:port). */
  const char *s = env.mongo_uri + (strncmp(env.mongo_uri, "mongodb://", 10) == 0 ? 10 : 0);
  const char *at = strchr(s, '@');
  if (at) s = at + 1;
  sscanf(s, "%127[^:/,]:%d", fs->upstream_host, &fs->upstream_port);
  if (strcmp(fs->upstream_host, "localhost") == 0) snprintf(fs->upstream_host, sizeof fs->upstream_host, "127.0.0.1");
  cr_assert_eq(pipe(fs->stop_pipe), 0);
  fs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fs->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  cr_assert_eq(bind(fs->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(listen(fs->listen_fd, 64), 0);
  getsockname(fs->listen_fd, (struct sockaddr *)&a, &len);
  fs->port = ntohs(a.sin_port);
  cr_assert_eq(pthread_create(&fs->acceptor, NULL, acceptor_main, fs), 0);
}

static void fake_store_stop(fake_store_t *fs) {
  cr_assert_eq(write(fs->stop_pipe[1], "x", 1), 1);
  pthread_join(fs->acceptor, NULL);
  for (int i = 0; i < atomic_load(&fs->n_conns); i++) {
    pthread_join(fs->conns[i], NULL);
    close(fs->conn_fds[i][0]);
    if (fs->conn_fds[i][1] >= 0) close(fs->conn_fds[i][1]);
  }
  close(fs->listen_fd);
  close(fs->stop_pipe[0]);
  close(fs->stop_pipe[1]);
}

static void outage_setup(void) { tk_env_init(&env); }

TestSuite(read_outage, .init = outage_setup, .timeout = 300);

/* Starts query-svc alone against MONGO_URI uri (plus extra settings) and
 * waits until it serves HTTP (/healthz: /readyz depends on the store). */
static pid_t start_query(const char *uri, const char *extra, char log[512]) {
  char mongo[300];
  snprintf(mongo, sizeof mongo, "MONGO_URI=%s", uri);
  const char *const vars[] = {mongo, extra, NULL};
  pid_t pid = tk_spawn(&env, TK_QUERY, vars, log);
  tk_response_t r;
  bool up = tk_await_get(env.query_port, "/healthz", 200, NULL, NULL, 30000, &r);
  tk_response_cleanup(&r);
  cr_assert(up, "query-svc did not serve /healthz; see %s", log);
  return pid;
}

/* Every kind of read answers 503 saying the store did not answer, and
 * /readyz 503: each within the store timeout, never a hang (the client gives
 * up only after its own 30 s, which fails the test). */
static void assert_reads_answer_503(void) {
  static const char *const paths[] = {"/v1/users/x", "/v1/users/x?minVersion=1&waitMs=1000",
                                      "/v1/users?email=x@example.com", "/v1/orders?userId=x", "/v1/customers/x",
                                      NULL};
  for (const char *const *p = paths; *p; p++) {
    tk_response_t r;
    bool answered = tk_http("GET", env.query_port, *p, NULL, 0, &r);
    cr_expect(answered, "GET %s: no answer (a hang?)", *p);
    cr_expect_eq(r.status, 503, "GET %s answered %d: %s", *p, r.status, r.body ? r.body : "");
    cr_expect_str_eq(r.body ? r.body : "", NO_STORE_BODY, "GET %s", *p);
    tk_response_cleanup(&r);
  }
  tk_response_t r;
  tk_http("GET", env.query_port, "/readyz", NULL, 0, &r);
  cr_expect_eq(r.status, 503, "/readyz answered %d: %s", r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
}

Test(read_outage, a_hung_store_gives_503_and_an_unready_service_not_a_hang) {
  fake_store_t fs;
  fake_store_start(&fs, HANG);
  char uri[128], log[512];
  snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d", fs.port);
  pid_t pid = start_query(uri, "MONGO_TIMEOUT_MS=1000", log);
  assert_reads_answer_503();
  tk_stop(pid, SIGTERM);
  fake_store_stop(&fs);
}

Test(read_outage, a_store_that_is_not_there_gives_503_with_the_default_timeout) {
  char uri[128], log[512];
  snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d", tk_free_port()); /* nothing listens there */
  pid_t pid = start_query(uri, NULL, log);
  assert_reads_answer_503();
  tk_stop(pid, SIGTERM);
}

static int count_lines(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "cannot read %s", path);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

Test(read_outage, a_store_that_stops_answering_mid_wait_gives_503_at_the_deadline_not_404) {
  fake_store_t fs;
  fake_store_start(&fs, HANG_ON_IN);
  char uri[128], log[512];
  snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d", fs.port);
  pid_t pid = start_query(uri, "MONGO_TIMEOUT_MS=1000", log);
  tk_response_t r;
  tk_http("GET", env.query_port, "/readyz", NULL, 0, &r);
  cr_assert_eq(r.status, 200, "the store answers through the relay at first: %s", r.body);
  tk_response_cleanup(&r);
  double errors0 = metric(env.query_port, "read_waits_total{outcome=\"error\"}");
  /* The read itself looks (absent) and waits; the hub's first find, with its
   * $in, is the store's last answer: from there on it hangs. The wait
   * outlasts a few store timeouts, so the hub fails several times. */
  char path[256];
  snprintf(path, sizeof path, "/v1/users/absent-%s?minVersion=1&waitMs=3500", env.db);
  bool answered = tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert(answered, "no answer (a hang?)");
  cr_expect(atomic_load(&fs.hung), "the hub's $in reached the store");
  cr_expect_eq(r.status, 503, "%d %s", r.status, r.body);
  cr_expect_str_eq(r.body, NO_STORE_BODY, "the store did not answer, so no 404");
  tk_response_cleanup(&r);
  await_metric(env.query_port, "read_waits_total{outcome=\"error\"}", errors0 + 1);
  double polls = metric(env.query_port, "read_wait_polls_total");
  cr_expect_geq(polls, 2, "the hub kept trying until the deadline (%g finds)", polls);
  tk_http("GET", env.query_port, "/readyz", NULL, 0, &r);
  cr_expect_eq(r.status, 503, "/readyz while the store hangs: %d %s", r.status, r.body);
  tk_response_cleanup(&r);
  tk_stop(pid, SIGTERM);
  fake_store_stop(&fs);
  /* Several failed finds, one log line: the hub logs changes, not ticks. */
  cr_expect_eq(count_lines(log, "the read store did not answer; waiting reads wait on"), 1,
               "one log line for the outage, not one per tick (see %s)", log);
}
