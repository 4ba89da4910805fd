/* End to end, projector-svc and tenants on the real stack: events produced
 * straight to the events topic, as command-svc writes them (CloudEvents
 * headers, ce_tenant "a" or "b", the same aggregate ids in both). Each
 * tenant's documents land in its own database with the read models' indexes;
 * a rebuild of one read model for tenant a leaves tenant b's documents the
 * same bytes; a control record deleting tenant b drops b's database while a's
 * stays, and neither b's later events nor a rebuild bring it back. */
#include "testkit.h"
#include "tk_auth.h"

#include "cqrs/event.h"
#include "cqrs/events.h"
#include "cqrs/tenant.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VISIBLE_MS 60000
#define USERS "user_profiles"
#define ORDERS "order_summaries"

static tk_env_t env;
static pid_t pids[3];
static rd_kafka_t *producer;
static mongoc_client_t *client;

static void teardown(void) {
  tk_stop_all(pids);
  if (producer) rd_kafka_destroy(producer);
  producer = NULL;
  if (client) mongoc_client_destroy(client);
  client = NULL;
}

TestSuite(projector_tenants, .fini = teardown, .timeout = 600);

/* ---- producing ---- */

static void producer_new(void) {
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  cr_assert_not_null(producer, "%s", errstr);
}

static void produce(const char *topic_name, const char *key, const char *value, rd_kafka_headers_t *h) {
  char topic[128];
  rd_kafka_resp_err_t e = rd_kafka_producev(
      producer, RD_KAFKA_V_TOPIC(tk_topic(&env, topic_name, topic)), RD_KAFKA_V_KEY(key, strlen(key)),
      RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADERS(h ? h : rd_kafka_headers_new(0)), RD_KAFKA_V_END);
  cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "producing to %s: %s", topic, rd_kafka_err2str(e));
  cr_assert_eq(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR, "flushing to %s", topic);
}

/* One event of type of tenant's aggregate id at version, keyed and headed as
 * command-svc writes it, with value as its data (NULL: data encoded through
 * the contract). */
static void produce_event_as(const char *tenant, const cqrs_event_type_t *type, const char *id, int64_t version,
                             const cqrs_event_data_t *data, const char *value) {
  static int seq;
  char ev_id[96];
  snprintf(ev_id, sizeof ev_id, "e2e-%s-%d", env.db, ++seq);
  bson_t doc = BSON_INITIALIZER;
  if (data) type->encode(data, &doc);
  cqrs_event_t ev = {.id = ev_id, .type = (char *)type->name, .source = "/e2e", .aggregate_type =
                     (char *)type->aggregate_type, .aggregate_id = (char *)id, .time = "2026-03-01T10:00:00.000Z",
                     .tenant = (char *)tenant, .version = version, .data = &doc};
  cqrs_event_set_schema(&ev, NULL, type->version); /* ce_dataschema, as command-svc writes */
  cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
  char version_buf[24];
  size_t n = cqrs_event_to_headers(&ev, hdrs, version_buf);
  rd_kafka_headers_t *h = rd_kafka_headers_new(n);
  for (size_t i = 0; i < n; i++) rd_kafka_header_add(h, hdrs[i].name, -1, hdrs[i].value, (ssize_t)hdrs[i].len);
  char *json = bson_as_relaxed_extended_json(&doc, NULL);
  char *key = cqrs_tenant_key(tenant, id);
  produce("events", key, value ? value : json, h);
  free(key);
  free(ev.dataschema);
  bson_free(json);
  bson_destroy(&doc);
}

static void produce_event(const char *tenant, const cqrs_event_type_t *type, const char *id, int64_t version,
                          const cqrs_event_data_t *data) {
  produce_event_as(tenant, type, id, version, data, NULL);
}

static void user_created(const char *tenant, const char *id, const char *name) {
  char email[128];
  snprintf(email, sizeof email, "%s.%s@example.com", id, tenant);
  cqrs_event_data_t d = {.user_created = {.user_id = id, .email = email, .name = name,
                                          .created_at = "2026-03-01T10:00:00.000Z"}};
  produce_event(tenant, &cqrs_user_created_event, id, 1, &d);
}

static void user_renamed(const char *tenant, const char *id, int64_t version, const char *name) {
  cqrs_event_data_t d = {.user_profile_updated = {.user_id = id, .changes = {.name = name},
                                                  .updated_at = "2026-03-01T11:00:00.000Z"}};
  produce_event(tenant, &cqrs_user_profile_updated_event, id, version, &d);
}

static void order_created(const char *tenant, const char *id, const char *user, double total) {
  cqrs_event_data_t d = {.order_created = {.order_id = id, .user_id = user, .total_amount = total,
                                           .currency = "USD", .created_at = "2026-03-01T10:00:00.000Z"}};
  bson_init(&d.order_created.items);
  cqrs_order_item_t item = {.product = "pen", .quantity = 1, .price = total};
  cqrs_order_item_append(&d.order_created.items, 0, &item);
  produce_event(tenant, &cqrs_order_created_event, id, 1, &d);
  bson_destroy(&d.order_created.items);
}

/* ---- the store ---- */

static const char *db_of(const char *tenant, char out[128]) { return tk_tenant_db(&env, tenant, out); }

/* The document id of collection in tenant's database as JSON (free it), or NULL. */
static char *stored(const char *tenant, const char *collection, const char *id) {
  char db[128];
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db_of(tenant, db), collection);
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
  const bson_t *doc;
  char *json = mongoc_cursor_next(cur, &doc) ? bson_as_relaxed_extended_json(doc, NULL) : NULL;
  mongoc_cursor_destroy(cur);
  bson_destroy(filter);
  mongoc_collection_destroy(coll);
  return json;
}

/* The collection tenant's read model alias names, or NULL (free it). */
static char *alias_of(const char *tenant, const char *read_model) {
  char *doc = stored(tenant, "read_models", read_model);
  char *coll = doc ? tk_json_string(doc, "collection") : NULL;
  bson_free(doc);
  return coll;
}

/* Waits until tenant's document id in read_model (the collection its alias
 * names, or its own) has version and, when name is not NULL, that name. */
static void await_doc(const char *tenant, const char *read_model, const char *id, int64_t version, const char *name) {
  char *last = NULL;
  bool ok = false;
  for (int i = 0; i < VISIBLE_MS / 50 && !ok; i++) {
    bson_free(last);
    char *alias = alias_of(tenant, read_model);
    last = stored(tenant, alias ? alias : read_model, id);
    free(alias);
    char *n = last ? tk_json_string(last, "name") : NULL;
    ok = last && tk_json_int(last, "version") == version && (!name || (n && strcmp(n, name) == 0));
    free(n);
    if (!ok) usleep(50 * 1000);
  }
  cr_assert(ok, "%s of tenant %s never reached version %lld%s%s (last: %s)", id, tenant, (long long)version,
            name ? " as " : "", name ? name : "", last ? last : "absent");
  bson_free(last);
}

static bool database_exists(const char *tenant) {
  char db[128];
  db_of(tenant, db);
  bson_error_t e;
  /* A database exists while it holds a collection. Not listDatabases: the
   * store sizes every database for it, which on a store shared with many test
   * databases takes long enough to exhaust its connection pool. */
  mongoc_database_t *d = mongoc_client_get_database(client, db);
  char **names = mongoc_database_get_collection_names_with_opts(d, NULL, &e);
  mongoc_database_destroy(d);
  cr_assert_not_null(names, "listCollections: %s", e.message);
  bool found = names[0] != NULL;
  bson_strfreev(names);
  return found;
}

static bool has_index(const char *tenant, const char *collection, const char *index) {
  char db[128];
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db_of(tenant, db), collection);
  mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
  const bson_t *doc;
  bson_iter_t it;
  bool found = false;
  while (mongoc_cursor_next(cur, &doc))
    found |= bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
             strcmp(bson_iter_utf8(&it, NULL), index) == 0;
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(coll);
  return found;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every collection of tenant's database and every document in it, in name
 * and _id order, as the store's BSON bytes: two snapshots are equal only
 * when nothing in the database changed. */
static bson_string_t *snapshot(const char *tenant) {
  char db[128];
  mongoc_database_t *d = mongoc_client_get_database(client, db_of(tenant, db));
  bson_error_t e;
  char **names = mongoc_database_get_collection_names_with_opts(d, NULL, &e);
  cr_assert_not_null(names, "listCollections: %s", e.message);
  size_t n = 0;
  while (names[n]) n++;
  qsort(names, n, sizeof *names, by_name);
  bson_string_t *out = bson_string_new("");
  for (size_t i = 0; i < n; i++) {
    bson_string_append_printf(out, "[%s]", names[i]);
    mongoc_collection_t *coll = mongoc_database_get_collection(d, names[i]);
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
      const uint8_t *bytes = bson_get_data(doc);
      for (uint32_t j = 0; j < doc->len; j++) bson_string_append_printf(out, "%02x", bytes[j]);
      bson_string_append_c(out, '|');
    }
    cr_assert_not(mongoc_cursor_error(cur, &e), "reading %s: %s", names[i], e.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
  }
  bson_strfreev(names);
  mongoc_database_destroy(d);
  return out;
}

/* ---- metrics ---- */

static double metric(const char *series) {
  tk_response_t r;
  tk_http("GET", env.projector_port, "/metrics", NULL, 0, &r);
  cr_assert_eq(r.status, 200, "/metrics answered %d", r.status);
  double v = 0;
  size_t n = strlen(series);
  for (char *line = r.body; line && *line;) {
    char *nl = strchr(line, '\n');
    if (strncmp(line, series, n) == 0 && line[n] == ' ') v = strtod(line + n + 1, NULL);
    line = nl ? nl + 1 : NULL;
  }
  tk_response_cleanup(&r);
  return v;
}

/* Waits (bounded) until series reaches at least want; returns its value. */
static double await_metric(const char *series, double want) {
  double v = 0;
  for (int i = 0; i < VISIBLE_MS / 50 && (v = metric(series)) < want; i++) usleep(50 * 1000);
  return v;
}

#define SKIPPED "events_skipped_total{projection=\"user_profiles\",reason=\"tenant_deleted\"}"

Test(projector_tenants, each_tenant_has_its_own_database_rebuilds_and_is_deleted_alone) {
  tk_env_init(&env);
  /* the projector makes the events topic (and its control reader the control topic) */
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  producer_new();
  mongoc_init();
  cr_assert_not_null(client = mongoc_client_new(env.mongo_uri));

  /* the same ids in both tenants, different data */
  user_created("a", "u-1", "A1");
  user_renamed("a", "u-1", 2, "A2");
  user_created("a", "u-2", "A-two");
  order_created("a", "o-1", "u-1", 10);
  user_created("b", "u-1", "B1");
  order_created("b", "o-1", "u-1", 20);

  /* 1. each tenant's documents in its own database, with its own data */
  await_doc("a", USERS, "u-1", 2, "A2");
  await_doc("a", USERS, "u-2", 1, "A-two");
  await_doc("b", USERS, "u-1", 1, "B1");
  await_doc("a", ORDERS, "o-1", 1, NULL);
  await_doc("b", ORDERS, "o-1", 1, NULL);
  char *b_order = stored("b", ORDERS, "o-1");
  cr_assert(strstr(b_order, "20"), "tenant b's order has b's total: %s", b_order);
  bson_free(b_order);
  char *b_u2 = stored("b", USERS, "u-2");
  cr_assert_null(b_u2, "tenant a's u-2 leaked into b's database: %s", b_u2);
  cr_assert_not(database_exists("default"), "no event of tenant default, no database of it");
  /* counted per tenant (after the commit that follows the write: awaited) */
  cr_assert_eq(await_metric("events_applied_by_tenant_total{projection=\"user_profiles\",tenant=\"a\"}", 3), 3);
  cr_assert_eq(await_metric("events_applied_by_tenant_total{projection=\"user_profiles\",tenant=\"b\"}", 1), 1);
  /* every read model of b settled before its snapshot below: its history too
   * (written by a loop of its own, which may still be making b's collection) */
  cr_assert_eq(await_metric("events_applied_by_tenant_total{projection=\"order_summaries\",tenant=\"b\"}", 1), 1);
  cr_assert_eq(await_metric("events_applied_by_tenant_total{projection=\"event_history\",tenant=\"b\"}", 2), 2);

  /* a poison event of tenant a: dead-lettered with its tenant (the headers
   * as they came), and the partition moves on */
  char poison[128], topic[128];
  snprintf(poison, sizeof poison, "poison of %s", env.db);
  produce_event_as("a", &cqrs_user_created_event, "u-9", 1, NULL, poison);
  bool dead_lettered = false;
  for (int tries = 0; !dead_lettered && tries < 100; tries++) {
    size_t n;
    tk_record_t *dlq = tk_kafka_read_all(&env, tk_topic(&env, "events.dlq", topic), &n);
    for (size_t i = 0; i < n; i++)
      if (dlq[i].value && strcmp(dlq[i].value, poison) == 0) {
        dead_lettered = true;
        cr_assert(dlq[i].ce_tenant && strcmp(dlq[i].ce_tenant, "a") == 0, "the dead letter lost its tenant: %s",
                  dlq[i].ce_tenant ? dlq[i].ce_tenant : "no ce_tenant");
      }
    tk_records_free(dlq, n);
    if (!dead_lettered) usleep(100 * 1000);
  }
  cr_assert(dead_lettered, "the poison event of tenant a is not in %s", topic);

  /* 2. the read models' indexes in both databases */
  const char *tenants[] = {"a", "b"};
  for (size_t i = 0; i < 2; i++) {
    cr_assert(has_index(tenants[i], USERS, "email_1"), "tenant %s's user_profiles lacks email_1", tenants[i]);
    cr_assert(has_index(tenants[i], ORDERS, "userId_createdAt"), "tenant %s's orders lack userId_createdAt",
              tenants[i]);
    cr_assert(has_index(tenants[i], ORDERS, "status_createdAt"), "tenant %s's orders lack status_createdAt",
              tenants[i]);
  }

  /* 3. a rebuild of tenant a's user_profiles: b's database the same bytes */
  bson_string_t *b_before = snapshot("b");
  char *a_orders_before = stored("a", ORDERS, "o-1");
  int status = tk_rebuild_tenant(&env, USERS, "a");
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the rebuild of tenant a failed (status %d)", status);
  bson_string_t *b_after = snapshot("b");
  cr_assert_eq(b_before->len, b_after->len, "tenant b's database changed in size during a's rebuild");
  cr_assert(memcmp(b_before->str, b_after->str, b_before->len) == 0, "tenant b's documents changed during a's rebuild");
  bson_string_free(b_before, true);
  bson_string_free(b_after, true);
  char *alias = alias_of("a", USERS);
  cr_assert(alias && strncmp(alias, USERS "__", strlen(USERS) + 2) == 0, "a's user_profiles not swapped: %s",
            alias ? alias : "no alias");
  cr_assert_null(alias_of("b", USERS), "the rebuild of a swapped b's alias");
  await_doc("a", USERS, "u-1", 2, "A2");
  await_doc("a", USERS, "u-2", 1, "A-two");
  char *a_orders_after = stored("a", ORDERS, "o-1");
  cr_assert_str_eq(a_orders_after, a_orders_before, "a's other read model changed");
  bson_free(a_orders_before);
  bson_free(a_orders_after);
  free(alias);

  /* 4. tenant b deleted in the control plane: its database goes, a's stays */
  tk_auth_put_tenant(&env, "b", CQRS_TENANT_DELETED);
  bool gone = false;
  for (int i = 0; i < VISIBLE_MS / 50 && !(gone = !database_exists("b")); i++) usleep(50 * 1000);
  cr_assert(gone, "tenant b's database is still there 60 s after its deletion");
  cr_assert(database_exists("a"), "tenant a's database went with b's");
  await_doc("a", USERS, "u-1", 2, "A2");

  /* 5. b's later events are skipped, a's still applied; nothing of b comes back */
  double skipped = metric(SKIPPED);
  user_created("b", "u-3", "B3");
  user_renamed("b", "u-1", 2, "B2");
  user_created("a", "u-4", "A4");
  await_doc("a", USERS, "u-4", 1, "A4");
  cr_assert_geq(await_metric(SKIPPED, skipped + 2), skipped + 2,
                "the deleted tenant's 2 events were not counted as skipped");
  cr_assert_not(database_exists("b"), "a deleted tenant's events brought its database back");
  /* nor does a rebuild of every tenant (it reads b's events from the log) */
  status = tk_rebuild(&env, USERS);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the rebuild of every tenant failed (status %d)", status);
  cr_assert_not(database_exists("b"), "a rebuild brought a deleted tenant's database back");
  await_doc("a", USERS, "u-4", 1, "A4");
}
