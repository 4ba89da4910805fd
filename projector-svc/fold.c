/* Folding a batch's writes per document (see fold.h). */
#include "fold.h"

#include "cqrs/alloc.h"

#include <stdlib.h>
#include <string.h>

static const char *filter_id(const cqrs_write_t *w) {
  bson_iter_t it;
  return bson_iter_init_find(&it, &w->filter, "_id") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

typedef struct {
  size_t ns;
  const char *id;
  size_t pos;
} key_t_;

static int cmp_size(size_t a, size_t b) { return (a > b) - (a < b); }

static int by_ns_id_pos(const void *a, const void *b) {
  const key_t_ *x = a, *y = b;
  int c = cmp_size(x->ns, y->ns);
  if (!c) c = strcmp(x->id, y->id);
  return c ? c : cmp_size(x->pos, y->pos);
}

static bool same_document(const key_t_ *a, const key_t_ *b) { return a->ns == b->ns && strcmp(a->id, b->id) == 0; }

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

/* True when w's update is only a $setOnInsert: after its document's creation
 * it changes nothing (a redelivered creation, e.g. an event recorded twice in
 * one batch). */
static bool insert_only(const cqrs_write_t *w) {
  bson_iter_t it;
  return bson_count_keys(&w->update) == 1 && bson_iter_init_find(&it, &w->update, "$setOnInsert");
}

/* An ordered set of fields: a field set again keeps its place and takes the
 * new value, a new field goes last, as $set does to a stored document. Keys
 * and values are borrowed from the source writes. */
typedef struct {
  const char **keys;
  bson_value_t *vals; /* shallow copies: their data points into the source writes */
  size_t n;
} fields_t;

static void fields_init(fields_t *f, size_t cap) {
  f->keys = cqrs_xcalloc(cap ? cap : 1, sizeof *f->keys);
  f->vals = cqrs_xcalloc(cap ? cap : 1, sizeof *f->vals);
  f->n = 0;
}

static void fields_free(fields_t *f) {
  free(f->keys);
  free(f->vals);
}

static bool fields_has(const fields_t *f, const char *key) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->keys[i], key) == 0) return true;
  return false;
}

/* Sets key (replace keeps the place; a new key goes last); when keep_first, an
 * existing key keeps its value. */
static void fields_put(fields_t *f, const char *key, const bson_value_t *v, bool keep_first) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->keys[i], key) == 0) {
      if (!keep_first) f->vals[i] = *v;
      return;
    }
  f->keys[f->n] = key;
  f->vals[f->n++] = *v;
}

/* Puts every field of w's op into f. */
static void fields_put_op(fields_t *f, const cqrs_write_t *w, const char *op, bool keep_first) {
  bson_iter_t it, fld;
  if (!bson_iter_init_find(&it, &w->update, op) || !bson_iter_recurse(&it, &fld)) return;
  while (bson_iter_next(&fld)) fields_put(f, bson_iter_key(&fld), bson_iter_value(&fld), keep_first);
}

/* Appends f's fields, minus those in skip (may be NULL), to dst. */
static void fields_append(const fields_t *f, bson_t *dst, const fields_t *skip) {
  for (size_t i = 0; i < f->n; i++)
    if (!skip || !fields_has(skip, f->keys[i])) bson_append_value(dst, f->keys[i], -1, &f->vals[i]);
}

static size_t count_fields(const cqrs_write_t *in, const size_t *order, size_t k) {
  size_t n = 1; /* _id */
  for (size_t j = 0; j < k; j++) {
    bson_iter_t it, f;
    if (!bson_iter_init(&it, &in[order[j]].update)) continue;
    while (bson_iter_next(&it))
      if (bson_iter_recurse(&it, &f))
        while (bson_iter_next(&f)) n++;
  }
  return n;
}

/* The group's writes in[order[0..k)] as one: the last filter; $set of every
 * field any write sets, in the order they first appear, each with its newest
 * value; $setOnInsert of the creation minus what a $set overrides. And, for
 * an upsert, the document that folding the writes into nothing gives, field
 * order included (so a rebuild's documents equal the live ones). */
static void fold_group(const cqrs_write_t *in, const size_t *order, size_t k, cqrs_folded_t *out) {
  size_t cap = count_fields(in, order, k);
  fields_t set, on_insert, doc;
  fields_init(&set, cap);
  fields_init(&on_insert, cap);
  fields_init(&doc, cap);
  for (size_t j = 0; j < k; j++) {
    fields_put_op(&set, &in[order[j]], "$set", false);
    fields_put_op(&on_insert, &in[order[j]], "$setOnInsert", true);
  }
  bson_copy_to(&in[order[k - 1]].filter, &out->w.filter);
  bson_init(&out->w.update);
  bson_t sub;
  if (on_insert.n) {
    BSON_APPEND_DOCUMENT_BEGIN(&out->w.update, "$setOnInsert", &sub);
    fields_append(&on_insert, &sub, &set);
    bson_append_document_end(&out->w.update, &sub);
  }
  if (set.n) {
    BSON_APPEND_DOCUMENT_BEGIN(&out->w.update, "$set", &sub);
    fields_append(&set, &sub, NULL);
    bson_append_document_end(&out->w.update, &sub);
  }
  out->w.upsert = in[order[0]].upsert;
  bson_init(&out->insert);
  if (out->w.upsert) {
    /* the creation inserts {_id, $setOnInsert, $set}; each later $set
     * replaces in place or appends */
    fields_put_op(&doc, &in[order[0]], "$setOnInsert", false);
    for (size_t j = 0; j < k; j++) fields_put_op(&doc, &in[order[j]], "$set", false);
    BSON_APPEND_UTF8(&out->insert, "_id", out->id);
    fields_append(&doc, &out->insert, NULL);
  }
  fields_free(&set);
  fields_free(&on_insert);
  fields_free(&doc);
}

bool cqrs_fold(const cqrs_write_t *in, const size_t *ns, size_t n, cqrs_fold_t *out, cqrs_error_t *err) {
  *out = (cqrs_fold_t){0};
  if (n == 0) return true;
  key_t_ *keys = cqrs_xcalloc(n, sizeof *keys);
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
    keys[i].ns = ns ? ns[i] : 0;
  }
  qsort(keys, n, sizeof *keys, by_ns_id_pos);
  out->order = cqrs_xcalloc(n, sizeof *out->order);
  /* cqrs_folded_t embeds bson_t, which libbson declares 128-byte aligned */
  out->writes = cqrs_xcalloc_aligned(n, sizeof *out->writes, _Alignof(cqrs_folded_t));
  for (size_t i = 0; i < n; i++) out->order[i] = keys[i].pos;
  for (size_t i = 0, j; i < n; i = j) {
    for (j = i + 1; j < n && same_document(&keys[j], &keys[i]); j++)
      if (in[keys[j].pos].upsert && !(in[keys[i].pos].upsert && insert_only(&in[keys[j].pos]))) {
        cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "cannot fold: document %s is created after an update",
                       keys[i].id);
        free(keys);
        cqrs_fold_cleanup(out);
        return false;
      }
    cqrs_folded_t *f = &out->writes[out->n++];
    f->id = keys[i].id;
    f->ns = keys[i].ns;
    f->first = i;
    f->count = j - i;
    fold_group(in, out->order + i, j - i, f);
  }
  free(keys);
  return true;
}

void cqrs_fold_cleanup(cqrs_fold_t *f) {
  for (size_t i = 0; i < f->n; i++) {
    cqrs_write_cleanup(&f->writes[i].w);
    bson_destroy(&f->writes[i].insert);
  }
  free(f->writes);
  free(f->order);
  *f = (cqrs_fold_t){0};
}
