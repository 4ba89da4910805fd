/* The tenants' read-model databases (see tenants.h). */
#include "tenants.h"

#include "indexes.h"

#include "cqrs/alloc.h"
#include "cqrs/map.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the process knows of one tenant's database. */
typedef struct {
  char db[CQRS_TENANT_DB_MAX];
  cqrs_read_models_t *aliases;
  cqrs_map_t *prepared; /* collection -> non-NULL: its indexes are in place */
} entry_t;

struct cqrs_tenants {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  mongoc_client_pool_t *pool;
  cqrs_registry_t *reg;
  int alias_ttl_ms;
  pthread_rwlock_t gate;
  pthread_mutex_t lock; /* guards entries */
  cqrs_map_t *entries;  /* tenant -> entry_t */
};

static void entry_free(void *v) {
  entry_t *e = v;
  cqrs_read_models_destroy(e->aliases);
  cqrs_map_destroy(e->prepared);
  free(e);
}

cqrs_tenants_t *cqrs_tenants_new(const cqrs_config_t *cfg, const cqrs_log_t *log, mongoc_client_pool_t *pool,
                                 cqrs_registry_t *reg, int alias_ttl_ms) {
  cqrs_tenants_t *t = cqrs_xcalloc(1, sizeof *t);
  t->cfg = cfg;
  t->log = log;
  t->pool = pool;
  t->reg = reg;
  t->alias_ttl_ms = alias_ttl_ms;
  /* Writer preference: batches of several apply loops overlap all the time,
   * and with the default (readers first) a drop could wait for ever. */
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&t->gate, &a);
  pthread_rwlockattr_destroy(&a);
  pthread_mutex_init(&t->lock, NULL);
  t->entries = cqrs_map_new(entry_free);
  return t;
}

void cqrs_tenants_destroy(cqrs_tenants_t *t) {
  if (!t) return;
  cqrs_map_destroy(t->entries);
  pthread_mutex_destroy(&t->lock);
  pthread_rwlock_destroy(&t->gate);
  free(t);
}

void cqrs_tenants_enter(cqrs_tenants_t *t) { pthread_rwlock_rdlock(&t->gate); }

void cqrs_tenants_leave(cqrs_tenants_t *t) { pthread_rwlock_unlock(&t->gate); }

bool cqrs_tenants_deleted(cqrs_tenants_t *t, const char *tenant) {
  return t->reg && cqrs_registry_tenant_state(t->reg, tenant) == CQRS_TENANT_DELETED;
}

void cqrs_tenants_db(const cqrs_tenants_t *t, const char *tenant, char out[CQRS_TENANT_DB_MAX]) {
  char *db = cqrs_tenant_db(t->cfg->mongo_db, tenant);
  snprintf(out, CQRS_TENANT_DB_MAX, "%s", db);
  free(db);
}

/* tenant's entry, made on first use. Call with t->lock held. */
static entry_t *entry(cqrs_tenants_t *t, const char *tenant) {
  entry_t *e = cqrs_map_get(t->entries, tenant);
  if (e) return e;
  e = cqrs_xcalloc(1, sizeof *e);
  cqrs_tenants_db(t, tenant, e->db);
  e->aliases = cqrs_read_models_new(e->db, t->alias_ttl_ms, CQRS_ALIAS_WRITER);
  e->prepared = cqrs_map_new(NULL);
  cqrs_map_put(t->entries, tenant, e);
  return e;
}

void cqrs_tenants_resolve(cqrs_tenants_t *t, const char *tenant, const char *read_model,
                          char out[CQRS_COLLECTION_NAME_MAX]) {
  pthread_mutex_lock(&t->lock);
  /* The resolver is thread-safe and lives until a drop, which cannot run
   * while a writer holds the gate; it is used outside the lock so a slow
   * store does not hold up the other loops. */
  cqrs_read_models_t *aliases = entry(t, tenant)->aliases;
  pthread_mutex_unlock(&t->lock);
  mongoc_client_t *client = mongoc_client_pool_pop(t->pool);
  cqrs_read_models_resolve(aliases, client, read_model, out);
  mongoc_client_pool_push(t->pool, client);
}

bool cqrs_tenants_prepare(cqrs_tenants_t *t, const char *tenant, const char *collection,
                          const cqrs_projection_t *proj, cqrs_error_t *err) {
  pthread_mutex_lock(&t->lock);
  entry_t *e = entry(t, tenant);
  bool done = cqrs_map_get(e->prepared, collection) != NULL;
  char db[CQRS_TENANT_DB_MAX];
  snprintf(db, sizeof db, "%s", e->db);
  pthread_mutex_unlock(&t->lock);
  if (done) return true;
  /* Outside the lock: index creation takes a while, and two callers creating
   * the same indexes is harmless (cqrs_indexes_ensure is idempotent). */
  if (!cqrs_indexes_ensure(t->cfg, t->log, t->pool, db, collection, proj, err)) return false;
  cqrs_log_info(t->log, "indexes in place", "tenant", tenant, "database", db, "collection", collection, NULL);
  pthread_mutex_lock(&t->lock);
  cqrs_map_put(entry(t, tenant)->prepared, collection, (void *)1);
  pthread_mutex_unlock(&t->lock);
  return true;
}

typedef struct {
  const char *collection;
  char (*out)[CQRS_TENANT_MAX + 1];
  size_t n;
} met_ctx_t;

static bool collect_met(const char *tenant, void *value, void *ctx) {
  met_ctx_t *m = ctx;
  entry_t *e = value;
  if (cqrs_map_get(e->prepared, m->collection)) snprintf(m->out[m->n++], CQRS_TENANT_MAX + 1, "%s", tenant);
  return false;
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

char (*cqrs_tenants_met(cqrs_tenants_t *t, const char *collection, size_t *n))[CQRS_TENANT_MAX + 1] {
  pthread_mutex_lock(&t->lock);
  met_ctx_t m = {collection, cqrs_xcalloc(cqrs_map_size(t->entries) + 1, sizeof *m.out), 0};
  cqrs_map_filter(t->entries, collect_met, &m);
  pthread_mutex_unlock(&t->lock);
  qsort(m.out, m.n, sizeof *m.out, by_name);
  *n = m.n;
  return m.out;
}

bool cqrs_tenants_drop(cqrs_tenants_t *t, const char *tenant, cqrs_error_t *err) {
  char db[CQRS_TENANT_DB_MAX];
  cqrs_tenants_db(t, tenant, db);
  pthread_rwlock_wrlock(&t->gate); /* after every batch in flight (tenants.h) */
  mongoc_client_t *client = mongoc_client_pool_pop(t->pool);
  mongoc_database_t *d = mongoc_client_get_database(client, db);
  bson_error_t e;
  /* dropDatabase of a database that does not exist succeeds */
  bool ok = mongoc_database_drop(d, &e);
  mongoc_database_destroy(d);
  mongoc_client_pool_push(t->pool, client);
  if (ok) {
    /* its aliases and indexes went with it: should the tenant come back,
     * everything is made again */
    pthread_mutex_lock(&t->lock);
    cqrs_map_delete(t->entries, tenant);
    pthread_mutex_unlock(&t->lock);
  } else {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "dropping database %s: %s", db, e.message);
  }
  pthread_rwlock_unlock(&t->gate);
  return ok;
}

/* The reader thread's callback: the drop, retried (100 ms doubling to 5 s,
 * about a minute in all). It holds up the reader meanwhile, which only delays
 * the next deletion: the projector reads nothing else from the control topic. */
static void on_deleted(const char *tenant, void *ctx) {
  cqrs_tenants_t *t = ctx;
  cqrs_error_t err = {0};
  int backoff = 100;
  for (int attempt = 0; attempt < 16; attempt++, backoff = backoff < 5000 ? backoff * 2 : 5000) {
    if (cqrs_tenants_drop(t, tenant, &err)) {
      cqrs_log_info(t->log, "tenant deleted: its read models are dropped", "tenant", tenant, NULL);
      return;
    }
    cqrs_log_warn(t->log, "cannot drop a deleted tenant's database; retrying", "tenant", tenant, "error",
                  err.message, NULL);
    usleep((useconds_t)backoff * 1000);
  }
  cqrs_log_error(t->log, "a deleted tenant's database is left in place; it is dropped again at the next start",
                 "tenant", tenant, "error", err.message, NULL);
}

cqrs_control_reader_t *cqrs_tenants_follow(cqrs_tenants_t *t, int timeout_ms, cqrs_error_t *err) {
  cqrs_control_reader_t *r = cqrs_control_reader_start(t->cfg, t->log, t->reg, on_deleted, t, err);
  if (!r) return NULL;
  for (int waited = 0; !cqrs_control_reader_caught_up(r); waited += 50) {
    if (waited >= timeout_ms) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the control topic was not read within %d ms", timeout_ms);
      cqrs_control_reader_stop(r);
      return NULL;
    }
    usleep(50 * 1000);
  }
  return r;
}
