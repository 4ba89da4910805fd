/* The Customer aggregate: RegisterCustomer, UpdateEmail, SuspendCustomer ->
 * CustomerRegistered, CustomerEmailUpdated, CustomerSuspended. State:
 * {customerId, email, name, status, registrationDate, lastUpdated,
 * suspensionReason}. */
#include "../decider.h"
#include "cqrs/json.h"

#include <string.h>

#define EMAIL_MAX 254
#define NAME_MAX_CHARS 200
#define REASON_MAX_CHARS 500

#define ACTIVE "ACTIVE"
#define SUSPENDED "SUSPENDED"

static const cqrs_command_spec_t commands[] = {
    {"RegisterCustomer", true},
    {"UpdateEmail", false},
    {"SuspendCustomer", false},
};

static bool check_not_blank(const char *s, const char *field, cqrs_error_t *err) {
  for (const char *c = s; *c; c++)
    if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n') return true;
  cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must not be blank", field);
  return false;
}

/* The alias, when given and not empty, must name the aggregate the command
 * goes to: a body saying aggregateId A and customerId B is ambiguous. */
static bool check_alias(const cqrs_command_t *cmd, cqrs_error_t *err) {
  const char *alias;
  if (!cqrs_json_get_string(&cmd->fields, "customerId", NULL, false, CQRS_ID_MAX, &alias, err)) return false;
  if (alias && *alias && strcmp(alias, cmd->aggregate_id) != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "customerId", "customerId differs from aggregateId");
    return false;
  }
  return true;
}

static bool validate(const cqrs_command_t *cmd, cqrs_error_t *err) {
  const char *s;
  if (!check_alias(cmd, err)) return false;
  if (strcmp(cmd->type, "RegisterCustomer") == 0) {
    return cqrs_json_get_string(&cmd->fields, "email", NULL, true, EMAIL_MAX, &s, err) &&
           cqrs_decider_check_email(s, "email", err) &&
           cqrs_json_get_string(&cmd->fields, "name", NULL, true, NAME_MAX_CHARS, &s, err) &&
           check_not_blank(s, "name", err);
  }
  if (strcmp(cmd->type, "UpdateEmail") == 0) {
    return cqrs_json_get_string(&cmd->fields, "newEmail", NULL, true, EMAIL_MAX, &s, err) &&
           cqrs_decider_check_email(s, "newEmail", err);
  }
  return cqrs_json_get_string(&cmd->fields, "reason", NULL, true, REASON_MAX_CHARS, &s, err);
}

/* Updates need an ACTIVE customer. */
static bool check_active(const bson_t *state, const cqrs_command_t *cmd, cqrs_error_t *err) {
  const char *status = cqrs_decider_str(state, "status");
  if (strcmp(status, ACTIVE) == 0) return true;
  cqrs_error_set(err, CQRS_ERR_REFUSED, NULL, "customer %s is %s, not ACTIVE: %s refused", cmd->aggregate_id,
                 status, cmd->type);
  return false;
}

static bool decide(const bson_t *state, const cqrs_command_t *cmd, const char *now,
                   cqrs_decision_t *out, cqrs_error_t *err) {
  const char *email, *name, *reason;
  if (strcmp(cmd->type, "RegisterCustomer") == 0) {
    cqrs_json_get_string(&cmd->fields, "email", NULL, true, 0, &email, NULL);
    cqrs_json_get_string(&cmd->fields, "name", NULL, true, 0, &name, NULL);
    bson_t *d = cqrs_decision_add(out, "CustomerRegistered");
    BSON_APPEND_UTF8(d, "customerId", cmd->aggregate_id);
    BSON_APPEND_UTF8(d, "email", email);
    BSON_APPEND_UTF8(d, "name", name);
    BSON_APPEND_UTF8(d, "registeredAt", now);
    return true;
  }
  if (!check_active(state, cmd, err)) return false;
  if (strcmp(cmd->type, "UpdateEmail") == 0) {
    cqrs_json_get_string(&cmd->fields, "newEmail", NULL, true, 0, &email, NULL);
    const char *old = cqrs_decider_str(state, "email");
    if (strcmp(email, old) == 0) return true; /* valid, changes nothing */
    bson_t *d = cqrs_decision_add(out, "CustomerEmailUpdated");
    BSON_APPEND_UTF8(d, "customerId", cmd->aggregate_id);
    BSON_APPEND_UTF8(d, "oldEmail", old);
    BSON_APPEND_UTF8(d, "newEmail", email);
    BSON_APPEND_UTF8(d, "updatedAt", now);
    return true;
  }
  cqrs_json_get_string(&cmd->fields, "reason", NULL, true, 0, &reason, NULL);
  bson_t *d = cqrs_decision_add(out, "CustomerSuspended");
  BSON_APPEND_UTF8(d, "customerId", cmd->aggregate_id);
  BSON_APPEND_UTF8(d, "reason", reason);
  BSON_APPEND_UTF8(d, "suspendedAt", now);
  return true;
}

/* Writes the whole state document with the given values. reason NULL: null. */
static void write_state(bson_t *out, const char *customer_id, const char *email, const char *name,
                        const char *status, const char *registered, const char *updated,
                        const char *reason) {
  BSON_APPEND_UTF8(out, "customerId", customer_id);
  BSON_APPEND_UTF8(out, "email", email);
  BSON_APPEND_UTF8(out, "name", name);
  BSON_APPEND_UTF8(out, "status", status);
  BSON_APPEND_UTF8(out, "registrationDate", registered);
  BSON_APPEND_UTF8(out, "lastUpdated", updated);
  if (reason)
    BSON_APPEND_UTF8(out, "suspensionReason", reason);
  else
    BSON_APPEND_NULL(out, "suspensionReason");
}

/* The state's suspensionReason, or NULL when it has none. */
static const char *state_reason(const bson_t *state) {
  bson_iter_t it;
  if (state && bson_iter_init_find(&it, state, "suspensionReason") && BSON_ITER_HOLDS_UTF8(&it))
    return bson_iter_utf8(&it, NULL);
  return NULL;
}

static void evolve(const bson_t *state, const char *event_type, const bson_t *data, bson_t *out) {
  if (strcmp(event_type, "CustomerRegistered") == 0) {
    const char *at = cqrs_decider_str(data, "registeredAt");
    write_state(out, cqrs_decider_str(data, "customerId"), cqrs_decider_str(data, "email"), cqrs_decider_str(data, "name"),
                ACTIVE, at, at, NULL);
    return;
  }
  if (strcmp(event_type, "CustomerEmailUpdated") == 0) {
    write_state(out, cqrs_decider_str(state, "customerId"), cqrs_decider_str(data, "newEmail"), cqrs_decider_str(state, "name"),
                cqrs_decider_str(state, "status"), cqrs_decider_str(state, "registrationDate"),
                cqrs_decider_str(data, "updatedAt"), state_reason(state));
    return;
  }
  if (strcmp(event_type, "CustomerSuspended") == 0) {
    write_state(out, cqrs_decider_str(state, "customerId"), cqrs_decider_str(state, "email"), cqrs_decider_str(state, "name"),
                SUSPENDED, cqrs_decider_str(state, "registrationDate"), cqrs_decider_str(data, "suspendedAt"),
                cqrs_decider_str(data, "reason"));
    return;
  }
  if (state) bson_copy_to_excluding_noinit(state, out, "", NULL); /* unknown event: unchanged */
}

const cqrs_decider_t cqrs_customer_decider = {
    .aggregate_type = "customer",
    .id_alias = "customerId",
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .validate = validate,
    .decide = decide,
    .evolve = evolve,
};
