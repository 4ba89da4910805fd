/* Time travel: a projection applied in memory (see time_travel.h). */
#include "time_travel.h"

#include "fold.h"

#include <stdlib.h>

bool cqrs_time_travel(const cqrs_projection_t *proj, const cqrs_event_t *events, size_t n, bson_t *doc,
                      bool *exists, cqrs_error_t *err) {
  bson_init(doc);
  *exists = false;
  cqrs_write_t *writes = calloc(n ? n : 1, sizeof *writes);
  size_t k = 0;
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++) {
    bool skip = false;
    ok = proj->apply(&events[i], &writes[k], &skip, err);
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
