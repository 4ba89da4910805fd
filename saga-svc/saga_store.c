/* Saga instances in memory, staged per batch (saga_store.h). */
#include "saga_store.h"
#include "saga.h"

#include "cqrs/alloc.h"
#include "cqrs/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cqrs_saga_store {
  cqrs_map_t *committed; /* saga id -> entry_t * */
  cqrs_map_t *staged;    /* saga id -> bson_t * */
  cqrs_map_t *awaiting;  /* "<tenant>/<commandId>" -> char * saga id (committed pending steps) */
};

/* A committed instance and its earliest deadline, read once when it is put
 * (the loop asks for due deadlines every round). */
typedef struct {
  bson_t *doc;
  int64_t due_ms; /* INT64_MAX: none */
  char *what;
} entry_t;

static void free_doc(void *v) { bson_destroy(v); }

static void free_entry(void *v) {
  entry_t *e = v;
  bson_destroy(e->doc);
  free(e->what);
  free(e);
}

static bool has_pending(const bson_t *instance);

/* A finished saga with nothing pending reacts to nothing any more (saga.h):
 * what it needs in memory is that it exists and is finished. Its history
 * stays on saga-state, where admin-svc reads it. Takes instance. */
static bson_t *slim(bson_t *instance) {
  const char *state = cqrs_saga_str(instance, "state");
  bool finished = strcmp(state, CQRS_SAGA_COMPLETED) == 0 || strcmp(state, CQRS_SAGA_COMPENSATED) == 0 ||
                  strcmp(state, CQRS_SAGA_FAILED) == 0;
  int64_t due;
  const char *what;
  if (!finished || has_pending(instance) || cqrs_saga_next_deadline(instance, &due, &what)) return instance;
  static const char *const keep[] = {"sagaId", "type", "tenant", "key", "state", "startedAt", "updatedAt",
                                     "partition"};
  bson_t *out = bson_new();
  for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, instance, keep[i])) bson_append_iter(out, keep[i], -1, &it);
  }
  bson_destroy(instance);
  return out;
}

cqrs_saga_store_t *cqrs_saga_store_new(void) {
  cqrs_saga_store_t *s = cqrs_xcalloc(1, sizeof *s);
  s->committed = cqrs_map_new(free_entry);
  s->staged = cqrs_map_new(free_doc);
  s->awaiting = cqrs_map_new(free);
  return s;
}

void cqrs_saga_store_destroy(cqrs_saga_store_t *s) {
  if (!s) return;
  cqrs_map_destroy(s->committed);
  cqrs_map_destroy(s->staged);
  cqrs_map_destroy(s->awaiting);
  free(s);
}

const bson_t *cqrs_saga_store_get(const cqrs_saga_store_t *s, const char *saga_id) {
  const bson_t *d = cqrs_map_get(s->staged, saga_id);
  const entry_t *e = d ? NULL : cqrs_map_get(s->committed, saga_id);
  return d ? d : e ? e->doc : NULL;
}

const char *cqrs_saga_store_awaiting(const cqrs_saga_store_t *s, const char *result_key) {
  return cqrs_map_get(s->awaiting, result_key);
}

void cqrs_saga_store_stage(cqrs_saga_store_t *s, bson_t *instance) {
  cqrs_map_put(s->staged, cqrs_saga_str(instance, "sagaId"), instance);
}

typedef struct {
  cqrs_saga_store_t *s;
  const char *tenant, *saga_id;
} index_ctx_t;

static void index_step(const char *command_id, void *ctx) {
  index_ctx_t *c = ctx;
  size_t n = strlen(c->tenant) + strlen(command_id) + 2;
  char *key = cqrs_xmalloc(n);
  snprintf(key, n, "%s/%s", c->tenant, command_id);
  cqrs_map_put(c->s->awaiting, key, cqrs_xstrdup(c->saga_id));
  free(key);
}

/* Indexes instance's pending steps (answered ones drop out on their own: a
 * result for them changes nothing; unindex removes them). */
static void index_instance(cqrs_saga_store_t *s, const bson_t *instance) {
  index_ctx_t c = {s, cqrs_saga_str(instance, "tenant"), cqrs_saga_str(instance, "sagaId")};
  cqrs_saga_pending_steps(instance, index_step, &c);
}

static void unindex_step(const char *command_id, void *ctx) {
  index_ctx_t *c = ctx;
  size_t n = strlen(c->tenant) + strlen(command_id) + 2;
  char *key = cqrs_xmalloc(n);
  snprintf(key, n, "%s/%s", c->tenant, command_id);
  cqrs_map_delete(c->s->awaiting, key);
  free(key);
}

static void count_pending(const char *command_id, void *ctx) {
  (void)command_id;
  ++*(size_t *)ctx;
}

static bool has_pending(const bson_t *instance) {
  size_t n = 0;
  cqrs_saga_pending_steps(instance, count_pending, &n);
  return n > 0;
}

void cqrs_saga_store_put(cqrs_saga_store_t *s, bson_t *instance) {
  entry_t *e = cqrs_xcalloc(1, sizeof *e);
  e->doc = slim(instance);
  const char *what;
  e->due_ms = INT64_MAX;
  if (cqrs_saga_next_deadline(e->doc, &e->due_ms, &what)) e->what = cqrs_xstrdup(what);
  index_instance(s, e->doc);
  cqrs_map_put(s->committed, cqrs_saga_str(e->doc, "sagaId"), e);
}

typedef struct {
  char **keys;
  size_t n, cap;
} keys_t;

static bool collect(const char *key, void *value, void *ctx) {
  (void)value;
  keys_t *k = ctx;
  if (k->n == k->cap) {
    k->cap = k->cap ? k->cap * 2 : 16;
    k->keys = cqrs_xrealloc(k->keys, k->cap * sizeof *k->keys);
  }
  k->keys[k->n++] = cqrs_xstrdup(key);
  return false;
}

void cqrs_saga_store_commit(cqrs_saga_store_t *s) {
  keys_t k = {0};
  cqrs_map_filter(s->staged, collect, &k);
  for (size_t i = 0; i < k.n; i++) {
    bson_t *next = cqrs_map_take(s->staged, k.keys[i]);
    const entry_t *old = cqrs_map_get(s->committed, k.keys[i]);
    if (old) { /* steps answered since no longer wait */
      index_ctx_t c = {s, cqrs_saga_str(old->doc, "tenant"), k.keys[i]};
      cqrs_saga_pending_steps(old->doc, unindex_step, &c);
    }
    cqrs_saga_store_put(s, next);
    free(k.keys[i]);
  }
  free(k.keys);
}

void cqrs_saga_store_abort(cqrs_saga_store_t *s) { cqrs_map_clear(s->staged); }

typedef struct {
  cqrs_saga_store_t *s;
  int32_t partition;
} drop_ctx_t;

static int32_t partition_of(const bson_t *instance) {
  bson_iter_t it;
  return bson_iter_init_find(&it, instance, "partition") && BSON_ITER_HOLDS_INT32(&it) ? bson_iter_int32(&it) : -1;
}

static bool drop_one(const char *key, void *value, void *ctx) {
  drop_ctx_t *d = ctx;
  const entry_t *e = value;
  if (partition_of(e->doc) != d->partition) return false;
  index_ctx_t c = {d->s, cqrs_saga_str(e->doc, "tenant"), key};
  cqrs_saga_pending_steps(e->doc, unindex_step, &c);
  return true;
}

void cqrs_saga_store_drop_partition(cqrs_saga_store_t *s, int32_t partition) {
  drop_ctx_t d = {s, partition};
  cqrs_map_filter(s->committed, drop_one, &d);
}

typedef struct {
  int64_t now_ms, earliest;
  cqrs_saga_due_t *due;
  size_t n, max;
} due_ctx_t;

/* d->due[0..n) is a max-heap on due_ms while it fills: its root is the
 * latest of the earliest deadlines kept so far. */
static void sift_down(cqrs_saga_due_t *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, top = i;
    if (l < n && h[l].due_ms > h[top].due_ms) top = l;
    if (r < n && h[r].due_ms > h[top].due_ms) top = r;
    if (top == i) return;
    cqrs_saga_due_t t = h[i];
    h[i] = h[top];
    h[top] = t;
    i = top;
  }
}

static void sift_up(cqrs_saga_due_t *h, size_t i) {
  while (i > 0 && h[(i - 1) / 2].due_ms < h[i].due_ms) {
    cqrs_saga_due_t t = h[i];
    h[i] = h[(i - 1) / 2];
    h[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
}

static bool due_one(const char *key, void *value, void *ctx) {
  due_ctx_t *d = ctx;
  const entry_t *e = value;
  if (e->due_ms == INT64_MAX) return false;
  if (e->due_ms < d->earliest) d->earliest = e->due_ms;
  if (e->due_ms > d->now_ms || d->max == 0) return false;
  cqrs_saga_due_t x;
  snprintf(x.saga_id, sizeof x.saga_id, "%s", key);
  x.due_ms = e->due_ms;
  x.what = e->what;
  if (d->n < d->max) { /* room: keep it */
    d->due[d->n] = x;
    sift_up(d->due, d->n++);
  } else if (x.due_ms < d->due[0].due_ms) { /* earlier than the latest kept: replace that */
    d->due[0] = x;
    sift_down(d->due, d->n, 0);
  }
  return false;
}

static int by_due(const void *a, const void *b) {
  int64_t x = ((const cqrs_saga_due_t *)a)->due_ms, y = ((const cqrs_saga_due_t *)b)->due_ms;
  return (x > y) - (x < y);
}

size_t cqrs_saga_store_due(const cqrs_saga_store_t *s, int64_t now_ms, cqrs_saga_due_t *due, size_t max,
                           int64_t *earliest_ms) {
  due_ctx_t d = {now_ms, INT64_MAX, due, 0, max};
  cqrs_map_filter(s->committed, due_one, &d);
  qsort(due, d.n, sizeof *due, by_due);
  *earliest_ms = d.earliest;
  return d.n;
}

typedef struct {
  char type[64], state[32];
  size_t n;
} count_t;

typedef struct {
  count_t rows[64];
  size_t n;
} counts_t;

static bool count_one(const char *key, void *value, void *ctx) {
  (void)key;
  counts_t *c = ctx;
  const entry_t *e = value;
  const char *type = cqrs_saga_str(e->doc, "type"), *state = cqrs_saga_str(e->doc, "state");
  for (size_t i = 0; i < c->n; i++) {
    if (strcmp(c->rows[i].type, type) == 0 && strcmp(c->rows[i].state, state) == 0) {
      c->rows[i].n++;
      return false;
    }
  }
  if (c->n < sizeof c->rows / sizeof c->rows[0]) {
    count_t *r = &c->rows[c->n++];
    snprintf(r->type, sizeof r->type, "%s", type);
    snprintf(r->state, sizeof r->state, "%s", state);
    r->n = 1;
  }
  return false;
}

void cqrs_saga_store_count(const cqrs_saga_store_t *s, void (*cb)(const char *type, const char *state, size_t n, void *ctx),
                           void *ctx) {
  counts_t c = {0};
  cqrs_map_filter(s->committed, count_one, &c);
  for (size_t i = 0; i < c.n; i++) cb(c.rows[i].type, c.rows[i].state, c.rows[i].n, ctx);
}

size_t cqrs_saga_store_size(const cqrs_saga_store_t *s) { return cqrs_map_size(s->committed); }
