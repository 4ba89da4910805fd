/* What an operator sees of a saga instance (sagas.h): pure. */
#include "sagas.h"

#include "saga.h" /* saga-svc's saga types and states: one definition */

#include "cqrs/util.h"

#include <string.h>

#define STUCK "stuck" /* admin-svc's own: a running saga overdue */

static const char *const states[] = {CQRS_SAGA_RUNNING, CQRS_SAGA_COMPLETED, CQRS_SAGA_COMPENSATED, CQRS_SAGA_FAILED,
                                     STUCK};

bool admin_saga_type_known(const char *s) { return cqrs_saga_find(s) != NULL; }

bool admin_saga_state_known(const char *s) {
  for (size_t i = 0; i < sizeof states / sizeof *states; i++)
    if (strcmp(states[i], s) == 0) return true;
  return false;
}

static const char *str(const bson_t *doc, const char *key) {
  bson_iter_t it;
  if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, NULL);
  return "";
}

/* Calls cb on each document of array member key of doc. */
static void each(const bson_t *doc, const char *key, void (*cb)(const bson_t *item, void *ctx), void *ctx) {
  bson_iter_t it, ai;
  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ai)) return;
  while (bson_iter_next(&ai)) {
    const uint8_t *raw;
    uint32_t len;
    bson_t item;
    if (!BSON_ITER_HOLDS_DOCUMENT(&ai)) continue;
    bson_iter_document(&ai, &len, &raw);
    if (bson_init_static(&item, raw, len)) cb(&item, ctx);
  }
}

typedef struct {
  int64_t before_ms;
  bool overdue;
} overdue_t;

static void step_overdue(const bson_t *step, void *ctx) {
  overdue_t *o = ctx;
  int64_t at;
  if (strcmp(str(step, "outcome"), CQRS_SAGA_PENDING) == 0 && cqrs_time_parse_rfc3339(str(step, "at"), &at) &&
      at <= o->before_ms)
    o->overdue = true;
}

static void deadline_overdue(const bson_t *d, void *ctx) {
  overdue_t *o = ctx;
  int64_t due;
  if (cqrs_time_parse_rfc3339(str(d, "due"), &due) && due <= o->before_ms) o->overdue = true;
}

const char *admin_saga_view_state(const bson_t *instance, int64_t now_ms, int64_t stuck_after_ms) {
  const char *state = str(instance, "state");
  if (strcmp(state, CQRS_SAGA_RUNNING) != 0) return state;
  overdue_t o = {now_ms - stuck_after_ms, false};
  each(instance, "steps", step_overdue, &o);
  each(instance, "deadlines", deadline_overdue, &o);
  return o.overdue ? STUCK : state;
}

typedef struct {
  bson_t *array;
  uint32_t n;
} list_t;

static void add_step(const bson_t *step, void *ctx) {
  list_t *l = ctx;
  char key[16];
  const char *k;
  bson_t s;
  bson_iter_t it;
  bson_uint32_to_string(l->n++, &k, key, sizeof key);
  bson_append_document_begin(l->array, k, -1, &s);
  BSON_APPEND_UTF8(&s, "at", str(step, "at"));
  BSON_APPEND_UTF8(&s, "trigger", str(step, "trigger"));
  if (bson_iter_init_find(&it, step, "command") && BSON_ITER_HOLDS_DOCUMENT(&it))
    bson_append_iter(&s, "command", -1, &it);
  else
    BSON_APPEND_NULL(&s, "command");
  const char *id = str(step, "commandId");
  if (*id)
    BSON_APPEND_UTF8(&s, "commandId", id);
  else
    BSON_APPEND_NULL(&s, "commandId");
  /* a note (a step without a command) has no outcome of its own: it names what happened */
  const char *outcome = str(step, "outcome");
  BSON_APPEND_UTF8(&s, "outcome", *outcome ? outcome : str(step, "step"));
  bson_append_document_end(l->array, &s);
}

static void add_deadline(const bson_t *d, void *ctx) {
  list_t *l = ctx;
  char key[16];
  const char *k;
  bson_t s;
  bson_uint32_to_string(l->n++, &k, key, sizeof key);
  bson_append_document_begin(l->array, k, -1, &s);
  BSON_APPEND_UTF8(&s, "due", str(d, "due"));
  BSON_APPEND_UTF8(&s, "what", str(d, "what"));
  bson_append_document_end(l->array, &s);
}

void admin_saga_view(const bson_t *instance, const char *view_state, bool detail, bson_t *out) {
  static const char *const members[] = {"sagaId", "type", "state", "key", "tenant", "startedAt", "updatedAt"};
  for (size_t i = 0; i < sizeof members / sizeof *members; i++)
    BSON_APPEND_UTF8(out, members[i], strcmp(members[i], "state") == 0 ? view_state : str(instance, members[i]));
  if (!detail) return;
  bson_t array;
  list_t l = {&array, 0};
  bson_append_array_begin(out, "steps", -1, &array);
  each(instance, "steps", add_step, &l);
  bson_append_array_end(out, &array);
  l.n = 0;
  bson_append_array_begin(out, "deadlines", -1, &array);
  each(instance, "deadlines", add_deadline, &l);
  bson_append_array_end(out, &array);
}
