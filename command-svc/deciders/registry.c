/* The aggregates command-svc knows, and helpers every decider shares. */
#include "decider.h"

#include "cqrs/json.h"
#include "cqrs/util.h"

#include <assert.h>
#include <string.h>

static const cqrs_decider_t *const deciders[] = {&cqrs_user_decider, &cqrs_order_decider,
                                                &cqrs_customer_decider};
#define N_DECIDERS (sizeof deciders / sizeof deciders[0])

const cqrs_decider_t *cqrs_decider_for_command(const char *command_type,
                                               const cqrs_command_spec_t **spec) {
  for (size_t i = 0; i < N_DECIDERS; i++) {
    for (size_t c = 0; c < deciders[i]->n_commands; c++) {
      if (strcmp(deciders[i]->commands[c].type, command_type) == 0) {
        if (spec) *spec = &deciders[i]->commands[c];
        return deciders[i];
      }
    }
  }
  return NULL;
}

const cqrs_decider_t *cqrs_decider_for_aggregate(const char *aggregate_type) {
  for (size_t i = 0; i < N_DECIDERS; i++)
    if (strcmp(deciders[i]->aggregate_type, aggregate_type) == 0) return deciders[i];
  return NULL;
}

bool cqrs_decider_prepare(cqrs_command_t *cmd, const char *json, size_t len, const cqrs_decider_t **d,
                          const cqrs_command_spec_t **spec, cqrs_error_t *err) {
  *d = NULL;
  *spec = NULL;
  if (!cqrs_command_parse(cmd, json, len, err)) return false;
  if (!(*d = cqrs_decider_for_command(cmd->type, spec))) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "commandType", "unknown commandType \"%s\"", cmd->type);
    return false;
  }
  char id[CQRS_UUID_LEN];
  if (!cmd->command_id) {
    cqrs_uuid_random(id);
    cqrs_command_set_id(&cmd->command_id, id);
  }
  if ((*d)->id_alias) {
    const char *alias;
    if (!cqrs_json_get_string(&cmd->fields, (*d)->id_alias, NULL, false, CQRS_ID_MAX, &alias, err)) return false;
    if (alias && *alias && cmd->aggregate_id && strcmp(alias, cmd->aggregate_id) != 0) {
      cqrs_error_set(err, CQRS_ERR_INVALID, (*d)->id_alias, "%s and aggregateId name different aggregates",
                     (*d)->id_alias);
      return false;
    }
    if (alias && *alias && !cmd->aggregate_id) cqrs_command_set_id(&cmd->aggregate_id, alias);
  }
  if (!cmd->aggregate_id) {
    if (!(*spec)->creates) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "aggregateId", "aggregateId is required for %s", cmd->type);
      return false;
    }
    cqrs_uuid_from_name(cmd->command_id, id);
    cqrs_command_set_id(&cmd->aggregate_id, id);
  }
  return (*d)->validate(cmd, err);
}

bson_t *cqrs_decision_add(cqrs_decision_t *d, const cqrs_event_type_t *type) {
  assert(d->n_events < CQRS_MAX_EVENTS); /* a decider bug, not bad input */
  cqrs_decided_event_t *ev = &d->events[d->n_events++];
  ev->type = type->name;
  ev->schema = type;
  bson_init(&ev->data);
  return &ev->data;
}

void cqrs_decision_cleanup(cqrs_decision_t *d) {
  for (size_t i = 0; i < d->n_events; i++) bson_destroy(&d->events[i].data);
  d->n_events = 0;
}

void cqrs_decider_evolve(const cqrs_evolver_t *rows, size_t n, const bson_t *state, const char *event_type,
                         const bson_t *data, bson_t *out) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(rows[i].type->name, event_type) != 0) continue;
    cqrs_event_data_t e;
    if (rows[i].type->decode(data, &e, NULL)) {
      rows[i].evolve(state, &e, out);
      return;
    }
    break;
  }
  if (state) bson_copy_to_excluding_noinit(state, out, "", NULL); /* unchanged */
}

const char *cqrs_decider_str(const bson_t *doc, const char *key) {
  bson_iter_t it;
  if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, NULL);
  return "";
}

/* A pragmatic shape check, not RFC 5321: one '@', a non-empty local part, a
 * domain with a dot that neither starts nor ends it, no spaces. */
bool cqrs_decider_check_email(const char *email, const char *field, cqrs_error_t *err) {
  const char *at = strchr(email, '@');
  bool ok = at && at != email && !strchr(at + 1, '@') && !strpbrk(email, " \t\r\n");
  if (ok) {
    const char *dot = strrchr(at + 1, '.');
    ok = dot && dot != at + 1 && dot[1] != '\0';
  }
  if (!ok) cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s is not a valid email address", field);
  return ok;
}
