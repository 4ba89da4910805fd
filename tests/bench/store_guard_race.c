/* Are the projector's version-guarded updates atomic on a store? (Not a test:
 * a reproduction, quoted in RELIABILITY.md.)
 *
 *   store_guard_race <mongodb uri> <database> [updates] [postgres uri]
 *
 * With the PostgreSQL behind a FerretDB v1 (FERRETDB_PG_URI), the collection
 * first gets the store's version guard the projector gives every read model
 * (cqrs_ferretdb_pg_monotonic): the same race, guarded.
 *
 * Two threads update one document {_id: "x", version} with
 * update_one({_id: "x", version: {$lt: v}}, {$set: {version: v}}), one the odd
 * versions and one the even ones, 1 to updates (2,000), each reading the
 * document back after its update. On a store that applies the filter and the
 * update atomically the version read back is never below the one the thread
 * just wrote; a lower one is a lost update: an older version overwrote a newer
 * one. Prints how many reads were below; exit 1 when any was. */
#include "cqrs/ferretdb_pg.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static mongoc_client_pool_t *pool;
static const char *db;
static long updates = 2000;
static atomic_long lost;

static void *writer(void *arg) {
  long first = (long)(intptr_t)arg;
  mongoc_client_t *c = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, "guard_race");
  for (long v = first; v <= updates; v += 2) {
    bson_t *filter = BCON_NEW("_id", "x", "version", "{", "$lt", BCON_INT64(v), "}");
    bson_t *update = BCON_NEW("$set", "{", "version", BCON_INT64(v), "}");
    bson_error_t e;
    if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL, &e)) fprintf(stderr, "update: %s\n", e.message);
    bson_destroy(filter);
    bson_destroy(update);
    bson_t *q = BCON_NEW("_id", "x");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, q, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "version") && bson_iter_as_int64(&it) < v)
      atomic_fetch_add(&lost, 1);
    mongoc_cursor_destroy(cur);
    bson_destroy(q);
  }
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, c);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: %s <mongodb uri> <database> [updates] [postgres uri]\n", argv[0]);
    return 2;
  }
  db = argv[2];
  if (argc >= 4) updates = atol(argv[3]);
  mongoc_init();
  bson_error_t e;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &e);
  if (!uri) {
    fprintf(stderr, "%s\n", e.message);
    return 2;
  }
  pool = mongoc_client_pool_new(uri);
  mongoc_client_t *c = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, "guard_race");
  mongoc_collection_drop(coll, NULL);
  bson_t *doc = BCON_NEW("_id", "x", "version", BCON_INT64(0));
  if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &e)) {
    fprintf(stderr, "insert: %s\n", e.message);
    return 2;
  }
  bson_destroy(doc);
  if (argc == 5) {
    cqrs_error_t err = {0};
    PGconn *pg = cqrs_ferretdb_pg_connect(argv[4], "store_guard_race", 5000, 0, &err);
    if (!pg || !cqrs_ferretdb_pg_monotonic(pg, db, "guard_race", "version", &err)) {
      fprintf(stderr, "the store's guard: %s\n", err.message);
      return 2;
    }
    PQfinish(pg);
  }
  pthread_t a, b;
  pthread_create(&a, NULL, writer, (void *)(intptr_t)1);
  pthread_create(&b, NULL, writer, (void *)(intptr_t)2);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  mongoc_collection_drop(coll, NULL);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, c);
  mongoc_client_pool_destroy(pool);
  mongoc_uri_destroy(uri);
  mongoc_cleanup();
  printf("store_guard_race updates=%ld reads_below_own_write=%ld\n", updates, atomic_load(&lost));
  return atomic_load(&lost) ? 1 : 0;
}
