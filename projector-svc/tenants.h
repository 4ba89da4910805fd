/* The tenants' read-model databases, as one projector process sees them.
 *
 * Each tenant's documents live in its own database, "<MONGO_DB>_<tenant>"
 * (cqrs/tenant.h), in the collection its read_models alias there names (a
 * per-tenant rebuild swaps that alias in that database only). For each tenant
 * it has met, this module keeps the database name, an alias resolver, and
 * which collections already have their indexes (created once per process,
 * before the first write into a collection). It also answers whether a tenant
 * is deleted (the control registry) and drops a deleted tenant's database.
 *
 * The gate (enter/leave, drop): a tenant's database must not come back after
 * its drop. Writers (the apply loops, a rebuild's swap) hold the gate, shared,
 * from the moment they check cqrs_tenants_deleted until their writes are
 * acknowledged; cqrs_tenants_drop takes it exclusively. The registry marks a
 * tenant deleted before the drop is asked for, so a batch that checked before
 * the mark finishes its writes before the drop runs, and every batch after the
 * drop sees the mark and skips the tenant's events. Chosen over "drop again
 * after a batch that raced" because a drop concurrent with writes into the
 * same database can make those writes fail (FerretDB drops the PostgreSQL
 * schema under them), and a failed write ends as a dead letter; serialised,
 * no write ever meets a half-dropped database. The cost: a drop waits for the
 * batches in flight (at most one per projection), and the control reader
 * thread waits with it.
 *
 * Several replicas: each one's control reader sees the deletion and each
 * drops (dropDatabase is idempotent), after its own batches in flight. A
 * replica's batch may still land after another replica's drop (it had not
 * seen the record yet); that replica's own drop, which follows its batch,
 * removes it again. Thread-safe. */
#ifndef CQRS_TENANTS_H
#define CQRS_TENANTS_H

#include "projection.h"

#include "cqrs/config.h"
#include "cqrs/control.h"
#include "cqrs/log.h"
#include "cqrs/read_model.h"
#include "cqrs/tenant.h"

#include <mongoc/mongoc.h>

/* Room for "<MONGO_DB>_<tenant>" (MongoDB itself allows 64 bytes) */
#define CQRS_TENANT_DB_MAX 128

typedef struct cqrs_tenants cqrs_tenants_t;

/* Borrowed: cfg, log, pool, reg (the control registry; NULL: no tenant is
 * ever deleted). Aliases
 * are re-read at most every alias_ttl_ms. Can't fail (aborts when out of
 * memory). Free with cqrs_tenants_destroy (NULL is fine). */
cqrs_tenants_t *cqrs_tenants_new(const cqrs_config_t *cfg, const cqrs_log_t *log, mongoc_client_pool_t *pool,
                                 cqrs_registry_t *reg, int alias_ttl_ms);
void cqrs_tenants_destroy(cqrs_tenants_t *t);

/* Takes / releases the gate, shared (see above). Not recursive: a thread
 * holding it must not take it again. */
void cqrs_tenants_enter(cqrs_tenants_t *t);
void cqrs_tenants_leave(cqrs_tenants_t *t);

/* True when the control plane has deleted tenant. Any thread. */
bool cqrs_tenants_deleted(cqrs_tenants_t *t, const char *tenant);

/* The database of tenant into out. tenant must be valid (cqrs_tenant_valid).
 * Can't fail. */
void cqrs_tenants_db(const cqrs_tenants_t *t, const char *tenant, char out[CQRS_TENANT_DB_MAX]);

/* The collection serving read_model in tenant's database (cqrs/read_model.h:
 * keeps the last known answer when the store cannot be read). Call holding
 * the gate. */
void cqrs_tenants_resolve(cqrs_tenants_t *t, const char *tenant, const char *read_model,
                          char out[CQRS_COLLECTION_NAME_MAX]);

/* Makes sure collection in tenant's database exists with proj's indexes
 * (indexes.h, GIN ones included), once per process: later calls return true
 * at once. False with err when the store refused or did not answer (the next
 * call tries again). */
bool cqrs_tenants_prepare(cqrs_tenants_t *t, const char *tenant, const char *collection,
                          const cqrs_projection_t *proj, cqrs_error_t *err);

/* The tenants for which collection was prepared (a rebuild's target: the
 * tenants it met), ordered by id, as a malloc'd array (free it); *n gets
 * the count. */
char (*cqrs_tenants_met(cqrs_tenants_t *t, const char *collection, size_t *n))[CQRS_TENANT_MAX + 1];

/* Drops tenant's database (every read model of it), holding the gate
 * exclusively, and forgets what it knew of it. Idempotent. False with err
 * when the store refused or did not answer. */
bool cqrs_tenants_drop(cqrs_tenants_t *t, const char *tenant, cqrs_error_t *err);

/* Starts a control reader (cqrs/control.h) that keeps reg (t's registry)
 * up to date and drops the database of each tenant deleted (also of those
 * read at start: a drop that failed before is done again), retrying a drop
 * the store refuses for about a minute before it logs an error and leaves it
 * to the next start. Waits until the reader has read every record that
 * existed, so no event of a deleted tenant is written for want of knowing:
 * NULL with err when that takes longer than timeout_ms or the reader cannot
 * start. Stop it with cqrs_control_reader_stop before destroying t. */
cqrs_control_reader_t *cqrs_tenants_follow(cqrs_tenants_t *t, int timeout_ms, cqrs_error_t *err);

#endif
