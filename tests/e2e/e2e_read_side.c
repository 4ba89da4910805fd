/* End to end, the read side: the seed recipe's steps, every seed query,
 * pagination (also while orders of one createdAt arrive), replay, dead
 * letters and a rebuild under load, through the three services against the
 * real local stack. */
#include "testkit.h"

#include "cqrs/events.h"
#include "cqrs/tenant.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>

#define VISIBLE_MS 30000

static tk_env_t env;
static pid_t pids[3];

static void setup(void) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
}

static void teardown(void) { tk_stop_all(pids); }

TestSuite(read_side, .init = setup, .fini = teardown, .timeout = 600);

/* Sends a command and returns its answer body; asserts the status. */
#define command(want, ...) tk_command(&env, (want), __VA_ARGS__)

static char *id_of(const char *body) {
  char *id = tk_json_string(body, "aggregateId");
  cr_assert_not_null(id, "no aggregateId in %s", body);
  return id;
}

/* GET that must answer want; returns the body. */
static char *get(int want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *get(int want, const char *fmt, ...) {
  char path[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof path, fmt, ap);
  va_end(ap);
  tk_response_t r;
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, want, "GET %s answered %d: %s", path, r.status, r.body ? r.body : "");
  char *body = strdup(r.body);
  tk_response_cleanup(&r);
  return body;
}

static bool has_text(const char *body, void *needle) { return strstr(body, needle) != NULL; }

/* Waits until GET path answers 200 with needle in the body. */
static char *await_text(const char *path, const char *needle) {
  tk_response_t r;
  bool ok = tk_await_get(env.query_port, path, 200, has_text, (void *)needle, VISIBLE_MS, &r);
  cr_assert(ok, "GET %s never showed %s (last: %d %s)", path, needle, r.status, r.body ? r.body : "");
  char *body = strdup(r.body);
  tk_response_cleanup(&r);
  return body;
}

Test(read_side, the_seed_recipe_and_all_eight_queries) {
  /* The recipe: create a user, create an order, set it Processing, read the
   * profile and the user's orders. */
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"recipe.%s@example.com\",\"name\":\"Recipe\"}", env.db);
  char *user = id_of(b);
  free(b);
  b = command(201,
              "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"items\":[{\"product\":\"Widget\",\"quantity\":2,"
              "\"price\":10.5}],\"totalAmount\":21}",
              user);
  char *order = id_of(b);
  free(b);
  b = command(201, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\",\"status\":\"Processing\"}", order);
  cr_expect_eq(tk_json_int(b, "version"), 2);
  free(b);

  b = get(200, "/v1/users/%s?minVersion=1&waitMs=10000", user);            /* GetUserProfile */
  cr_expect(strstr(b, "Recipe"));
  free(b);
  b = get(200, "/v1/orders/%s?minVersion=2&waitMs=10000", order);          /* GetOrder */
  cr_expect(strstr(b, "\"Processing\""), "%s", b);
  cr_expect(strstr(b, "Widget"), "%s", b);
  free(b);
  char path[512];
  snprintf(path, sizeof path, "/v1/orders?userId=%s", user);                /* GetOrdersByUser */
  b = await_text(path, "Processing");
  cr_expect(strstr(b, order) && strstr(b, "\"nextCursor\""), "%s", b);
  free(b);
  b = await_text("/v1/orders?status=Processing&limit=500", order);        /* GetOrdersByStatus */
  free(b);
  b = get(200, "/v1/users?email=recipe.%s@example.com", env.db);           /* GetUserByEmail */
  cr_expect(strstr(b, user), "%s", b);
  free(b);

  char customer[96];
  snprintf(customer, sizeof customer, "cust-%s", env.db);
  free(command(201, "{\"commandType\":\"RegisterCustomer\",\"customerId\":\"%s\",\"email\":\"c.%s@example.com\",\"name\":\"C\"}",
               customer, env.db));
  b = get(200, "/v1/customers/%s?minVersion=1&waitMs=10000", customer);    /* GetCustomerById */
  cr_expect(strstr(b, "\"ACTIVE\""), "%s", b);
  free(b);
  b = await_text("/v1/customers?status=ACTIVE&limit=500", customer);      /* GetActiveCustomers */
  free(b);
  snprintf(path, sizeof path, "/v1/customers?emailPrefix=c.%s", env.db);   /* SearchCustomersByEmail */
  b = await_text(path, customer);
  free(b);
  free(command(201, "{\"commandType\":\"SuspendCustomer\",\"aggregateId\":\"%s\",\"reason\":\"test\"}", customer));
  b = get(200, "/v1/customers/%s?minVersion=2&waitMs=10000", customer);
  cr_expect(strstr(b, "\"SUSPENDED\""), "%s", b);
  free(b);
  b = get(200, "/v1/customers?status=ACTIVE&limit=500");
  cr_expect(!strstr(b, customer), "a suspended customer is listed as active: %s", b);
  free(b);

  /* The seed's POST /v1/query answers as the route does. */
  char q[256];
  snprintf(q, sizeof q, "{\"queryType\":\"GetOrder\",\"orderId\":\"%s\"}", order);
  tk_response_t r;
  tk_http("POST", env.query_port, "/v1/query", q, strlen(q), &r);
  char *direct = get(200, "/v1/orders/%s", order);
  cr_expect_eq(r.status, 200);
  cr_expect_str_eq(r.body, direct);
  free(direct);
  tk_response_cleanup(&r);
  /* ... read-your-writes included. */
  snprintf(q, sizeof q, "{\"queryType\":\"GetOrder\",\"orderId\":\"%s\",\"minVersion\":3,\"waitMs\":200}", order);
  tk_http("POST", env.query_port, "/v1/query", q, strlen(q), &r);
  cr_expect_eq(r.status, 200);
  cr_expect(strstr(r.headers, "X-Stale: true"), "version 3 does not exist yet: %s", r.headers);
  tk_response_cleanup(&r);
  tk_http("POST", env.query_port, "/v1/query", "{\"queryType\":\"Nope\"}", 20, &r);
  cr_expect_eq(r.status, 400);
  tk_response_cleanup(&r);
  free(user), free(order);
}

/* Creates an order of user for one <product><i> at 1 and returns its id. */
static char *create_order(const char *user, const char *product, int i) {
  char *b = command(201,
                    "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"items\":[{\"product\":\"%s%d\","
                    "\"quantity\":1,\"price\":1}],\"totalAmount\":1}",
                    user, product, i);
  char *id = id_of(b);
  free(b);
  return id;
}

static int count_items(const char *body) {
  int n = 0;
  for (const char *p = body; (p = strstr(p, "\"orderId\"")); p++) n++;
  return n;
}

Test(read_side, seven_orders_in_pages_of_three_without_repeats_or_gaps) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"pages.%s@example.com\",\"name\":\"P\"}", env.db);
  char *user = id_of(b);
  free(b);
  char *orders[8] = {0};
  for (int i = 0; i < 7; i++) orders[i] = create_order(user, "P", i);
  char path[512];
  snprintf(path, sizeof path, "/v1/orders?userId=%s&limit=500", user);
  tk_response_t r;
  cr_assert(tk_await_get(env.query_port, path, 200, has_text, orders[6], VISIBLE_MS, &r), "orders not visible");
  tk_response_cleanup(&r);
  for (int i = 0; i < 7; i++) free(get(200, "/v1/orders/%s?minVersion=1&waitMs=10000", orders[i]));

  char seen[4096] = "";
  int pages = 0, total = 0;
  char *cursor = NULL;
  do {
    if (cursor)
      b = get(200, "/v1/orders?userId=%s&limit=3&cursor=%s", user, cursor);
    else
      b = get(200, "/v1/orders?userId=%s&limit=3", user);
    free(cursor);
    cursor = tk_json_string(b, "nextCursor");
    int n = count_items(b);
    total += n;
    pages++;
    for (int i = 0; i < 8; i++) {
      if (orders[i] && strstr(b, orders[i])) {
        cr_expect(!strstr(seen, orders[i]), "order %s repeated", orders[i]);
        strncat(seen, orders[i], sizeof seen - strlen(seen) - 1);
      }
    }
    cr_expect(n == (pages < 3 ? 3 : 2), "page %d has %d items: %s", pages, n, b);
    if (pages == 1) {
      /* An order created between pages sorts after the ones already there: no
       * repeat, no gap. */
      char *extra = command(201,
                            "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"items\":[{\"product\":\"late\","
                            "\"quantity\":1,\"price\":1}],\"totalAmount\":1}",
                            user);
      orders[7] = id_of(extra);
      free(extra);
      free(get(200, "/v1/orders/%s?minVersion=1&waitMs=10000", orders[7]));
    }
    free(b);
  } while (cursor && pages < 10);
  cr_expect_eq(pages, 3, "pages: %d", pages);
  cr_expect_eq(total, 8, "items over all pages: %d", total);
  for (int i = 0; i < 8; i++) cr_expect(strstr(seen, orders[i]), "order %s never listed", orders[i]);
  for (int i = 0; i < 8; i++) free(orders[i]);
  free(user);
  /* A bad cursor is a 400 naming it. */
  b = get(400, "/v1/orders?userId=x&cursor=garbage");
  char *field = tk_json_string(b, "field");
  cr_expect_str_eq(field, "cursor");
  free(field), free(b);
}

/* ---- pages while documents of the same sort value arrive ---- */

#define EQ_AT "2026-03-01T10:00:00.000Z" /* every order's createdAt */
#define EQ_OLD 30                        /* orders there before the walk: even numbers 0, 2, .. 58 */

/* The id of order number num of this test: "eq-<db>-NNN<suffix>", so ids sort
 * as their numbers, and an odd number lands between two orders already there. */
static void eq_id(char out[128], int num, const char *suffix) {
  snprintf(out, 128, "eq-%s-%03d%s", env.db, num, suffix);
}

/* The number of an id eq_id made (-1: none of them). */
static int eq_num(const char *id) {
  char prefix[128];
  int n = snprintf(prefix, sizeof prefix, "eq-%s-", env.db);
  return strncmp(id, prefix, (size_t)n) == 0 ? atoi(id + n) : -1;
}

/* Puts OrderCreated events of user for ids on the log, all created at EQ_AT
 * (a batch of one sort value, as equal clocks give), and waits until query-svc
 * has each of them. */
static void eq_orders(const char *user, char (*ids)[128], size_t n) {
  cqrs_event_t *evs = calloc(n, sizeof *evs);
  bson_t *data = calloc(n, sizeof *data);
  for (size_t i = 0; i < n; i++) {
    cqrs_event_data_t d = {.order_created = {.order_id = ids[i], .user_id = (char *)user, .total_amount = 1,
                                             .currency = CQRS_ORDER_CURRENCY_DEFAULT, .created_at = EQ_AT}};
    bson_init(&d.order_created.items);
    cqrs_order_item_t item = {.product = "eq", .quantity = 1, .price = 1};
    cqrs_order_item_append(&d.order_created.items, 0, &item);
    bson_init(&data[i]);
    cqrs_order_created_event.encode(&d, &data[i]);
    bson_destroy(&d.order_created.items);
    evs[i] = (cqrs_event_t){.id = ids[i], .type = (char *)cqrs_order_created_event.name, .source = "/e2e",
                            .aggregate_type = (char *)cqrs_order_created_event.aggregate_type, .aggregate_id = ids[i],
                            .time = EQ_AT, .tenant = CQRS_TENANT_DEFAULT, .version = 1, .data = &data[i]};
  }
  tk_produce_events(&env, evs, n);
  for (size_t i = 0; i < n; i++) {
    free(get(200, "/v1/orders/%s?minVersion=1&waitMs=10000", ids[i]));
    bson_destroy(&data[i]);
  }
  free(data);
  free(evs);
}

#define EQ_PAGES_MAX 60

/* Walks list (a GET path ending in "limit=4") page by page; after each page
 * one order arrives just before the cursor and one just after it, both with
 * the same createdAt as every other. Every order there from the start is
 * listed exactly once, no order twice, and every order that arrived after
 * the cursor is listed too. suffix tells this walk's arrivals apart. */
static void walk_while_inserting(const char *list, const char *user, const char *suffix) {
  static const char pat[] = "\"orderId\":\"";
  char seen[16384] = "", after[EQ_PAGES_MAX][132];
  char *cursor = NULL;
  int pages = 0;
  do {
    char *b = cursor ? get(200, "%s&cursor=%s", list, cursor) : get(200, "%s", list);
    free(cursor);
    cursor = tk_json_string(b, "nextCursor");
    int last = -1, n = 0;
    for (const char *p = b; (p = strstr(p, pat)); p += strlen(pat), n++) {
      char id[160]; /* "|<id>|": one entry of seen */
      snprintf(id, sizeof id, "|%.*s|", (int)strcspn(p + strlen(pat), "\""), p + strlen(pat));
      cr_expect(!strstr(seen, id), "%s listed twice (page %d of %s)", id, pages + 1, list);
      strncat(seen, id, sizeof seen - strlen(seen) - 1);
      last = eq_num(id + 1);
    }
    cr_expect(cursor == NULL || n == 4, "page %d of %s has %d items and a next cursor: %s", pages + 1, list, n, b);
    free(b);
    if (cursor && last >= 0) {
      /* one just before the cursor (an offset would shift by it), one just after */
      char ids[2][128], sfx[16];
      snprintf(sfx, sizeof sfx, "%s%02d", suffix, pages);
      eq_id(ids[0], last % 2 ? last - 2 : last - 1, sfx);
      eq_id(ids[1], last % 2 ? last + 2 : last + 1, sfx);
      eq_orders(user, ids, 2);
      snprintf(after[pages], sizeof after[pages], "|%s|", ids[1]);
    } else {
      after[pages][0] = '\0';
    }
  } while (cursor && ++pages < EQ_PAGES_MAX);
  cr_expect_null(cursor, "%s did not end in %d pages", list, EQ_PAGES_MAX);
  free(cursor);
  for (int i = 0; i < EQ_OLD; i++) {
    char id[128], entry[132];
    eq_id(id, 2 * i, "");
    snprintf(entry, sizeof entry, "|%s|", id);
    cr_expect(strstr(seen, entry), "%s, there from the start, was skipped by %s", id, list);
  }
  for (int i = 0; i < pages; i++)
    cr_expect(!after[i][0] || strstr(seen, after[i]), "%s arrived after the cursor and was never listed by %s",
              after[i], list);
  cr_expect_geq(pages, EQ_OLD / 4, "%s: %d pages", list, pages);
}

/* Keyset pages over (createdAt, _id): orders arriving between pages, all with
 * the createdAt of every order listed, neither make a page skip an order
 * there from the start nor repeat one. A cursor on createdAt alone would skip
 * them all after the first page (or repeat them, with $gte); an offset would
 * repeat one per arrival before it. On FerretDB with FERRETDB_PG_URI the
 * status list is read through PostgreSQL (pg_lists.h), the user's through
 * the store's find: both are walked. */
Test(read_side, pages_neither_skip_nor_repeat_while_orders_of_the_same_created_at_arrive) {
  char user[96], ids[EQ_OLD][128];
  snprintf(user, sizeof user, "eq-user-%s", env.db);
  for (int i = 0; i < EQ_OLD; i++) eq_id(ids[i], 2 * i, "");
  eq_orders(user, ids, EQ_OLD);
  char list[256];
  snprintf(list, sizeof list, "/v1/orders?userId=%s&limit=4", user);
  walk_while_inserting(list, user, "a");
  walk_while_inserting("/v1/orders?status=Created&limit=4", user, "b");
}

/* Every read document the test created, fetched through the API. */
static char *snapshot(char **users, char **orders, char **customers, int n) {
  size_t cap = 1 << 16, len = 0;
  char *out = calloc(1, cap);
  for (int i = 0; i < n; i++) {
    char *docs[3] = {get(200, "/v1/users/%s", users[i]), get(200, "/v1/orders/%s", orders[i]),
                     get(200, "/v1/customers/%s", customers[i])};
    for (int k = 0; k < 3; k++) {
      size_t need = strlen(docs[k]) + 2;
      if (len + need >= cap) out = realloc(out, cap *= 2);
      len += (size_t)snprintf(out + len, cap - len, "%s\n", docs[k]);
      free(docs[k]);
    }
  }
  return out;
}

#define N_DOCS 5

Test(read_side, replaying_the_whole_log_twice_leaves_every_document_identical) {
  char *users[N_DOCS], *orders[N_DOCS], *customers[N_DOCS];
  for (int i = 0; i < N_DOCS; i++) {
    char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"r%d.%s@example.com\",\"name\":\"R\"}", i, env.db);
    users[i] = id_of(b);
    free(b);
    free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"R%d\"}}",
                 users[i], i));
    b = command(201,
                "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"items\":[{\"product\":\"X\",\"quantity\":1,"
                "\"price\":2}],\"totalAmount\":2}",
                users[i]);
    orders[i] = id_of(b);
    free(b);
    free(command(201, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\",\"status\":\"Cancelled\"}",
                 orders[i]));
    b = command(201, "{\"commandType\":\"RegisterCustomer\",\"email\":\"k%d.%s@example.com\",\"name\":\"K\"}", i, env.db);
    customers[i] = id_of(b);
    free(b);
    free(command(201, "{\"commandType\":\"UpdateEmail\",\"aggregateId\":\"%s\",\"newEmail\":\"k%d.new@example.com\"}",
                 customers[i], i));
  }
  for (int i = 0; i < N_DOCS; i++) {
    free(get(200, "/v1/users/%s?minVersion=2&waitMs=10000", users[i]));
    free(get(200, "/v1/orders/%s?minVersion=2&waitMs=10000", orders[i]));
    free(get(200, "/v1/customers/%s?minVersion=2&waitMs=10000", customers[i]));
  }
  char *before = snapshot(users, orders, customers, N_DOCS);
  const char *models[] = {"user_profiles", "order_summaries", "customers"};
  for (int round = 0; round < 2; round++) {
    for (int m = 0; m < 3; m++) {
      int status = tk_rebuild(&env, models[m]);
      cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rebuild of %s failed: %d", models[m], status);
    }
    char *after = snapshot(users, orders, customers, N_DOCS);
    cr_expect_str_eq(after, before, "documents changed after replay %d", round + 1);
    free(after);
  }
  free(before);
  for (int i = 0; i < N_DOCS; i++) free(users[i]), free(orders[i]), free(customers[i]);
}

static const char *garbage = "this is not an event";

/* Puts an undecodable record on the events partition of aggregate id. */
static void put_poison_behind(const char *user) {
  char topic[128];
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  int32_t partition = -1;
  for (size_t i = 0; i < n; i++)
    if (ev[i].ce_subject && strcmp(ev[i].ce_subject, user) == 0) partition = ev[i].partition;
  tk_records_free(ev, n);
  cr_assert_geq(partition, 0);
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr);
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_KEY(user, strlen(user)), RD_KAFKA_V_VALUE((void *)garbage, strlen(garbage)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
               0);
  cr_assert_eq(rd_kafka_flush(p, 10000), 0);
  rd_kafka_destroy(p);
}

Test(read_side, a_poison_event_goes_to_the_dead_letter_topic_and_later_events_still_apply) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"poison.%s@example.com\",\"name\":\"Before\"}", env.db);
  char *user = id_of(b);
  free(b);
  free(get(200, "/v1/users/%s?minVersion=1&waitMs=10000", user));
  put_poison_behind(user);
  char topic[128];
  size_t n;
  free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"After\"}}", user));
  b = get(200, "/v1/users/%s?minVersion=2&waitMs=10000", user);
  cr_expect(strstr(b, "After"), "the event after the poison was not applied: %s", b);
  free(b);

  tk_record_t *dlq = NULL;
  bool found = false;
  for (int tries = 0; !found && tries < 100; tries++) {
    dlq = tk_kafka_read_all(&env, tk_topic(&env, "events.dlq", topic), &n);
    for (size_t i = 0; i < n; i++) found |= dlq[i].value && strcmp(dlq[i].value, garbage) == 0;
    tk_records_free(dlq, n);
  }
  cr_expect(found, "the poison event is not in %s", topic);
  tk_response_t r;
  tk_http("GET", env.projector_port, "/metrics", NULL, 0, &r);
  /* the whole line: a prefix would also match 10-19 */
  cr_expect(strstr(r.body, "\ndlq_events_total{projection=\"user_profiles\"} 1\n"), "metrics: %s", r.body);
  tk_response_cleanup(&r);
  free(user);
}

static atomic_bool load_stop;
static atomic_int load_requests, load_5xx;
static char load_user[64];

static void *query_load(void *arg) {
  (void)arg;
  char path[128];
  snprintf(path, sizeof path, "/v1/users/%s", load_user);
  while (!atomic_load(&load_stop)) {
    tk_response_t r;
    tk_http("GET", env.query_port, path, NULL, 0, &r);
    atomic_fetch_add(&load_requests, 1);
    if (r.status >= 500 || r.status == 0 || r.status == 404) atomic_fetch_add(&load_5xx, 1);
    tk_response_cleanup(&r);
  }
  return NULL;
}

Test(read_side, a_rebuild_under_concurrent_queries_never_fails_a_query) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"load.%s@example.com\",\"name\":\"L\"}", env.db);
  char *user = id_of(b);
  snprintf(load_user, sizeof load_user, "%s", user);
  free(b);
  for (int i = 0; i < 200; i++) /* some history to replay */
    free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"L%d\"}}",
                 user, i));
  free(get(200, "/v1/users/%s?minVersion=201&waitMs=10000", user));
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, query_load, NULL);
  int status = tk_rebuild(&env, "user_profiles");
  atomic_store(&load_stop, true);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rebuild failed: %d", status);
  cr_expect_gt(atomic_load(&load_requests), 0);
  cr_expect_eq(atomic_load(&load_5xx), 0, "%d of %d queries failed during the rebuild", atomic_load(&load_5xx),
               atomic_load(&load_requests));
  b = get(200, "/v1/users/%s", user);
  cr_expect_eq(tk_json_int(b, "version"), 201, "%s", b);
  free(b);
  /* The live projector now writes to the new collection. */
  free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"Final\"}}", user));
  b = get(200, "/v1/users/%s?minVersion=202&waitMs=10000", user);
  cr_expect(strstr(b, "Final"), "%s", b);
  free(b);
  free(user);
}

/* ---- a rebuild that has something to do ---- */

/* The collection serving read model model in tenant default's database: its
 * alias in read_models, else its own name (cqrs/read_model.h). */
static char *alias_of(mongoc_database_t *db, const char *model) {
  mongoc_collection_t *c = mongoc_database_get_collection(db, "read_models");
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(model));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
  const bson_t *doc;
  char *name = NULL;
  bson_iter_t it;
  if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "collection") && BSON_ITER_HOLDS_UTF8(&it))
    name = strdup(bson_iter_utf8(&it, NULL));
  bson_error_t e;
  cr_assert(!mongoc_cursor_error(cur, &e), "reading the alias of %s: %s", model, e.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(filter);
  mongoc_collection_destroy(c);
  return name ? name : strdup(model);
}

/* Writes name into document id of collection coll, behind the projector's back. */
static void damage(mongoc_database_t *db, const char *coll, const char *id, const char *name) {
  mongoc_collection_t *c = mongoc_database_get_collection(db, coll);
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
  bson_t *update = BCON_NEW("$set", "{", "name", BCON_UTF8(name), "}");
  bson_t reply;
  bson_error_t e;
  cr_assert(mongoc_collection_update_one(c, filter, update, NULL, &reply, &e), "damaging %s: %s", id, e.message);
  bson_iter_t it;
  cr_assert(bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) == 1,
            "document %s is not in %s", id, coll);
  bson_destroy(&reply);
  bson_destroy(update);
  bson_destroy(filter);
  mongoc_collection_destroy(c);
}

/* While the rebuild runs: one client updates a user, one reads it back. */
static char flow_user[64];
static atomic_bool flow_stop;
static atomic_long flow_acked, flow_failed, flow_backwards, flow_reads;

static void *flow_writer(void *arg) {
  (void)arg;
  for (int i = 0; !atomic_load(&flow_stop); i++) {
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"W%d\"}}",
                     flow_user, i);
    tk_response_t r;
    tk_http("POST", env.command_port, "/v1/commands", body, (size_t)n, &r);
    if (r.status == 201) atomic_store(&flow_acked, tk_json_int(r.body, "version"));
    else atomic_fetch_add(&flow_failed, 1);
    tk_response_cleanup(&r);
  }
  return NULL;
}

static void *flow_reader(void *arg) {
  (void)arg;
  char path[128];
  snprintf(path, sizeof path, "/v1/users/%s", flow_user);
  long seen = 0;
  while (!atomic_load(&flow_stop)) {
    tk_response_t r;
    tk_http("GET", env.query_port, path, NULL, 0, &r);
    if (r.status == 200) {
      long v = (long)tk_json_int(r.body, "version");
      if (v < seen) atomic_fetch_add(&flow_backwards, 1);
      if (v > seen) seen = v;
      atomic_fetch_add(&flow_reads, 1);
    } else {
      atomic_fetch_add(&flow_failed, 1);
    }
    tk_response_cleanup(&r);
  }
  return NULL;
}

Test(read_side, a_rebuild_restores_a_damaged_document_moves_the_alias_and_drops_the_old_collection_while_commands_flow) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"victim.%s@example.com\",\"name\":\"Victim\"}", env.db);
  char *victim = id_of(b);
  free(b);
  b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"flow.%s@example.com\",\"name\":\"Flow\"}", env.db);
  char *flow = id_of(b);
  free(b);
  snprintf(flow_user, sizeof flow_user, "%s", flow);
  free(get(200, "/v1/users/%s?minVersion=1&waitMs=10000", victim));
  free(get(200, "/v1/users/%s?minVersion=1&waitMs=10000", flow));

  char dbname[128];
  mongoc_client_t *client = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(client, "bad MONGO_URI %s", env.mongo_uri);
  mongoc_database_t *db = mongoc_client_get_database(client, tk_tenant_db(&env, "default", dbname));
  char *before = alias_of(db, "user_profiles");
  damage(db, before, victim, "DAMAGED");
  char path[160];
  snprintf(path, sizeof path, "/v1/users/%s", victim);
  b = await_text(path, "DAMAGED"); /* the damage is what a query sees */
  free(b);

  pthread_t w, r;
  pthread_create(&w, NULL, flow_writer, NULL);
  pthread_create(&r, NULL, flow_reader, NULL);
  int status = tk_rebuild(&env, "user_profiles");
  atomic_store(&flow_stop, true);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rebuild failed: %d", status);

  /* the document is the fold of the log again */
  b = await_text(path, "\"name\":\"Victim\"");
  cr_expect_null(strstr(b, "DAMAGED"), "%s", b);
  free(b);
  /* the alias moved to the new collection and the old one is gone */
  char *after = alias_of(db, "user_profiles");
  cr_expect_str_neq(after, before, "the alias still points at %s", before);
  bson_error_t e;
  cr_expect(mongoc_database_has_collection(db, after, &e), "the new collection %s does not exist", after);
  cr_expect(!mongoc_database_has_collection(db, before, &e), "the old collection %s is still there", before);
  /* commands flowed through the swap: none lost, none refused, no read went back */
  long acked = atomic_load(&flow_acked);
  cr_expect_gt(acked, 1, "no update was acknowledged during the rebuild");
  cr_expect_eq(atomic_load(&flow_failed), 0, "%ld commands or reads failed during the rebuild", atomic_load(&flow_failed));
  cr_expect_eq(atomic_load(&flow_backwards), 0, "%ld of %ld reads saw the version go back", atomic_load(&flow_backwards),
               atomic_load(&flow_reads));
  b = get(200, "/v1/users/%s?minVersion=%ld&waitMs=10000", flow, acked);
  cr_expect_eq(tk_json_int(b, "version"), acked, "the last acknowledged update is missing: %s", b);
  free(b);
  free(before), free(after), free(victim), free(flow);
  mongoc_database_destroy(db);
  mongoc_client_destroy(client);
}

Test(read_side, from_time_on_the_command_line_refuses_and_changes_nothing) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"ft.%s@example.com\",\"name\":\"FT\"}", env.db);
  char *user = id_of(b);
  free(b);
  free(get(200, "/v1/users/%s?minVersion=1&waitMs=10000", user));
  char dbname[128];
  mongoc_client_t *client = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(client, "bad MONGO_URI %s", env.mongo_uri);
  mongoc_database_t *db = mongoc_client_get_database(client, tk_tenant_db(&env, "default", dbname));
  char *before = alias_of(db, "user_profiles");
  char *args[] = {"--rebuild", "user_profiles", "--from-time", "2026-01-01T00:00:00Z", NULL};
  int status = tk_projector_cli(&env, args);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "--from-time should be refused (exit 2): %d", status);
  char *after = alias_of(db, "user_profiles");
  cr_expect_str_eq(after, before, "the alias moved");
  b = get(200, "/v1/users/%s", user);
  cr_expect(strstr(b, "\"name\":\"FT\""), "%s", b);
  free(b);
  free(before), free(after), free(user);
  mongoc_database_destroy(db);
  mongoc_client_destroy(client);
}

/* /readyz says why it is not ready: the halted projection. */
static bool says_halted(const char *body, void *ctx) {
  (void)ctx;
  return body && strstr(body, "halted");
}

Test(read_side, with_poison_policy_halt_the_projection_stops_before_a_poison_event) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"halt.%s@example.com\",\"name\":\"Before\"}", env.db);
  char *user = id_of(b);
  free(b);
  free(get(200, "/v1/users/%s?minVersion=1&waitMs=10000", user));
  tk_stop(pids[TK_PROJECTOR], SIGTERM);
  static const char *const halt[] = {"POISON_POLICY=halt", NULL};
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, halt);
  put_poison_behind(user);
  free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"After\"}}", user));

  tk_response_t r;
  cr_assert(tk_await_get(env.projector_port, "/readyz", 503, says_halted, NULL, VISIBLE_MS, &r),
            "the projector never reported the halt on /readyz (last %d %s)", r.status, r.body ? r.body : "");
  cr_expect(strstr(r.body, "halted"), "%s", r.body);
  tk_response_cleanup(&r);
  /* The event behind the poison is not applied. */
  char path[256];
  snprintf(path, sizeof path, "/v1/users/%s?minVersion=2&waitMs=1000", user);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 200);
  cr_expect(strstr(r.headers, "X-Stale: true"), "expected a stale answer: %s", r.headers);
  cr_expect_eq(tk_json_int(r.body, "version"), 1);
  tk_response_cleanup(&r);
  free(user);
}

/* ---- lists through FerretDB's PostgreSQL (query-svc/pg_lists.h) ---- */

/* Body of GET path on port, or of POST /v1/query with body when body is set;
 * asserts a 200. */
static char *list_page(int port, const char *path, const char *body) {
  tk_response_t r;
  tk_http(body ? "POST" : "GET", port, body ? "/v1/query" : path, body, body ? strlen(body) : 0, &r);
  cr_assert_eq(r.status, 200, "%s %s on :%d answered %d: %s", body ? "POST /v1/query" : "GET", body ? body : path,
               port, r.status, r.body ? r.body : "");
  char *b = strdup(r.body);
  tk_response_cleanup(&r);
  return b;
}

/* Walks every page of a list on both query-svcs (the GET path, or the
 * POST /v1/query body printf'd with the cursor member) and asserts they give
 * the same bodies, cursors included, and that the pages hold want items
 * (counted by key) without a repeat. */
static void same_pages(int keyset_port, int find_port, const char *path, const char *query, const char *key,
                       int want) {
  char *cursor = NULL, seen[8192] = "";
  int items = 0, pages = 0;
  do {
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s%s%s", path, cursor ? "&cursor=" : "", cursor ? cursor : "");
    if (query) {
      snprintf(q, sizeof q, "%.*s%s%s%s}", (int)strlen(query) - 1, query, cursor ? ",\"cursor\":\"" : "",
               cursor ? cursor : "", cursor ? "\"" : "");
    }
    char *a = list_page(keyset_port, p, query ? q : NULL), *b = list_page(find_port, p, query ? q : NULL);
    cr_assert_str_eq(a, b, "page %d of %s differs between the keyset path and the store's find", pages + 1,
                     query ? q : p);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    for (const char *s = a; (s = strstr(s, pat)); s += strlen(pat)) {
      char id[128];
      snprintf(id, sizeof id, "%.*s|", (int)strcspn(s + strlen(pat), "\""), s + strlen(pat));
      cr_expect(!strstr(seen, id), "%s repeated in %s", id, path);
      strncat(seen, id, sizeof seen - strlen(seen) - 1);
      items++;
    }
    free(cursor);
    cursor = tk_json_string(a, "nextCursor");
    free(a);
    free(b);
    pages++;
  } while (cursor && pages < 20);
  cr_expect_eq(items, want, "%s: %d items over %d pages, %d expected", query ? query : path, items, pages, want);
  free(cursor);
}

Test(read_side, keyset_lists_give_the_pages_the_stores_find_gives) {
  const char *pg = getenv("FERRETDB_PG_URI");
  bool on_pg = pg && *pg;
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"ks.%s@example.com\",\"name\":\"K\"}", env.db);
  char *user = id_of(b), *orders[5], *customers[5];
  free(b);
  for (int i = 0; i < 5; i++) {
    orders[i] = create_order(user, "K", i);
    b = command(201, "{\"commandType\":\"RegisterCustomer\",\"email\":\"%s.k%d@example.com\",\"name\":\"K\"}", env.db,
                i % 3);
    customers[i] = id_of(b);
    free(b);
  }
  free(command(201, "{\"commandType\":\"SuspendCustomer\",\"aggregateId\":\"%s\",\"reason\":\"test\"}", customers[4]));
  for (int i = 0; i < 5; i++) {
    free(get(200, "/v1/orders/%s?minVersion=1&waitMs=10000", orders[i]));
    free(get(200, "/v1/customers/%s?minVersion=%d&waitMs=10000", customers[i], i == 4 ? 2 : 1));
  }
  /* the same lists from a query-svc that reads every list with the store's find */
  tk_env_t find_env = env;
  find_env.query_port = tk_free_port();
  const char *no_pg[] = {"FERRETDB_PG_URI=", NULL};
  pid_t find_pid = tk_start(&find_env, TK_QUERY, no_pg);
  char path[512], q[512];
  snprintf(path, sizeof path, "/v1/orders?status=Created&limit=2");
  same_pages(env.query_port, find_env.query_port, path, NULL, "orderId", 5);
  snprintf(q, sizeof q, "{\"queryType\":\"GetOrdersByStatus\",\"status\":\"Created\",\"limit\":2}");
  same_pages(env.query_port, find_env.query_port, path, q, "orderId", 5);
  snprintf(path, sizeof path, "/v1/orders?userId=%s&limit=3", user);
  same_pages(env.query_port, find_env.query_port, path, NULL, "orderId", 5);
  snprintf(path, sizeof path, "/v1/customers?status=ACTIVE&limit=2");
  same_pages(env.query_port, find_env.query_port, path, NULL, "customerId", 4);
  snprintf(q, sizeof q, "{\"queryType\":\"GetActiveCustomers\",\"limit\":2}");
  same_pages(env.query_port, find_env.query_port, path, q, "customerId", 4);
  snprintf(path, sizeof path, "/v1/customers?status=SUSPENDED&limit=2");
  same_pages(env.query_port, find_env.query_port, path, NULL, "customerId", 1);
  /* emails <db>.k0 (twice), .k1 (twice), .k2: a prefix, and one of them */
  snprintf(path, sizeof path, "/v1/customers?emailPrefix=%s.k&limit=2", env.db);
  same_pages(env.query_port, find_env.query_port, path, NULL, "customerId", 5);
  snprintf(path, sizeof path, "/v1/customers?emailPrefix=%s.k1&limit=1", env.db);
  same_pages(env.query_port, find_env.query_port, path, NULL, "customerId", 2);
  snprintf(path, sizeof path, "/v1/customers?emailPrefix=%s.none&limit=2", env.db);
  same_pages(env.query_port, find_env.query_port, path, NULL, "customerId", 0);
  /* which path each took: the 19 pages above (none before in this database),
   * the 2 of orders by user by the store's find on both */
  cr_expect_eq(tk_metric(find_env.query_port, "list_pages_total{path=\"find\"}"), 19);
  cr_expect_lt(tk_metric(find_env.query_port, "list_pages_total{path=\"keyset\"}"), 1);
  if (on_pg) {
    cr_expect_eq(tk_metric(env.query_port, "list_pages_total{path=\"keyset\"}"), 17,
                 "the lists did not take the keyset path");
    cr_expect_eq(tk_metric(env.query_port, "list_pages_total{path=\"find\"}"), 2);
  }
  tk_stop(find_pid, SIGTERM);

  /* PostgreSQL gone (nothing listens there): those lists answer 503 at once,
   * the rest of query-svc keeps answering. */
  if (on_pg) {
    tk_env_t down_env = env;
    down_env.query_port = tk_free_port();
    char uri[128];
    snprintf(uri, sizeof uri, "FERRETDB_PG_URI=postgres://postgres@127.0.0.1:%d/ferretdb", tk_free_port());
    const char *down[] = {uri, NULL};
    pid_t down_pid = tk_start(&down_env, TK_QUERY, down);
    for (int i = 0; i < 2; i++) {
      tk_response_t r;
      tk_http("GET", down_env.query_port, "/v1/orders?status=Created", NULL, 0, &r);
      cr_expect_eq(r.status, 503, "a keyset list with PostgreSQL down answered %d: %s", r.status, r.body);
      cr_expect(r.body && strstr(r.body, "\"error\""), "%s", r.body);
      tk_response_cleanup(&r);
    }
    snprintf(path, sizeof path, "/v1/orders/%s", orders[0]);
    free(list_page(down_env.query_port, path, NULL));
    tk_stop(down_pid, SIGTERM);
  }
  for (int i = 0; i < 5; i++) free(orders[i]), free(customers[i]);
  free(user);
}
