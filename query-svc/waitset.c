/* Waiting single reads grouped by read and value; poll rounds of batched
 * $in finds; settling waiters from what the store gave. */
#include "waitset.h"

#include "cqrs/alloc.h"
#include "cqrs/map.h"
#include "cqrs/tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  void *token;
  int64_t min_version;
  int64_t since_ms;
  int64_t deadline_ms;
} waiter_t;

/* One value waited on, with every waiter on it. */
typedef struct {
  char *value;
  bson_t *seen;          /* the last document the store gave for value; NULL: none (absent) */
  int64_t seen_ms;       /* when the store last answered for value; 0: never since it was added */
  cqrs_wait_batch_t *batch; /* the batch of the current round holding this value */
  bson_t *candidate;     /* the first document the batch's find gave for value */
  bool offered;          /* candidate is set (documents after it are ignored) */
  waiter_t *waiters;
  size_t n, cap;
} value_t;

/* Every value waited on for one read of one tenant. */
typedef struct {
  const cqrs_single_read_t *read;
  char tenant[CQRS_TENANT_MAX + 1];
  cqrs_map_t *values; /* value -> value_t */
} group_t;

struct cqrs_wait_batch {
  group_t *group;
  value_t **values;
  size_t n;
  bson_t filter, opts;
  bool settled;
};

struct cqrs_waitset {
  size_t batch_max;
  group_t *groups;
  size_t n_groups;
  size_t n_waiters;
  cqrs_wait_batch_t *batches; /* the current round's */
  size_t n_batches;
};

static void value_free(void *p) {
  value_t *v = p;
  free(v->value);
  if (v->seen) bson_destroy(v->seen);
  if (v->candidate) bson_destroy(v->candidate);
  free(v->waiters);
  free(v);
}

cqrs_waitset_t *cqrs_waitset_new(size_t batch_max) {
  BSON_ASSERT(batch_max >= 1);
  cqrs_waitset_t *ws = bson_malloc0(sizeof *ws);
  ws->batch_max = batch_max;
  return ws;
}

static void free_round(cqrs_waitset_t *ws) {
  for (size_t i = 0; i < ws->n_batches; i++) {
    cqrs_wait_batch_t *b = &ws->batches[i];
    BSON_ASSERT(b->settled); /* a batch left unsettled would strand its waiters */
    free(b->values);
    bson_destroy(&b->filter);
    bson_destroy(&b->opts);
  }
  free(ws->batches);
  ws->batches = NULL;
  ws->n_batches = 0;
}

void cqrs_waitset_destroy(cqrs_waitset_t *ws) {
  if (!ws) return;
  free_round(ws);
  for (size_t i = 0; i < ws->n_groups; i++) cqrs_map_destroy(ws->groups[i].values);
  free(ws->groups);
  bson_free(ws);
}

static group_t *group_for(cqrs_waitset_t *ws, const cqrs_single_read_t *read, const char *tenant) {
  for (size_t i = 0; i < ws->n_groups; i++)
    if (ws->groups[i].read == read && strcmp(ws->groups[i].tenant, tenant) == 0) return &ws->groups[i];
  /* A group per (tenant, read) waited on now; empty ones go at the next
   * round (prune_groups), so tenants that stopped waiting cost nothing. */
  ws->groups = cqrs_xrealloc(ws->groups, (ws->n_groups + 1) * sizeof *ws->groups);
  group_t *g = &ws->groups[ws->n_groups++];
  g->read = read;
  snprintf(g->tenant, sizeof g->tenant, "%s", tenant);
  g->values = cqrs_map_new(value_free);
  return g;
}

/* Drops the groups without waiters. Not during a round (batches point into
 * ws->groups). */
static void prune_groups(cqrs_waitset_t *ws) {
  size_t kept = 0;
  for (size_t i = 0; i < ws->n_groups; i++) {
    if (cqrs_map_size(ws->groups[i].values) == 0) {
      cqrs_map_destroy(ws->groups[i].values);
      continue;
    }
    ws->groups[kept++] = ws->groups[i];
  }
  ws->n_groups = kept;
}

void cqrs_waitset_add(cqrs_waitset_t *ws, const cqrs_single_read_t *read, const char *tenant, const char *value,
                      int64_t min_version, int64_t now_ms, int64_t deadline_ms, void *token) {
  BSON_ASSERT(ws->n_batches == 0); /* not during a round */
  group_t *g = group_for(ws, read, tenant);
  value_t *v = cqrs_map_get(g->values, value);
  if (!v) {
    v = bson_malloc0(sizeof *v);
    v->value = cqrs_xstrdup(value);
    cqrs_map_put(g->values, value, v);
  }
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 4;
    v->waiters = cqrs_xrealloc(v->waiters, v->cap * sizeof *v->waiters);
  }
  v->waiters[v->n++] = (waiter_t){token, min_version, now_ms, deadline_ms};
  ws->n_waiters++;
}

size_t cqrs_waitset_size(const cqrs_waitset_t *ws) { return ws->n_waiters; }

typedef struct {
  value_t **all;
  size_t n;
} collect_t;

static bool collect_cb(const char *key, void *value, void *ctx) {
  (void)key;
  collect_t *c = ctx;
  c->all[c->n++] = value;
  return false;
}

static void init_batch(cqrs_wait_batch_t *b, group_t *g, value_t **values, size_t n) {
  memset(b, 0, sizeof *b);
  b->group = g;
  b->values = cqrs_xmalloc(n * sizeof *values);
  memcpy(b->values, values, n * sizeof *values);
  b->n = n;
  bson_init(&b->filter);
  bson_init(&b->opts);
  bson_t cond, in;
  BSON_APPEND_DOCUMENT_BEGIN(&b->filter, g->read->field, &cond);
  BSON_APPEND_ARRAY_BEGIN(&cond, "$in", &in);
  for (size_t i = 0; i < n; i++) {
    char idx[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
    BSON_APPEND_UTF8(&in, k, values[i]->value);
    values[i]->batch = b;
    values[i]->offered = false;
  }
  bson_append_array_end(&cond, &in);
  bson_append_document_end(&b->filter, &cond);
  cqrs_single_read_append_sort(g->read, &b->opts);
  /* Every match in the first reply, so the server closes the cursor at once
   * (FerretDB deadlocks when an open cursor meets a collection being created).
   * A field that is not unique (email) may match more than one per value. */
  BSON_APPEND_INT64(&b->opts, "batchSize", (int64_t)n * 2 + 16);
}

size_t cqrs_waitset_begin_round(cqrs_waitset_t *ws) {
  free_round(ws);
  prune_groups(ws);
  size_t n_batches = 0, most = 0;
  for (size_t i = 0; i < ws->n_groups; i++) {
    size_t n = cqrs_map_size(ws->groups[i].values);
    n_batches += (n + ws->batch_max - 1) / ws->batch_max;
    if (n > most) most = n;
  }
  if (n_batches == 0) return 0;
  ws->batches = cqrs_xcalloc(n_batches, sizeof *ws->batches);
  collect_t c = {cqrs_xmalloc(most * sizeof *c.all), 0};
  for (size_t i = 0; i < ws->n_groups; i++) {
    group_t *g = &ws->groups[i];
    c.n = 0;
    cqrs_map_filter(g->values, collect_cb, &c);
    for (size_t off = 0; off < c.n; off += ws->batch_max) {
      size_t n = c.n - off < ws->batch_max ? c.n - off : ws->batch_max;
      init_batch(&ws->batches[ws->n_batches++], g, c.all + off, n);
    }
  }
  free(c.all);
  return ws->n_batches;
}

cqrs_wait_batch_t *cqrs_waitset_batch(cqrs_waitset_t *ws, size_t i) {
  BSON_ASSERT(i < ws->n_batches);
  return &ws->batches[i];
}

const cqrs_single_read_t *cqrs_wait_batch_read(const cqrs_wait_batch_t *b) { return b->group->read; }
const char *cqrs_wait_batch_tenant(const cqrs_wait_batch_t *b) { return b->group->tenant; }
const bson_t *cqrs_wait_batch_filter(const cqrs_wait_batch_t *b) { return &b->filter; }
const bson_t *cqrs_wait_batch_opts(const cqrs_wait_batch_t *b) { return &b->opts; }

void cqrs_wait_batch_offer(cqrs_wait_batch_t *b, const bson_t *doc) {
  bson_iter_t it;
  if (b->settled || !bson_iter_init_find(&it, doc, b->group->read->field) || !BSON_ITER_HOLDS_UTF8(&it)) return;
  value_t *v = cqrs_map_get(b->group->values, bson_iter_utf8(&it, NULL));
  /* The find returns documents in the read's sort order: the first per value
   * is the one a read of that value alone would answer. */
  if (!v || v->batch != b || v->offered) return;
  v->offered = true;
  v->candidate = bson_copy(doc);
}

/* The outcome for waiter w of value v at now_ms. */
static cqrs_read_outcome_t outcome(const value_t *v, const waiter_t *w, bool store_answered, int64_t now_ms) {
  bool time_left = now_ms < w->deadline_ms;
  if (store_answered) return cqrs_single_read_decide(v->seen, w->min_version, time_left);
  if (time_left) return CQRS_READ_WAIT;
  /* Past the deadline and the store did not answer now: what it last gave
   * for this waiter, if it gave anything since the waiter started. */
  if (v->seen_ms > 0 && v->seen_ms >= w->since_ms) return cqrs_single_read_decide(v->seen, w->min_version, false);
  return CQRS_READ_NO_STORE;
}

static void settle_value(cqrs_waitset_t *ws, const cqrs_single_read_t *read, value_t *v, bool store_answered,
                         int64_t now_ms, cqrs_waitset_settle_cb cb, void *ctx) {
  if (store_answered) {
    if (v->seen) bson_destroy(v->seen);
    v->seen = v->candidate; /* NULL: absent */
    v->candidate = NULL;
    v->seen_ms = now_ms;
  }
  size_t kept = 0;
  for (size_t i = 0; i < v->n; i++) {
    waiter_t w = v->waiters[i];
    cqrs_read_outcome_t o = outcome(v, &w, store_answered, now_ms);
    if (o == CQRS_READ_WAIT) {
      v->waiters[kept++] = w;
      continue;
    }
    cqrs_read_answer_t a;
    cqrs_single_read_answer(read, o, v->seen, w.min_version, &a);
    ws->n_waiters--;
    cb(w.token, o, &a, ctx);
    cqrs_read_answer_cleanup(&a);
  }
  v->n = kept;
}

void cqrs_wait_batch_settle(cqrs_waitset_t *ws, cqrs_wait_batch_t *b, bool store_answered, int64_t now_ms,
                            cqrs_waitset_settle_cb cb, void *ctx) {
  BSON_ASSERT(!b->settled);
  b->settled = true;
  for (size_t i = 0; i < b->n; i++) {
    value_t *v = b->values[i];
    settle_value(ws, b->group->read, v, store_answered, now_ms, cb, ctx);
    v->batch = NULL;
    v->offered = false;
    if (v->candidate) bson_destroy(v->candidate);
    v->candidate = NULL;
    if (v->n == 0) cqrs_map_delete(b->group->values, v->value); /* frees v */
  }
  bool round_done = true;
  for (size_t i = 0; i < ws->n_batches && round_done; i++) round_done = ws->batches[i].settled;
  if (round_done) free_round(ws);
}

typedef struct {
  cqrs_waitset_t *ws;
  const cqrs_single_read_t *read;
  cqrs_read_outcome_t o;
  cqrs_waitset_settle_cb cb;
  void *ctx;
} drain_t;

static bool drain_cb(const char *key, void *value, void *ctx) {
  (void)key;
  drain_t *d = ctx;
  value_t *v = value;
  for (size_t i = 0; i < v->n; i++) {
    cqrs_read_answer_t a;
    cqrs_single_read_answer(d->read, d->o, v->seen, v->waiters[i].min_version, &a);
    d->ws->n_waiters--;
    d->cb(v->waiters[i].token, d->o, &a, d->ctx);
    cqrs_read_answer_cleanup(&a);
  }
  return true;
}

void cqrs_waitset_drain(cqrs_waitset_t *ws, cqrs_read_outcome_t o, cqrs_waitset_settle_cb cb, void *ctx) {
  BSON_ASSERT(ws->n_batches == 0 && o != CQRS_READ_WAIT && o != CQRS_READ_FRESH && o != CQRS_READ_STALE);
  for (size_t i = 0; i < ws->n_groups; i++) {
    drain_t d = {ws, ws->groups[i].read, o, cb, ctx};
    cqrs_map_filter(ws->groups[i].values, drain_cb, &d);
  }
}
