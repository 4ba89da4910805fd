/* The command side's aggregates (command-svc/aggregate_store.h): their
 * aggregate-state JSON, the recent-outcome window, and staged batches. */
#include "aggregate_store.h"
#include "unit.h"

#include <stdio.h>

static cqrs_aggregate_store_t *store;

static void setup(void) { store = cqrs_aggregate_store_new(); }
static void teardown(void) { cqrs_aggregate_store_destroy(store); }

TestSuite(aggregate_store, .init = setup, .fini = teardown);

/* A user aggregate of tenant "acme" at version with a small state; the store
 * knows it as "acme/<id>". */
static cqrs_aggregate_t *user(const char *id, int32_t partition, int64_t version) {
  cqrs_aggregate_t *a = cqrs_aggregate_new("acme", id, "user", partition);
  a->version = version;
  if (version > 0) a->state = BCON_NEW("userId", BCON_UTF8(id), "name", BCON_UTF8("Ann"));
  return a;
}

Test(aggregate_store, new_aggregate_does_not_exist) {
  cqrs_aggregate_t *a = cqrs_aggregate_new("acme", "u-1", "user", 3);
  cr_assert_str_eq(a->tenant, "acme");
  cr_assert_str_eq(a->aggregate_id, "u-1");
  cr_assert_str_eq(a->key, "acme/u-1");
  cr_assert_str_eq(a->aggregate_type, "user");
  cr_assert_eq(a->partition, 3);
  cr_assert_eq(a->version, 0);
  cr_assert_null(a->state);
  cr_assert_eq(a->n_recent, 0);
  cr_assert_null(cqrs_aggregate_recent(a, "anything"));
  cqrs_aggregate_destroy(a);
  cqrs_aggregate_destroy(NULL);
}

Test(aggregate_store, json_round_trip) {
  cqrs_aggregate_t *a = user("u-1", 2, 5);
  cqrs_aggregate_remember(a, "c-1", "{\"status\":201,\"version\":4}", 1000);
  cqrs_aggregate_remember(a, "c-2", "{\"status\":201,\"version\":5}", 2000);
  size_t len = 0;
  char *json = cqrs_aggregate_to_json(a, &len);
  cr_assert_eq(len, strlen(json));
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "tenant"), "acme");
  cr_assert_str_eq(u_str(doc, "aggregateId"), "u-1");
  cr_assert_str_eq(u_str(doc, "aggregateType"), "user");
  cr_assert_eq(u_i64(doc, "version"), 5);
  cr_assert_str_eq(u_str(doc, "state.name"), "Ann");
  cr_assert_str_eq(u_str(doc, "recent.0.commandId"), "c-1");
  cr_assert_str_eq(u_str(doc, "recent.1.result"), "{\"status\":201,\"version\":5}");
  cr_assert_eq(u_i64(doc, "recent.1.at"), 2000);
  bson_destroy(doc);

  cqrs_error_t err = {0};
  cqrs_aggregate_t *b = cqrs_aggregate_from_json("acme/u-1", 2, json, len, &err);
  cr_assert_not_null(b, "%s", err.message);
  cr_assert_str_eq(b->tenant, "acme");
  cr_assert_str_eq(b->aggregate_id, "u-1");
  cr_assert_str_eq(b->key, "acme/u-1");
  cr_assert_str_eq(b->aggregate_type, "user");
  cr_assert_eq(b->partition, 2);
  cr_assert_eq(b->version, 5);
  cr_assert_not_null(b->state);
  cr_assert(bson_equal(b->state, a->state));
  cr_assert_eq(b->n_recent, 2);
  cr_assert_str_eq(cqrs_aggregate_recent(b, "c-1"), "{\"status\":201,\"version\":4}");
  cr_assert_str_eq(cqrs_aggregate_recent(b, "c-2"), "{\"status\":201,\"version\":5}");
  cr_assert_str_eq(b->recent[0].command_id, "c-1", "oldest first");
  cqrs_aggregate_destroy(b);
  cqrs_aggregate_destroy(a);
  bson_free(json);
}

Test(aggregate_store, json_round_trip_not_existing) {
  cqrs_aggregate_t *a = cqrs_aggregate_new("acme", "u-0", "user", 0);
  char *json = cqrs_aggregate_to_json(a, NULL);
  cqrs_aggregate_t *b = cqrs_aggregate_from_json("acme/u-0", 0, json, strlen(json), NULL);
  cr_assert_not_null(b);
  cr_assert_eq(b->version, 0);
  cr_assert_null(b->state);
  cr_assert_eq(b->n_recent, 0);
  cqrs_aggregate_destroy(b);
  cqrs_aggregate_destroy(a);
  bson_free(json);
}

Test(aggregate_store, copy_is_deep) {
  cqrs_aggregate_t *a = user("u-1", 1, 2);
  cqrs_aggregate_remember(a, "c-1", "{}", 5);
  cqrs_aggregate_t *b = cqrs_aggregate_copy(a);
  cqrs_aggregate_destroy(a);
  cr_assert_str_eq(b->aggregate_id, "u-1");
  cr_assert_eq(b->version, 2);
  cr_assert_str_eq(u_str(b->state, "name"), "Ann");
  cr_assert_str_eq(cqrs_aggregate_recent(b, "c-1"), "{}");
  cr_assert_eq(b->recent[0].at_ms, 5);
  cqrs_aggregate_destroy(b);
}

Test(aggregate_store, remember_keeps_last_window) {
  cqrs_aggregate_t *a = user("u-1", 0, 1);
  const int n = CQRS_RECENT_COMMANDS + 3;
  char id[32], res[32];
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "c-%d", i);
    snprintf(res, sizeof res, "{\"n\":%d}", i);
    cqrs_aggregate_remember(a, id, res, (int64_t)i * CQRS_RECENT_MIN_MS); /* each one old when the next comes */
  }
  cr_assert_eq(a->n_recent, CQRS_RECENT_COMMANDS);
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "c-%d", i);
    snprintf(res, sizeof res, "{\"n\":%d}", i);
    if (i < n - CQRS_RECENT_COMMANDS)
      cr_assert_null(cqrs_aggregate_recent(a, id), "%s is forgotten", id);
    else
      cr_assert_str_eq(cqrs_aggregate_recent(a, id), res);
  }
  snprintf(id, sizeof id, "c-%d", n - CQRS_RECENT_COMMANDS);
  cr_assert_str_eq(a->recent[0].command_id, id, "oldest first");
  snprintf(id, sizeof id, "c-%d", n - 1);
  cr_assert_str_eq(a->recent[CQRS_RECENT_COMMANDS - 1].command_id, id);
  /* the window survives the aggregate-state form */
  char *json = cqrs_aggregate_to_json(a, NULL);
  cqrs_aggregate_t *b = cqrs_aggregate_from_json("acme/u-1", 0, json, strlen(json), NULL);
  cr_assert_eq(b->n_recent, CQRS_RECENT_COMMANDS);
  cr_assert_str_eq(b->recent[CQRS_RECENT_COMMANDS - 1].command_id, id);
  cqrs_aggregate_destroy(b);
  bson_free(json);
  cqrs_aggregate_destroy(a);
}

static void assert_malformed(const char *json) {
  cqrs_error_t err = {0};
  cqrs_aggregate_t *a = cqrs_aggregate_from_json("u-1", 0, json, strlen(json), &err);
  cr_assert_null(a, "accepted %s", json);
  cr_assert_eq(err.code, CQRS_ERR_INVALID, "%s", json);
  cr_assert_neq(err.message[0], '\0');
}

Test(aggregate_store, from_json_malformed) {
  assert_malformed("not json");
  assert_malformed("[]");
  assert_malformed("{\"version\":1}");
  assert_malformed("{\"aggregateType\":\"user\"}");
  assert_malformed("{\"aggregateType\":\"user\",\"version\":\"1\"}");
  assert_malformed("{\"aggregateType\":\"user\",\"version\":1,\"state\":[1]}");
  assert_malformed("{\"aggregateType\":\"user\",\"version\":1,\"recent\":{}}");
  assert_malformed("{\"aggregateType\":5,\"version\":1}");
  assert_malformed("{\"tenant\":\"acme\",\"aggregateType\":\"user\",\"version\":1}");
  assert_malformed("{\"aggregateId\":\"u-1\",\"aggregateType\":\"user\",\"version\":1}");
  assert_malformed("{\"tenant\":\"Acme\",\"aggregateId\":\"u-1\",\"aggregateType\":\"user\",\"version\":1}");
  assert_malformed("{\"tenant\":\"a/b\",\"aggregateId\":\"u-1\",\"aggregateType\":\"user\",\"version\":1}");
  assert_malformed("{\"tenant\":5,\"aggregateId\":\"u-1\",\"aggregateType\":\"user\",\"version\":1}");
}

Test(aggregate_store, from_json_before_tenancy) {
  /* A value written before tenancy: no tenant, no aggregateId; the record key
   * was the bare aggregate id. */
  const char *json = "{\"aggregateType\":\"user\",\"version\":3,\"state\":{\"name\":\"Old\"},"
                     "\"recent\":[{\"commandId\":\"c-9\",\"result\":\"{}\"}]}";
  cqrs_error_t err = {0};
  cqrs_aggregate_t *a = cqrs_aggregate_from_json("u-old", 1, json, strlen(json), &err);
  cr_assert_not_null(a, "%s", err.message);
  cr_assert_str_eq(a->tenant, CQRS_TENANT_DEFAULT);
  cr_assert_str_eq(a->aggregate_id, "u-old");
  cr_assert_str_eq(a->key, "default/u-old");
  cr_assert_eq(a->version, 3);
  cr_assert_eq(a->partition, 1);
  cr_assert_str_eq(u_str(a->state, "name"), "Old");
  cr_assert_str_eq(cqrs_aggregate_recent(a, "c-9"), "{}");
  cqrs_aggregate_store_put(store, a);
  cr_assert_not_null(cqrs_aggregate_store_get(store, "default/u-old"));
  cr_assert_null(cqrs_aggregate_store_get(store, "u-old"));
}

Test(aggregate_store, from_json_tenant_comes_from_the_value) {
  /* The value is what counts, not the key (the key is only the partitioner's). */
  const char *json = "{\"tenant\":\"globex\",\"aggregateId\":\"u/with/slashes\",\"aggregateType\":\"user\","
                     "\"version\":1,\"state\":{}}";
  cqrs_aggregate_t *a = cqrs_aggregate_from_json("globex/u/with/slashes", 0, json, strlen(json), NULL);
  cr_assert_not_null(a);
  cr_assert_str_eq(a->tenant, "globex");
  cr_assert_str_eq(a->aggregate_id, "u/with/slashes");
  cr_assert_str_eq(a->key, "globex/u/with/slashes");
  cqrs_aggregate_destroy(a);
}

Test(aggregate_store, same_id_in_two_tenants) {
  cqrs_aggregate_store_put(store, user("u-1", 0, 1));
  cqrs_aggregate_t *b = cqrs_aggregate_new("globex", "u-1", "user", 0);
  b->version = 4;
  cqrs_aggregate_store_put(store, b);
  cr_assert_eq(cqrs_aggregate_store_size(store), 2);
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 1);
  cr_assert_eq(cqrs_aggregate_store_get(store, "globex/u-1")->version, 4);
}

Test(aggregate_store, from_json_null_err) {
  cr_assert_null(cqrs_aggregate_from_json("u", 0, "x", 1, NULL));
}

static void count_each(cqrs_aggregate_t *a, void *ctx) {
  (void)a;
  (*(size_t *)ctx)++;
}

Test(aggregate_store, empty_store) {
  cr_assert_eq(cqrs_aggregate_store_size(store), 0);
  cr_assert_null(cqrs_aggregate_store_get(store, "acme/u-1"));
  cqrs_aggregate_store_commit(store);
  cqrs_aggregate_store_abort(store);
  cqrs_aggregate_store_drop_partition(store, 0);
  cqrs_aggregate_store_destroy(NULL);
  /* nothing appeared, and the store still works after them */
  size_t seen = 0;
  cqrs_aggregate_store_each(store, count_each, &seen);
  cr_assert_eq(seen, 0);
  cr_assert_eq(cqrs_aggregate_store_size(store), 0);
  cqrs_aggregate_store_stage(store, user("u-1", 0, 1));
  cqrs_aggregate_store_commit(store);
  cr_assert_eq(cqrs_aggregate_store_size(store), 1);
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 1);
}

Test(aggregate_store, stage_visible_to_get) {
  cqrs_aggregate_store_stage(store, user("u-1", 0, 1));
  const cqrs_aggregate_t *a = cqrs_aggregate_store_get(store, "acme/u-1");
  cr_assert_not_null(a);
  cr_assert_eq(a->version, 1);
  cr_assert_eq(cqrs_aggregate_store_size(store), 0, "staged is not committed");
}

Test(aggregate_store, abort_returns_to_committed) {
  cqrs_aggregate_store_put(store, user("u-1", 0, 1));
  cqrs_aggregate_store_stage(store, user("u-1", 0, 2));
  cqrs_aggregate_store_stage(store, user("u-2", 0, 1));
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 2, "staged wins over committed");
  cqrs_aggregate_store_abort(store);
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 1);
  cr_assert_null(cqrs_aggregate_store_get(store, "acme/u-2"));
  cr_assert_eq(cqrs_aggregate_store_size(store), 1);
}

Test(aggregate_store, commit_makes_visible) {
  cqrs_aggregate_store_put(store, user("u-1", 0, 1));
  cqrs_aggregate_store_stage(store, user("u-1", 0, 2));
  cqrs_aggregate_store_stage(store, user("u-2", 1, 1));
  cqrs_aggregate_store_commit(store);
  cr_assert_eq(cqrs_aggregate_store_size(store), 2);
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 2);
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-2")->version, 1);
  /* an abort after the commit changes nothing */
  cqrs_aggregate_store_abort(store);
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 2);
}

Test(aggregate_store, restage_in_same_batch) {
  cqrs_aggregate_store_stage(store, user("u-1", 0, 1));
  cqrs_aggregate_store_stage(store, user("u-1", 0, 2));
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 2);
  cqrs_aggregate_store_commit(store);
  cr_assert_eq(cqrs_aggregate_store_get(store, "acme/u-1")->version, 2);
  cr_assert_eq(cqrs_aggregate_store_size(store), 1);
}

Test(aggregate_store, drop_partition_only_that_one) {
  cqrs_aggregate_store_put(store, user("p0-a", 0, 1));
  cqrs_aggregate_store_put(store, user("p1-a", 1, 1));
  cqrs_aggregate_store_put(store, user("p1-b", 1, 3));
  cqrs_aggregate_store_put(store, user("p2-a", 2, 1));
  cqrs_aggregate_store_stage(store, user("p1-c", 1, 1));
  cqrs_aggregate_store_stage(store, user("p2-b", 2, 1));
  cqrs_aggregate_store_drop_partition(store, 1);
  cr_assert_null(cqrs_aggregate_store_get(store, "acme/p1-a"));
  cr_assert_null(cqrs_aggregate_store_get(store, "acme/p1-b"));
  cr_assert_null(cqrs_aggregate_store_get(store, "acme/p1-c"), "staged ones of the partition go too");
  cr_assert_not_null(cqrs_aggregate_store_get(store, "acme/p0-a"));
  cr_assert_not_null(cqrs_aggregate_store_get(store, "acme/p2-a"));
  cr_assert_not_null(cqrs_aggregate_store_get(store, "acme/p2-b"));
  cr_assert_eq(cqrs_aggregate_store_size(store), 2);
  cqrs_aggregate_store_commit(store);
  cr_assert_eq(cqrs_aggregate_store_size(store), 3);
}

/* Younger than CQRS_RECENT_MIN_MS before the newest: kept beyond the last
 * CQRS_RECENT_COMMANDS, up to CQRS_RECENT_MAX; older ones go. */
Test(aggregate_store, remember_keeps_what_is_recent_in_time) {
  cqrs_aggregate_t *a = user("u-1", 0, 1);
  char id[32];
  for (int i = 0; i < 20; i++) {
    snprintf(id, sizeof id, "c-%d", i);
    cqrs_aggregate_remember(a, id, "{}", i);
  }
  cr_assert_eq(a->n_recent, 20, "20 within a few ms: all kept");
  cqrs_aggregate_remember(a, "c-20", "{}", CQRS_RECENT_MIN_MS + 10);
  cr_assert_eq(a->n_recent, 10, "those decided at 0..10 ms are old now: c-11..c-20 kept");
  cr_assert_null(cqrs_aggregate_recent(a, "c-10"));
  cr_assert_not_null(cqrs_aggregate_recent(a, "c-11"));
  char *json = cqrs_aggregate_to_json(a, NULL);
  cqrs_aggregate_t *b = cqrs_aggregate_from_json("acme/u-1", 0, json, strlen(json), NULL);
  cr_assert_eq(b->n_recent, 10, "the window survives the aggregate-state form");
  cqrs_aggregate_destroy(b);
  bson_free(json);
  for (int i = 0; i < CQRS_RECENT_MAX + 50; i++) {
    snprintf(id, sizeof id, "d-%d", i);
    cqrs_aggregate_remember(a, id, "{}", CQRS_RECENT_MIN_MS + 20);
  }
  cr_assert_eq(a->n_recent, CQRS_RECENT_MAX, "at most CQRS_RECENT_MAX");
  snprintf(id, sizeof id, "d-%d", 50 + CQRS_RECENT_MAX - 1);
  cr_assert_str_eq(a->recent[CQRS_RECENT_MAX - 1].command_id, id);
  cqrs_aggregate_destroy(a);
}
