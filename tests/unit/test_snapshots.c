/* Snapshots (projector-svc/projections/snapshots.c) and time travel from them
 * (time_travel.h): the document folded from the nearest snapshot plus the
 * events after it is exactly the full fold's, at every version, across
 * snapshot boundaries; the projection through a memory reader (the
 * accounting's and the benchmarks' path); the search by time. */
#include "fold.h"
#include "projection.h"
#include "time_travel.h"
#include "unit.h"

#include <inttypes.h>

TestSuite(snapshots);

#define N_MAX 64

/* One aggregate's history: events built from JSON, times one second apart. */
typedef struct {
  cqrs_event_t ev[N_MAX];
  char times[N_MAX][32];
  char ids[N_MAX][24];
  size_t n;
} history_t;

static void time_of(int64_t v, char out[32]) {
  snprintf(out, 32, "2026-03-01T10:%02d:%02d.000Z", (int)(v / 60), (int)(v % 60));
}

/* Event v of an aggregate of type: a creation at 1, then each kind of update
 * in turn (an older schema version among them, and a field that appears
 * late), so documents gain, change and keep fields. */
static void event_json(const char *type, int64_t v, const char *t, const char **name, int *schema, char *json,
                       size_t cap) {
  *schema = 1;
  if (strcmp(type, "user") == 0) {
    static const char *const kinds[] = {"UserProfileUpdated", "UserOrderRecorded", "UserProfileUpdated"};
    *name = v == 1 ? "UserCreated" : kinds[v % 3];
    if (v == 1)
      snprintf(json, cap, "{\"email\":\"u@example.com\",\"name\":\"N1\",\"createdAt\":\"%s\"}", t);
    else if (v % 3 == 1)
      snprintf(json, cap, "{\"orderId\":\"o-%" PRId64 "\",\"recordedAt\":\"%s\"}", v, t);
    else
      snprintf(json, cap, "{\"changes\":{\"%s\":\"x%" PRId64 "\"},\"updatedAt\":\"%s\"}", v % 3 ? "email" : "name", v,
               t);
  } else if (strcmp(type, "order") == 0) {
    static const char *const statuses[] = {"Processing", "Shipped", "Cancelled", "Delivered"};
    *name = v == 1 ? "OrderCreated" : "OrderStatusUpdated";
    *schema = v == 1 ? 2 : 1;
    if (v == 1)
      snprintf(json, cap,
               "{\"userId\":\"u-1\",\"items\":[{\"product\":\"pen\",\"quantity\":3,\"price\":1.5}],"
               "\"totalAmount\":4.5,\"currency\":\"EUR\",\"createdAt\":\"%s\"}",
               t);
    else
      snprintf(json, cap, "{\"status\":\"%s\",\"updatedAt\":\"%s\",\"reason\":\"r%" PRId64 "\"}", statuses[v % 4], t,
               v);
  } else {
    static const char *const kinds[] = {"CustomerEmailUpdated", "CustomerOrderRecorded", "CustomerEmailUpdated",
                                        "CustomerSuspended"};
    *name = v == 1 ? "CustomerRegistered" : kinds[v % 4];
    if (v == 1) {
      snprintf(json, cap, "{\"email\":\"c@example.com\",\"name\":\"C\",\"registeredAt\":\"%s\"}", t);
    } else if (v % 4 == 0 || v % 4 == 2) { /* every other one at schema version 1: upcast */
      *schema = v % 4 == 0 ? 2 : 1;
      snprintf(json, cap, "{\"%s\":\"c%" PRId64 "@example.com\",\"updatedAt\":\"%s\"}", *schema == 2 ? "email" : "newEmail",
               v, t);
    } else if (v % 4 == 1) {
      snprintf(json, cap, "{\"orderId\":\"o-%" PRId64 "\",\"recordedAt\":\"%s\"}", v, t);
    } else {
      snprintf(json, cap, "{\"reason\":\"r%" PRId64 "\",\"suspendedAt\":\"%s\"}", v, t);
    }
  }
}

static void history_make(history_t *h, const char *type, const char *id, size_t n) {
  cr_assert_leq(n, N_MAX);
  h->n = n;
  for (size_t i = 0; i < n; i++) {
    int64_t v = (int64_t)i + 1;
    char json[512];
    const char *name;
    int schema;
    time_of(v, h->times[i]);
    snprintf(h->ids[i], sizeof h->ids[i], "e-%" PRId64, v);
    event_json(type, v, h->times[i], &name, &schema, json, sizeof json);
    h->ev[i] = (cqrs_event_t){.id = h->ids[i], .type = (char *)name, .aggregate_type = (char *)type,
                              .aggregate_id = (char *)id, .time = h->times[i], .tenant = "default", .version = v,
                              .schema_version = schema, .data = u_parse(json)};
  }
}

static void history_free(history_t *h) {
  for (size_t i = 0; i < h->n; i++) bson_destroy(h->ev[i].data);
}

/* The snapshots projection over h's events in order, with a memory reader
 * over them and its own writes: what projector-svc writes, into w[0..*n). */
static void snapshot_all(const history_t *h, int every, cqrs_write_t *w, size_t *n) {
  *n = 0;
  cqrs_memory_reader_t mem = {h->ev, h->n, w, n};
  cqrs_projection_reader_t r;
  cqrs_projection_memory_reader(&r, &mem, every);
  for (size_t i = 0; i < h->n; i++) {
    bool skip;
    cqrs_error_t err = {0};
    cr_assert(cqrs_projection_apply(&cqrs_snapshots_projection, &r, &h->ev[i], &w[*n], &skip, &err), "%s",
              err.message);
    cr_assert_eq(skip, (h->ev[i].version % every) != 0, "version %" PRId64 ": %s", h->ev[i].version, err.message);
    if (skip)
      cqrs_write_cleanup(&w[*n]);
    else
      (*n)++;
  }
}

static void writes_free(cqrs_write_t *w, size_t n) {
  for (size_t i = 0; i < n; i++) cqrs_write_cleanup(&w[i]);
}

/* Model's document of h at version v, from the snapshot at floor(v / every) *
 * every among w (its document) and the events after it: equal, byte for
 * byte, to the full fold's. */
static void assert_same_at(const cqrs_projection_t *model, const history_t *h, const cqrs_write_t *w, size_t nw,
                           int every, int64_t v) {
  int64_t s = v / every * every;
  bson_t snap, from, full, doc;
  bool found = false, exists_full, exists;
  const char *time_max;
  int64_t sv = 0;
  if (s > 0) {
    char *id = cqrs_snapshot_id(model->name, h->ev[0].aggregate_id, s);
    for (size_t i = 0; i < nw && !found; i++)
      if (!(found = cqrs_write_document(&w[i], id, &snap))) bson_destroy(&snap);
    bson_free(id);
    cr_assert(found, "no snapshot at %" PRId64, s);
    cr_assert(cqrs_snapshot_parts(&snap, model->name, h->ev[0].aggregate_id, &from, &sv, &time_max));
    cr_assert_eq(sv, s);
    cr_assert_str_eq(time_max, h->times[s - 1], "the latest time of its events");
  }
  cqrs_error_t err = {0};
  cr_assert(cqrs_time_travel(model, h->ev, (size_t)v, &full, &exists_full, &err), "%s", err.message);
  cr_assert(cqrs_time_travel_from(model, found ? &from : NULL, h->ev + s, (size_t)(v - s), &doc, &exists, &err), "%s",
            err.message);
  cr_assert(exists && exists_full);
  char *a = bson_as_relaxed_extended_json(&full, NULL), *b = bson_as_relaxed_extended_json(&doc, NULL);
  cr_assert(bson_equal(&full, &doc), "%s at version %" PRId64 " (every %d):\nfull fold %s\nfrom snapshot %s",
            model->name, v, every, a, b);
  cr_assert_eq(u_i64(&doc, "version"), v);
  bson_free(a);
  bson_free(b);
  bson_destroy(&full);
  bson_destroy(&doc);
  if (found) bson_destroy(&snap);
}

Test(snapshots, from_the_nearest_snapshot_every_version_is_the_full_folds) {
  static const char *const types[] = {"user", "order", "customer"};
  static const int every[] = {1, 2, 3, 7, 10, 50};
  for (size_t t = 0; t < 3; t++) {
    history_t h;
    history_make(&h, types[t], "a-1", 41);
    const cqrs_projection_t *model = cqrs_snapshot_model(types[t]);
    cr_assert_not_null(model);
    for (size_t e = 0; e < sizeof every / sizeof every[0]; e++) {
      cqrs_write_t w[N_MAX];
      size_t nw;
      snapshot_all(&h, every[e], w, &nw);
      cr_assert_eq(nw, h.n / (size_t)every[e], "%s: one snapshot every %d versions", types[t], every[e]);
      for (int64_t v = 1; v <= (int64_t)h.n; v++) assert_same_at(model, &h, w, nw, every[e], v);
      writes_free(w, nw);
    }
    history_free(&h);
  }
}

Test(snapshots, the_models_are_those_time_travel_serves) {
  cr_assert_eq(cqrs_snapshot_model("user"), &cqrs_user_profiles_projection);
  cr_assert_eq(cqrs_snapshot_model("order"), &cqrs_order_summaries_projection);
  cr_assert_eq(cqrs_snapshot_model("customer"), &cqrs_customers_projection);
  cr_assert_null(cqrs_snapshot_model("widget"));
  cr_assert_null(cqrs_snapshot_model(NULL));
  cr_assert_eq(cqrs_projection_find("snapshots"), &cqrs_snapshots_projection, "registered");
  cr_assert_null(cqrs_snapshots_projection.apply, "it reads: apply_reading only");
}

Test(snapshots, one_registered_time_travel_model_per_aggregate_type) {
  size_t marked = 0;
  for (size_t i = 0; cqrs_projections[i]; i++) {
    const cqrs_projection_t *p = cqrs_projections[i];
    if (!p->time_travel) continue;
    marked++;
    cr_assert_not_null(p->aggregate_type, "%s: time travel is per aggregate type", p->name);
    cr_assert_not_null(p->apply, "%s: time travel folds in memory, without a reader", p->name);
    cr_assert_eq(cqrs_snapshot_model(p->aggregate_type), p, "%s: another model of %s is found first", p->name,
                 p->aggregate_type);
    for (size_t j = i + 1; cqrs_projections[j]; j++)
      cr_assert(!cqrs_projections[j]->time_travel || strcmp(cqrs_projections[j]->aggregate_type, p->aggregate_type),
                "%s and %s are both %s's time-travel model", p->name, cqrs_projections[j]->name, p->aggregate_type);
  }
  cr_assert_eq(marked, 3, "user, order, customer");
  cr_assert_not(cqrs_event_history_projection.time_travel, "a log of every aggregate, not a model");
  cr_assert_not(cqrs_snapshots_projection.time_travel);
}

Test(snapshots, a_snapshot_document_says_whose_and_when) {
  history_t h;
  history_make(&h, "order", "o-7", 6);
  cqrs_write_t w[N_MAX];
  size_t nw;
  snapshot_all(&h, 3, w, &nw);
  cr_assert_eq(nw, 2);
  cr_assert_str_eq(u_str(&w[1].filter, "_id"), "order_summaries|o-7|6");
  cr_assert(w[1].upsert);
  cr_assert_eq(u_count(&w[1].update), 1, "$setOnInsert only: written once");
  cr_assert_str_eq(u_str(&w[1].update, "$setOnInsert.model"), "order_summaries");
  cr_assert_str_eq(u_str(&w[1].update, "$setOnInsert.aggregateType"), "order");
  cr_assert_str_eq(u_str(&w[1].update, "$setOnInsert.aggregateId"), "o-7");
  cr_assert_eq(u_i64(&w[1].update, "$setOnInsert.version"), 6);
  cr_assert_str_eq(u_str(&w[1].update, "$setOnInsert.time"), h.times[5]);
  cr_assert_str_eq(u_str(&w[1].update, "$setOnInsert.document._id"), "o-7");
  cr_assert_eq(u_i64(&w[1].update, "$setOnInsert.document.version"), 6);
  writes_free(w, nw);
  history_free(&h);
}

/* One apply at event index i, reading h's events and writes w[0..nw). */
static bool apply_at(const history_t *h, size_t i, int every, const cqrs_write_t *w, size_t nw, cqrs_write_t *out,
                     bool *skip, cqrs_error_t *err) {
  cqrs_memory_reader_t mem = {h->ev, h->n, w, &nw};
  cqrs_projection_reader_t r;
  cqrs_projection_memory_reader(&r, &mem, every);
  return cqrs_projection_apply(&cqrs_snapshots_projection, &r, &h->ev[i], out, skip, err);
}

Test(snapshots, none_between_multiples_none_when_off_none_for_other_aggregates) {
  history_t h;
  history_make(&h, "user", "u-1", 8);
  cqrs_write_t w;
  bool skip;
  cr_assert(apply_at(&h, 4, 4, NULL, 0, &w, &skip, NULL));
  cr_assert(skip, "version 5 is no multiple of 4");
  cqrs_write_cleanup(&w);
  cr_assert(apply_at(&h, 3, 0, NULL, 0, &w, &skip, NULL));
  cr_assert(skip, "SNAPSHOT_EVERY=0: none");
  cqrs_write_cleanup(&w);
  h.ev[3].aggregate_type = "widget";
  cr_assert(apply_at(&h, 3, 4, NULL, 0, &w, &skip, NULL));
  cr_assert(skip, "no read model travels through widgets");
  cqrs_write_cleanup(&w);
  h.ev[3].aggregate_type = "user";
  /* no reader: a reading projection refuses to guess */
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_projection_apply(&cqrs_snapshots_projection, NULL, &h.ev[3], &w, &skip, &err));
  cr_assert_eq(err.code, CQRS_ERR_INTERNAL);
  cqrs_write_cleanup(&w);
  history_free(&h);
}

Test(snapshots, without_the_one_before_it_folds_from_the_beginning_to_the_same) {
  history_t h;
  history_make(&h, "customer", "c-1", 12);
  cqrs_write_t w[N_MAX], alone;
  size_t nw;
  snapshot_all(&h, 4, w, &nw);
  cr_assert_eq(nw, 3);
  bool skip;
  cqrs_error_t err = {0};
  cr_assert(apply_at(&h, 11, 4, NULL, 0, &alone, &skip, &err), "%s", err.message);
  cr_assert_not(skip, "%s", err.message);
  cr_assert(bson_equal(&alone.update, &w[2].update), "the snapshot at 12 from nothing is the one from 8");
  cqrs_write_cleanup(&alone);
  writes_free(w, nw);
  history_free(&h);
}

Test(snapshots, a_version_missing_from_the_history_means_none_and_says_why) {
  history_t h;
  history_make(&h, "order", "o-1", 8);
  h.ev[5].version = 99; /* version 6 never recorded */
  cqrs_write_t w;
  bool skip;
  cqrs_error_t err = {0};
  cr_assert(apply_at(&h, 7, 8, NULL, 0, &w, &skip, &err), "not the event's fault: no poison");
  cr_assert(skip);
  cr_assert_eq(err.code, CQRS_ERR_NOT_FOUND);
  cr_assert(strstr(err.message, "gap"), "%s", err.message);
  cqrs_write_cleanup(&w);
  history_free(&h);
}

Test(snapshots, a_poison_event_among_them_means_none_and_says_why) {
  history_t h;
  history_make(&h, "order", "o-1", 4);
  bson_destroy(h.ev[2].data);
  h.ev[2].data = u_parse("{\"status\":7}");
  cqrs_write_t w;
  bool skip;
  cqrs_error_t err = {0};
  cr_assert(apply_at(&h, 3, 4, NULL, 0, &w, &skip, &err));
  cr_assert(skip);
  cr_assert_eq(err.code, CQRS_ERR_NOT_FOUND);
  cr_assert(strstr(err.message, "status"), "names what is wrong: %s", err.message);
  cqrs_write_cleanup(&w);
  history_free(&h);
}

Test(snapshots, a_redelivered_event_writes_the_same_snapshot_which_folds_to_one) {
  history_t h;
  history_make(&h, "user", "u-1", 3);
  cqrs_write_t w[2];
  bool skip;
  cr_assert(apply_at(&h, 2, 3, NULL, 0, &w[0], &skip, NULL) && !skip);
  cr_assert(apply_at(&h, 2, 3, w, 1, &w[1], &skip, NULL) && !skip);
  cqrs_fold_t f;
  cr_assert(cqrs_fold(w, NULL, 2, &f, NULL));
  cr_assert_eq(f.n, 1);
  cr_assert_str_eq(u_str(&f.writes[0].insert, "_id"), "user_profiles|u-1|3");
  cr_assert(bson_equal(&w[0].update, &w[1].update), "the same snapshot");
  cqrs_fold_cleanup(&f);
  writes_free(w, 2);
  history_free(&h);
}

Test(snapshots, a_base_that_is_not_the_one_before_is_refused) {
  history_t h;
  history_make(&h, "user", "u-1", 6);
  cqrs_write_t w[N_MAX], out;
  size_t nw;
  snapshot_all(&h, 3, w, &nw);
  bson_t snap;
  cr_assert(cqrs_write_document(&w[0], "user_profiles|u-1|3", &snap));
  cqrs_error_t err = {0};
  /* events 5..6 after the snapshot at 3: version 4 is missing */
  cr_assert_not(cqrs_snapshot_build(&cqrs_user_profiles_projection, &snap, h.ev + 4, 2, &out, &err));
  cqrs_write_cleanup(&out);
  cr_assert_not(cqrs_snapshot_build(&cqrs_order_summaries_projection, &snap, h.ev + 3, 3, &out, &err),
                "another read model's");
  cqrs_write_cleanup(&out);
  bson_destroy(&snap);
  bson_t no_id = BSON_INITIALIZER, doc;
  bool exists;
  cr_assert_not(cqrs_time_travel_from(&cqrs_user_profiles_projection, &no_id, h.ev, 1, &doc, &exists, &err));
  bson_destroy(&doc);
  writes_free(w, nw);
  history_free(&h);
}

Test(snapshots, the_memory_reader_hands_out_consecutive_versions_once) {
  history_t h;
  history_make(&h, "user", "u-1", 6);
  cqrs_event_t evs[8];
  memcpy(evs, h.ev, 6 * sizeof *evs);
  evs[6] = h.ev[1]; /* version 2 met again */
  evs[7] = h.ev[0];
  evs[7].aggregate_id = "u-2"; /* another aggregate */
  size_t none = 0;
  cqrs_memory_reader_t mem = {evs, 8, NULL, &none};
  cqrs_projection_reader_t r;
  cqrs_projection_memory_reader(&r, &mem, 3);
  cqrs_events_t out;
  cr_assert(r.history(&r, "user", "u-1", 2, 5, &out, NULL));
  cr_assert_eq(out.n, 4);
  for (size_t i = 0; i < out.n; i++) cr_assert_eq(out.v[i].version, (int64_t)i + 2);
  cqrs_events_release(&out);
  evs[3].version = 40; /* a gap at 4 */
  cr_assert(r.history(&r, "user", "u-1", 1, 6, &out, NULL));
  cr_assert_eq(out.n, 3, "up to the gap");
  cqrs_events_release(&out);
  history_free(&h);
}

/* ---- the search by time ---- */

typedef struct {
  const bool *within; /* per j, from 1 */
  int64_t n;          /* beyond: not within */
  int probes;
} probes_t;

static bool probe(void *ctx, int64_t j, bool *within, cqrs_error_t *err) {
  (void)err;
  probes_t *p = ctx;
  p->probes++;
  cr_assert_geq(j, 1);
  *within = j <= p->n && p->within[j - 1];
  return true;
}

Test(snapshots, the_search_finds_the_last_within_in_logarithmic_probes) {
  bool within[300];
  for (int64_t last = 0; last <= 300; last++) {
    for (int64_t j = 0; j < 300; j++) within[j] = j < last;
    probes_t p = {within, 300, 0};
    int64_t j;
    cr_assert(cqrs_snapshot_search(probe, &p, &j, NULL));
    cr_assert_eq(j, last);
    int log2 = 0;
    while ((1 << log2) <= last) log2++;
    cr_assert_leq(p.probes, 2 * log2 + 2, "%d probes for %" PRId64, p.probes, last);
  }
}

Test(snapshots, with_gaps_the_search_still_answers_one_within) {
  bool within[64];
  for (int g = 1; g < 40; g++) {
    for (int j = 0; j < 64; j++) within[j] = j < 40 && j != g; /* snapshot g + 1 missing */
    probes_t p = {within, 64, 0};
    int64_t j;
    cr_assert(cqrs_snapshot_search(probe, &p, &j, NULL));
    cr_assert(j >= 1 && within[j - 1], "gap at %d: answered %" PRId64, g + 1, j);
  }
}

static bool failing_probe(void *ctx, int64_t j, bool *within, cqrs_error_t *err) {
  (void)ctx, (void)j, (void)within;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "no store");
  return false;
}

Test(snapshots, a_probe_that_cannot_look_fails_the_search) {
  int64_t j = 7;
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_snapshot_search(failing_probe, NULL, &j, &err));
  cr_assert_eq(err.code, CQRS_ERR_UNAVAILABLE);
}

/* ---- a reader that cannot read ---- */

static bool find_nothing(const cqrs_projection_reader_t *r, const char *id, bson_t *doc, bool *found,
                         cqrs_error_t *err) {
  (void)r, (void)id, (void)err;
  bson_init(doc);
  *found = false;
  return true;
}

static bool history_fails(const cqrs_projection_reader_t *r, const char *type, const char *id, int64_t from,
                          int64_t to, cqrs_events_t *out, cqrs_error_t *err) {
  (void)type, (void)id, (void)from, (void)to;
  *out = (cqrs_events_t){0};
  cqrs_error_set(err, *(const cqrs_error_code_t *)r->ctx, NULL, "history: no");
  return false;
}

Test(snapshots, a_store_away_is_read_again_later_and_a_bad_history_means_none) {
  history_t h;
  history_make(&h, "user", "u-1", 4);
  cqrs_error_code_t code = CQRS_ERR_UNAVAILABLE;
  cqrs_projection_reader_t r = {.find = find_nothing, .history = history_fails, .snapshot_every = 4, .ctx = &code};
  cqrs_write_t w;
  bool skip;
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_projection_apply(&cqrs_snapshots_projection, &r, &h.ev[3], &w, &skip, &err));
  cr_assert_eq(err.code, CQRS_ERR_UNAVAILABLE, "the loop applies it again later: not poison");
  cqrs_write_cleanup(&w);
  code = CQRS_ERR_INTERNAL; /* an unreadable history document */
  cqrs_error_clear(&err);
  cr_assert(cqrs_projection_apply(&cqrs_snapshots_projection, &r, &h.ev[3], &w, &skip, &err));
  cr_assert(skip);
  cr_assert_eq(err.code, CQRS_ERR_NOT_FOUND);
  cr_assert(strstr(err.message, "history: no"), "%s", err.message);
  cqrs_write_cleanup(&w);
  history_free(&h);
}
