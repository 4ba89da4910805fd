/* What every saga shares (saga.h): instances, steps, deadlines, commandIds. */
#include "saga.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/util.h"

#include <assert.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A nonce search gives up here (never reached: each try lands on a given
 * partition with probability 1/n). */
#define NONCE_MAX 100000

bson_t *cqrs_saga_emit(cqrs_saga_reaction_t *r, const char *step, const char *command_type,
                       const char *aggregate_id, int64_t expected_version) {
  if (r->n_emits == r->cap_emits) {
    r->cap_emits = r->cap_emits ? r->cap_emits * 2 : 4;
    r->emits = cqrs_xrealloc(r->emits, r->cap_emits * sizeof *r->emits);
  }
  cqrs_saga_emit_t *e = &r->emits[r->n_emits++];
  e->step = cqrs_xstrdup(step);
  e->command_type = command_type;
  e->aggregate_id = cqrs_xstrdup(aggregate_id);
  e->expected_version = expected_version;
  bson_init(&e->fields);
  return &e->fields;
}

void cqrs_saga_set_deadline(cqrs_saga_reaction_t *r, int64_t due_ms, const char *what) {
  assert(r->n_deadlines < sizeof r->deadlines / sizeof r->deadlines[0]);
  r->deadlines[r->n_deadlines++] = (cqrs_saga_deadline_t){due_ms, what};
}

static void reaction_cleanup(cqrs_saga_reaction_t *r) {
  for (size_t i = 0; i < r->n_emits; i++) {
    free(r->emits[i].step);
    free(r->emits[i].aggregate_id);
    bson_destroy(&r->emits[i].fields);
  }
  free(r->emits);
  bson_destroy(&r->data);
}

const cqrs_saga_t *cqrs_saga_find(const char *type) {
  for (size_t i = 0; cqrs_sagas[i]; i++)
    if (strcmp(cqrs_sagas[i]->type, type) == 0) return cqrs_sagas[i];
  return NULL;
}

bool cqrs_saga_triggered_by(const cqrs_saga_t *s, const char *event_type) {
  for (size_t i = 0; s->triggers[i]; i++)
    if (strcmp(s->triggers[i]->name, event_type) == 0) return true;
  return false;
}

void cqrs_saga_id(const char *tenant, const char *type, const char *key, char out[37]) {
  size_t n = strlen(tenant) + strlen(type) + strlen(key) + 3;
  char *name = cqrs_xmalloc(n);
  snprintf(name, n, "%s/%s/%s", tenant, type, key);
  cqrs_uuid_from_name(name, out);
  free(name);
}

const char *cqrs_saga_str(const bson_t *doc, const char *key) {
  bson_iter_t it;
  if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, NULL);
  return "";
}

/* The array or document member key of doc as a static view (an empty one when absent). */
static void sub(const bson_t *doc, const char *key, bson_t *out) {
  bson_iter_t it;
  const uint8_t *raw;
  uint32_t len;
  if (doc && bson_iter_init_find(&it, doc, key) && (BSON_ITER_HOLDS_ARRAY(&it) || BSON_ITER_HOLDS_DOCUMENT(&it))) {
    if (BSON_ITER_HOLDS_ARRAY(&it))
      bson_iter_array(&it, &len, &raw);
    else
      bson_iter_document(&it, &len, &raw);
    if (bson_init_static(out, raw, len)) return;
  }
  bson_init(out);
}

bool cqrs_saga_next_deadline(const bson_t *instance, int64_t *due_ms, const char **what) {
  bson_t list;
  bson_iter_t it;
  bool found = false;
  sub(instance, "deadlines", &list);
  if (bson_iter_init(&it, &list)) {
    while (bson_iter_next(&it)) {
      bson_t d;
      const uint8_t *raw;
      uint32_t len;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
      bson_iter_document(&it, &len, &raw);
      int64_t ms;
      if (!bson_init_static(&d, raw, len) || !cqrs_time_parse_rfc3339(cqrs_saga_str(&d, "due"), &ms)) continue;
      if (!found || ms < *due_ms) {
        *due_ms = ms;
        *what = cqrs_saga_str(&d, "what");
        found = true;
      }
    }
  }
  return found;
}

/* Iterates the documents of array member key of doc. */
#define EACH_DOC(doc, key, item, body)                                                                         \
  do {                                                                                                         \
    bson_t list_;                                                                                              \
    bson_iter_t it_;                                                                                           \
    sub((doc), (key), &list_);                                                                                 \
    if (bson_iter_init(&it_, &list_)) {                                                                        \
      while (bson_iter_next(&it_)) {                                                                           \
        const uint8_t *raw_;                                                                                   \
        uint32_t len_;                                                                                         \
        bson_t item;                                                                                           \
        if (!BSON_ITER_HOLDS_DOCUMENT(&it_)) continue;                                                         \
        bson_iter_document(&it_, &len_, &raw_);                                                                \
        if (!bson_init_static(&item, raw_, len_)) continue;                                                    \
        body                                                                                                   \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

void cqrs_saga_pending_steps(const bson_t *instance, void (*cb)(const char *command_id, void *ctx), void *ctx) {
  EACH_DOC(instance, "steps", step, {
    if (strcmp(cqrs_saga_str(&step, "outcome"), CQRS_SAGA_PENDING) == 0) cb(cqrs_saga_str(&step, "commandId"), ctx);
  });
}

static bool has_step(const bson_t *instance, const char *name) {
  bool found = false;
  EACH_DOC(instance, "steps", step, {
    if (strcmp(cqrs_saga_str(&step, "step"), name) == 0) found = true;
  });
  return found;
}

/* The commandId of step: the first UUIDv5 of "<sagaId>/<step>/<nonce>" whose
 * result key lands in the saga's partition of command-results. */
static void command_id_of(const cqrs_saga_ctx_t *ctx, const char *saga_id, const char *step, char out[37]) {
  size_t n = strlen(saga_id) + strlen(step) + 16, kn = strlen(ctx->tenant) + 40;
  char *name = cqrs_xmalloc(n), *key = cqrs_xmalloc(kn);
  for (int nonce = 0; nonce < NONCE_MAX; nonce++) {
    snprintf(name, n, "%s/%s/%d", saga_id, step, nonce);
    cqrs_uuid_from_name(name, out);
    if (ctx->n_partitions <= 0) break;
    snprintf(key, kn, "%s/%s", ctx->tenant, out);
    if (rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), ctx->n_partitions, NULL, NULL) == ctx->partition)
      break;
  }
  free(name);
  free(key);
}

/* The command record value: the envelope, then the fields, flat. */
static char *command_json(const cqrs_saga_emit_t *e, const char *command_id, const char *saga_id, size_t *len) {
  bson_t doc;
  bson_init(&doc);
  BSON_APPEND_UTF8(&doc, "commandType", e->command_type);
  BSON_APPEND_UTF8(&doc, "commandId", command_id);
  BSON_APPEND_UTF8(&doc, "correlationId", saga_id);
  BSON_APPEND_UTF8(&doc, "aggregateId", e->aggregate_id);
  if (e->expected_version > 0) BSON_APPEND_INT64(&doc, "expectedVersion", e->expected_version);
  bson_concat(&doc, &e->fields);
  char *json = cqrs_json_write(&doc, len);
  bson_destroy(&doc);
  return json;
}

/* Finds the step of command_id among the instance's steps: fills in->step
 * (borrowed from instance) and in->pending. False when the instance never
 * emitted it or it is answered already. */
static bool find_result_step(const bson_t *instance, const char *command_id, cqrs_saga_input_t *in) {
  bool found = false;
  size_t pending = 0;
  EACH_DOC(instance, "steps", step, {
    bool is_pending = strcmp(cqrs_saga_str(&step, "outcome"), CQRS_SAGA_PENDING) == 0;
    if (is_pending && strcmp(cqrs_saga_str(&step, "commandId"), command_id) == 0) {
      in->step = cqrs_saga_str(&step, "step");
      found = true;
    } else if (is_pending) {
      pending++;
    }
  });
  in->pending = pending;
  return found;
}

static bool has_deadline(const bson_t *instance, int64_t due_ms, const char *what) {
  bool found = false;
  EACH_DOC(instance, "deadlines", d, {
    int64_t due = 0;
    if (cqrs_time_parse_rfc3339(cqrs_saga_str(&d, "due"), &due) && due == due_ms &&
        strcmp(cqrs_saga_str(&d, "what"), what) == 0)
      found = true;
  });
  return found;
}

static bool finished(const char *status) {
  return status && (strcmp(status, CQRS_SAGA_COMPLETED) == 0 || strcmp(status, CQRS_SAGA_COMPENSATED) == 0 ||
                    strcmp(status, CQRS_SAGA_FAILED) == 0);
}

/* The trigger name of a step: the event type, "result:<step>" or "deadline:<what>". */
static void trigger_of(const cqrs_saga_input_t *in, char *out, size_t n) {
  if (in->kind == CQRS_SAGA_EVENT)
    snprintf(out, n, "%s", in->event->name);
  else if (in->kind == CQRS_SAGA_RESULT)
    snprintf(out, n, "result:%s", in->step);
  else
    snprintf(out, n, "deadline:%s", in->what);
}

static void append_step(bson_t *steps, uint32_t *i, const char *now, const char *trigger, const char *step,
                        const bson_t *command, const char *command_id, const char *outcome) {
  char key[16];
  const char *k;
  bson_t s;
  bson_uint32_to_string((*i)++, &k, key, sizeof key);
  bson_append_document_begin(steps, k, -1, &s);
  BSON_APPEND_UTF8(&s, "at", now);
  BSON_APPEND_UTF8(&s, "trigger", trigger);
  BSON_APPEND_UTF8(&s, "step", step);
  if (command)
    BSON_APPEND_DOCUMENT(&s, "command", command);
  else
    BSON_APPEND_NULL(&s, "command");
  if (command_id)
    BSON_APPEND_UTF8(&s, "commandId", command_id);
  else
    BSON_APPEND_NULL(&s, "commandId");
  BSON_APPEND_UTF8(&s, "outcome", outcome);
  bson_append_document_end(steps, &s);
}

void cqrs_saga_run(const cqrs_saga_t *s, const bson_t *instance, const cqrs_saga_ctx_t *ctx,
                   cqrs_saga_input_t *in, const char *command_id, int64_t deadline_due_ms, cqrs_saga_outcome_t *out) {
  memset(out, 0, sizeof *out);
  const char *status = instance ? cqrs_saga_str(instance, "state") : NULL;
  if (!instance && in->kind != CQRS_SAGA_EVENT) return; /* nothing to answer */
  if (in->kind == CQRS_SAGA_EVENT && finished(status)) return;
  if (in->kind == CQRS_SAGA_RESULT && !find_result_step(instance, command_id, in)) return;
  if (in->kind == CQRS_SAGA_DEADLINE && !has_deadline(instance, deadline_due_ms, in->what)) return; /* fired */
  char saga_id[37];
  cqrs_saga_id(ctx->tenant, s->type, ctx->key, saga_id);
  bson_t data;
  sub(instance, "data", &data);
  cqrs_saga_reaction_t r = {0};
  bson_init(&r.data);
  s->react(&data, status && *status ? status : NULL, in, ctx->now, &r);
  bool deadline_fired = in->kind == CQRS_SAGA_DEADLINE;
  if (!r.changed && in->kind == CQRS_SAGA_EVENT) goto done;

  char trigger[160];
  trigger_of(in, trigger, sizeof trigger);
  bson_t *next = bson_new(), steps, deadlines;
  BSON_APPEND_UTF8(next, "sagaId", saga_id);
  BSON_APPEND_UTF8(next, "type", s->type);
  BSON_APPEND_UTF8(next, "tenant", ctx->tenant);
  BSON_APPEND_UTF8(next, "key", ctx->key);
  BSON_APPEND_UTF8(next, "state", r.status ? r.status : status && *status ? status : CQRS_SAGA_RUNNING);
  BSON_APPEND_UTF8(next, "startedAt", instance ? cqrs_saga_str(instance, "startedAt") : ctx->now);
  BSON_APPEND_UTF8(next, "updatedAt", ctx->now);
  BSON_APPEND_INT32(next, "partition", ctx->partition);
  BSON_APPEND_DOCUMENT(next, "data", r.changed ? &r.data : &data);

  /* steps: the old ones (the answered one with its outcome), then the new */
  uint32_t n = 0;
  char outcome[16];
  snprintf(outcome, sizeof outcome, "%d", in->status);
  bson_append_array_begin(next, "steps", -1, &steps);
  EACH_DOC(instance, "steps", step, {
    char key[16];
    const char *k;
    bson_uint32_to_string(n++, &k, key, sizeof key);
    if (in->kind == CQRS_SAGA_RESULT && strcmp(cqrs_saga_str(&step, "commandId"), command_id) == 0) {
      bson_t copy;
      bson_append_document_begin(&steps, k, -1, &copy);
      bson_copy_to_excluding_noinit(&step, &copy, "outcome", NULL);
      BSON_APPEND_UTF8(&copy, "outcome", outcome);
      bson_append_document_end(&steps, &copy);
    } else {
      bson_append_document(&steps, k, -1, &step);
    }
  });
  if (r.note) append_step(&steps, &n, ctx->now, trigger, r.note, NULL, NULL, "");
  for (size_t i = 0; i < r.n_emits; i++) {
    const cqrs_saga_emit_t *e = &r.emits[i];
    if (has_step(instance, e->step)) continue; /* emitted once, ever */
    char id[37];
    command_id_of(ctx, saga_id, e->step, id);
    cqrs_saga_command_t c = {.command_id = cqrs_xstrdup(id), .aggregate_id = cqrs_xstrdup(e->aggregate_id)};
    c.json = command_json(e, id, saga_id, &c.len);
    bson_t *cmd = cqrs_json_parse(c.json, c.len, NULL);
    append_step(&steps, &n, ctx->now, trigger, e->step, cmd, id, CQRS_SAGA_PENDING);
    bson_destroy(cmd);
    out->commands = cqrs_xrealloc(out->commands, (out->n_commands + 1) * sizeof *out->commands);
    out->commands[out->n_commands++] = c;
  }
  bson_append_array_end(next, &steps);

  /* deadlines: the old ones but a cleared or fired one, then the new */
  uint32_t nd = 0;
  bool fired_removed = false;
  bson_append_array_begin(next, "deadlines", -1, &deadlines);
  if (!r.clear_deadlines) {
    EACH_DOC(instance, "deadlines", d, {
      int64_t due = 0;
      cqrs_time_parse_rfc3339(cqrs_saga_str(&d, "due"), &due);
      if (deadline_fired && !fired_removed && due == deadline_due_ms &&
          strcmp(cqrs_saga_str(&d, "what"), in->what) == 0) {
        fired_removed = true;
        continue;
      }
      char key[16];
      const char *k;
      bson_uint32_to_string(nd++, &k, key, sizeof key);
      bson_append_document(&deadlines, k, -1, &d);
    });
  }
  for (size_t i = 0; i < r.n_deadlines; i++) {
    char key[16], due[32];
    const char *k;
    bson_t d;
    bson_uint32_to_string(nd++, &k, key, sizeof key);
    cqrs_time_format_rfc3339(r.deadlines[i].due_ms, due);
    bson_append_document_begin(&deadlines, k, -1, &d);
    BSON_APPEND_UTF8(&d, "due", due);
    BSON_APPEND_UTF8(&d, "what", r.deadlines[i].what);
    bson_append_document_end(&deadlines, &d);
  }
  bson_append_array_end(next, &deadlines);
  out->instance = next;
done:
  reaction_cleanup(&r);
}

void cqrs_saga_outcome_cleanup(cqrs_saga_outcome_t *out) {
  if (out->instance) bson_destroy(out->instance);
  for (size_t i = 0; i < out->n_commands; i++) {
    free(out->commands[i].command_id);
    free(out->commands[i].aggregate_id);
    bson_free(out->commands[i].json);
  }
  free(out->commands);
  memset(out, 0, sizeof *out);
}
