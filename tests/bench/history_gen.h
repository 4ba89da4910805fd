/* Synthetic order histories for the history benchmarks: events made with the
 * event contract, turned into event_history documents by the projection
 * itself and inserted as the store writer inserts new documents. */
#ifndef CQRS_HISTORY_GEN_H
#define CQRS_HISTORY_GEN_H

#include "fold.h"
#include "projection.h"

#include "cqrs/util.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Event v (1-based) of order id: v 1 creates it, the others move its status;
 * its time is base_ms + (v - 1) * step_ms. Fills ev, borrowing ids, time and
 * data (initialised here; bson_destroy it). */
static inline void gen_order_event(const char *id, int64_t v, int64_t base_ms, int64_t step_ms,
                                   char ids[3][CQRS_UUID_LEN], char time[32], bson_t *data, cqrs_event_t *ev) {
  static const char *const statuses[] = {"Processing", "Shipped", "Delivered", "Processing"};
  for (int i = 0; i < 3; i++) cqrs_uuid_random(ids[i]);
  int64_t ms = base_ms + (v - 1) * step_ms;
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(time, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(time + n, 32 - n, ".%03dZ", (int)(ms % 1000));
  bson_init(data);
  cqrs_event_data_t e;
  memset(&e, 0, sizeof e);
  const cqrs_event_type_t *type;
  bson_t items = BSON_INITIALIZER;
  if (v == 1) {
    type = &cqrs_order_created_event;
    cqrs_order_item_t a = {"Widget", 2, 10.5}, b = {"Gadget", 1, 99.0};
    cqrs_order_item_append(&items, 0, &a);
    cqrs_order_item_append(&items, 1, &b);
    e.order_created = (cqrs_order_created_t){.order_id = id, .user_id = ids[2], .items = items,
                                              .total_amount = 120.0, .currency = "USD", .created_at = time};
  } else {
    type = &cqrs_order_status_updated_event;
    e.order_status_updated = (cqrs_order_status_updated_t){.order_id = id, .status = statuses[v % 4],
                                                           .previous_status = statuses[(v - 1) % 4],
                                                           .updated_at = time};
  }
  type->encode(&e, data);
  bson_destroy(&items);
  *ev = (cqrs_event_t){.id = ids[0], .type = (char *)type->name, .source = "/command-svc",
                       .aggregate_type = (char *)type->aggregate_type, .aggregate_id = (char *)id, .time = time,
                       .correlation_id = ids[1], .causation_id = ids[2], .tenant = "default", .version = v,
                       .schema_version = type->version, .data = data};
}

/* Applies proj to evs[0..k) and inserts the folded documents into coll. */
static inline bool gen_insert(mongoc_collection_t *coll, const cqrs_projection_t *proj, const cqrs_event_t *evs,
                              size_t k) {
  cqrs_write_t *w = cqrs_writes_new(k);
  size_t m = 0;
  cqrs_error_t err = {0};
  for (size_t i = 0; i < k; i++) {
    bool skip;
    if (proj->apply(&evs[i], &w[m], &skip, &err) && !skip)
      m++;
    else
      cqrs_write_cleanup(&w[m]);
  }
  cqrs_fold_t f;
  bool ok = cqrs_fold(w, NULL, m, &f, &err);
  if (!ok) fprintf(stderr, "fold: %s\n", err.message);
  if (ok && f.n) {
    const bson_t **docs = calloc(f.n, sizeof *docs);
    for (size_t i = 0; i < f.n; i++) docs[i] = &f.writes[i].insert;
    bson_error_t e;
    if (!(ok = mongoc_collection_insert_many(coll, docs, f.n, NULL, NULL, &e))) fprintf(stderr, "insert: %s\n", e.message);
    free(docs);
  }
  if (ok) cqrs_fold_cleanup(&f);
  for (size_t i = 0; i < m; i++) cqrs_write_cleanup(&w[i]);
  free(w);
  return ok;
}

/* The snapshots projection over one aggregate's events evs[0..n) (version
 * order), every `every` versions, with a memory reader over them and its own
 * writes, as projector-svc writes them; the documents inserted into coll.
 * Returns how many, or -1 on failure. */
static inline long gen_snapshots(mongoc_collection_t *coll, const cqrs_event_t *evs, size_t n, int every) {
  cqrs_write_t *w = cqrs_writes_new(n);
  size_t m = 0;
  cqrs_memory_reader_t mem = {evs, n, w, &m};
  cqrs_projection_reader_t r;
  cqrs_projection_memory_reader(&r, &mem, every);
  cqrs_error_t err = {0};
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++) {
    bool skip;
    if (!(ok = cqrs_projection_apply(&cqrs_snapshots_projection, &r, &evs[i], &w[m], &skip, &err)))
      fprintf(stderr, "snapshot: %s\n", err.message);
    if (ok && !skip)
      m++;
    else
      cqrs_write_cleanup(&w[m]);
  }
  const bson_t **docs = calloc(m ? m : 1, sizeof *docs);
  bson_t *made = calloc(m ? m : 1, sizeof *made);
  for (size_t i = 0; i < m; i++) {
    bson_iter_t it;
    bson_iter_init_find(&it, &w[i].filter, "_id");
    cqrs_write_document(&w[i], bson_iter_utf8(&it, NULL), &made[i]);
    docs[i] = &made[i];
  }
  bson_error_t e;
  if (ok && m && !(ok = mongoc_collection_insert_many(coll, docs, m, NULL, NULL, &e)))
    fprintf(stderr, "insert snapshots: %s\n", e.message);
  for (size_t i = 0; i < m; i++) {
    bson_destroy(&made[i]);
    cqrs_write_cleanup(&w[i]);
  }
  free(made);
  free(docs);
  free(w);
  return ok ? (long)m : -1;
}

#endif
