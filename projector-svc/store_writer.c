/* Store writer: fold, insert or update in bulk, concurrently, with retries. */
#include "store_writer.h"

#include "fold.h"

#include "cqrs/alloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WRITE_RETRIES 5 /* refusals of one write before it is poison */

typedef enum { STEP_OK, STEP_UNAVAILABLE, STEP_HALT } step_t;

/* Items [a, b), all of one target. */
typedef struct {
  size_t a, b, target;
} chunk_t;

/* One batch being written. Workers take chunks of items (folded writes, or
 * source writes in log order when the batch could not be folded). */
typedef struct {
  const cqrs_store_writer_t *sw;
  const cqrs_store_target_t *targets;
  const cqrs_write_t *src;
  size_t n_src;
  const cqrs_fold_t *fold; /* NULL: write src in order, one worker */
  size_t *in_order;        /* unfolded: item i is src[in_order[i]] (grouped by target, log order within) */
  size_t n_items;
  bool *item_done, *insert_tried, *src_done;
  chunk_t *chunks;
  size_t n_chunks;
  atomic_size_t next_chunk;
  atomic_int outcome; /* the worst cqrs_write_outcome_t so far */
} job_t;

static bool unavailable(const bson_error_t *e) {
  return e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM ||
         e->domain == MONGOC_ERROR_CLIENT;
}

static void set_outcome(job_t *job, cqrs_write_outcome_t o) {
  int cur = atomic_load(&job->outcome);
  while ((int)o > cur && !atomic_compare_exchange_weak(&job->outcome, &cur, (int)o)) {
  }
}

/* Sleeps ms in short naps; false when the owner is stopping. */
static bool nap(const job_t *job, int ms) {
  for (int slept = 0; slept < ms; slept += 50) {
    if (cqrs_worker_stopping(job->sw->owner)) return false;
    usleep(50 * 1000);
  }
  return !cqrs_worker_stopping(job->sw->owner);
}

static const cqrs_write_t *item(const job_t *job, size_t i) {
  return job->fold ? &job->fold->writes[i].w : &job->src[job->in_order[i]];
}

/* One write; a duplicate key counts as done: an upsert whose version guard
 * no longer matches meets the newer document (harmless by design). */
static bool update_one(mongoc_collection_t *coll, const cqrs_write_t *w, bson_error_t *error) {
  bson_t o = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&o, "upsert", w->upsert);
  bool ok = mongoc_collection_update_one(coll, &w->filter, &w->update, &o, NULL, error) || error->code == 11000;
  bson_destroy(&o);
  return ok;
}

/* The source writes idx[first .. first + k) one by one, in order; a write
 * refused WRITE_RETRIES times goes to refused(). */
static step_t write_each(job_t *job, mongoc_collection_t *coll, const size_t *idx, size_t first, size_t k,
                         bson_error_t *error) {
  for (size_t j = first; j < first + k; j++) {
    size_t i = idx[j];
    if (job->src_done[i]) continue;
    bool ok = false;
    for (int attempt = 0, backoff = 50; !ok && attempt < WRITE_RETRIES; attempt++, backoff *= 2) {
      ok = update_one(coll, &job->src[i], error);
      if (!ok && unavailable(error)) return STEP_UNAVAILABLE;
      if (!ok) usleep((useconds_t)backoff * 1000); /* bounded retry of a refused write */
    }
    if (!ok && !job->sw->refused(job->sw->ctx, i, error->message)) return STEP_HALT;
    job->src_done[i] = true;
  }
  return STEP_OK;
}

/* One update command of the items in [a, b) not done yet. */
static bool bulk_update(job_t *job, mongoc_collection_t *coll, size_t a, size_t b, bool ordered,
                        bson_error_t *error) {
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", ordered);
  mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
  bson_destroy(&opts);
  size_t k = 0;
  for (size_t i = a; i < b; i++) {
    if (job->item_done[i]) continue;
    const cqrs_write_t *w = item(job, i);
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&o, "upsert", w->upsert);
    mongoc_bulk_operation_update_one_with_opts(bulk, &w->filter, &w->update, &o, error);
    bson_destroy(&o);
    k++;
  }
  bson_t reply;
  bool ok = k == 0 || mongoc_bulk_operation_execute(bulk, &reply, error) != 0;
  if (k) bson_destroy(&reply);
  mongoc_bulk_operation_destroy(bulk);
  if (ok)
    for (size_t i = a; i < b; i++) job->item_done[i] = true;
  return ok;
}

/* The upserting items of [a, b) not tried yet, as one unordered insert of
 * whole documents: no lookup, ~20x faster than a guarded upsert on FerretDB.
 * A duplicate key (the document exists: a redelivery) leaves them to the
 * update path. Returns false only when the store is unreachable. */
static bool insert_new(job_t *job, mongoc_collection_t *coll, size_t a, size_t b, bson_error_t *error) {
  const bson_t **ptrs = cqrs_xcalloc(b - a, sizeof *ptrs);
  size_t k = 0;
  for (size_t i = a; i < b; i++)
    if (!job->item_done[i] && !job->insert_tried[i] && item(job, i)->upsert) ptrs[k++] = &job->fold->writes[i].insert;
  bool ok = true;
  if (k) {
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    bool inserted = mongoc_collection_insert_many(coll, ptrs, k, &opts, NULL, error);
    bson_destroy(&opts);
    ok = inserted || !unavailable(error);
    for (size_t i = a; ok && i < b; i++) {
      if (job->item_done[i] || job->insert_tried[i] || !item(job, i)->upsert) continue;
      job->insert_tried[i] = true;
      job->item_done[i] = inserted;
    }
  }
  free(ptrs);
  return ok;
}

/* Items [a, b) once: inserts, then one update command, then (after a
 * refusal) one by one, down to the source writes of a refused document. */
static step_t chunk_once(job_t *job, mongoc_collection_t *coll, size_t a, size_t b, bson_error_t *error) {
  if (!job->fold) { /* in log order */
    if (bulk_update(job, coll, a, b, true, error)) return STEP_OK;
    if (unavailable(error)) return STEP_UNAVAILABLE;
    return write_each(job, coll, job->in_order, a, b - a, error);
  }
  if (!insert_new(job, coll, a, b, error)) return STEP_UNAVAILABLE;
  /* each document once: no order between them, so unordered */
  if (bulk_update(job, coll, a, b, false, error)) return STEP_OK;
  if (unavailable(error)) return STEP_UNAVAILABLE;
  for (size_t i = a; i < b; i++) {
    if (job->item_done[i]) continue;
    if (!update_one(coll, item(job, i), error)) {
      if (unavailable(error)) return STEP_UNAVAILABLE;
      const cqrs_folded_t *f = &job->fold->writes[i];
      step_t s = write_each(job, coll, job->fold->order, f->first, f->count, error);
      if (s != STEP_OK) return s;
    }
    job->item_done[i] = true;
  }
  return STEP_OK;
}

/* Items [a, b), retried with backoff while the store is unreachable. */
static cqrs_write_outcome_t write_chunk(job_t *job, mongoc_collection_t *coll, size_t a, size_t b) {
  const cqrs_store_writer_t *sw = job->sw;
  bson_error_t error;
  for (int backoff = 100;; backoff = backoff < 5000 ? backoff * 2 : 5000) {
    step_t s = chunk_once(job, coll, a, b, &error);
    if (s == STEP_OK) return CQRS_WRITE_DONE;
    if (s == STEP_HALT) return CQRS_WRITE_HALTED;
    if (sw->metrics) cqrs_metrics_add(sw->metrics, "store_write_retries_total", sw->labels, 1);
    char ms[16];
    snprintf(ms, sizeof ms, "%d", backoff);
    cqrs_log_warn(sw->log, "store unreachable; retrying the write", "projection", sw->name, "error", error.message,
                  "retryInMs", ms, NULL);
    if (!nap(job, backoff)) return CQRS_WRITE_STOPPING;
  }
}

static void *worker(void *arg) {
  job_t *job = arg;
  const cqrs_store_writer_t *sw = job->sw;
  mongoc_client_t *client = mongoc_client_pool_pop(sw->pool);
  while (atomic_load(&job->outcome) == CQRS_WRITE_DONE) {
    size_t c = atomic_fetch_add(&job->next_chunk, 1);
    if (c >= job->n_chunks) break;
    const chunk_t *ch = &job->chunks[c];
    const cqrs_store_target_t *t = &job->targets[ch->target];
    mongoc_collection_t *coll = mongoc_client_get_collection(client, t->db, t->collection);
    set_outcome(job, write_chunk(job, coll, ch->a, ch->b));
    mongoc_collection_destroy(coll);
  }
  mongoc_client_pool_push(sw->pool, client);
  return NULL;
}

/* Item i's target. */
static size_t item_target(const job_t *job, const size_t *target_of, size_t i) {
  return job->fold ? job->fold->writes[i].ns : target_of[job->in_order[i]];
}

/* Cuts the items (grouped by target) into chunks of at most bulk_max items
 * of one target each. */
static void make_chunks(job_t *job, const size_t *target_of, size_t bulk_max) {
  job->chunks = cqrs_xcalloc(job->n_items, sizeof *job->chunks);
  for (size_t a = 0, b; a < job->n_items; a = b) {
    size_t t = item_target(job, target_of, a);
    for (b = a + 1; b < job->n_items && b - a < bulk_max && item_target(job, target_of, b) == t; b++) {
    }
    job->chunks[job->n_chunks++] = (chunk_t){a, b, t};
  }
}

static int by_target_then_pos(const void *x, const void *y, void *ctx) {
  const size_t *target_of = ctx, a = *(const size_t *)x, b = *(const size_t *)y;
  if (target_of[a] != target_of[b]) return target_of[a] < target_of[b] ? -1 : 1;
  return (a > b) - (a < b);
}

cqrs_write_outcome_t cqrs_store_write(const cqrs_store_writer_t *sw, const cqrs_store_target_t *targets,
                                      const size_t *target_of, const cqrs_write_t *w, size_t n) {
  if (n == 0) return CQRS_WRITE_DONE;
  cqrs_fold_t fold;
  cqrs_error_t err = {0};
  bool folded = cqrs_fold(w, target_of, n, &fold, &err);
  if (!folded)
    cqrs_log_warn(sw->log, "batch written in log order, unfolded", "projection", sw->name, "reason", err.message,
                  NULL);
  job_t job = {.sw = sw, .targets = targets, .src = w, .n_src = n, .fold = folded ? &fold : NULL,
               .n_items = folded ? fold.n : n};
  if (!folded) { /* each target's writes in log order */
    job.in_order = cqrs_xcalloc(n, sizeof *job.in_order);
    for (size_t i = 0; i < n; i++) job.in_order[i] = i;
    qsort_r(job.in_order, n, sizeof *job.in_order, by_target_then_pos, (void *)target_of);
  }
  job.item_done = cqrs_xcalloc(job.n_items, sizeof(bool));
  job.insert_tried = cqrs_xcalloc(job.n_items, sizeof(bool));
  job.src_done = cqrs_xcalloc(n, sizeof(bool));
  make_chunks(&job, target_of, (size_t)sw->bulk_max);
  atomic_init(&job.next_chunk, 0);
  atomic_init(&job.outcome, CQRS_WRITE_DONE);
  size_t workers = folded ? (size_t)sw->concurrency : 1;
  if (workers > job.n_chunks) workers = job.n_chunks;
  pthread_t threads[workers > 1 ? workers - 1 : 1];
  size_t started = 0;
  for (size_t t = 1; t < workers; t++)
    if (pthread_create(&threads[started], NULL, worker, &job) == 0) started++;
  worker(&job); /* this thread is worker 0 */
  for (size_t t = 0; t < started; t++) pthread_join(threads[t], NULL);
  cqrs_write_outcome_t outcome = (cqrs_write_outcome_t)atomic_load(&job.outcome);
  if (outcome == CQRS_WRITE_DONE && sw->metrics)
    cqrs_metrics_add(sw->metrics, "store_documents_written_total", sw->labels, (double)job.n_items);
  free(job.item_done);
  free(job.insert_tried);
  free(job.src_done);
  free(job.chunks);
  free(job.in_order);
  if (folded) cqrs_fold_cleanup(&fold);
  return outcome;
}
