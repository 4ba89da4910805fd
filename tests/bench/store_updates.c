/* store_updates: many update commands at once against a Mongo-wire store,
 * each matching an existing document (what the projector's version-guarded
 * writes do once a document exists). Shows whether the store keeps
 * answering: FerretDB v1.24 with its default PostgreSQL pool (50
 * connections) stops answering everything once 50 such commands are in
 * flight (deploy/local/lib.sh, FERRETDB_POOL_MAX_CONNS).
 *
 *   store_updates <mongo-uri> <db> <threads> <seconds>
 *
 * Each thread has its own client and document and updates it in a loop.
 * Prints one line: updates done, and whether the store still answered a
 * ping afterwards (exit 1 when it did not, or when no update completed in
 * the last 6 s of the run: longer than the 5 s socket timeout). */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  const char *uri, *db;
  int id, timeout_ms;
  int64_t deadline_us;
} worker_t;

static atomic_long done, last_done_us, errors;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static mongoc_client_t *client_new(const char *uri, int timeout_ms) {
  mongoc_uri_t *u = mongoc_uri_new(uri);
  if (!u) return NULL;
  /* an answer slower than this is no answer: the client gives up on it */
  mongoc_uri_set_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, timeout_ms);
  mongoc_uri_set_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
  mongoc_client_t *c = mongoc_client_new_from_uri(u);
  mongoc_uri_destroy(u);
  return c;
}

static void *worker(void *arg) {
  worker_t *w = arg;
  mongoc_client_t *c = client_new(w->uri, w->timeout_ms);
  if (!c) return NULL;
  mongoc_collection_t *coll = mongoc_client_get_collection(c, w->db, "updates");
  char id[32];
  snprintf(id, sizeof id, "doc-%d", w->id);
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
  bson_error_t e;
  bson_t *first = BCON_NEW("$set", "{", "n", BCON_INT64(0), "}");
  bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
  if (!mongoc_collection_update_one(coll, filter, first, opts, NULL, &e)) atomic_fetch_add(&errors, 1);
  for (int64_t n = 1; now_us() < w->deadline_us; n++) {
    bson_t *update = BCON_NEW("$set", "{", "n", BCON_INT64(n), "}");
    if (mongoc_collection_update_one(coll, filter, update, NULL, NULL, &e)) {
      atomic_fetch_add(&done, 1);
      atomic_store(&last_done_us, now_us());
    } else {
      atomic_fetch_add(&errors, 1);
    }
    bson_destroy(update);
  }
  bson_destroy(opts);
  bson_destroy(first);
  bson_destroy(filter);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(c);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: %s <mongo-uri> <db> <threads> <seconds> [<client-timeout-ms>]\n", argv[0]);
    return 2;
  }
  mongoc_init();
  int threads = atoi(argv[3]), seconds = atoi(argv[4]), timeout_ms = argc == 6 ? atoi(argv[5]) : 5000;
  if (threads < 1 || threads > 1000 || seconds < 1) return 2;
  worker_t *w = calloc((size_t)threads, sizeof *w);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  int64_t t0 = now_us(), deadline = t0 + (int64_t)seconds * 1000000;
  for (int i = 0; i < threads; i++) {
    w[i] = (worker_t){.uri = argv[1], .db = argv[2], .id = i, .timeout_ms = timeout_ms, .deadline_us = deadline};
    pthread_create(&th[i], NULL, worker, &w[i]);
  }
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  int64_t idle_ms = (now_us() - atomic_load(&last_done_us)) / 1000;
  mongoc_client_t *c = client_new(argv[1], 5000);
  bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
  bson_error_t e;
  bool answers = c && mongoc_client_command_simple(c, "admin", ping, NULL, NULL, &e);
  printf("store_updates threads=%d seconds=%d updates=%ld errors=%ld last_update_ms_before_end=%ld ping_after=%s\n",
         threads, seconds, atomic_load(&done), atomic_load(&errors), (long)idle_ms, answers ? "ok" : "no answer");
  bson_destroy(ping);
  if (c) mongoc_client_destroy(c);
  free(w), free(th);
  mongoc_cleanup();
  return answers && atomic_load(&done) > 0 && idle_ms < 6000 ? 0 : 1;
}
