/* Every projection's apply (projector-svc/projections/, pure) on events as
 * they come off the log, then the batch fold (fold.h) of their writes.
 *
 * Input: one event per line, "<ce_type> <data JSON>" (at most 16), the
 * events of one aggregate "a-1" at versions 1, 2, ... of the tenant default.
 * Data that is not a JSON object is skipped, as cqrs_event_from_record
 * refuses it. Properties: apply either refuses (poison) or builds a write on
 * the event's document (its aggregate's; the event's own in the event
 * history) whose update uses only $set and $setOnInsert, and a $set only
 * behind the version guard; a refused event is one of a type the contract
 * does not know (poison by design), or one the contract's decode of its upcast
 * refuses too (projections add no refusals of their own). The snapshots
 * projection reads the same events through a memory reader, every third
 * version. */
#include "fuzz.h"

#include "fold.h"
#include "projection.h"

#include "cqrs/events.h"
#include "cqrs/json.h"
#include "cqrs/upcast.h"

#define MAX_EVENTS 16

static void check_write(const cqrs_projection_t *p, const cqrs_event_t *ev, const cqrs_write_t *w) {
  bson_iter_t it;
  FUZZ_CHECK(bson_iter_init_find(&it, &w->filter, "_id") && BSON_ITER_HOLDS_UTF8(&it), "%s: no _id in filter",
             p->name);
  /* a read model of aggregates keeps one document per aggregate; the event
   * history one per event; snapshots one per aggregate and version */
  const cqrs_projection_t *model = cqrs_snapshot_model(ev->aggregate_type);
  char *snapshot = model ? cqrs_snapshot_id(model->name, ev->aggregate_id, ev->version) : NULL;
  const char *want = p == &cqrs_event_history_projection ? ev->id
                     : p == &cqrs_snapshots_projection   ? (snapshot ? snapshot : "")
                                                         : ev->aggregate_id;
  FUZZ_CHECK(strcmp(bson_iter_utf8(&it, NULL), want) == 0, "%s: filter on another _id", p->name);
  bson_free(snapshot);
  bool sets = false;
  bson_iter_init(&it, &w->update);
  while (bson_iter_next(&it)) {
    const char *op = bson_iter_key(&it);
    FUZZ_CHECK(strcmp(op, "$set") == 0 || strcmp(op, "$setOnInsert") == 0, "%s: update operator %s", p->name,
               op);
    sets |= strcmp(op, "$set") == 0;
  }
  /* a creation ($setOnInsert only) changes nothing on an existing document;
   * anything that $sets must match only a document older than the event */
  FUZZ_CHECK(!sets || bson_iter_init_find(&it, &w->filter, "version"), "%s: %s $set without the version guard",
             p->name, ev->type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *end = text + size, *rest = text, *line;
  cqrs_event_t evs[MAX_EVENTS];
  size_t n = 0, len;
  while (n < MAX_EVENTS && (line = fuzz_next(&rest, end, '\n', &len))) {
    char *sp = memchr(line, ' ', len);
    if (!sp) continue;
    *sp = '\0';
    bson_t *doc = cqrs_json_parse(sp + 1, (size_t)(line + len - sp - 1), NULL);
    if (!doc) continue;
    const cqrs_event_type_t *t = cqrs_event_type_find(line);
    evs[n] = (cqrs_event_t){.id = "e-1", .type = line, .source = "/command-svc",
                            .aggregate_type = t ? (char *)t->aggregate_type : "user", .aggregate_id = "a-1",
                            .time = "2026-01-01T00:00:00.000Z", .tenant = "default", .version = (int64_t)n + 1,
                            .data = doc};
    n++;
  }
  for (const cqrs_projection_t *const *p = cqrs_projections; *p; p++) {
    cqrs_write_t writes[MAX_EVENTS];
    size_t nw = 0;
    /* a reading projection (snapshots, every SNAPSHOT_EVERY versions: here 3)
     * reads these events and its own writes so far */
    cqrs_memory_reader_t mem = {evs, n, writes, &nw};
    cqrs_projection_reader_t reader;
    cqrs_projection_memory_reader(&reader, &mem, 3);
    for (size_t i = 0; i < n; i++) {
      cqrs_error_t err = {0};
      bool skip = false;
      if (!cqrs_projection_apply(*p, &reader, &evs[i], &writes[nw], &skip, &err)) {
        cqrs_upcast_t up;
        cqrs_event_data_t e;
        bool known = cqrs_upcast(evs[i].type, cqrs_event_schema_version(&evs[i]), evs[i].data, &up, NULL);
        FUZZ_CHECK(!known || !up.type->decode(up.data, &e, NULL), "%s refuses what the contract decodes: %s",
                   (*p)->name, err.message);
        cqrs_upcast_cleanup(&up);
        cqrs_write_cleanup(&writes[nw]);
      } else if (skip) {
        cqrs_write_cleanup(&writes[nw]);
      } else {
        check_write(*p, &evs[i], &writes[nw]);
        nw++;
      }
    }
    cqrs_fold_t fold = {0};
    if (cqrs_fold(writes, NULL, nw, &fold, NULL)) {
      /* snapshots: one document per version */
      size_t docs = *p == &cqrs_snapshots_projection ? nw : nw ? 1u : 0u;
      FUZZ_CHECK(fold.n == docs, "%s: %zu documents' writes folded into %zu", (*p)->name, docs, fold.n);
      cqrs_fold_cleanup(&fold);
    }
    for (size_t i = 0; i < nw; i++) cqrs_write_cleanup(&writes[i]);
  }
  for (size_t i = 0; i < n; i++) bson_destroy(evs[i].data);
  free(text);
  return 0;
}
