/* Folding a batch's writes per document (see fold.h). */
#include "fold.h"

#include <stdlib.h>
#include <string.h>

static const char *filter_id(const cqrs_write_t *w) {
  bson_iter_t it;
  return bson_iter_init_find(&it, &w->filter, "_id") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

typedef struct {
  const char *id;
  size_t pos;
} key_t_;

static int by_id_then_pos(const void *a, const void *b) {
  const key_t_ *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Checks w's update holds only $set and $setOnInsert documents. */
static bool foldable_update(const cqrs_write_t *w, cqrs_error_t *err) {
  bson_iter_t it;
  if (!bson_iter_init(&it, &w->update)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "corrupt update");
    return false;
  }
  while (bson_iter_next(&it)) {
    const char *op = bson_iter_key(&it);
    if ((strcmp(op, "$set") != 0 && strcmp(op, "$setOnInsert") != 0) || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
      cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "cannot fold an update with %s", op);
      return false;
    }
  }
  return true;
}

/* Appends to dst the fields of op in the writes src[order[0..k)], visited
 * newest first when newest_wins, else oldest first; a field already in dst,
 * or in skip (may be NULL), is not appended again. */
static void merge_op(bson_t *dst, const cqrs_write_t *src, const size_t *order, size_t k, const char *op,
                     bool newest_wins, const bson_t *skip) {
  for (size_t j = 0; j < k; j++) {
    const cqrs_write_t *w = &src[order[newest_wins ? k - 1 - j : j]];
    bson_iter_t it, f;
    if (!bson_iter_init_find(&it, &w->update, op) || !bson_iter_recurse(&it, &f)) continue;
    while (bson_iter_next(&f)) {
      const char *key = bson_iter_key(&f);
      if (bson_has_field(dst, key) || (skip && bson_has_field(skip, key))) continue;
      bson_append_value(dst, key, -1, bson_iter_value(&f));
    }
  }
}

static void fold_group(const cqrs_write_t *in, const size_t *order, size_t k, cqrs_folded_t *out) {
  const cqrs_write_t *last = &in[order[k - 1]];
  bson_t set = BSON_INITIALIZER, on_insert = BSON_INITIALIZER;
  merge_op(&set, in, order, k, "$set", true, NULL);
  merge_op(&on_insert, in, order, k, "$setOnInsert", false, &set);
  bson_copy_to(&last->filter, &out->w.filter);
  bson_init(&out->w.update);
  if (!bson_empty(&on_insert)) BSON_APPEND_DOCUMENT(&out->w.update, "$setOnInsert", &on_insert);
  if (!bson_empty(&set)) BSON_APPEND_DOCUMENT(&out->w.update, "$set", &set);
  out->w.upsert = in[order[0]].upsert;
  bson_destroy(&set);
  bson_destroy(&on_insert);
}

bool cqrs_fold(const cqrs_write_t *in, size_t n, cqrs_fold_t *out, cqrs_error_t *err) {
  *out = (cqrs_fold_t){0};
  if (n == 0) return true;
  key_t_ *keys = calloc(n, sizeof *keys);
  for (size_t i = 0; i < n; i++) {
    if (!(keys[i].id = filter_id(&in[i]))) {
      cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "cannot fold a write without a string _id");
      free(keys);
      return false;
    }
    if (!foldable_update(&in[i], err)) {
      free(keys);
      return false;
    }
    keys[i].pos = i;
  }
  qsort(keys, n, sizeof *keys, by_id_then_pos);
  out->order = calloc(n, sizeof *out->order);
  out->writes = calloc(n, sizeof *out->writes);
  for (size_t i = 0; i < n; i++) out->order[i] = keys[i].pos;
  for (size_t i = 0, j; i < n; i = j) {
    for (j = i + 1; j < n && strcmp(keys[j].id, keys[i].id) == 0; j++)
      if (in[keys[j].pos].upsert) {
        cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "cannot fold: document %s is created after an update",
                       keys[i].id);
        free(keys);
        cqrs_fold_cleanup(out);
        return false;
      }
    cqrs_folded_t *f = &out->writes[out->n++];
    f->id = keys[i].id;
    f->first = i;
    f->count = j - i;
    fold_group(in, out->order + i, j - i, f);
  }
  free(keys);
  return true;
}

void cqrs_fold_insert_doc(const cqrs_folded_t *f, bson_t *doc) {
  bson_init(doc);
  BSON_APPEND_UTF8(doc, "_id", f->id);
  static const char *const ops[] = {"$setOnInsert", "$set"};
  for (size_t i = 0; i < 2; i++) {
    bson_iter_t it, fld;
    if (!bson_iter_init_find(&it, &f->w.update, ops[i]) || !bson_iter_recurse(&it, &fld)) continue;
    while (bson_iter_next(&fld)) bson_append_value(doc, bson_iter_key(&fld), -1, bson_iter_value(&fld));
  }
}

void cqrs_fold_cleanup(cqrs_fold_t *f) {
  for (size_t i = 0; i < f->n; i++) cqrs_write_cleanup(&f->writes[i].w);
  free(f->writes);
  free(f->order);
  *f = (cqrs_fold_t){0};
}
