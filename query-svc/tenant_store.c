/* Tenants' read models: database per tenant, collection by alias (see tenant_store.h). */
#include "tenant_store.h"

#include "cqrs/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cqrs_tenant_store {
  char *mongo_db;
  cqrs_read_models_t *aliases; /* one resolver for every tenant's database */
};

cqrs_tenant_store_t *cqrs_tenant_store_new(const char *mongo_db, int alias_ttl_ms) {
  cqrs_tenant_store_t *s = cqrs_xcalloc(1, sizeof *s);
  s->mongo_db = cqrs_xstrdup(mongo_db);
  s->aliases = cqrs_read_models_new(NULL, alias_ttl_ms, CQRS_ALIAS_READER);
  return s;
}

void cqrs_tenant_store_destroy(cqrs_tenant_store_t *s) {
  if (!s) return;
  cqrs_read_models_destroy(s->aliases);
  free(s->mongo_db);
  free(s);
}

bool cqrs_tenant_store_locate(cqrs_tenant_store_t *s, mongoc_client_t *client, const char *tenant,
                              const char *read_model, cqrs_tenant_place_t *out, cqrs_error_t *err) {
  if (!cqrs_tenant_valid(tenant, err)) return false;
  char *db = cqrs_tenant_db(s->mongo_db, tenant);
  BSON_ASSERT(db);
  int n = snprintf(out->db, sizeof out->db, "%s", db);
  free(db);
  if (n < 0 || (size_t)n >= sizeof out->db) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "tenantId", "the database name of this tenant is too long");
    return false;
  }
  return cqrs_read_models_lookup_in(s->aliases, client, out->db, read_model, out->collection, err);
}

mongoc_collection_t *cqrs_tenant_store_collection(cqrs_tenant_store_t *s, mongoc_client_t *client,
                                                  const cqrs_principal_t *who, const char *read_model,
                                                  cqrs_error_t *err) {
  cqrs_tenant_place_t at;
  if (!cqrs_tenant_store_locate(s, client, who->tenant, read_model, &at, err)) return NULL;
  return mongoc_client_get_collection(client, at.db, at.collection);
}
