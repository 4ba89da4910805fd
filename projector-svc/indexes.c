/* Index creation for read models (see indexes.h). */
#include "indexes.h"

#include "cqrs/ferretdb_keyset.h"
#include "cqrs/ferretdb_pg.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* True when coll already has an index called name. */
static bool has_index(mongoc_collection_t *coll, const char *name) {
  mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
  const bson_t *doc;
  bson_iter_t it;
  bool found = false;
  while (mongoc_cursor_next(cur, &doc)) /* to the end: no cursor left open on the server */
    found |= bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
             strcmp(bson_iter_utf8(&it, NULL), name) == 0;
  mongoc_cursor_destroy(cur);
  return found;
}

/* Creates the projection's indexes that are missing. Only the missing ones:
 * FerretDB v1.24 drops the connection when asked to create again a compound
 * index that exists. createIndexes also creates the collection. */
static bool ensure_mongo(mongoc_client_pool_t *pool, const char *db, const char *collection,
                         const cqrs_projection_t *proj, cqrs_error_t *err) {
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, collection);
  bson_t all = BSON_INITIALIZER, cmd = BSON_INITIALIZER, missing;
  proj->indexes(&all);
  BSON_APPEND_UTF8(&cmd, "createIndexes", collection);
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &missing);
  bson_iter_t it, nit;
  uint32_t n = 0;
  if (bson_iter_init(&it, &all)) {
    while (bson_iter_next(&it)) {
      bson_iter_t sub;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub) || !bson_iter_find(&sub, "name")) continue;
      nit = sub;
      if (has_index(coll, bson_iter_utf8(&nit, NULL))) continue;
      char key[16];
      const char *k;
      bson_uint32_to_string(n++, &k, key, sizeof key);
      bson_append_value(&missing, k, -1, bson_iter_value(&it));
    }
  }
  bson_append_array_end(&cmd, &missing);
  bson_error_t e;
  bool ok = n == 0 || mongoc_client_write_command_with_opts(client, db, &cmd, NULL, NULL, &e);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "createIndexes on %s: %s", collection, e.message);
  bson_destroy(&cmd);
  bson_destroy(&all);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, client);
  return ok;
}

size_t cqrs_indexes_gin_fields(const cqrs_projection_t *proj, char out[][64], size_t max) {
  size_t n = 0;
  if (max < 2) return 0;
  snprintf(out[n++], 64, "_id");
  bson_t all = BSON_INITIALIZER;
  proj->indexes(&all);
  bson_iter_t it;
  if (bson_iter_init(&it, &all)) {
    while (bson_iter_next(&it) && n < max - 1) {
      bson_iter_t sub, key;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub) || !bson_iter_find(&sub, "key") ||
          !BSON_ITER_HOLDS_DOCUMENT(&sub) || !bson_iter_recurse(&sub, &key) || !bson_iter_next(&key))
        continue;
      bool seen = false;
      for (size_t i = 0; i < n; i++) seen |= strcmp(out[i], bson_iter_key(&key)) == 0;
      if (!seen) snprintf(out[n++], 64, "%s", bson_iter_key(&key));
    }
  }
  bson_destroy(&all);
  out[n][0] = '\0';
  return n;
}

/* The keyset btree of each of proj's keyset lists (cqrs/ferretdb_keyset.h
 * for why). */
static bool ensure_keysets(PGconn *c, const char *db, const char *collection, const cqrs_projection_t *proj,
                           cqrs_error_t *err) {
  bool ok = true;
  for (const char *const *k = proj->keysets; ok && k && *k; k++) {
    char keys[CQRS_KEYSET_KEYS_MAX][64];
    const char *names[CQRS_KEYSET_KEYS_MAX];
    size_t n = cqrs_projection_index_keys(proj, *k, keys, CQRS_KEYSET_KEYS_MAX);
    for (size_t i = 0; i < n; i++) names[i] = keys[i];
    ok = cqrs_ferretdb_pg_keyset_index(c, db, collection, names, n, err);
  }
  return ok;
}

/* GIN and keyset indexes, the version guard and no statistics on the whole
 * document, on the table FerretDB keeps db.collection in (see
 * cqrs/ferretdb_pg.h for why GIN, why without a pending list, why a guard in
 * the store and why a lean ANALYZE). */
static bool ensure_pg(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *db, const char *collection,
                      const cqrs_projection_t *proj, cqrs_error_t *err) {
  PGconn *c = cqrs_ferretdb_pg_connect(cfg->ferretdb_pg_uri, "projector-svc", 5000, 0, err);
  if (!c) return false;
  char fields[16][64];
  const char *names[16];
  size_t n = cqrs_indexes_gin_fields(proj, fields, 16);
  for (size_t i = 0; i < n; i++) names[i] = fields[i];
  char *table = NULL;
  bool ok = cqrs_ferretdb_pg_gin_indexes(c, db, collection, names, n, &table, err) &&
            ensure_keysets(c, db, collection, proj, err) &&
            cqrs_ferretdb_pg_monotonic(c, db, collection, CQRS_PROJECTION_VERSION, err) &&
            cqrs_ferretdb_pg_lean_analyze(c, db, collection, err);
  if (ok)
    cqrs_log_debug(log, "GIN and keyset indexes, the version guard and a lean ANALYZE in place", "collection",
                   collection, "table", table, NULL);
  free(table);
  PQfinish(c);
  return ok;
}

bool cqrs_indexes_ensure(const cqrs_config_t *cfg, const cqrs_log_t *log, mongoc_client_pool_t *pool, const char *db,
                         const char *collection, const cqrs_projection_t *proj, cqrs_error_t *err) {
  return ensure_mongo(pool, db, collection, proj, err) &&
         (!cfg->ferretdb_pg_uri || ensure_pg(cfg, log, db, collection, proj, err));
}
