/* The User aggregate: CreateUser, UpdateUserProfile, RecordUserOrder ->
 * UserCreated, UserProfileUpdated, UserOrderRecorded. State: {userId, email,
 * name, createdAt, updatedAt}. RecordUserOrder is the order placement saga's
 * owner check: refused 404 when the user does not exist. */
#include "../decider.h"
#include "cqrs/json.h"
#include "cqrs/saga_sign.h" /* CQRS_CMD_*: the commands sagas send */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define EMAIL_MAX 254
#define NAME_MAX_CHARS 200

static const cqrs_command_spec_t commands[] = {
    {"CreateUser", true},
    {"UpdateUserProfile", false},
    {CQRS_CMD_RECORD_USER_ORDER, false},
};

static bool check_name(const char *name, const char *field, cqrs_error_t *err) {
  for (const char *c = name; *c; c++)
    if (*c != ' ' && *c != '\t') return true;
  cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must not be blank", field);
  return false;
}

/* Reads "name" or "email" from changes in any letter case, with the same
 * type and length rules as CreateUser. *out is NULL when absent. */
static bool find_change(const bson_t *changes, const char *key, size_t max_len, const char **out,
                        const char *field, cqrs_error_t *err) {
  bson_iter_t it;
  *out = NULL;
  if (!bson_iter_init(&it, changes)) return true;
  while (bson_iter_next(&it)) {
    if (strcasecmp(bson_iter_key(&it), key) == 0)
      return cqrs_json_get_string(changes, bson_iter_key(&it), field, false, max_len, out, err);
  }
  return true;
}

static bool validate_changes(const bson_t *changes, const char **name, const char **email,
                             cqrs_error_t *err) {
  bson_iter_t it;
  if (bson_iter_init(&it, changes)) {
    while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      if (strcasecmp(k, "name") != 0 && strcasecmp(k, "email") != 0) {
        char field[64];
        snprintf(field, sizeof field, "changes.%s", k);
        cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s cannot be changed: changes takes name and/or email", field);
        return false;
      }
    }
  }
  if (!find_change(changes, "name", NAME_MAX_CHARS, name, "changes.name", err) ||
      !find_change(changes, "email", EMAIL_MAX, email, "changes.email", err))
    return false;
  if (!*name && !*email) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "changes", "changes must hold name and/or email");
    return false;
  }
  return (!*name || check_name(*name, "changes.name", err)) &&
         (!*email || cqrs_decider_check_email(*email, "changes.email", err));
}

static bool validate(const cqrs_command_t *cmd, cqrs_error_t *err) {
  const char *email, *name;
  if (strcmp(cmd->type, "CreateUser") == 0) {
    return cqrs_json_get_string(&cmd->fields, "email", NULL, true, EMAIL_MAX, &email, err) &&
           cqrs_decider_check_email(email, "email", err) &&
           cqrs_json_get_string(&cmd->fields, "name", NULL, true, NAME_MAX_CHARS, &name, err) &&
           check_name(name, "name", err);
  }
  if (strcmp(cmd->type, CQRS_CMD_RECORD_USER_ORDER) == 0)
    return cqrs_json_get_string(&cmd->fields, "orderId", NULL, true, CQRS_ID_MAX, &name, err);
  bson_t changes;
  bool present;
  return cqrs_json_get_object(&cmd->fields, "changes", NULL, true, &changes, &present, err) &&
         validate_changes(&changes, &name, &email, err);
}

static bool decide(const bson_t *state, const cqrs_command_t *cmd, const char *now,
                   cqrs_decision_t *out, cqrs_error_t *err) {
  (void)err; /* the User aggregate has no business refusal beyond existence */
  const char *email, *name;
  if (strcmp(cmd->type, "CreateUser") == 0) {
    cqrs_json_get_string(&cmd->fields, "email", NULL, true, 0, &email, NULL);
    cqrs_json_get_string(&cmd->fields, "name", NULL, true, 0, &name, NULL);
    cqrs_user_created_t e = {.user_id = cmd->aggregate_id, .email = email, .name = name, .created_at = now};
    cqrs_user_created_encode(&e, cqrs_decision_add(out, &cqrs_user_created_event));
    return true;
  }
  if (strcmp(cmd->type, CQRS_CMD_RECORD_USER_ORDER) == 0) {
    cqrs_user_order_recorded_t e = {.user_id = cmd->aggregate_id, .recorded_at = now};
    cqrs_json_get_string(&cmd->fields, "orderId", NULL, true, 0, &e.order_id, NULL);
    cqrs_user_order_recorded_encode(&e, cqrs_decision_add(out, &cqrs_user_order_recorded_event));
    return true;
  }
  bson_t changes;
  bool present;
  cqrs_json_get_object(&cmd->fields, "changes", NULL, true, &changes, &present, NULL);
  find_change(&changes, "name", 0, &name, "", NULL);
  find_change(&changes, "email", 0, &email, "", NULL);
  bool new_name = name && strcmp(name, cqrs_decider_str(state, "name")) != 0;
  bool new_email = email && strcmp(email, cqrs_decider_str(state, "email")) != 0;
  if (!new_name && !new_email) return true; /* valid, changes nothing */
  /* changes holds only what changed, in lower case */
  cqrs_user_profile_updated_t e = {.user_id = cmd->aggregate_id,
                                   .changes = {.name = new_name ? name : NULL, .email = new_email ? email : NULL},
                                   .updated_at = now};
  cqrs_user_profile_updated_encode(&e, cqrs_decision_add(out, &cqrs_user_profile_updated_event));
  return true;
}

/* The whole state document: {userId, email, name, createdAt, updatedAt}. */
static void write_state(bson_t *out, const char *user_id, const char *email, const char *name,
                        const char *created, const char *updated) {
  BSON_APPEND_UTF8(out, "userId", user_id);
  BSON_APPEND_UTF8(out, "email", email);
  BSON_APPEND_UTF8(out, "name", name);
  BSON_APPEND_UTF8(out, "createdAt", created);
  BSON_APPEND_UTF8(out, "updatedAt", updated);
}

static void created(const bson_t *state, const cqrs_event_data_t *e, bson_t *out) {
  (void)state;
  const cqrs_user_created_t *ev = &e->user_created;
  write_state(out, ev->user_id ? ev->user_id : "", ev->email, ev->name, ev->created_at, ev->created_at);
}

/* An absent (or empty) change keeps the value. */
static void profile_updated(const bson_t *state, const cqrs_event_data_t *e, bson_t *out) {
  const cqrs_user_profile_updated_t *ev = &e->user_profile_updated;
  const char *name = ev->changes.name, *email = ev->changes.email;
  write_state(out, cqrs_decider_str(state, "userId"), email && *email ? email : cqrs_decider_str(state, "email"),
              name && *name ? name : cqrs_decider_str(state, "name"), cqrs_decider_str(state, "createdAt"),
              ev->updated_at);
}

static const cqrs_evolver_t evolvers[] = {
    {&cqrs_user_created_event, created},
    {&cqrs_user_profile_updated_event, profile_updated},
};

static void evolve(const bson_t *state, const char *event_type, const bson_t *data, bson_t *out) {
  cqrs_decider_evolve(evolvers, sizeof evolvers / sizeof evolvers[0], state, event_type, data, out);
}

const cqrs_decider_t cqrs_user_decider = {
    .aggregate_type = "user",
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .validate = validate,
    .decide = decide,
    .evolve = evolve,
};
