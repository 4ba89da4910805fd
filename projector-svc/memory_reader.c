/* A reader over memory (projection.h, cqrs_projection_memory_reader): what a
 * reading projection sees of a log without a store, for tests, benchmarks
 * and the accounting. */
#include "projection.h"

#include "cqrs/alloc.h"

#include <stdlib.h>
#include <string.h>

static bool find(const cqrs_projection_reader_t *r, const char *id, bson_t *doc, bool *found, cqrs_error_t *err) {
  (void)err;
  const cqrs_memory_reader_t *m = r->ctx;
  *found = false;
  for (size_t i = *m->n_writes; i-- > 0;) {
    if ((*found = cqrs_write_document(&m->writes[i], id, doc))) return true;
    bson_destroy(doc);
  }
  bson_init(doc);
  return true;
}

static int by_version(const void *a, const void *b) {
  int64_t x = (*(const cqrs_event_t *const *)a)->version, y = (*(const cqrs_event_t *const *)b)->version;
  return (x > y) - (x < y);
}

static bool history(const cqrs_projection_reader_t *r, const char *aggregate_type, const char *aggregate_id,
                    int64_t from, int64_t to, cqrs_events_t *out, cqrs_error_t *err) {
  (void)err;
  const cqrs_memory_reader_t *m = r->ctx;
  const cqrs_event_t **mine = cqrs_xcalloc(m->n ? m->n : 1, sizeof *mine);
  size_t k = 0;
  for (size_t i = 0; i < m->n; i++) {
    const cqrs_event_t *e = &m->events[i];
    if (e->version >= from && e->version <= to && strcmp(e->aggregate_id, aggregate_id) == 0 &&
        strcmp(e->aggregate_type, aggregate_type) == 0)
      mine[k++] = e;
  }
  /* stable for equal versions (qsort is not): the first met stays first */
  for (size_t i = 1; i < k; i++)
    for (size_t j = i; j > 0 && by_version(&mine[j - 1], &mine[j]) > 0; j--) {
      const cqrs_event_t *t = mine[j];
      mine[j] = mine[j - 1];
      mine[j - 1] = t;
    }
  *out = (cqrs_events_t){.v = cqrs_xcalloc(k ? k : 1, sizeof *out->v)};
  int64_t next = from;
  for (size_t i = 0; i < k && mine[i]->version <= next; i++)
    if (mine[i]->version == next) {
      out->v[out->n++] = *mine[i];
      next++;
    }
  free(mine);
  return true;
}

void cqrs_projection_memory_reader(cqrs_projection_reader_t *r, cqrs_memory_reader_t *m, int snapshot_every) {
  *r = (cqrs_projection_reader_t){.find = find, .history = history, .snapshot_every = snapshot_every, .ctx = m};
}
