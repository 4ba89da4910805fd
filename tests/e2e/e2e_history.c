/* End to end, history and time travel (issue 16): the event_history read
 * model against the log, the audit trail routes, events by type and time,
 * and asOf / atVersion on single reads, through the three services against
 * the real local stack. Every test runs with snapshots every SNAPSHOT_EVERY
 * versions, 4 here (a few tens of events cross several): time travel folds
 * from them throughout. */
#include "testkit.h"

#include "cqrs/events.h"
#include "cqrs/json.h"
#include "cqrs/read_model.h"

#include <criterion/criterion.h>
#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VISIBLE_MS 30000
#define MAX_EVENTS 64

static tk_env_t env;
static pid_t pids[3];

#define SNAPSHOT_EVERY 4

static void setup(void) {
  char every[16];
  snprintf(every, sizeof every, "%d", SNAPSHOT_EVERY);
  setenv("SNAPSHOT_EVERY", every, 1); /* the services inherit it */
  tk_env_init(&env);
  tk_start_all(&env, pids);
}

static void teardown(void) { tk_stop_all(pids); }

TestSuite(history, .init = setup, .fini = teardown, .timeout = 600);

static char *id_of(const char *body) {
  char *id = tk_json_string(body, "aggregateId");
  cr_assert_not_null(id, "no aggregateId in %s", body);
  return id;
}

/* GET that must answer want; returns the response (clean it up). */
static void get(int want, tk_response_t *r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void get(int want, tk_response_t *r, const char *fmt, ...) {
  char path[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof path, fmt, ap);
  va_end(ap);
  tk_http("GET", env.query_port, path, NULL, 0, r);
  cr_assert_eq(r->status, want, "GET %s answered %d: %s", path, r->status, r->body ? r->body : "");
}

/* One event as a list shows it. */
typedef struct {
  char id[64], type[64], time[40], status[32], causation[64];
  int64_t version;
} item_t;

static void item_of(const bson_t *doc, item_t *it) {
  const char *s;
  int64_t v;
  memset(it, 0, sizeof *it);
  cr_assert(cqrs_json_get_string(doc, "eventId", NULL, true, 0, &s, NULL));
  snprintf(it->id, sizeof it->id, "%s", s);
  cr_assert(cqrs_json_get_string(doc, "type", NULL, true, 0, &s, NULL));
  snprintf(it->type, sizeof it->type, "%s", s);
  cr_assert(cqrs_json_get_string(doc, "time", NULL, true, 0, &s, NULL));
  snprintf(it->time, sizeof it->time, "%s", s);
  if (cqrs_json_get_string(doc, "causationId", NULL, false, 0, &s, NULL) && s)
    snprintf(it->causation, sizeof it->causation, "%s", s);
  bool present;
  cr_assert(cqrs_json_get_int64(doc, "version", NULL, true, &v, &present, NULL));
  it->version = v;
}

/* Every page of the list at path (with or without a query string), limit per page,
 * into items; asserts no item comes twice. Returns the count. */
static size_t read_pages_between(const char *path, int limit, item_t *items, size_t max, void (*between)(void));

static size_t read_pages(const char *path, int limit, item_t *items, size_t max) {
  return read_pages_between(path, limit, items, max, NULL);
}

/* read_pages, calling between (may be NULL) after each page but the last. */
static size_t read_pages_between(const char *path, int limit, item_t *items, size_t max, void (*between)(void)) {
  size_t n = 0;
  char *cursor = NULL;
  for (int pages = 0;; pages++) {
    cr_assert_lt(pages, 100, "paging does not end");
    tk_response_t r;
    get(200, &r, "%s%slimit=%d%s%s", path, strchr(path, '?') ? "&" : "?", limit, cursor ? "&cursor=" : "",
        cursor ? cursor : "");
    free(cursor);
    cursor = NULL;
    bson_t *page = cqrs_json_parse(r.body, r.len, NULL);
    cr_assert_not_null(page, "%s", r.body);
    bson_t items_doc;
    bson_iter_t it, sub;
    cr_assert(bson_iter_init_find(&it, page, "items") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub));
    size_t on_page = 0;
    while (bson_iter_next(&sub)) {
      const uint8_t *data;
      uint32_t len;
      bson_iter_document(&sub, &len, &data);
      cr_assert(bson_init_static(&items_doc, data, len));
      cr_assert_lt(n, max);
      item_of(&items_doc, &items[n]);
      for (size_t j = 0; j < n; j++)
        cr_assert_str_neq(items[j].id, items[n].id, "event %s repeated across pages", items[n].id);
      n++;
      on_page++;
    }
    cr_assert_leq(on_page, (size_t)limit);
    const char *next;
    cr_assert(cqrs_json_get_string(page, "nextCursor", NULL, false, 0, &next, NULL));
    if (next) cursor = strdup(next);
    bson_destroy(page);
    tk_response_cleanup(&r);
    if (!cursor) break;
    if (between) between();
  }
  return n;
}

/* The events of aggregate id on the log, in log order (one partition per
 * aggregate: version order). */
static size_t log_events(const char *id, tk_record_t **all, size_t *n_all, tk_record_t **mine, size_t max) {
  char topic[128];
  *all = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), n_all);
  size_t n = 0;
  for (size_t i = 0; i < *n_all; i++)
    if ((*all)[i].ce_subject && strcmp((*all)[i].ce_subject, id) == 0 && n < max) mine[n++] = &(*all)[i];
  return n;
}

static bool has_text(const char *body, void *needle) { return strstr(body, needle) != NULL; }

/* Waits (bounded) until GET path answers 200 with text in its body. */
static void await_text(const char *path, const char *text) {
  tk_response_t r;
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, (void *)text, VISIBLE_MS, &r), "GET %s never showed %s: %s",
            path, text, r.body ? r.body : "");
  tk_response_cleanup(&r);
}

/* An order through four statuses; returns its id. */
static char *order_through_its_statuses(void) {
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"h.%s@example.com\",\"name\":\"H\"}",
                       env.db);
  char *user = id_of(b);
  free(b);
  b = tk_command(&env, 201,
                 "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"items\":[{\"product\":\"Widget\",\"quantity\":"
                 "2,\"price\":10.5}],\"totalAmount\":21}",
                 user);
  char *order = id_of(b);
  free(b);
  static const char *const next[] = {"Processing", "Shipped", "Delivered"};
  for (int i = 0; i < 3; i++)
    free(tk_command(&env, 201, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\",\"status\":\"%s\"}",
                    order, next[i]));
  free(user);
  char path[256];
  snprintf(path, sizeof path, "/v1/orders/%s/history?limit=10", order);
  tk_response_t r;
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, "\"version\":4", VISIBLE_MS, &r),
            "the history never showed version 4: %d %s", r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  return order;
}

Test(history, an_aggregates_history_is_its_events_on_the_log) {
  char *order = order_through_its_statuses();
  item_t items[MAX_EVENTS];
  char path[256];
  /* pages of 3: two pages, the second shorter */
  snprintf(path, sizeof path, "/v1/orders/%s/history", order);
  size_t n = read_pages(path, 3, items, MAX_EVENTS);
  tk_record_t *all, *mine[MAX_EVENTS];
  size_t n_all;
  size_t n_log = log_events(order, &all, &n_all, mine, MAX_EVENTS);
  cr_assert_eq(n, 4);
  cr_assert_eq(n, n_log, "history has %zu events, the log %zu", n, n_log);
  for (size_t i = 0; i < n; i++) {
    cr_expect_str_eq(items[i].id, mine[i]->ce_id, "event %zu's id", i);
    cr_expect_eq(items[i].version, mine[i]->version, "event %zu's version", i);
    cr_expect_eq(items[i].version, (int64_t)i + 1, "version order");
    cr_expect_str_eq(items[i].type, mine[i]->ce_type, "event %zu's type", i);
    cr_expect_str_eq(items[i].time, mine[i]->ce_time, "event %zu's time", i);
    cr_expect_str_eq(items[i].causation, mine[i]->ce_causationid, "event %zu's causation", i);
  }
  cr_expect_str_eq(items[0].type, cqrs_order_created_event.name);
  tk_records_free(all, n_all);

  /* metadata and data as documented */
  tk_response_t r;
  get(200, &r, "/v1/orders/%s/history?limit=1", order);
  /* the order's first event, OrderCreated, is written at schema version 2,
   * the current one */
  cr_expect(strstr(r.body, "\"schemaVersion\":2,\"writtenSchemaVersion\":2") && strstr(r.body, "\"aggregateType\":\"order\"") &&
                strstr(r.body, "\"tenant\":\"default\"") && strstr(r.body, "\"Widget\""),
            "%s", r.body);
  /* who caused it: with AUTH=off, nobody authenticated */
  cr_expect(strstr(r.body, "\"actor\":{\"type\":\"" CQRS_AUTHTYPE_UNAUTHENTICATED "\",\"id\":\"anonymous\"}"), "%s",
            r.body);
  tk_response_cleanup(&r);
  /* unknown aggregates and other aggregates' ids answer 404 */
  get(404, &r, "/v1/orders/no-such-order-%s/history", env.db);
  tk_response_cleanup(&r);
  get(404, &r, "/v1/users/%s/history", order);
  tk_response_cleanup(&r);
  get(400, &r, "/v1/orders/%s/history?limit=0", order);
  tk_response_cleanup(&r);
  get(400, &r, "/v1/orders/%s/history?asOf=2026-01-01T00:00:00Z", order);
  tk_response_cleanup(&r);
  free(order);
}

/* t (RFC 3339 with milliseconds, UTC) moved by delta ms, into out. */
static void shift(const char *t, int delta, char out[40]) {
  struct tm tm = {0};
  int ms = 0;
  cr_assert(sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec, &ms) == 7,
            "%s", t);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t x = (int64_t)timegm(&tm) * 1000 + ms + delta;
  time_t s = (time_t)(x / 1000);
  gmtime_r(&s, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 40 - n, ".%03dZ", (int)(x % 1000));
}

/* The status the log says the order had after its first v events. */
static char *status_on_log(tk_record_t *const *mine, size_t n, int64_t v) {
  char *status = strdup("Created");
  for (size_t i = 1; i < n && mine[i]->version <= v; i++) {
    free(status);
    status = tk_json_string(mine[i]->value, "status");
  }
  return status;
}

Test(history, as_of_and_at_version_give_each_intermediate_state) {
  char *order = order_through_its_statuses();
  item_t items[MAX_EVENTS];
  char path[256];
  snprintf(path, sizeof path, "/v1/orders/%s/history", order);
  size_t n = read_pages(path, 10, items, MAX_EVENTS);
  cr_assert_eq(n, 4);
  tk_record_t *all, *mine[MAX_EVENTS];
  size_t n_all;
  size_t n_log = log_events(order, &all, &n_all, mine, MAX_EVENTS);
  cr_assert_eq(n_log, 4);
  tk_response_t r, now;
  get(200, &now, "/v1/orders/%s", order);
  for (size_t i = 0; i < n; i++) {
    char *want = status_on_log(mine, n_log, (int64_t)i + 1), quoted[48];
    snprintf(quoted, sizeof quoted, "\"status\":\"%s\"", want);
    /* atVersion */
    get(200, &r, "/v1/orders/%s?atVersion=%zu", order, i + 1);
    cr_expect(strstr(r.body, quoted), "atVersion=%zu: want %s, got %s", i + 1, want, r.body);
    char hdr[64];
    snprintf(hdr, sizeof hdr, "X-Read-Model-Version: %zu", i + 1);
    cr_expect(strstr(r.headers, hdr), "atVersion=%zu: %s", i + 1, r.headers);
    if (i + 1 == n) cr_expect_str_eq(r.body, now.body, "the last version is the stored document");
    tk_response_cleanup(&r);
    /* asOf: at the event, and just before the next one */
    get(200, &r, "/v1/orders/%s?asOf=%s", order, items[i].time);
    cr_expect(strstr(r.body, quoted), "asOf=%s: want %s, got %s", items[i].time, want, r.body);
    tk_response_cleanup(&r);
    if (i + 1 < n && strcmp(items[i].time, items[i + 1].time) < 0) {
      char before_next[40];
      shift(items[i + 1].time, -1, before_next);
      get(200, &r, "/v1/orders/%s?asOf=%s", order, before_next);
      cr_expect(strstr(r.body, quoted), "asOf=%s: want %s, got %s", before_next, want, r.body);
      tk_response_cleanup(&r);
    }
    free(want);
  }
  /* an offset other than Z means the same moment */
  get(200, &r, "/v1/orders/%s?asOf=2999-01-01T01:00:00%%2B01:00", order);
  cr_expect_str_eq(r.body, now.body);
  tk_response_cleanup(&r);
  /* before the order existed; beyond its last version */
  char before[40];
  shift(items[0].time, -1, before);
  get(404, &r, "/v1/orders/%s?asOf=%s", order, before);
  tk_response_cleanup(&r);
  get(404, &r, "/v1/orders/%s?atVersion=5", order);
  tk_response_cleanup(&r);
  get(404, &r, "/v1/orders/nope-%s?atVersion=1", env.db);
  tk_response_cleanup(&r);
  /* bad input */
  get(400, &r, "/v1/orders/%s?asOf=yesterday", order);
  cr_expect(strstr(r.body, "asOf"), "%s", r.body);
  tk_response_cleanup(&r);
  get(400, &r, "/v1/orders/%s?atVersion=0", order);
  tk_response_cleanup(&r);
  get(400, &r, "/v1/orders/%s?atVersion=1&asOf=%s", order, items[0].time);
  tk_response_cleanup(&r);
  get(400, &r, "/v1/orders/%s?atVersion=1&minVersion=1", order);
  tk_response_cleanup(&r);
  /* POST /v1/query takes them too */
  char q[256];
  snprintf(q, sizeof q, "{\"queryType\":\"GetOrder\",\"orderId\":\"%s\",\"atVersion\":2}", order);
  tk_http("POST", env.query_port, "/v1/query", q, strlen(q), &r);
  cr_expect_eq(r.status, 200);
  cr_expect(strstr(r.body, "\"status\":\"Processing\""), "%s", r.body);
  tk_response_cleanup(&r);
  tk_response_cleanup(&now);
  tk_records_free(all, n_all);
  free(order);
}

Test(history, users_and_customers_travel_too) {
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"u.%s@example.com\",\"name\":\"One\"}",
                       env.db);
  char *user = id_of(b);
  free(b);
  free(tk_command(&env, 201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"Two\"}}", user));
  char customer[96];
  snprintf(customer, sizeof customer, "cust-%s", env.db);
  free(tk_command(&env, 201,
                  "{\"commandType\":\"RegisterCustomer\",\"customerId\":\"%s\",\"email\":\"c.%s@example.com\","
                  "\"name\":\"C\"}",
                  customer, env.db));
  free(tk_command(&env, 201, "{\"commandType\":\"SuspendCustomer\",\"aggregateId\":\"%s\",\"reason\":\"test\"}",
                  customer));
  char path[256];
  tk_response_t r;
  snprintf(path, sizeof path, "/v1/users/%s/history", user);
  await_text(path, "\"version\":2");
  snprintf(path, sizeof path, "/v1/customers/%s/history", customer);
  await_text(path, "\"version\":2");
  get(200, &r, "/v1/users/%s?atVersion=1", user);
  cr_expect(strstr(r.body, "\"name\":\"One\""), "%s", r.body);
  tk_response_cleanup(&r);
  get(200, &r, "/v1/users/%s?atVersion=2", user);
  cr_expect(strstr(r.body, "\"name\":\"Two\""), "%s", r.body);
  tk_response_cleanup(&r);
  get(200, &r, "/v1/customers/%s?atVersion=1", customer);
  cr_expect(strstr(r.body, "\"status\":\"ACTIVE\""), "%s", r.body);
  tk_response_cleanup(&r);
  get(200, &r, "/v1/customers/%s?atVersion=2", customer);
  cr_expect(strstr(r.body, "\"status\":\"SUSPENDED\""), "%s", r.body);
  tk_response_cleanup(&r);
  free(user);
}

/* A write between two pages. */
static void create_a_user(void) {
  static int k;
  free(tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"d%d.%s@example.com\",\"name\":\"D\"}",
                  k++, env.db));
}

Test(history, events_by_type_and_time_window) {
  enum { N = 6 };
  char *users[N];
  for (int i = 0; i < N; i++) {
    char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"w%d.%s@example.com\",\"name\":\"W\"}",
                         i, env.db);
    users[i] = id_of(b);
    free(b);
  }
  /* a second type in the same window, which must not show */
  free(tk_command(&env, 201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"X\"}}",
                  users[0]));
  const char *type = cqrs_user_created_event.name;
  char path[512];
  snprintf(path, sizeof path, "/v1/events?type=%s&limit=500", type);
  tk_response_t r;
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, users[N - 1], VISIBLE_MS, &r), "%s",
            r.body ? r.body : "");
  tk_response_cleanup(&r);
  snprintf(path, sizeof path, "/v1/users/%s/history", users[0]);
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, "\"version\":2", VISIBLE_MS, &r));
  tk_response_cleanup(&r);

  /* the log's events of the type, in time order */
  char topic[128];
  size_t n_all;
  tk_record_t *all = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n_all);
  item_t items[MAX_EVENTS];
  snprintf(path, sizeof path, "/v1/events?type=%s", type);
  size_t n = read_pages(path, 2, items, MAX_EVENTS);
  size_t n_type = 0;
  for (size_t i = 0; i < n_all; i++) n_type += strcmp(all[i].ce_type, type) == 0;
  cr_assert_eq(n, n_type, "every %s: %zu listed, %zu on the log", type, n, n_type);
  for (size_t i = 0; i < n; i++) {
    cr_expect_str_eq(items[i].type, type);
    if (i) cr_expect_leq(strcmp(items[i - 1].time, items[i].time), 0, "oldest first");
  }
  /* a window [from, to) cut between events: exactly the log's events inside */
  cr_assert_geq(n, 4);
  const char *from = items[1].time, *to = items[n - 1].time;
  snprintf(path, sizeof path, "/v1/events?type=%s&from=%s&to=%s", type, from, to);
  item_t in[MAX_EVENTS];
  size_t n_in = read_pages(path, 2, in, MAX_EVENTS);
  size_t want = 0;
  for (size_t i = 0; i < n_all; i++) {
    if (strcmp(all[i].ce_type, type) != 0 || strcmp(all[i].ce_time, from) < 0 || strcmp(all[i].ce_time, to) >= 0)
      continue;
    want++;
    bool listed = false;
    for (size_t j = 0; j < n_in; j++) listed |= strcmp(in[j].id, all[i].ce_id) == 0;
    cr_expect(listed, "event %s at %s is in the window but not listed", all[i].ce_id, all[i].ce_time);
  }
  cr_expect_eq(n_in, want, "%zu listed, %zu on the log in [%s, %s)", n_in, want, from, to);
  for (size_t j = 0; j < n_in; j++)
    cr_expect(strcmp(in[j].time, from) >= 0 && strcmp(in[j].time, to) < 0, "%s is outside the window", in[j].time);
  /* newest first: the same events, reversed */
  snprintf(path, sizeof path, "/v1/events?type=%s&from=%s&to=%s&order=newest", type, from, to);
  item_t rev[MAX_EVENTS];
  size_t n_rev = read_pages(path, 2, rev, MAX_EVENTS);
  cr_assert_eq(n_rev, n_in);
  for (size_t j = 0; j < n_in; j++) cr_expect_str_eq(rev[j].id, in[n_in - 1 - j].id);
  tk_records_free(all, n_all);

  /* pages neither skip nor repeat while events of the type keep coming
   * (read_pages asserts no repeat): every event listed before is listed */
  item_t during[MAX_EVENTS];
  snprintf(path, sizeof path, "/v1/events?type=%s", type);
  size_t n_during = read_pages_between(path, 2, during, MAX_EVENTS, create_a_user);
  for (size_t i = 0; i < n; i++) {
    bool listed = false;
    for (size_t j = 0; j < n_during; j++) listed |= strcmp(during[j].id, items[i].id) == 0;
    cr_expect(listed, "event %s was skipped by pages read during writes", items[i].id);
  }

  /* bad input */
  get(400, &r, "/v1/events?type=NoSuchEvent");
  tk_response_cleanup(&r);
  get(400, &r, "/v1/events");
  tk_response_cleanup(&r);
  get(400, &r, "/v1/events?type=%s&from=soon", type);
  tk_response_cleanup(&r);
  get(400, &r, "/v1/events?type=%s&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", type);
  tk_response_cleanup(&r);
  get(400, &r, "/v1/events?type=%s&order=sideways", type);
  tk_response_cleanup(&r);
  for (int i = 0; i < N; i++) free(users[i]);
}

/* The value of header name in a raw header block, or -1 when absent. */
static int64_t header_int(const char *headers, const char *name) {
  char key[96];
  snprintf(key, sizeof key, "\r\n%s: ", name);
  const char *h = headers ? strstr(headers, key) : NULL;
  return h ? strtoll(h + strlen(key), NULL, 10) : -1;
}

typedef enum { FRESH, STALE } want_t;

/* Polls (bounded) until GET path's lag header and query-svc's metric and
 * /readyz all say want for order_summaries; returns the last lag seen. */
static int64_t await_freshness(const char *path, want_t want, int objective_ms) {
  int64_t lag = -1;
  bool lag_ok = false, metric_ok = false, ready_ok = false;
  char metric[128];
  snprintf(metric, sizeof metric, "read_model_stale{read_model=\"order_summaries\"} %d", want == STALE);
  for (int tries = 0; tries < 400 && !(lag_ok && metric_ok && ready_ok); tries++) {
    tk_response_t r;
    tk_http("GET", env.query_port, path, NULL, 0, &r);
    lag = r.status == 200 ? header_int(r.headers, "X-Read-Model-Lag-Ms") : -1;
    lag_ok = lag >= 0 && (want == STALE ? lag > objective_ms : lag <= objective_ms);
    tk_response_cleanup(&r);
    tk_http("GET", env.query_port, "/metrics", NULL, 0, &r);
    metric_ok = r.status == 200 && strstr(r.body, metric);
    tk_response_cleanup(&r);
    tk_http("GET", env.query_port, "/readyz", NULL, 0, &r);
    ready_ok = r.status == 200 && (strstr(r.body, "\"order_summaries\"") != NULL) == (want == STALE);
    tk_response_cleanup(&r);
    if (!(lag_ok && metric_ok && ready_ok)) usleep(50 * 1000); /* between polls of a condition with a deadline */
  }
  cr_assert(lag_ok && metric_ok && ready_ok, "want %s: lag %lld (%d), metric %d, readyz %d",
            want == STALE ? "stale" : "fresh", (long long)lag, lag_ok, metric_ok, ready_ok);
  return lag;
}

/* Polls (bounded) until GET path answers 200 with X-Read-Model-Lag-Ms. */
static void await_lag_header(const char *path) {
  int64_t lag = -1;
  for (int tries = 0; tries < 400 && lag < 0; tries++) {
    tk_response_t r;
    tk_http("GET", env.query_port, path, NULL, 0, &r);
    lag = r.status == 200 ? header_int(r.headers, "X-Read-Model-Lag-Ms") : -1;
    tk_response_cleanup(&r);
    if (lag < 0) usleep(50 * 1000); /* between polls of a condition with a deadline */
  }
  cr_assert_geq(lag, 0, "GET %s never said its lag", path);
}

Test(history, freshness_headers_and_the_staleness_objective) {
  enum { OBJECTIVE_MS = 1500 };
  tk_stop(pids[TK_QUERY], SIGTERM);
  const char *extra[] = {"STALENESS_OBJECTIVE_MS=1500", NULL};
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, extra);
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"f.%s@example.com\",\"name\":\"F\"}",
                       env.db);
  char *user = id_of(b);
  free(b);
  b = tk_command(&env, 201,
                 "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"items\":[{\"product\":\"W\",\"quantity\":1,"
                 "\"price\":1}],\"totalAmount\":1}",
                 user);
  char *order = id_of(b);
  free(b);
  char path[256];
  snprintf(path, sizeof path, "/v1/orders/%s?minVersion=1&waitMs=10000", order);
  await_freshness(path, FRESH, OBJECTIVE_MS);
  tk_response_t r;
  get(200, &r, "/v1/orders/%s", order);
  cr_expect_geq(header_int(r.headers, "X-Read-Model-Lag-Events"), 0, "%s", r.headers);
  tk_response_cleanup(&r);
  /* lists and histories say it too (event_history's projector reports on
   * its own: await its first report of having caught up) */
  snprintf(path, sizeof path, "/v1/orders?userId=%s", user);
  await_lag_header(path);
  snprintf(path, sizeof path, "/v1/orders/%s/history", order);
  await_lag_header(path);

  /* the projector paused: nobody vouches for the read model any more */
  kill(pids[TK_PROJECTOR], SIGSTOP);
  free(tk_command(&env, 201, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\",\"status\":\"Processing\"}",
                  order));
  snprintf(path, sizeof path, "/v1/orders/%s", order);
  int64_t first = await_freshness(path, STALE, OBJECTIVE_MS);
  get(200, &r, "/v1/orders/%s", order);
  cr_expect(strstr(r.body, "\"Created\""), "the projector is paused: %s", r.body);
  int64_t later = header_int(r.headers, "X-Read-Model-Lag-Ms");
  cr_expect_geq(later, first, "the lag grows while paused: %lld then %lld", (long long)first, (long long)later);
  tk_response_cleanup(&r);
  tk_http("GET", env.query_port, "/metrics", NULL, 0, &r);
  cr_expect(strstr(r.body, "read_model_staleness_breaches_total{read_model=\"order_summaries\"}"), "%s", r.body);
  tk_response_cleanup(&r);

  /* resumed: it catches up and the lag falls back */
  kill(pids[TK_PROJECTOR], SIGCONT);
  await_freshness(path, FRESH, OBJECTIVE_MS);
  tk_response_t now;
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, "\"Processing\"", VISIBLE_MS, &now));
  tk_response_cleanup(&now);
  free(order);
  free(user);
}

Test(history, a_long_history_pages_across_version_blocks) {
  enum { UPDATES = 150 }; /* 151 events: two blocks of 100 versions */
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"l.%s@example.com\",\"name\":\"L0\"}",
                       env.db);
  char *user = id_of(b);
  free(b);
  for (int i = 1; i <= UPDATES; i++)
    free(tk_command(&env, 201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"L%d\"}}",
                    user, i));
  char path[256];
  tk_response_t r;
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=%d&waitMs=10000", user, UPDATES + 1);
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, "\"name\":\"L150\"", VISIBLE_MS, &r));
  tk_response_cleanup(&r);
  snprintf(path, sizeof path, "/v1/users/%s/history?limit=1", user);
  char needle[32];
  snprintf(needle, sizeof needle, "\"version\":1");
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, needle, VISIBLE_MS, &r));
  tk_response_cleanup(&r);
  static item_t items[2 * UPDATES];
  snprintf(path, sizeof path, "/v1/users/%s/history", user);
  size_t n = 0;
  /* the history's events may still be arriving: read until all are there (bounded) */
  for (int tries = 0; tries < 200 && n < UPDATES + 1; tries++) {
    n = read_pages(path, 40, items, 2 * UPDATES);
    if (n < UPDATES + 1) usleep(50 * 1000);
  }
  cr_assert_eq(n, UPDATES + 1);
  for (size_t i = 0; i < n; i++) cr_assert_eq(items[i].version, (int64_t)i + 1, "version order without gaps");
  get(200, &r, "/v1/users/%s/history?limit=500", user);
  cr_expect_null(strstr(r.body, "versionBlock"), "the block is internal");
  cr_expect(tk_json_is_null(r.body, "nextCursor"));
  tk_response_cleanup(&r);
  tk_response_t now;
  get(200, &now, "/v1/users/%s", user);
  get(200, &r, "/v1/users/%s?atVersion=%d", user, UPDATES + 1);
  cr_expect_str_eq(r.body, now.body);
  tk_response_cleanup(&r);
  get(200, &r, "/v1/users/%s?atVersion=101", user);
  cr_expect(strstr(r.body, "\"name\":\"L100\""), "%s", r.body);
  tk_response_cleanup(&r);
  tk_response_cleanup(&now);
  free(user);
}

/* Events with times of our choosing, straight onto the log (as another
 * producer could write them): OrderStatusUpdated of orders h-<i>. */
Test(history, a_window_across_hours_pages_in_time_order) {
  static const char *const times[] = {"2025-01-01T10:30:00.000Z", "2025-01-01T10:59:59.999Z",
                                      "2025-01-01T11:00:00.000Z", "2025-01-01T11:30:00.000Z",
                                      "2025-01-01T12:10:00.000Z", "2025-01-01T12:59:00.000Z"};
  enum { N = 6 };
  char topic[128];
  tk_topic(&env, "events", topic);
  char ids[N][128];
  for (int i = 0; i < N; i++) {
    char subject[64];
    snprintf(ids[i], sizeof ids[i], "hour-event-%d-%s", i, env.db);
    snprintf(subject, sizeof subject, "h-%d", i);
    const char *headers[] = {"ce_specversion", "1.0", "ce_id", ids[i], "ce_type", cqrs_order_status_updated_event.name,
                             "ce_source", "/e2e", "ce_subject", subject, "ce_aggregatetype", "order",
                             "ce_aggregateversion", "2", "ce_time", times[i], "content-type", "application/json",
                             NULL};
    tk_kafka_produce(&env, topic, -1, subject,
                     "{\"status\":\"Shipped\",\"updatedAt\":\"2025-01-01T00:00:00.000Z\"}", headers);
  }
  const char *type = cqrs_order_status_updated_event.name;
  char path[512];
  tk_response_t r;
  snprintf(path, sizeof path, "/v1/events?type=%s&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z&limit=500", type);
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, ids[N - 1], VISIBLE_MS, &r), "%s",
            r.body ? r.body : "");
  tk_response_cleanup(&r);
  /* [10:45, 12:30): the four in the middle, one a page, across three hours */
  snprintf(path, sizeof path, "/v1/events?type=%s&from=2025-01-01T10:45:00Z&to=2025-01-01T12:30:00Z", type);
  item_t items[MAX_EVENTS];
  size_t n = read_pages(path, 1, items, MAX_EVENTS);
  cr_assert_eq(n, 4, "%zu events in the window", n);
  for (int i = 0; i < 4; i++) cr_expect_str_eq(items[i].id, ids[i + 1]);
  /* events that do not say who caused them (as before actors were recorded): null */
  snprintf(path, sizeof path, "/v1/events?type=%s&from=2025-01-01T10:00:00Z&to=2025-01-01T10:31:00Z", type);
  get(200, &r, "%s", path);
  cr_expect(strstr(r.body, ids[0]) && strstr(r.body, "\"actor\":null"), "%s", r.body);
  tk_response_cleanup(&r);
  snprintf(path, sizeof path, "/v1/events?type=%s&from=2025-01-01T10:45:00Z&to=2025-01-01T12:30:00Z&order=newest",
           type);
  n = read_pages(path, 3, items, MAX_EVENTS);
  cr_assert_eq(n, 4);
  for (int i = 0; i < 4; i++) cr_expect_str_eq(items[i].id, ids[4 - i]);
  /* an offset in the bounds means the same instants: [11:45+01:00, 13:00+01:00) = [10:45Z, 12:00Z) */
  snprintf(path, sizeof path,
           "/v1/events?type=%s&from=2025-01-01T11:45:00%%2B01:00&to=2025-01-01T13:00:00%%2B01:00&limit=500", type);
  n = read_pages(path, 500, items, MAX_EVENTS);
  cr_assert_eq(n, 3);
  for (int i = 0; i < 3; i++) cr_expect_str_eq(items[i].id, ids[i + 1]);
}

/* ---- snapshots ---- */

/* The snapshots of user id in the store (the collection the alias names): how
 * many; the one at version `drop` (> 0) deleted first (it must be there). */
static int64_t snapshots_of(mongoc_client_t *client, const char *id, int64_t drop) {
  char db[128], name[CQRS_COLLECTION_NAME_MAX];
  tk_tenant_db(&env, "default", db);
  cqrs_read_models_t *rm = cqrs_read_models_new(NULL, 0, CQRS_ALIAS_WRITER);
  cqrs_read_models_resolve_in(rm, client, db, "snapshots", name);
  cqrs_read_models_destroy(rm);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, name);
  bson_error_t e;
  bson_t *filter = BCON_NEW("aggregateId", BCON_UTF8(id), "model", BCON_UTF8("user_profiles"));
  if (drop > 0) {
    char sid[160];
    snprintf(sid, sizeof sid, "user_profiles|%s|%lld", id, (long long)drop);
    filter = BCON_NEW("_id", BCON_UTF8(sid));
    bson_t reply;
    cr_assert(mongoc_collection_delete_one(coll, filter, NULL, &reply, &e), "%s", e.message);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, &reply, "deletedCount") && bson_iter_as_int64(&it) == 1, "no snapshot %s",
              sid);
    bson_destroy(&reply);
    bson_destroy(filter);
    filter = BCON_NEW("aggregateId", BCON_UTF8(id), "model", BCON_UTF8("user_profiles"));
  }
  int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &e);
  cr_assert_geq(n, 0, "counting snapshots: %s", e.message);
  bson_destroy(filter);
  mongoc_collection_destroy(coll);
  return n;
}

enum { SNAP_EVENTS = 26 }; /* snapshots at 4, 8, ..., 24 */

/* Every time travel of the user worth asking: each version, each event's
 * time, just before each next one, and before the first. */
typedef struct {
  char path[3 * SNAP_EVENTS + 1][256];
  int status[3 * SNAP_EVENTS + 1];
  char *body[3 * SNAP_EVENTS + 1];
  size_t n;
} travels_t;

static void travel_paths(travels_t *t, const char *user, const item_t *items) {
  t->n = 0;
  for (int v = 1; v <= SNAP_EVENTS; v++) snprintf(t->path[t->n++], 256, "/v1/users/%s?atVersion=%d", user, v);
  char before[40];
  shift(items[0].time, -1, before);
  snprintf(t->path[t->n++], 256, "/v1/users/%s?asOf=%s", user, before);
  for (int i = 0; i < SNAP_EVENTS; i++) {
    snprintf(t->path[t->n++], 256, "/v1/users/%s?asOf=%s", user, items[i].time);
    if (i + 1 < SNAP_EVENTS && strcmp(items[i].time, items[i + 1].time) < 0) {
      shift(items[i + 1].time, -1, before);
      snprintf(t->path[t->n++], 256, "/v1/users/%s?asOf=%s", user, before);
    }
  }
}

static void travel_all(travels_t *t) {
  for (size_t i = 0; i < t->n; i++) {
    tk_response_t r;
    tk_http("GET", env.query_port, t->path[i], NULL, 0, &r);
    t->status[i] = r.status;
    t->body[i] = strdup(r.body ? r.body : "");
    tk_response_cleanup(&r);
  }
}

/* Both answered the same to each travel; returns how many were 200. */
static size_t assert_same(const travels_t *a, const travels_t *b, const char *what) {
  size_t answered = 0;
  for (size_t i = 0; i < a->n; i++) {
    cr_expect_eq(a->status[i], b->status[i], "%s: %d from snapshots (%s), %d from the beginning", a->path[i],
                 a->status[i], what, b->status[i]);
    cr_expect_str_eq(a->body[i], b->body[i], "%s (%s)", a->path[i], what);
    answered += a->status[i] == 200;
  }
  return answered;
}

static void travels_free(travels_t *t) {
  for (size_t i = 0; i < t->n; i++) free(t->body[i]);
}

Test(history, time_travel_from_snapshots_is_the_full_fold) {
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"s0.%s@example.com\",\"name\":\"S0\"}",
                       env.db);
  char *user = id_of(b);
  free(b);
  for (int v = 2; v <= SNAP_EVENTS; v++) /* names and emails in turn: fields change at different versions */
    free(tk_command(&env, 201,
                    v % 3 ? "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"S%d\"}}"
                          : "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"email\":"
                            "\"s%d@example.com\"}}",
                    user, v));
  char path[256];
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=%d&waitMs=10000", user, SNAP_EVENTS);
  await_text(path, "\"version\":26");
  snprintf(path, sizeof path, "/v1/users/%s/history?limit=50", user);
  await_text(path, "\"version\":26");
  static item_t items[2 * SNAP_EVENTS];
  snprintf(path, sizeof path, "/v1/users/%s/history", user);
  size_t n = read_pages(path, 50, items, 2 * SNAP_EVENTS);
  cr_assert_eq(n, SNAP_EVENTS);

  /* projector-svc wrote one every SNAPSHOT_EVERY versions (it follows the history: await them) */
  mongoc_client_t *client = mongoc_client_new(env.mongo_uri);
  int64_t snaps = 0;
  for (int tries = 0; tries < 600 && snaps < SNAP_EVENTS / SNAPSHOT_EVERY; tries++) {
    snaps = snapshots_of(client, user, 0);
    if (snaps < SNAP_EVENTS / SNAPSHOT_EVERY) usleep(50 * 1000);
  }
  cr_assert_eq(snaps, SNAP_EVENTS / SNAPSHOT_EVERY, "snapshots at 4, 8, ..., 24");
  /* one gone (as if not written yet): time travel around it starts from the one before */
  cr_assert_eq(snapshots_of(client, user, 12), SNAP_EVENTS / SNAPSHOT_EVERY - 1);

  static travels_t with, without, rebuilt;
  travel_paths(&with, user, items);
  travel_paths(&without, user, items);
  travel_paths(&rebuilt, user, items);
  char series[128];
  snprintf(series, sizeof series, "time_travels_total{read_model=\"user_profiles\",base=\"snapshot\"}");
  double from_snapshots = tk_metric(env.query_port, series);
  double folded = tk_metric(env.query_port, "time_travel_events_total{read_model=\"user_profiles\"}");
  travel_all(&with);
  double used = tk_metric(env.query_port, series) - (from_snapshots > 0 ? from_snapshots : 0);
  double events = tk_metric(env.query_port, "time_travel_events_total{read_model=\"user_profiles\"}") -
                  (folded > 0 ? folded : 0);
  /* every travel at or past version 4 starts from a snapshot; none folds 2K events or more */
  cr_expect_geq(used, (double)(SNAP_EVENTS - SNAPSHOT_EVERY), "%g travels from snapshots", used);
  cr_expect_lt(events, (double)(2 * SNAPSHOT_EVERY * with.n), "%g events folded in %zu travels", events, with.n);

  /* the same travels through a query-svc that folds every history from its beginning */
  tk_stop(pids[TK_QUERY], SIGTERM);
  const char *no_snapshots[] = {"SNAPSHOT_EVERY=0", NULL};
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, no_snapshots);
  travel_all(&without);
  cr_expect_leq(tk_metric(env.query_port, series), 0, "SNAPSHOT_EVERY=0 looks for none");
  cr_expect_eq(assert_same(&with, &without, "one missing"), with.n - 1,
               "all but the one before the first event answer 200");

  /* a rebuild writes them all again, the missing one too, and time travel reads the new collection */
  cr_assert_eq(tk_rebuild(&env, "snapshots"), 0, "rebuild snapshots");
  cr_expect_eq(snapshots_of(client, user, 0), SNAP_EVENTS / SNAPSHOT_EVERY);
  mongoc_client_destroy(client);
  tk_stop(pids[TK_QUERY], SIGTERM);
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, NULL);
  travel_all(&rebuilt);
  assert_same(&rebuilt, &without, "rebuilt");
  travels_free(&with);
  travels_free(&without);
  travels_free(&rebuilt);
  free(user);
}
