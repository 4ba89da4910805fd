/* The one place that maps a caller to its tenant's read models. Each tenant's
 * read models live in its own database, "<MONGO_DB>_<tenant>" (cqrs/tenant.h),
 * where a rebuild may have swapped an alias to a new collection
 * (cqrs/read_model.h). Routes never name a database or a collection: they ask
 * this module, given the verified principal, and so cannot read another
 * tenant's documents by forgetting a filter; the waiter hub asks it with the
 * tenant of each waiter. */
#ifndef CQRS_TENANT_STORE_H
#define CQRS_TENANT_STORE_H

#include "cqrs/auth.h"
#include "cqrs/error.h"
#include "cqrs/read_model.h"
#include "cqrs/tenant.h"

#include <mongoc/mongoc.h>

/* Enough for "<MONGO_DB>_<tenant>": FerretDB allows 63 characters. */
#define CQRS_TENANT_DB_MAX 128

typedef struct cqrs_tenant_store cqrs_tenant_store_t;

/* Where one tenant's read model is served from now. */
typedef struct {
  char db[CQRS_TENANT_DB_MAX];                /* "<MONGO_DB>_<tenant>" */
  char collection[CQRS_COLLECTION_NAME_MAX]; /* the collection its alias points at */
} cqrs_tenant_place_t;

/* A store over the databases of mongo_db (copied) whose aliases are re-read
 * at most every alias_ttl_ms. Thread-safe. This function can't fail
 * (allocation failure aborts). */
cqrs_tenant_store_t *cqrs_tenant_store_new(const char *mongo_db, int alias_ttl_ms);
void cqrs_tenant_store_destroy(cqrs_tenant_store_t *s);

/* Where tenant's read_model is served from now, into *out. False with err
 * CQRS_ERR_INVALID when tenant is not a valid tenant id (a platform
 * administrator has none), or CQRS_ERR_UNAVAILABLE when the alias had to be
 * re-read and the store did not answer (the caller answers 503 at once rather
 * than wait on the store a second time). */
bool cqrs_tenant_store_locate(cqrs_tenant_store_t *s, mongoc_client_t *client, const char *tenant,
                              const char *read_model, cqrs_tenant_place_t *out, cqrs_error_t *err);

/* The collection serving read_model for who's tenant (client's handle; free
 * with mongoc_collection_destroy). NULL with err as cqrs_tenant_store_locate. */
mongoc_collection_t *cqrs_tenant_store_collection(cqrs_tenant_store_t *s, mongoc_client_t *client,
                                                  const cqrs_principal_t *who, const char *read_model,
                                                  cqrs_error_t *err);

#endif
