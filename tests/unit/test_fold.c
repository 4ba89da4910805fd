/* Folding a batch's writes per document (projector-svc/fold.h): real
 * projection writes in, one write per document out, and the folded write
 * leaves a document where the writes one by one would have, from every
 * state a redelivery can meet. */
#include "fold.h"
#include "unit.h"

#include <stdarg.h>

#define CREATED(id, at)                                                                                        \
  "{\"orderId\":\"" id "\",\"userId\":\"u-7\",\"items\":[{\"product\":\"pen\",\"quantity\":3,\"price\":1.5}]," \
  "\"totalAmount\":4.5,\"createdAt\":\"" at "\"}"
#define STATUS(s, at) "{\"status\":\"" s "\",\"updatedAt\":\"" at "\"}"

static cqrs_write_t writes[16];
static size_t n_writes;
static cqrs_fold_t fold;

static void teardown(void) {
  for (size_t i = 0; i < n_writes; i++) cqrs_write_cleanup(&writes[i]);
  n_writes = 0;
  cqrs_fold_cleanup(&fold);
}

TestSuite(fold, .fini = teardown);

/* Appends the order_summaries write of one event. */
static void add(const char *id, const char *type, int64_t version, const char *data) {
  cqrs_event_t ev = {.id = "e", .type = (char *)type, .source = "/t", .aggregate_type = "order",
                     .aggregate_id = (char *)id, .time = "2026-03-01T10:00:00.000Z", .version = version};
  ev.data = u_parse(data);
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(cqrs_order_summaries_projection.apply(&ev, &writes[n_writes], &skip, &err), "%s", err.message);
  cr_assert_not(skip);
  n_writes++;
  bson_destroy(ev.data);
}

static const cqrs_folded_t *folded(const char *id) {
  for (size_t i = 0; i < fold.n; i++)
    if (strcmp(fold.writes[i].id, id) == 0) return &fold.writes[i];
  cr_assert_fail("no folded write for %s", id);
  return NULL;
}

/* ---- a tiny evaluator of the writes projections make: filter {_id, version:
 * {$lt: v}?}, $set, $setOnInsert, upsert. *doc is NULL when absent. ---- */

static bool matches(const bson_t *doc, const bson_t *filter) {
  if (!doc) return false;
  bson_iter_t it;
  if (bson_iter_init_find(&it, filter, "version")) {
    bson_iter_t lt;
    cr_assert(bson_iter_recurse(&it, &lt) && bson_iter_find(&lt, "$lt"));
    return u_i64(doc, "version") < bson_iter_as_int64(&lt);
  }
  return true;
}

/* doc with the fields of op in update set over it, as a store does: a field
 * set again keeps its place, a new one goes last (a new document). */
static bson_t *set_fields(const bson_t *doc, const bson_t *update, const char *op) {
  bson_iter_t it, f, d;
  bson_t *out = bson_new();
  bson_t *fields = bson_new();
  if (bson_iter_init_find(&it, update, op) && bson_iter_recurse(&it, &f))
    while (bson_iter_next(&f)) bson_append_value(fields, bson_iter_key(&f), -1, bson_iter_value(&f));
  if (doc && bson_iter_init(&d, doc))
    while (bson_iter_next(&d)) {
      bson_iter_t nv;
      bool replaced = bson_iter_init_find(&nv, fields, bson_iter_key(&d));
      bson_append_value(out, bson_iter_key(&d), -1, bson_iter_value(replaced ? &nv : &d));
    }
  if (bson_iter_init(&f, fields))
    while (bson_iter_next(&f))
      if (!bson_has_field(out, bson_iter_key(&f))) bson_append_value(out, bson_iter_key(&f), -1, bson_iter_value(&f));
  bson_destroy(fields);
  return out;
}

static void apply_write(bson_t **doc, const cqrs_write_t *w) {
  if (matches(*doc, &w->filter)) {
    bson_t *next = set_fields(*doc, &w->update, "$set");
    bson_destroy(*doc);
    *doc = next;
  } else if (!*doc && w->upsert) {
    bson_t *a = set_fields(NULL, &w->update, "$setOnInsert");
    *doc = set_fields(a, &w->update, "$set");
    bson_destroy(a);
  } /* else: no match (an older event, or a duplicate key on insert): unchanged */
}

/* Same fields in the same order with the same values (a rebuild must give
 * the documents the live projector gave, byte for byte in JSON). */
static void assert_same(const bson_t *a, const bson_t *b) {
  if (bson_count_keys(a) != bson_count_keys(b)) /* the JSON only on failure: it would leak otherwise */
    cr_assert_fail("%s vs %s", bson_as_relaxed_extended_json(a, NULL), bson_as_relaxed_extended_json(b, NULL));
  bson_iter_t it, jt;
  cr_assert(bson_iter_init(&it, a) && bson_iter_init(&jt, b));
  while (bson_iter_next(&it)) {
    cr_assert(bson_iter_next(&jt));
    cr_assert_str_eq(bson_iter_key(&it), bson_iter_key(&jt), "field order differs");
    const bson_value_t *x = bson_iter_value(&it), *y = bson_iter_value(&jt);
    cr_assert_eq(x->value_type, y->value_type, "%s", bson_iter_key(&it));
    if (x->value_type == BSON_TYPE_UTF8) cr_assert_str_eq(x->value.v_utf8.str, y->value.v_utf8.str);
    if (x->value_type == BSON_TYPE_INT64) cr_assert_eq(x->value.v_int64, y->value.v_int64, "%s", bson_iter_key(&it));
  }
}

Test(fold, one_write_per_document_with_the_final_state) {
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T10:00:00.000Z"));
  add("o-2", "OrderCreated", 1, CREATED("o-2", "2026-03-01T10:00:01.000Z"));
  add("o-1", "OrderStatusUpdated", 2, STATUS("Processing", "2026-03-01T11:00:00.000Z"));
  add("o-1", "OrderStatusUpdated", 3, STATUS("Shipped", "2026-03-01T12:00:00.000Z"));
  cqrs_error_t err = {0};
  cr_assert(cqrs_fold(writes, NULL, n_writes, &fold, &err), "%s", err.message);
  cr_assert_eq(fold.n, 2);
  const cqrs_folded_t *o1 = folded("o-1");
  cr_assert_eq(o1->count, 3);
  cr_assert(o1->w.upsert, "the first write creates");
  cr_assert_str_eq(u_str(&o1->w.filter, "_id"), "o-1");
  cr_assert_eq(u_i64(&o1->w.filter, "version.$lt"), 3, "the newest event's guard");
  cr_assert_str_eq(u_str(&o1->w.update, "$set.status"), "Shipped");
  cr_assert_eq(u_i64(&o1->w.update, "$set.version"), 3);
  cr_assert_str_eq(u_str(&o1->w.update, "$setOnInsert.userId"), "u-7");
  cr_assert_not(u_has(&o1->w.update, "$setOnInsert.status"), "a $set field leaves $setOnInsert");
  cr_assert_not(u_has(&o1->w.update, "$setOnInsert.version"));
  /* its sources, in log order */
  cr_assert_eq(fold.order[o1->first], 0);
  cr_assert_eq(fold.order[o1->first + 1], 2);
  cr_assert_eq(fold.order[o1->first + 2], 3);
  const cqrs_folded_t *o2 = folded("o-2");
  cr_assert_eq(o2->count, 1);
  cr_assert_eq(u_i64(&o2->w.update, "$setOnInsert.version"), 1);
}

Test(fold, the_insert_document_is_the_fold_from_nothing) {
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T10:00:00.000Z"));
  add("o-1", "OrderStatusUpdated", 2, STATUS("Processing", "2026-03-01T11:00:00.000Z"));
  cqrs_error_t err = {0};
  cr_assert(cqrs_fold(writes, NULL, n_writes, &fold, &err), "%s", err.message);
  const bson_t *doc = &fold.writes[0].insert;
  bson_t *seq = NULL;
  for (size_t i = 0; i < n_writes; i++) apply_write(&seq, &writes[i]);
  bson_t *with_id = bson_new();
  BSON_APPEND_UTF8(with_id, "_id", "o-1");
  bson_concat(with_id, seq);
  assert_same(doc, with_id);
  bson_destroy(with_id);
  bson_destroy(seq);
}

/* Redelivery: the store may hold the document at any version of the batch
 * (or none, or newer). From each, folded == one by one. */
Test(fold, equals_the_writes_one_by_one_from_every_state) {
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T10:00:00.000Z"));
  add("o-1", "OrderStatusUpdated", 2, STATUS("Processing", "2026-03-01T11:00:00.000Z"));
  add("o-1", "OrderStatusUpdated", 3, STATUS("Shipped", "2026-03-01T12:00:00.000Z"));
  add("o-1", "OrderStatusUpdated", 4, STATUS("Delivered", "2026-03-01T13:00:00.000Z"));
  for (size_t start = 0; start <= n_writes; start++) {
    /* the state after the first `start` writes; then the batch from write `from` on */
    for (size_t from = 0; from <= start && from < n_writes; from++) {
      bson_t *before = NULL;
      for (size_t i = 0; i < start; i++) apply_write(&before, &writes[i]);
      bson_t *one_by_one = before ? bson_copy(before) : NULL;
      for (size_t i = from; i < n_writes; i++) apply_write(&one_by_one, &writes[i]);
      cqrs_error_t err = {0};
      cr_assert(cqrs_fold(writes + from, NULL, n_writes - from, &fold, &err), "%s", err.message);
      cr_assert_eq(fold.n, 1);
      /* as the store writer does: into nothing, insert the folded document */
      bson_t *after = before;
      if (!after && fold.writes[0].w.upsert) {
        after = bson_new();
        bson_copy_to_excluding_noinit(&fold.writes[0].insert, after, "_id", NULL);
      } else {
        apply_write(&after, &fold.writes[0].w);
      }
      cr_assert_not_null(one_by_one);
      cr_assert_not_null(after, "state %zu, batch from %zu", start, from);
      assert_same(after, one_by_one);
      bson_destroy(after);
      bson_destroy(one_by_one);
      cqrs_fold_cleanup(&fold);
    }
  }
}

/* Two tenants' aggregates with one id: each tenant's writes go to its own
 * database (namespace), and the fold keeps them apart. Tenant 1's creation
 * comes after tenant 0's update of "o-1": a no-op within one namespace, a
 * document of its own in another. */
Test(fold, the_same_id_in_two_namespaces_is_two_documents) {
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T10:00:00.000Z"));   /* ns 0 */
  add("o-1", "OrderStatusUpdated", 2, STATUS("Shipped", "2026-03-01T11:00:00.000Z")); /* ns 0 */
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T12:00:00.000Z"));   /* ns 1 */
  add("o-2", "OrderCreated", 1, CREATED("o-2", "2026-03-01T13:00:00.000Z"));   /* ns 0 */
  size_t ns[] = {0, 0, 1, 0};
  cqrs_error_t err = {0};
  cr_assert(cqrs_fold(writes, ns, n_writes, &fold, &err), "%s", err.message);
  cr_assert_eq(fold.n, 3, "o-1 of ns 0, o-2 of ns 0, o-1 of ns 1");
  /* ordered by namespace, then _id */
  cr_assert_eq(fold.writes[0].ns, 0);
  cr_assert_str_eq(fold.writes[0].id, "o-1");
  cr_assert_eq(fold.writes[1].ns, 0);
  cr_assert_str_eq(fold.writes[1].id, "o-2");
  cr_assert_eq(fold.writes[2].ns, 1);
  cr_assert_str_eq(fold.writes[2].id, "o-1");
  /* tenant 0's o-1: both its writes, the update's state */
  const cqrs_folded_t *a = &fold.writes[0];
  cr_assert_eq(a->count, 2);
  cr_assert_eq(fold.order[a->first], 0);
  cr_assert_eq(fold.order[a->first + 1], 1);
  cr_assert_str_eq(u_str(&a->w.update, "$set.status"), "Shipped");
  cr_assert_eq(u_i64(&a->w.update, "$set.version"), 2);
  /* tenant 1's o-1: its creation alone, nothing of tenant 0's */
  const cqrs_folded_t *b = &fold.writes[2];
  cr_assert_eq(b->count, 1);
  cr_assert_eq(fold.order[b->first], 2);
  cr_assert(b->w.upsert);
  cr_assert_str_eq(u_str(&b->insert, "createdAt"), "2026-03-01T12:00:00.000Z");
  cr_assert_eq(u_i64(&b->insert, "version"), 1);
  cr_assert_str_eq(u_str(&b->insert, "status"), "Created", "tenant 0's update leaked into tenant 1's");
  cr_assert_not(u_has(&b->w.update, "$set.status"), "tenant 0's update leaked into tenant 1's");
  /* the same batch in one namespace: the second creation of o-1 meets the
   * first's document and changes nothing (as it would one write at a time) */
  cqrs_fold_cleanup(&fold);
  cr_assert(cqrs_fold(writes, NULL, n_writes, &fold, &err), "%s", err.message);
  cr_assert_eq(fold.n, 2);
  cr_assert_str_eq(u_str(&fold.writes[0].insert, "createdAt"), "2026-03-01T10:00:00.000Z");
  cr_assert_str_eq(u_str(&fold.writes[0].insert, "status"), "Shipped");
}

Test(fold, refuses_what_it_cannot_fold) {
  cqrs_error_t err = {0};
  /* an operator other than $set / $setOnInsert */
  bson_init(&writes[0].filter);
  bson_init(&writes[0].update);
  BSON_APPEND_UTF8(&writes[0].filter, "_id", "x");
  bson_t inc;
  BSON_APPEND_DOCUMENT_BEGIN(&writes[0].update, "$inc", &inc);
  BSON_APPEND_INT32(&inc, "n", 1);
  bson_append_document_end(&writes[0].update, &inc);
  n_writes = 1;
  cr_assert_not(cqrs_fold(writes, NULL, 1, &fold, &err));
  cr_assert(strstr(err.message, "$inc"), "%s", err.message);
  cr_assert_eq(fold.n, 0);
  teardown();
  /* a creation after an update of the same document */
  add("o-1", "OrderStatusUpdated", 2, STATUS("Processing", "2026-03-01T11:00:00.000Z"));
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T10:00:00.000Z"));
  cr_assert_not(cqrs_fold(writes, NULL, n_writes, &fold, &err));
  cr_assert(strstr(err.message, "created after an update"), "%s", err.message);
  teardown();
  /* no _id */
  bson_init(&writes[0].filter);
  bson_init(&writes[0].update);
  n_writes = 1;
  cr_assert_not(cqrs_fold(writes, NULL, 1, &fold, &err));
  cr_assert(strstr(err.message, "_id"), "%s", err.message);
}

Test(fold, a_redelivered_creation_after_the_creation_changes_nothing) {
  cqrs_error_t err = {0};
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T10:00:00.000Z"));
  add("o-1", "OrderStatusUpdated", 2, STATUS("Processing", "2026-03-01T11:00:00.000Z"));
  add("o-1", "OrderCreated", 1, CREATED("o-1", "2026-03-01T10:00:00.000Z"));
  cr_assert(cqrs_fold(writes, NULL, n_writes, &fold, &err), "%s", err.message);
  cr_assert_eq(fold.n, 1);
  cr_assert_eq(fold.writes[0].count, 3);
  cr_assert_str_eq(u_str(&fold.writes[0].insert, "status"), "Processing", "the creation again is a no-op");
  cr_assert_eq(u_i64(&fold.writes[0].insert, "version"), 2);
}

/* The folded writes embed bson_t, which libbson declares 128-byte aligned:
 * the array must be (a calloc'd one is 16-aligned, and UBSan reports the
 * access). Folds of several sizes, so a lucky address does not hide it. */
Test(fold, folded_writes_are_aligned_for_bson) {
  static const char *ids[] = {"o-1", "o-2", "o-3", "o-4", "o-5", "o-6", "o-7", "o-8"};
  for (size_t k = 0; k < 8; k++) {
    add(ids[k], "OrderCreated", 1, CREATED("x", "2026-03-01T10:00:00.000Z"));
    cqrs_error_t err = {0};
    cr_assert(cqrs_fold(writes, NULL, n_writes, &fold, &err), "%s", err.message);
    cr_assert_eq(fold.n, k + 1);
    cr_assert_eq((uintptr_t)fold.writes % _Alignof(cqrs_folded_t), 0, "%zu writes folded into %p", k + 1,
                 (void *)fold.writes);
    cqrs_fold_cleanup(&fold);
  }
}
