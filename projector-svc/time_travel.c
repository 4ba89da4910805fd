/* Time travel: a projection applied in memory (see time_travel.h). */
#include "time_travel.h"

#include "fold.h"

#include <stdlib.h>
#include <string.h>

/* base as the write that creates it: {_id} upserted with $setOnInsert of its
 * other fields, in their order. False when base has no string _id. */
static bool base_write(const bson_t *base, cqrs_write_t *w) {
  bson_iter_t it;
  bson_init(&w->filter);
  bson_init(&w->update);
  w->upsert = true;
  if (!bson_iter_init_find(&it, base, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) return false;
  BSON_APPEND_UTF8(&w->filter, "_id", bson_iter_utf8(&it, NULL));
  bson_t set;
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
  bson_iter_init(&it, base);
  while (bson_iter_next(&it))
    if (strcmp(bson_iter_key(&it), "_id") != 0) bson_append_value(&set, bson_iter_key(&it), -1, bson_iter_value(&it));
  bson_append_document_end(&w->update, &set);
  return true;
}

bool cqrs_time_travel(const cqrs_projection_t *proj, const cqrs_event_t *events, size_t n, bson_t *doc,
                      bool *exists, cqrs_error_t *err) {
  return cqrs_time_travel_from(proj, NULL, events, n, doc, exists, err);
}

bool cqrs_time_travel_from(const cqrs_projection_t *proj, const bson_t *base, const cqrs_event_t *events, size_t n,
                           bson_t *doc, bool *exists, cqrs_error_t *err) {
  bson_init(doc);
  *exists = false;
  cqrs_write_t *writes = cqrs_writes_new(n + 1);
  size_t k = 0;
  bool ok = true;
  if (base) {
    if (!(ok = base_write(base, &writes[0])))
      cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "the document to start from has no string _id");
    k = 1;
  }
  for (size_t i = 0; ok && i < n; i++) {
    bool skip = false;
    ok = cqrs_projection_apply(proj, NULL, &events[i], &writes[k], &skip, err);
    if (ok && !skip)
      k++;
    else
      cqrs_write_cleanup(&writes[k]);
  }
  cqrs_fold_t fold = {0};
  if (ok && k > 0 && (ok = cqrs_fold(writes, NULL, k, &fold, err))) {
    if (fold.n != 1) {
      cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "the events touch %zu documents, not one", fold.n);
      ok = false;
    } else if (fold.writes[0].w.upsert) { /* created: the fold's document from nothing */
      bson_concat(doc, &fold.writes[0].insert);
      *exists = true;
    }
    cqrs_fold_cleanup(&fold);
  }
  for (size_t i = 0; i < k; i++) cqrs_write_cleanup(&writes[i]);
  free(writes);
  return ok;
}
