/* The upcasters (cqrs/upcast.h): the contract's vN -> vN+1 steps in one
 * table, and the function that runs them. */
#include "contract.h"

#include "cqrs/upcast.h"

#include <stdlib.h>

/* One row a step; the rows of one evolution together, in the order they run. */
const cqrs_upcast_step_t cqrs_upcasters[] = {
    /* OrderCreated v1 -> v2: orders get a currency; every order before was in dollars. */
    {.from = &cqrs_order_created_v1_event, .to = &cqrs_order_created_event, .kind = CQRS_UPCAST_ADD,
     .field = "currency", .value = CQRS_ORDER_CURRENCY_DEFAULT},
    /* CustomerEmailUpdated v1 -> v2: newEmail is now email, as in CustomerRegistered. */
    {.from = &cqrs_customer_email_updated_v1_event, .to = &cqrs_customer_email_updated_event,
     .kind = CQRS_UPCAST_RENAME, .field = "email", .old_field = "newEmail"},
};
const size_t cqrs_upcasters_n = sizeof cqrs_upcasters / sizeof cqrs_upcasters[0];

/* Whether data has key with a value (null reads as absent, as in decode). */
static bool has_field(const bson_t *data, const char *key) {
  bson_iter_t it;
  return bson_iter_init_find(&it, data, key) && !BSON_ITER_HOLDS_NULL(&it);
}

/* Applies step s to in, writing the result into out (initialised). */
static bool apply_step(const cqrs_upcast_step_t *s, const bson_t *in, bson_t *out, cqrs_error_t *err) {
  bson_iter_t it;
  bool has_new = has_field(in, s->field);
  if (!bson_iter_init(&it, in)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "%s v%d data is malformed", s->from->name, s->from->version);
    return false;
  }
  while (bson_iter_next(&it)) {
    const char *key = bson_iter_key(&it);
    if (s->kind == CQRS_UPCAST_RENAME && strcmp(key, s->old_field) == 0) {
      /* the new name in its place; when the data has both, the new one wins */
      if (!has_new) bson_append_iter(out, s->field, -1, &it);
      continue;
    }
    if (strcmp(key, s->field) == 0 && !has_new) continue; /* a null the step replaces */
    bson_append_iter(out, key, -1, &it);
  }
  if (has_new || s->kind == CQRS_UPCAST_RENAME) return true; /* a field the data has is kept */
  if (s->kind == CQRS_UPCAST_ADD) {
    BSON_APPEND_UTF8(out, s->field, s->value);
    return true;
  }
  return s->derive(in, s->field, out, err);
}

bool cqrs_upcast_with(const cqrs_upcast_step_t *steps, size_t n, const char *name, int version,
                      const bson_t *data, cqrs_upcast_t *out, cqrs_error_t *err) {
  memset(out, 0, sizeof *out);
  const cqrs_event_type_t *current = cqrs_event_type_find(name);
  if (!current) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "ce_type", "unknown event type \"%s\" (schema version %d): the event "
                   "contract does not know it", name, version);
    return false;
  }
  if (version == current->version) { /* the common case: nothing to do, nothing copied */
    out->type = current;
    out->data = data;
    return true;
  }
  if (!cqrs_event_type_find_version(name, version)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "ce_schemaversion", "event type %s has no schema version %d (the "
                   "contract knows versions 1 to %d)", name, version, current->version);
    return false;
  }
  bson_t buf[2];
  const bson_t *at = data;
  int k = 0;
  for (int v = version; v < current->version; v++) {
    for (size_t i = 0; i < n; i++) {
      if (steps[i].from->version != v || strcmp(steps[i].from->name, name) != 0) continue;
      bson_init(&buf[k]);
      if (!apply_step(&steps[i], at, &buf[k], err)) {
        bson_destroy(&buf[k]);
        if (at != data) bson_destroy((bson_t *)at);
        return false;
      }
      if (at != data) bson_destroy((bson_t *)at);
      at = &buf[k];
      k ^= 1;
    }
  }
  out->type = current;
  if (at != data) {
    /* move the last buffer into out (bson_t is not to be copied by value once
     * it may have spilled to the heap: copy the bytes once instead) */
    bson_copy_to(at, &out->owned);
    bson_destroy((bson_t *)at);
    out->has_owned = true;
    out->data = &out->owned;
  } else {
    out->data = data; /* versions without steps: the data is the same */
  }
  return true;
}

bool cqrs_upcast(const char *name, int version, const bson_t *data, cqrs_upcast_t *out, cqrs_error_t *err) {
  return cqrs_upcast_with(cqrs_upcasters, cqrs_upcasters_n, name, version, data, out, err);
}

void cqrs_upcast_cleanup(cqrs_upcast_t *u) {
  if (u && u->has_owned) bson_destroy(&u->owned);
  if (u) memset(u, 0, sizeof *u);
}

bool cqrs_event_upcast(cqrs_event_t *ev, cqrs_error_t *err) {
  cqrs_upcast_t u;
  bool ok = cqrs_upcast(ev->type, cqrs_event_schema_version(ev), ev->data, &u, err);
  if (ok) {
    if (u.data != ev->data) {
      bson_t *copy = bson_copy(u.data);
      bson_destroy(ev->data);
      ev->data = copy;
    }
    ev->schema_version = u.type->version;
  }
  cqrs_upcast_cleanup(&u);
  return ok;
}
