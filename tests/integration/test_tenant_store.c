/* query-svc's tenant store (query-svc/tenant_store.h) against the real
 * MongoDB: each tenant's read model is found in its own database, through
 * that database's own alias, with one resolver for all of them; a name that
 * is no tenant id is refused before the store is asked. */
#include "testkit.h"
#include "tenant_store.h"

#include "cqrs/util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static tk_env_t env;
static mongoc_client_t *client;
static cqrs_tenant_store_t *store;

static void setup(void) {
  tk_env_init(&env);
  client = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(client);
  store = cqrs_tenant_store_new(env.db, 60000);
}

static void teardown(void) {
  for (const char *const *t = (const char *const[]){"a", "b", NULL}; *t; t++) {
    char name[128];
    mongoc_database_t *db = mongoc_client_get_database(client, tk_tenant_db(&env, *t, name));
    mongoc_database_drop(db, NULL);
    mongoc_database_destroy(db);
  }
  cqrs_tenant_store_destroy(store);
  mongoc_client_destroy(client);
}

TestSuite(tenant_store, .init = setup, .fini = teardown, .timeout = 60);

Test(tenant_store, each_tenant_reads_its_own_database_through_its_own_alias) {
  char db_a[128], db_b[128];
  cqrs_error_t err = {0};
  /* a's user_profiles were rebuilt into a new collection; b's were not. */
  cr_assert(cqrs_read_models_swap(client, tk_tenant_db(&env, "a", db_a), "user_profiles", "user_profiles_r2", NULL, 0,
                                  &err),
            "%s", err.message);
  tk_tenant_db(&env, "b", db_b);
  cqrs_tenant_place_t at;
  /* a reader stays on the previous collection after a swap until the
   * swapper releases readers (cqrs/read_model.h), then follows it within its
   * TTL */
  cr_assert(cqrs_tenant_store_locate(store, client, "a", "user_profiles", &at, &err), "%s", err.message);
  cr_expect_str_eq(at.db, db_a);
  cr_expect_str_eq(at.collection, "user_profiles", "a reader followed the swap at once");
  usleep(2 * (CQRS_ALIAS_TTL_MS + 100) * 1000); /* two of its TTLs: it has read the alias again */
  cr_assert(cqrs_tenant_store_locate(store, client, "a", "user_profiles", &at, &err), "%s", err.message);
  cr_expect_str_eq(at.collection, "user_profiles", "a reader left the previous collection before its release");
  cr_assert(cqrs_read_models_release_readers(client, db_a, "user_profiles", "user_profiles_r2", &err), "%s",
            err.message);
  int64_t t0 = cqrs_time_monotonic_ms();
  while (strcmp(at.collection, "user_profiles_r2") != 0 && cqrs_time_monotonic_ms() - t0 < 5 * CQRS_ALIAS_TTL_MS) {
    usleep(50 * 1000);
    cr_assert(cqrs_tenant_store_locate(store, client, "a", "user_profiles", &at, &err), "%s", err.message);
  }
  cr_expect_str_eq(at.collection, "user_profiles_r2", "the reader never followed the released swap");
  cr_assert(cqrs_tenant_store_locate(store, client, "b", "user_profiles", &at, &err), "%s", err.message);
  cr_expect_str_eq(at.db, db_b);
  cr_expect_str_eq(at.collection, "user_profiles", "b has no alias: a's must not leak into b's answer");
  /* Cached answers stay apart too. */
  cr_assert(cqrs_tenant_store_locate(store, client, "a", "user_profiles", &at, &err));
  cr_expect_str_eq(at.collection, "user_profiles_r2");

  cqrs_principal_t who = {.tenant = "b", .subject = "test", .scopes = CQRS_SCOPE_QUERIES_READ};
  mongoc_collection_t *coll = cqrs_tenant_store_collection(store, client, &who, "user_profiles", &err);
  cr_assert_not_null(coll, "%s", err.message);
  cr_expect_str_eq(mongoc_collection_get_name(coll), "user_profiles");
  mongoc_collection_destroy(coll);
}

Test(tenant_store, a_name_that_is_no_tenant_id_is_refused) {
  static const char *const bad[] = {"", "A", "a/b", "a_b", "-a", "../a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_error_t err = {0};
    cqrs_tenant_place_t at;
    cr_expect_not(cqrs_tenant_store_locate(store, client, bad[i], "user_profiles", &at, &err), "\"%s\"", bad[i]);
    cr_expect_eq(err.code, CQRS_ERR_INVALID, "\"%s\": %s", bad[i], err.message);
    if (strlen(bad[i]) > CQRS_TENANT_MAX) continue; /* a principal cannot hold it */
    cqrs_principal_t who = {.subject = "platform", .scopes = CQRS_SCOPE_PLATFORM | CQRS_SCOPE_QUERIES_READ};
    snprintf(who.tenant, sizeof who.tenant, "%s", bad[i]);
    cr_expect_null(cqrs_tenant_store_collection(store, client, &who, "user_profiles", NULL), "\"%s\"", bad[i]);
  }
}
