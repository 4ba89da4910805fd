/* Exactly-once accounting of the sagas (accounting.h, "Sagas"): the saga
 * instances on saga-state against the log, command-results and the saga
 * commands on the commands topic. */
#include "accounting_internal.h"

#include "cqrs/events.h"
#include "saga.h"
#include "sagas/order_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The order aggregate's last happy-path status (command-svc/deciders/order.c):
 * with Cancelled, the statuses a cancel finds the order closed in (422). */
#define ORDER_DELIVERED "Delivered"
#define ORDER_CREATED "Created" /* an order without status updates */

#define step_violation(r, counter, s, fmt, ...)                                                                \
  ((r)->counter++, tk_acct_violation((r), "saga %s/%s step %s (command %s): " fmt, (s)->saga_type, (s)->saga_key, \
                                     (s)->name, (s)->command_id, __VA_ARGS__))

/* The array or document member key of doc as a static view; false when absent. */
static bool sub(const bson_t *doc, const char *key, bson_t *out) {
  bson_iter_t it;
  const uint8_t *raw;
  uint32_t len;
  if (!bson_iter_init_find(&it, doc, key)) return false;
  if (BSON_ITER_HOLDS_ARRAY(&it))
    bson_iter_array(&it, &len, &raw);
  else if (BSON_ITER_HOLDS_DOCUMENT(&it))
    bson_iter_document(&it, &len, &raw);
  else
    return false;
  return bson_init_static(out, raw, len);
}

void tk_acct_index_sagas(const tk_acct_input_t *in, tk_acct_index_t *x) {
  char k[512];
  x->step_of = cqrs_map_new(tk_acct_list_free);
  size_t cap = 0;
  for (size_t i = 0; i < in->n_saga_instances; i++) {
    const bson_t *doc = in->saga_instances[i];
    bson_t steps, step, command;
    bson_iter_t it;
    if (!sub(doc, "steps", &steps) || !bson_iter_init(&it, &steps)) continue;
    while (bson_iter_next(&it)) {
      const uint8_t *raw;
      uint32_t len;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
      bson_iter_document(&it, &len, &raw);
      if (!bson_init_static(&step, raw, len) || !*cqrs_saga_str(&step, "commandId")) continue; /* a note */
      bool has_command = sub(&step, "command", &command);
      if (x->n_steps == cap) x->steps = realloc(x->steps, (cap = cap ? cap * 2 : 64) * sizeof *x->steps);
      tk_acct_step_t *s = &x->steps[x->n_steps];
      *s = (tk_acct_step_t){.saga = i,
                            .tenant = tk_acct_tenant(cqrs_saga_str(doc, "tenant")),
                            .saga_type = cqrs_saga_str(doc, "type"),
                            .saga_key = cqrs_saga_str(doc, "key"),
                            .name = cqrs_saga_str(&step, "step"),
                            .command_id = cqrs_saga_str(&step, "commandId"),
                            .outcome = cqrs_saga_str(&step, "outcome"),
                            .command_type = has_command ? cqrs_saga_str(&command, "commandType") : "",
                            .aggregate_id = has_command ? cqrs_saga_str(&command, "aggregateId") : ""};
      tk_acct_push(x->step_of, tk_acct_key(k, sizeof k, s->tenant, s->command_id), x->n_steps++);
    }
  }
}

/* ---- each step: decided once, its outcome its result ---------------------- */

/* Two results of one command agree when they tell one decision: the same
 * event, or (no event) the same status. */
static bool results_agree(const tk_acct_result_t *a, const tk_acct_result_t *b) {
  if (a->event_id || b->event_id) return tk_acct_str_eq(a->event_id, b->event_id);
  return a->status == b->status;
}

static void check_step(const tk_acct_input_t *in, const tk_acct_index_t *x, size_t i, tk_acct_report_t *r) {
  const tk_acct_step_t *s = &x->steps[i];
  char k[512];
  tk_acct_key(k, sizeof k, s->tenant, s->command_id);
  r->saga_commands++;
  const tk_acct_list_t *same = tk_acct_list(x->step_of, k);
  if (same->n > 1 && same->v[0] == i) {
    const tk_acct_step_t *o = &x->steps[same->v[1]];
    step_violation(r, saga_duplicated, s, "the same commandId is step %s of saga %s/%s too", o->name, o->saga_type,
                   o->saga_key);
  }
  const tk_acct_list_t *res = tk_acct_list(x->results, k);
  for (size_t j = 1; j < res->n; j++) {
    const tk_acct_result_t *a = &in->results[res->v[0]], *b = &in->results[res->v[j]];
    if (!results_agree(a, b)) {
      step_violation(r, saga_duplicated, s, "decided twice: results %d (event %s) and %d (event %s)", a->status,
                     a->event_id ? a->event_id : "none", b->status, b->event_id ? b->event_id : "none");
      break;
    }
  }
  const tk_acct_list_t *evs = tk_acct_list(x->by_cause, k);
  for (size_t j = 0; j < evs->n; j++) {
    const cqrs_event_t *e = &in->events[evs->v[j]].ev;
    if (!tk_acct_str_eq(e->aggregate_id, s->aggregate_id))
      step_violation(r, saga_wrong, s, "its command names %s, its event %s is on %s", s->aggregate_id, e->id,
                     e->aggregate_id);
  }
  if (strcmp(s->outcome, CQRS_SAGA_PENDING) == 0) {
    if (res->n)
      step_violation(r, saga_wrong, s, "still pending, though command-results answers it %d",
                     in->results[res->v[0]].status);
    else
      step_violation(r, saga_unfinished, s, "%s", "no result on command-results");
  } else if (!res->n) {
    step_violation(r, saga_wrong, s, "outcome %s, but no result on command-results", s->outcome);
  } else if (atoi(s->outcome) != in->results[res->v[0]].status) {
    step_violation(r, saga_wrong, s, "outcome %s, but command-results answers it %d", s->outcome,
                   in->results[res->v[0]].status);
  }
}

/* ---- the commands topic: each saga command once -------------------------- */

static void check_emitted(const tk_acct_input_t *in, const tk_acct_index_t *x, tk_acct_report_t *r) {
  cqrs_map_t *saga_of = cqrs_map_new(NULL), *seen = cqrs_map_new(tk_acct_list_free);
  for (size_t i = 0; i < in->n_saga_instances; i++)
    cqrs_map_put(saga_of, cqrs_saga_str(in->saga_instances[i], "sagaId"), (void *)(uintptr_t)(i + 1));
  char k[512], kp[600];
  for (size_t i = 0; i < in->n_emitted; i++) {
    const tk_acct_emitted_t *e = &in->emitted[i];
    uintptr_t saga = (uintptr_t)cqrs_map_get(saga_of, e->correlation_id ? e->correlation_id : "");
    if (!saga) continue; /* no saga's */
    tk_acct_key(k, sizeof k, tk_acct_tenant(e->tenant), e->command_id);
    snprintf(kp, sizeof kp, "%s@%d", k, e->partition);
    tk_acct_push(seen, kp, i);
    const tk_acct_list_t *twice = tk_acct_list(seen, kp);
    if (twice->n == 2) {
      r->saga_duplicated++;
      tk_acct_violation(r,
                        "saga command %s of saga %s is on the commands topic twice (partition %d, offsets %lld and "
                        "%lld)",
                        e->command_id, e->correlation_id, e->partition,
                        (long long)in->emitted[twice->v[0]].offset, (long long)e->offset);
    }
    const tk_acct_list_t *steps = tk_acct_list(x->step_of, k);
    bool recorded = false;
    for (size_t j = 0; j < steps->n; j++) recorded |= x->steps[steps->v[j]].saga == saga - 1;
    if (!recorded) {
      r->saga_wrong++;
      tk_acct_violation(r, "saga %s emitted command %s (commands topic %d/%lld), which none of its steps records",
                        e->correlation_id, e->command_id, e->partition, (long long)e->offset);
    }
  }
  cqrs_map_destroy(saga_of);
  cqrs_map_destroy(seen);
}

/* ---- the instances: one per trigger -------------------------------------- */

/* "<tenant>/<type>/<key>" into buf. */
static const char *instance_key(char *buf, size_t cap, const char *tenant, const char *type, const char *key) {
  snprintf(buf, cap, "%s/%s/%s", tk_acct_tenant(tenant), type, key ? key : "");
  return buf;
}

static cqrs_map_t *instances_by_key(const tk_acct_input_t *in) {
  cqrs_map_t *m = cqrs_map_new(NULL);
  char k[512];
  for (size_t i = 0; i < in->n_saga_instances; i++) {
    const bson_t *d = in->saga_instances[i];
    instance_key(k, sizeof k, cqrs_saga_str(d, "tenant"), cqrs_saga_str(d, "type"), cqrs_saga_str(d, "key"));
    cqrs_map_put(m, k, (void *)d);
  }
  return m;
}

static void check_triggers(const tk_acct_input_t *in, const cqrs_map_t *instances, tk_acct_report_t *r) {
  char k[512];
  for (size_t i = 0; i < in->n_events; i++) {
    const cqrs_event_t *e = &in->events[i].ev;
    for (size_t s = 0; cqrs_sagas[s]; s++) {
      if (!e->type || !cqrs_saga_triggered_by(cqrs_sagas[s], e->type)) continue;
      if (cqrs_map_get(instances, instance_key(k, sizeof k, e->tenant, cqrs_sagas[s]->type, e->aggregate_id))) continue;
      r->saga_unfinished++;
      tk_acct_violation(r, "event %s (%s of %s v%lld) started no %s saga", e->id, e->type, e->aggregate_id,
                        (long long)e->version, cqrs_sagas[s]->type);
    }
  }
}

/* ---- orders: what the log says happened to each ------------------------- */

typedef struct {
  const cqrs_event_t *created; /* its OrderCreated; NULL when the log has none */
  const char *user_id, *customer_id; /* from OrderCreated (borrowed from its data) */
  size_t on_user, on_customer;       /* UserOrderRecorded / CustomerOrderRecorded naming it */
  const char *recorded_on;           /* the user aggregate of the (first) UserOrderRecorded */
  size_t cancels;                    /* OrderStatusUpdated to Cancelled */
  int64_t last_version;
  const char *status; /* after its last status update */
} order_t;

/* Decodes e's data with its type's current descriptor into u; false for a
 * type the contract does not know or an older schema version (no saga reads
 * those as they are). */
static bool decode(const cqrs_event_t *e, const cqrs_event_type_t *want, cqrs_event_data_t *u) {
  cqrs_error_t err = {0};
  return e->type && e->data && strcmp(e->type, want->name) == 0 && cqrs_event_schema_version(e) == want->version &&
         want->decode(e->data, u, &err);
}

static order_t *order_of(cqrs_map_t *orders, const char *tenant, const char *order_id) {
  char k[512];
  tk_acct_key(k, sizeof k, tk_acct_tenant(tenant), order_id);
  order_t *o = cqrs_map_get(orders, k);
  if (!o) {
    o = calloc(1, sizeof *o);
    o->status = ORDER_CREATED;
    cqrs_map_put(orders, k, o);
  }
  return o;
}

/* The orders of the log, and the users' creations ("<tenant>/<userId>" ->
 * their UserCreated). */
static void read_orders(const tk_acct_input_t *in, cqrs_map_t *orders, cqrs_map_t *users) {
  char k[512];
  for (size_t i = 0; i < in->n_events; i++) {
    const cqrs_event_t *e = &in->events[i].ev;
    cqrs_event_data_t u;
    if (decode(e, &cqrs_order_created_event, &u)) {
      order_t *o = order_of(orders, e->tenant, e->aggregate_id);
      o->created = e;
      o->user_id = u.order_created.user_id;
      o->customer_id = u.order_created.customer_id;
    } else if (decode(e, &cqrs_order_status_updated_event, &u)) {
      order_t *o = order_of(orders, e->tenant, e->aggregate_id);
      if (strcmp(u.order_status_updated.status, CQRS_ORDER_CANCELLED) == 0) o->cancels++;
      if (e->version > o->last_version) o->last_version = e->version, o->status = u.order_status_updated.status;
    } else if (decode(e, &cqrs_user_order_recorded_event, &u)) {
      order_t *o = order_of(orders, e->tenant, u.user_order_recorded.order_id);
      if (!o->on_user++) o->recorded_on = e->aggregate_id;
    } else if (decode(e, &cqrs_customer_order_recorded_event, &u)) {
      order_of(orders, e->tenant, u.customer_order_recorded.order_id)->on_customer++;
    } else if (decode(e, &cqrs_user_created_event, &u)) {
      cqrs_map_put(users, tk_acct_key(k, sizeof k, tk_acct_tenant(e->tenant), e->aggregate_id), (void *)e);
    }
  }
}

static bool closed(const order_t *o) {
  return strcmp(o->status, CQRS_ORDER_CANCELLED) == 0 || strcmp(o->status, ORDER_DELIVERED) == 0;
}

#define order_violation(r, counter, o, fmt, ...)                                                                 \
  ((r)->counter++, tk_acct_violation((r), "order %s (user %s): " fmt, (o)->created->aggregate_id, (o)->user_id, \
                                     __VA_ARGS__))

/* The placement saga of one order, against the log. */
static void check_placement(const order_t *o, const cqrs_map_t *users, const cqrs_map_t *instances,
                            tk_acct_report_t *r) {
  const cqrs_event_t *c = o->created;
  char k[512];
  if (o->on_user > 1) order_violation(r, saga_duplicated, o, "recorded on its user %zu times", o->on_user);
  if (o->on_customer > 1)
    order_violation(r, saga_duplicated, o, "recorded on customer %s %zu times", o->customer_id, o->on_customer);
  if (o->cancels > 1) order_violation(r, saga_duplicated, o, "cancelled %zu times", o->cancels);
  if (o->on_user && !tk_acct_str_eq(o->recorded_on, o->user_id))
    order_violation(r, saga_wrong, o, "recorded on user %s, not on its own", o->recorded_on);
  const cqrs_event_t *user = cqrs_map_get(users, tk_acct_key(k, sizeof k, tk_acct_tenant(c->tenant), o->user_id));
  /* RFC 3339 times of one clock in one format: compared as strings */
  bool user_before = user && user->time && c->time && strcmp(user->time, c->time) <= 0;
  const bson_t *saga =
      cqrs_map_get(instances, instance_key(k, sizeof k, c->tenant, cqrs_order_placement_saga.type, c->aggregate_id));
  if (!saga) return; /* check_triggers reports it */
  const char *state = cqrs_saga_str(saga, "state");
  if (strcmp(state, CQRS_SAGA_RUNNING) == 0)
    order_violation(r, saga_unfinished, o, "%s", "its placement saga is still running");
  if (strcmp(state, CQRS_SAGA_FAILED) == 0) order_violation(r, saga_wrong, o, "%s", "its placement saga failed");
  if (user_before && o->on_user != 1)
    order_violation(r, saga_unfinished, o, "its user was created before it, yet it is recorded on the user %zu times",
                    o->on_user);
  if (!user) {
    if (o->on_user) order_violation(r, saga_wrong, o, "%s", "recorded on a user the log never created");
    if (strcmp(state, CQRS_SAGA_COMPLETED) == 0)
      order_violation(r, saga_wrong, o, "%s", "its user does not exist, yet its placement saga completed");
  }
  if (strcmp(state, CQRS_SAGA_COMPLETED) == 0 && (o->on_user != 1 || (o->customer_id && o->on_customer != 1)))
    order_violation(r, saga_wrong, o,
                    "its placement saga completed, but the log records it %zu times on the user, %zu on the customer",
                    o->on_user, o->on_customer);
  if (strcmp(state, CQRS_SAGA_COMPENSATED) == 0 && !closed(o))
    order_violation(r, saga_unfinished, o, "its placement saga compensated it, but it is %s", o->status);
}

/* Every order recorded on a customer before the customer's suspension is
 * closed, and the suspension saga finished. */
static void check_suspensions(const tk_acct_input_t *in, const cqrs_map_t *orders, const cqrs_map_t *instances,
                              tk_acct_report_t *r) {
  char k[512];
  for (size_t i = 0; i < in->n_events; i++) {
    const cqrs_event_t *s = &in->events[i].ev;
    cqrs_event_data_t u;
    if (!decode(s, &cqrs_customer_suspended_event, &u)) continue;
    const bson_t *saga = cqrs_map_get(
        instances, instance_key(k, sizeof k, s->tenant, cqrs_customer_suspension_saga.type, s->aggregate_id));
    if (saga && strcmp(cqrs_saga_str(saga, "state"), CQRS_SAGA_RUNNING) == 0) {
      r->saga_unfinished++;
      tk_acct_violation(r, "customer %s: its suspension saga is still running", s->aggregate_id);
    }
    for (size_t j = 0; j < in->n_events; j++) {
      const cqrs_event_t *rec = &in->events[j].ev;
      if (rec->version > s->version || !tk_acct_str_eq(rec->aggregate_id, s->aggregate_id) ||
          !tk_acct_str_eq(tk_acct_tenant(rec->tenant), tk_acct_tenant(s->tenant)) ||
          !decode(rec, &cqrs_customer_order_recorded_event, &u))
        continue;
      const order_t *o =
          cqrs_map_get(orders, tk_acct_key(k, sizeof k, tk_acct_tenant(rec->tenant), u.customer_order_recorded.order_id));
      if (o && !closed(o)) {
        r->saga_unfinished++;
        tk_acct_violation(r, "order %s, recorded on customer %s before its suspension, is still %s",
                          u.customer_order_recorded.order_id, s->aggregate_id, o->status);
      }
    }
  }
}

void tk_acct_check_sagas(const tk_acct_input_t *in, const tk_acct_index_t *x, tk_acct_report_t *r) {
  r->sagas = in->n_saga_instances;
  for (size_t i = 0; i < x->n_steps; i++) check_step(in, x, i, r);
  check_emitted(in, x, r);
  cqrs_map_t *instances = instances_by_key(in);
  check_triggers(in, instances, r);
  cqrs_map_t *orders = cqrs_map_new(free), *users = cqrs_map_new(NULL);
  read_orders(in, orders, users);
  for (size_t i = 0; i < in->n_events; i++) {
    const cqrs_event_t *e = &in->events[i].ev;
    if (!tk_acct_str_eq(e->type, cqrs_order_created_event.name)) continue;
    char k[512];
    const order_t *o = cqrs_map_get(orders, tk_acct_key(k, sizeof k, tk_acct_tenant(e->tenant), e->aggregate_id));
    if (o && o->created == e) check_placement(o, users, instances, r);
  }
  check_suspensions(in, orders, instances, r);
  cqrs_map_destroy(orders);
  cqrs_map_destroy(users);
  cqrs_map_destroy(instances);
}
