/* Exactly-once accounting: the pure checker (see accounting.h). */
#include "accounting_internal.h"

#include "cqrs/config.h"
#include "cqrs/map.h"
#include "cqrs/tenant.h"
#include "fold.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small containers ---------------------------------------------------- */

void tk_acct_list_free(void *p) {
  tk_acct_list_t *l = p;
  free(l->v);
  free(l);
}

void tk_acct_push(cqrs_map_t *m, const char *key, size_t i) {
  tk_acct_list_t *l = cqrs_map_get(m, key);
  if (!l) cqrs_map_put(m, key, l = calloc(1, sizeof *l));
  if (l->n == l->cap) l->v = realloc(l->v, (l->cap = l->cap ? l->cap * 2 : 4) * sizeof *l->v);
  l->v[l->n++] = i;
}

const tk_acct_list_t *tk_acct_list(const cqrs_map_t *m, const char *key) {
  static const tk_acct_list_t empty = {0};
  const tk_acct_list_t *l = cqrs_map_get(m, key);
  return l ? l : &empty;
}

const char *tk_acct_tenant(const char *tenant) { return tenant && *tenant ? tenant : CQRS_TENANT_DEFAULT; }

const char *tk_acct_key(char *buf, size_t cap, const char *tenant, const char *id) {
  snprintf(buf, cap, "%s/%s", tenant, id ? id : "");
  return buf;
}

bool tk_acct_str_eq(const char *a, const char *b) { return a && b ? strcmp(a, b) == 0 : a == b; }

void tk_acct_violation(tk_acct_report_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = NULL;
  if (vasprintf(&line, fmt, ap) < 0) line = NULL;
  va_end(ap);
  r->violations = realloc(r->violations, (r->n_violations + 1) * sizeof *r->violations);
  r->violations[r->n_violations++] = line ? line : strdup("(violation)");
}

/* ---- the log: versions per aggregate ------------------------------------- */

static int cmp_i64(int64_t a, int64_t b) { return (a > b) - (a < b); }

/* Aggregate (tenant, type, id), then log position; ctx is the events. */
static int by_aggregate_then_log(const void *a, const void *b, void *ctx) {
  const tk_acct_event_t *ev = ctx, *x = &ev[*(const size_t *)a], *y = &ev[*(const size_t *)b];
  int c = strcmp(tk_acct_tenant(x->ev.tenant), tk_acct_tenant(y->ev.tenant));
  if (!c) c = strcmp(x->ev.aggregate_type ? x->ev.aggregate_type : "", y->ev.aggregate_type ? y->ev.aggregate_type : "");
  if (!c) c = strcmp(x->ev.aggregate_id ? x->ev.aggregate_id : "", y->ev.aggregate_id ? y->ev.aggregate_id : "");
  if (!c) c = cmp_i64(x->partition, y->partition);
  if (!c) c = cmp_i64(x->offset, y->offset);
  return c;
}

static bool same_aggregate(const tk_acct_event_t *x, const tk_acct_event_t *y) {
  return tk_acct_str_eq(tk_acct_tenant(x->ev.tenant), tk_acct_tenant(y->ev.tenant)) &&
         tk_acct_str_eq(x->ev.aggregate_type, y->ev.aggregate_type) &&
         tk_acct_str_eq(x->ev.aggregate_id, y->ev.aggregate_id);
}

static int cmp_version(const void *a, const void *b) { return cmp_i64(*(const int64_t *)a, *(const int64_t *)b); }

/* One aggregate's events ev[idx[0..n)] in log order. */
static void check_aggregate(const tk_acct_event_t *ev, const size_t *idx, size_t n, tk_acct_report_t *r) {
  const cqrs_event_t *first = &ev[idx[0]].ev;
  int64_t *versions = calloc(n, sizeof *versions);
  for (size_t i = 0; i < n; i++) {
    const tk_acct_event_t *e = &ev[idx[i]];
    versions[i] = e->ev.version;
    if (e->partition != ev[idx[0]].partition)
      tk_acct_violation(r, "aggregate %s/%s: events on partitions %d and %d (two writers)", first->aggregate_type,
                first->aggregate_id, ev[idx[0]].partition, e->partition);
    if (i > 0 && e->ev.version < versions[i - 1]) {
      r->reordered++;
      tk_acct_violation(r, "aggregate %s/%s: version %lld after version %lld in the log (offset %lld)",
                        first->aggregate_type,
                first->aggregate_id, (long long)e->ev.version, (long long)versions[i - 1], (long long)e->offset);
    }
  }
  qsort(versions, n, sizeof *versions, cmp_version);
  if (versions[0] != 1) {
    r->gaps++;
    tk_acct_violation(r, "aggregate %s/%s: versions start at %lld, not 1", first->aggregate_type, first->aggregate_id,
              (long long)versions[0]);
  }
  for (size_t i = 1; i < n; i++) {
    if (versions[i] == versions[i - 1]) {
      r->duplicated++;
      tk_acct_violation(r, "aggregate %s/%s: version %lld more than once", first->aggregate_type, first->aggregate_id,
                (long long)versions[i]);
    } else if (versions[i] != versions[i - 1] + 1) {
      r->gaps++;
      tk_acct_violation(r, "aggregate %s/%s: versions jump from %lld to %lld", first->aggregate_type, first->aggregate_id,
                (long long)versions[i - 1], (long long)versions[i]);
    }
  }
  free(versions);
}

static void check_versions(const tk_acct_input_t *in, tk_acct_report_t *r) {
  if (!in->n_events) return;
  size_t *idx = calloc(in->n_events, sizeof *idx);
  for (size_t i = 0; i < in->n_events; i++) idx[i] = i;
  qsort_r(idx, in->n_events, sizeof *idx, by_aggregate_then_log, (void *)in->events);
  for (size_t i = 0, j; i < in->n_events; i = j) {
    for (j = i + 1; j < in->n_events && same_aggregate(&in->events[idx[j]], &in->events[idx[i]]); j++) {
    }
    check_aggregate(in->events, idx + i, j - i, r);
  }
  free(idx);
}

/* ---- commands and results against the log -------------------------------- */

static void index_build(const tk_acct_input_t *in, tk_acct_index_t *x) {
  memset(x, 0, sizeof *x);
  x->by_cause = cqrs_map_new(tk_acct_list_free);
  x->by_id = cqrs_map_new(tk_acct_list_free);
  x->results = cqrs_map_new(tk_acct_list_free);
  x->commands = cqrs_map_new(tk_acct_list_free);
  char k[512];
  for (size_t i = 0; i < in->n_events; i++) {
    const cqrs_event_t *e = &in->events[i].ev;
    if (e->causation_id) tk_acct_push(x->by_cause, tk_acct_key(k, sizeof k, tk_acct_tenant(e->tenant), e->causation_id), i);
    if (e->id) tk_acct_push(x->by_id, e->id, i);
  }
  for (size_t i = 0; i < in->n_results; i++)
    tk_acct_push(x->results, tk_acct_key(k, sizeof k, in->results[i].tenant, in->results[i].command_id), i);
  for (size_t i = 0; i < in->n_commands; i++)
    tk_acct_push(x->commands,
                 tk_acct_key(k, sizeof k, tk_acct_tenant(in->commands[i].tenant), in->commands[i].command_id), i);
  if (in->sagas) tk_acct_index_sagas(in, x);
}

static void index_cleanup(tk_acct_index_t *x) {
  cqrs_map_destroy(x->by_cause);
  cqrs_map_destroy(x->by_id);
  cqrs_map_destroy(x->results);
  cqrs_map_destroy(x->commands);
  if (x->step_of) cqrs_map_destroy(x->step_of);
  free(x->steps);
}

/* The answers the command loop gives (and writes to command-results); 400,
 * 401, 413 and 503 come from the HTTP ingress alone. */
static bool from_command_loop(int status) {
  return status == 200 || status == 201 || status == 404 || status == 409 || status == 422;
}

static void check_event_matches(const tk_acct_event_t *e, const char *what, const char *command_id,
                                const char *aggregate_id, int64_t version, tk_acct_report_t *r) {
  if ((aggregate_id && !tk_acct_str_eq(e->ev.aggregate_id, aggregate_id)) || e->ev.version != version ||
      !tk_acct_str_eq(e->ev.causation_id, command_id))
    tk_acct_violation(r, "%s %s names event %s of %s v%lld, the log has it on %s v%lld caused by %s", what, command_id,
                      e->ev.id,
              aggregate_id ? aggregate_id : "?", (long long)version, e->ev.aggregate_id, (long long)e->ev.version,
              e->ev.causation_id ? e->ev.causation_id : "(none)");
}

static void check_command(const tk_acct_input_t *in, const tk_acct_index_t *x, const tk_acct_command_t *c,
                          tk_acct_report_t *r) {
  char k[512];
  const char *tenant = tk_acct_tenant(c->tenant);
  tk_acct_key(k, sizeof k, tenant, c->command_id);
  const tk_acct_list_t *evs = tk_acct_list(x->by_cause, k), *res = tk_acct_list(x->results, k);
  bool names_event = (c->status == 201 || c->status == 200) && c->event_id;
  if (c->status == 201 || c->status == 200) {
    r->acknowledged++;
    if (names_event && evs->n == 0) {
      r->lost++;
      tk_acct_violation(r, "command %s answered %d (event %s, %s v%lld) has no event in the log", c->command_id, c->status,
                c->event_id, c->aggregate_id ? c->aggregate_id : "?", (long long)c->version);
    } else if (names_event) {
      bool found = false;
      for (size_t i = 0; i < evs->n; i++) found |= tk_acct_str_eq(in->events[evs->v[i]].ev.id, c->event_id);
      if (!found)
        tk_acct_violation(r, "command %s answered %d with event %s, the log holds another one for it (%s)", c->command_id,
                  c->status, c->event_id, in->events[evs->v[0]].ev.id);
      for (size_t i = 0; i < evs->n; i++)
        if (tk_acct_str_eq(in->events[evs->v[i]].ev.id, c->event_id))
          check_event_matches(&in->events[evs->v[i]], "command", c->command_id, c->aggregate_id, c->version, r);
    } else if (evs->n > 0) {
      tk_acct_violation(r, "command %s answered 200 without an event (a no-op) but the log has event %s for it",
                        c->command_id,
                in->events[evs->v[0]].ev.id);
    }
  } else if (c->status == 0) {
    r->unknown++;
    if (c->delivered && res->n == 0)
      tk_acct_violation(r, "command %s reached the commands topic but has no result on command-results", c->command_id);
  } else {
    r->refused++;
    if (evs->n > 0)
      tk_acct_violation(r, "command %s was refused (%d) but the log has event %s for it", c->command_id, c->status,
                in->events[evs->v[0]].ev.id);
  }
  if (evs->n > 1)
    tk_acct_violation(r, "command %s has %zu events in the log (%s, %s): at most one", c->command_id, evs->n,
              in->events[evs->v[0]].ev.id, in->events[evs->v[1]].ev.id);
  if (from_command_loop(c->status)) {
    bool found = false;
    for (size_t i = 0; i < res->n; i++) {
      const tk_acct_result_t *rs = &in->results[res->v[i]];
      found |= rs->status == c->status && tk_acct_str_eq(rs->event_id, names_event ? c->event_id : NULL);
    }
    if (!found)
      tk_acct_violation(r, "command %s: its answer (%d, event %s) is not on command-results (%zu results for it)",
                c->command_id, c->status, names_event ? c->event_id : "none", res->n);
  }
}

static void check_result(const tk_acct_input_t *in, const tk_acct_index_t *x, const tk_acct_result_t *rs,
                         tk_acct_report_t *r) {
  if (!*rs->tenant) return; /* a 401: no tenant, nothing decided */
  char k[512];
  if ((rs->status == 201 || rs->status == 200) && rs->event_id) {
    const tk_acct_list_t *evs = tk_acct_list(x->by_id, rs->event_id);
    if (evs->n == 0)
      tk_acct_violation(r, "result of %s (%d) names event %s, which is not in the log", rs->command_id, rs->status,
                        rs->event_id);
    else
      check_event_matches(&in->events[evs->v[0]], "result of", rs->command_id, rs->aggregate_id, rs->version, r);
  } else if (rs->status >= 400) {
    const tk_acct_list_t *evs = tk_acct_list(x->by_cause, tk_acct_key(k, sizeof k, rs->tenant, rs->command_id));
    if (evs->n > 0)
      tk_acct_violation(r, "result of %s refuses it (%d) but the log has event %s for it", rs->command_id, rs->status,
                in->events[evs->v[0]].ev.id);
  }
}

static void check_log(const tk_acct_input_t *in, const tk_acct_index_t *x, tk_acct_report_t *r) {
  char k[512];
  for (size_t i = 0; i < in->n_events; i++) {
    const cqrs_event_t *e = &in->events[i].ev;
    const tk_acct_list_t *same_id = tk_acct_list(x->by_id, e->id);
    if (same_id->n > 1 && same_id->v[0] == i)
      tk_acct_violation(r, "event id %s appears %zu times in the log", e->id, same_id->n);
    tk_acct_key(k, sizeof k, tk_acct_tenant(e->tenant), e->causation_id);
    bool client = e->causation_id && tk_acct_list(x->commands, k)->n > 0;
    bool saga = e->causation_id && x->step_of && tk_acct_list(x->step_of, k)->n > 0;
    /* a client command's events are counted by check_command */
    const tk_acct_list_t *same_cause = e->causation_id ? tk_acct_list(x->by_cause, k) : NULL;
    if (!client && same_cause && same_cause->n > 1 && same_cause->v[0] == i) {
      r->duplicated += same_cause->n - 1;
      tk_acct_violation(r, "%s %s has %zu events in the log (%s, %s): decided more than once",
                saga ? "saga command" : "causation id", e->causation_id, same_cause->n,
                in->events[same_cause->v[0]].ev.id, in->events[same_cause->v[1]].ev.id);
    }
    if (!in->all_commands_known) continue;
    if (!client && !saga) {
      r->orphans++;
      tk_acct_violation(r, "event %s (%s of %s v%lld) has no command the client sent (causation %s)", e->id, e->type,
                e->aggregate_id, (long long)e->version, e->causation_id ? e->causation_id : "(none)");
    }
  }
}

/* ---- read models ---------------------------------------------------------- */

/* Aggregate (type, id), version, then log position; ctx is the events. */
static int by_id_version_log(const void *a, const void *b, void *ctx) {
  const tk_acct_event_t *ev = ctx, *x = &ev[*(const size_t *)a], *y = &ev[*(const size_t *)b];
  int c = strcmp(x->ev.aggregate_type ? x->ev.aggregate_type : "", y->ev.aggregate_type ? y->ev.aggregate_type : "");
  if (!c) c = strcmp(x->ev.aggregate_id ? x->ev.aggregate_id : "", y->ev.aggregate_id ? y->ev.aggregate_id : "");
  if (!c) c = cmp_i64(x->ev.version, y->ev.version);
  if (!c) c = cmp_i64(x->partition, y->partition);
  if (!c) c = cmp_i64(x->offset, y->offset);
  return c;
}

/* SNAPSHOT_EVERY as the services under test read it from the environment
 * they inherit. */
static int snapshot_every(void) {
  const char *v = getenv("SNAPSHOT_EVERY");
  return v && *v ? atoi(v) : CQRS_SNAPSHOT_EVERY_DEFAULT;
}

bool tk_acct_expected_docs(const cqrs_projection_t *proj, const char *tenant, const tk_acct_event_t *events,
                           size_t n_events, bson_t ***docs, size_t *n, cqrs_error_t *err) {
  *docs = NULL;
  *n = 0;
  size_t *idx = calloc(n_events ? n_events : 1, sizeof *idx), m = 0;
  for (size_t i = 0; i < n_events; i++)
    if (tk_acct_str_eq(tk_acct_tenant(events[i].ev.tenant), tenant) &&
        (!proj->aggregate_type || tk_acct_str_eq(proj->aggregate_type, events[i].ev.aggregate_type)))
      idx[m++] = i;
  qsort_r(idx, m, sizeof *idx, by_id_version_log, (void *)events);
  cqrs_write_t *writes = cqrs_writes_new(m);
  size_t k = 0;
  bool ok = true;
  /* a reading projection (snapshots) reads the tenant's events and its own
   * writes so far, as projector-svc reads the history and its collection */
  cqrs_event_t *log = calloc(m ? m : 1, sizeof *log);
  for (size_t i = 0; i < m; i++) log[i] = events[idx[i]].ev;
  cqrs_memory_reader_t mem = {log, m, writes, &k};
  cqrs_projection_reader_t reader;
  cqrs_projection_memory_reader(&reader, &mem, snapshot_every());
  for (size_t i = 0; ok && i < m; i++) {
    const cqrs_event_t *e = &events[idx[i]].ev;
    /* a version met again is what the projector's version guard ignores;
     * a per-event read model (no aggregate type) records every event */
    if (proj->aggregate_type && i > 0 && events[idx[i - 1]].ev.version == e->version &&
        tk_acct_str_eq(events[idx[i - 1]].ev.aggregate_id, e->aggregate_id))
      continue;
    bool skip = false;
    ok = cqrs_projection_apply(proj, &reader, e, &writes[k], &skip, err);
    if (ok && !skip)
      k++;
    else
      cqrs_write_cleanup(&writes[k]);
  }
  cqrs_fold_t fold = {0};
  if (ok && k > 0 && (ok = cqrs_fold(writes, NULL, k, &fold, err))) {
    *docs = calloc(fold.n ? fold.n : 1, sizeof **docs);
    for (size_t i = 0; i < fold.n; i++)
      if (fold.writes[i].w.upsert) (*docs)[(*n)++] = bson_copy(&fold.writes[i].insert);
    cqrs_fold_cleanup(&fold);
  }
  for (size_t i = 0; i < k; i++) cqrs_write_cleanup(&writes[i]);
  free(writes);
  free(log);
  free(idx);
  return ok;
}

void tk_acct_docs_free(bson_t **docs, size_t n) {
  for (size_t i = 0; i < n; i++) bson_destroy(docs[i]);
  free(docs);
}

static bool is_number(bson_type_t t) { return t == BSON_TYPE_DOUBLE || t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64; }

static bool docs_equal(const bson_t *a, const bson_t *b, bool array);

/* Equal as JSON values: numbers by value (a store may widen an int32), a
 * document's members in any order, an array's items in order. */
static bool values_equal(const bson_iter_t *x, const bson_iter_t *y) {
  bson_type_t tx = bson_iter_type(x), ty = bson_iter_type(y);
  if (is_number(tx) && is_number(ty)) return bson_iter_as_double(x) == bson_iter_as_double(y);
  if (tx != ty) return false;
  switch (tx) {
  case BSON_TYPE_UTF8: return strcmp(bson_iter_utf8(x, NULL), bson_iter_utf8(y, NULL)) == 0;
  case BSON_TYPE_BOOL: return bson_iter_bool(x) == bson_iter_bool(y);
  case BSON_TYPE_NULL: return true;
  case BSON_TYPE_DATE_TIME: return bson_iter_date_time(x) == bson_iter_date_time(y);
  case BSON_TYPE_DOCUMENT:
  case BSON_TYPE_ARRAY: {
    const uint8_t *dx, *dy;
    uint32_t lx, ly;
    if (tx == BSON_TYPE_DOCUMENT)
      bson_iter_document(x, &lx, &dx), bson_iter_document(y, &ly, &dy);
    else
      bson_iter_array(x, &lx, &dx), bson_iter_array(y, &ly, &dy);
    bson_t a, b;
    return bson_init_static(&a, dx, lx) && bson_init_static(&b, dy, ly) && docs_equal(&a, &b, tx == BSON_TYPE_ARRAY);
  }
  default: return false; /* no read model field has another type */
  }
}

static bool docs_equal(const bson_t *a, const bson_t *b, bool array) {
  if (bson_count_keys(a) != bson_count_keys(b)) return false;
  bson_iter_t x, y;
  if (!bson_iter_init(&x, a) || !bson_iter_init(&y, b)) return false;
  if (array) {
    while (bson_iter_next(&x))
      if (!bson_iter_next(&y) || !values_equal(&x, &y)) return false;
    return true;
  }
  while (bson_iter_next(&x)) {
    bson_iter_t f;
    if (!bson_iter_init_find(&f, b, bson_iter_key(&x)) || !values_equal(&x, &f)) return false;
  }
  return true;
}

static char *json_of(const bson_t *d) { return bson_as_relaxed_extended_json(d, NULL); }

/* The first field where stored differs from expected, for the message. */
static const char *first_difference(const bson_t *expected, const bson_t *stored) {
  bson_iter_t x, f;
  if (bson_iter_init(&x, expected))
    while (bson_iter_next(&x))
      if (!bson_iter_init_find(&f, stored, bson_iter_key(&x)) || !values_equal(&x, &f)) return bson_iter_key(&x);
  if (bson_iter_init(&x, stored))
    while (bson_iter_next(&x))
      if (!bson_iter_init_find(&f, expected, bson_iter_key(&x))) return bson_iter_key(&x);
  return "?";
}

static const char *doc_id(const bson_t *d) {
  bson_iter_t it;
  return bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

static void check_store(const tk_acct_input_t *in, const tk_acct_docs_t *s, tk_acct_report_t *r) {
  bson_t **want = NULL;
  size_t n_want = 0;
  cqrs_error_t err = {0};
  if (!tk_acct_expected_docs(s->projection, s->tenant, in->events, in->n_events, &want, &n_want, &err)) {
    tk_acct_violation(r, "read model %s of %s: the log does not fold: %s", s->projection->name, s->tenant, err.message);
    return;
  }
  cqrs_map_t *stored = cqrs_map_new(NULL), *wanted = cqrs_map_new(NULL);
  for (size_t i = 0; i < s->n; i++) {
    const char *id = doc_id(s->docs[i]);
    if (id) cqrs_map_put(stored, id, (void *)s->docs[i]);
  }
  for (size_t i = 0; i < n_want; i++) {
    const char *id = doc_id(want[i]);
    cqrs_map_put(wanted, id, want[i]);
    const bson_t *got = cqrs_map_get(stored, id);
    r->documents++;
    if (!got) {
      r->documents_wrong++;
      tk_acct_violation(r, "read model %s of %s: document %s is missing", s->projection->name, s->tenant, id);
    } else if (!docs_equal(want[i], got, false)) {
      r->documents_wrong++;
      char *a = json_of(want[i]), *b = json_of(got);
      tk_acct_violation(r,
                        "read model %s of %s: document %s differs from the fold of the log at \"%s\": expected %s, "
                        "stored %s",
                s->projection->name, s->tenant, id, first_difference(want[i], got), a, b);
      bson_free(a), bson_free(b);
    }
  }
  for (size_t i = 0; i < s->n; i++) {
    const char *id = doc_id(s->docs[i]);
    if (!id || !cqrs_map_get(wanted, id)) {
      r->documents_wrong++;
      tk_acct_violation(r, "read model %s of %s: document %s is explained by no event", s->projection->name, s->tenant,
                id ? id : "(no string _id)");
    }
  }
  cqrs_map_destroy(stored);
  cqrs_map_destroy(wanted);
  tk_acct_docs_free(want, n_want);
}

/* ---- the report ------------------------------------------------------------ */

void tk_acct_check(const tk_acct_input_t *in, tk_acct_report_t *r) {
  memset(r, 0, sizeof *r);
  r->commands = in->n_commands;
  r->events = in->n_events;
  tk_acct_index_t x;
  index_build(in, &x);
  check_versions(in, r);
  for (size_t i = 0; i < in->n_commands; i++) check_command(in, &x, &in->commands[i], r);
  for (size_t i = 0; i < in->n_results; i++) check_result(in, &x, &in->results[i], r);
  check_log(in, &x, r);
  for (size_t i = 0; i < in->n_stores; i++) check_store(in, &in->stores[i], r);
  if (in->sagas) tk_acct_check_sagas(in, &x, r);
  index_cleanup(&x);
}

void tk_acct_report_cleanup(tk_acct_report_t *r) {
  for (size_t i = 0; i < r->n_violations; i++) free(r->violations[i]);
  free(r->violations);
  memset(r, 0, sizeof *r);
}

char *tk_acct_report_format(const tk_acct_report_t *r, size_t max_violations) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  fprintf(f,
          "commands %zu: acknowledged %zu, refused %zu, unknown %zu; lost %zu, duplicated %zu, reordered %zu, "
          "gaps %zu, orphans %zu; events %zu; documents %zu (%zu wrong)",
          r->commands, r->acknowledged, r->refused, r->unknown, r->lost, r->duplicated, r->reordered, r->gaps,
          r->orphans, r->events, r->documents, r->documents_wrong);
  if (r->sagas)
    fprintf(f, "; sagas %zu, their commands %zu: duplicated %zu, unfinished %zu, wrong %zu", r->sagas,
            r->saga_commands, r->saga_duplicated, r->saga_unfinished, r->saga_wrong);
  fprintf(f, "; violations %zu\n", r->n_violations);
  for (size_t i = 0; i < r->n_violations && i < max_violations; i++) fprintf(f, "  %s\n", r->violations[i]);
  if (r->n_violations > max_violations) fprintf(f, "  ... %zu more\n", r->n_violations - max_violations);
  fclose(f);
  return out;
}
