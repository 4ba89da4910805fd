/* snapshots: every SNAPSHOT_EVERY (K) versions of an aggregate, the document
 * of the read model time travel replays for its type, at that version
 * (projection.h has the document's fields). Time travel to version v then
 * reads the snapshot at floor(v / K) * K and folds fewer than K events after
 * it, instead of the whole history: O(K), not O(events) (BENCHMARKS.md,
 * "Event history").
 *
 * Computed by the read model's own projection, as time travel computes a
 * document (time_travel.h): the snapshot K versions before (or nothing, for
 * the first, or when that one is missing) plus the events since, which it
 * reads from the event history. So this projection follows event_history: at
 * an event whose versions the history has not recorded yet, the apply loop
 * stops and reads it again later (cqrs_projection_reader_t). A version the
 * log never had (a gap) means no snapshot for that aggregate (logged), and
 * time travel folds from the snapshot before, or from the beginning.
 *
 * Written once, like event_history: an upsert of $setOnInsert, so a
 * redelivered event meets its document and changes nothing; the documents are
 * a function of the log, so a rebuild writes the same ones. A change to a
 * read model's projection changes its documents at every version: rebuild
 * snapshots with it (`--rebuild snapshots`), else time travel from a snapshot
 * answers with the old code's document.
 *
 * Why K = 100 (CQRS_SNAPSHOT_EVERY_DEFAULT): a time travel costs one snapshot
 * read plus the events after it, and on FerretDB v1 those come a version
 * block (CQRS_HISTORY_BLOCK, 100 versions) per query, every document of the
 * block decoded whatever the range asked: below 100 the events cost the same
 * block read, above it each further block adds one (BENCHMARKS.md has the
 * numbers). Writing them costs one snapshot per K events: the K events read
 * back from the history, about what the history projection paid to write
 * them, whatever K. */
#include "../projection.h"
#include "../time_travel.h"

#include <inttypes.h>
#include <string.h>

char *cqrs_snapshot_id(const char *model, const char *aggregate_id, int64_t version) {
  return bson_strdup_printf("%s|%s|%" PRId64, model, aggregate_id, version);
}

static bool utf8_is(const bson_t *doc, const char *key, const char *want) {
  bson_iter_t it;
  return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), want) == 0;
}

bool cqrs_snapshot_parts(const bson_t *snapshot, const char *model, const char *aggregate_id, bson_t *doc,
                         int64_t *version, const char **time_max) {
  bson_iter_t it;
  if (!utf8_is(snapshot, CQRS_SNAPSHOT_MODEL, model) || !utf8_is(snapshot, CQRS_SNAPSHOT_AGGREGATE_ID, aggregate_id) ||
      !bson_iter_init_find(&it, snapshot, CQRS_SNAPSHOT_VERSION) || !BSON_ITER_HOLDS_NUMBER(&it))
    return false;
  *version = bson_iter_as_int64(&it);
  *time_max = bson_iter_init_find(&it, snapshot, CQRS_SNAPSHOT_TIME_MAX) && BSON_ITER_HOLDS_UTF8(&it)
                  ? bson_iter_utf8(&it, NULL)
                  : "";
  const uint8_t *data;
  uint32_t len;
  if (!bson_iter_init_find(&it, snapshot, CQRS_SNAPSHOT_DOCUMENT) || !BSON_ITER_HOLDS_DOCUMENT(&it)) return false;
  bson_iter_document(&it, &len, &data);
  return bson_init_static(doc, data, len);
}

bool cqrs_snapshot_build(const cqrs_projection_t *model, const bson_t *base, const cqrs_event_t *events, size_t n,
                         cqrs_write_t *out, cqrs_error_t *err) {
  bson_init(&out->filter);
  bson_init(&out->update);
  out->upsert = false;
  bson_t from;
  int64_t base_version = 0;
  const char *time_max = "";
  if (n == 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "a snapshot needs at least one event after the one before");
    return false;
  }
  if (base && (!cqrs_snapshot_parts(base, model->name, events[0].aggregate_id, &from, &base_version, &time_max) ||
               events[0].version != base_version + 1)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "the snapshot to start from is not %s's of %s at version %" PRId64,
                   model->name, events[0].aggregate_id, events[0].version - 1);
    return false;
  }
  bson_t doc;
  bool exists;
  if (!cqrs_time_travel_from(model, base ? &from : NULL, events, n, &doc, &exists, err)) {
    bson_destroy(&doc);
    return false;
  }
  const cqrs_event_t *last = &events[n - 1];
  if (!exists) {
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "%s has no document of %s at version %" PRId64, model->name,
                   last->aggregate_id, last->version);
    bson_destroy(&doc);
    return false;
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(events[i].time, time_max) > 0) time_max = events[i].time;
  char *id = cqrs_snapshot_id(model->name, last->aggregate_id, last->version);
  BSON_APPEND_UTF8(&out->filter, "_id", id);
  bson_t set;
  BSON_APPEND_DOCUMENT_BEGIN(&out->update, "$setOnInsert", &set);
  BSON_APPEND_UTF8(&set, CQRS_SNAPSHOT_MODEL, model->name);
  BSON_APPEND_UTF8(&set, CQRS_SNAPSHOT_AGGREGATE_TYPE, last->aggregate_type);
  BSON_APPEND_UTF8(&set, CQRS_SNAPSHOT_AGGREGATE_ID, last->aggregate_id);
  BSON_APPEND_INT64(&set, CQRS_SNAPSHOT_VERSION, last->version);
  BSON_APPEND_UTF8(&set, CQRS_SNAPSHOT_TIME, last->time);
  BSON_APPEND_UTF8(&set, CQRS_SNAPSHOT_TIME_MAX, time_max);
  BSON_APPEND_DOCUMENT(&set, CQRS_SNAPSHOT_DOCUMENT, &doc);
  bson_append_document_end(&out->update, &set);
  out->upsert = true;
  bson_free(id);
  bson_destroy(&doc);
  return true;
}

/* At an event whose version is a multiple of K: the snapshot K versions
 * before (read back), the events since (from the history), folded. */
static bool apply_reading(const cqrs_projection_reader_t *r, const cqrs_event_t *ev, cqrs_write_t *w, bool *skip,
                          cqrs_error_t *err) {
  *skip = true;
  w->upsert = false;
  bson_init(&w->filter);
  bson_init(&w->update);
  const cqrs_projection_t *model = cqrs_snapshot_model(ev->aggregate_type);
  int64_t k = r->snapshot_every, v = ev->version;
  if (!model || k <= 0 || v <= 0 || v % k != 0) return true;
  bson_t base, from_doc;
  bool found = false, ok = true;
  bson_init(&base);
  if (v > k) {
    char *base_id = cqrs_snapshot_id(model->name, ev->aggregate_id, v - k);
    bson_destroy(&base);
    ok = r->find(r, base_id, &base, &found, err);
    bson_free(base_id);
    int64_t bv;
    const char *tm;
    /* one that is not the snapshot before (never written so): start from nothing */
    if (found && !(cqrs_snapshot_parts(&base, model->name, ev->aggregate_id, &from_doc, &bv, &tm) && bv == v - k))
      found = false;
  }
  int64_t from = found ? v - k + 1 : 1;
  cqrs_events_t evs = {0};
  if (ok) ok = r->history(r, ev->aggregate_type, ev->aggregate_id, from, v, &evs, err);
  if (!ok && err && err->code != CQRS_ERR_UNAVAILABLE) { /* not a store that is away: no snapshot, said why */
    cqrs_error_t why = *err;
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no snapshot of %s %s at version %" PRId64 ": %s", model->name,
                   ev->aggregate_id, v, why.message);
    ok = true;
  } else if (!ok) {
    /* err: the reader's; the loop reads the event again later */
  } else if (evs.n != (size_t)(v - from + 1)) {
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL,
                   "no snapshot of %s %s at version %" PRId64 ": the event history has %zu of its versions %" PRId64
                   "..%" PRId64 " in a row (a log with a gap)",
                   model->name, ev->aggregate_id, v, evs.n, from, v);
  } else {
    cqrs_error_t why = {0};
    cqrs_write_cleanup(w);
    if (cqrs_snapshot_build(model, found ? &base : NULL, evs.v, evs.n, w, &why))
      *skip = false;
    else
      cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no snapshot of %s %s at version %" PRId64 ": %s", model->name,
                     ev->aggregate_id, v, why.message);
  }
  cqrs_events_release(&evs);
  bson_destroy(&base);
  return ok;
}

/* Each lookup is an equality on _id; this one serves an operator's query
 * (an aggregate's snapshots in version order) on MongoDB. */
static void indexes(bson_t *array) {
  cqrs_projection_index(array, 0, "aggregate_model_version", CQRS_SNAPSHOT_AGGREGATE_ID, CQRS_SNAPSHOT_MODEL,
                        CQRS_SNAPSHOT_VERSION, NULL);
}

const cqrs_projection_t cqrs_snapshots_projection = {
    .name = CQRS_SNAPSHOTS,
    .aggregate_type = NULL, /* every time-travel read model's aggregates */
    .apply_reading = apply_reading,
    .indexes = indexes,
};

bool cqrs_snapshot_search(cqrs_snapshot_probe_cb probe, void *ctx, int64_t *j, cqrs_error_t *err) {
  bool within;
  *j = 0;
  if (!probe(ctx, 1, &within, err)) return false;
  if (!within) return true;
  int64_t lo = 1, hi = 2; /* within at lo; hi: not known yet, then not within */
  for (;;) {
    if (!probe(ctx, hi, &within, err)) return false;
    if (!within) break;
    lo = hi;
    if (hi > INT64_MAX / 2) break;
    hi *= 2;
  }
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (!probe(ctx, mid, &within, err)) return false;
    if (within)
      lo = mid;
    else
      hi = mid;
  }
  *j = lo;
  return true;
}
