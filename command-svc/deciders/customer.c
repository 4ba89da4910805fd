/* The Customer aggregate: RegisterCustomer, UpdateEmail, SuspendCustomer,
 * RecordCustomerOrder -> CustomerRegistered, CustomerEmailUpdated,
 * CustomerSuspended, CustomerOrderRecorded. RecordCustomerOrder (the order
 * placement saga's owner check) needs an ACTIVE customer: as it and
 * SuspendCustomer are decided one after the other on this aggregate, an order
 * is either recorded before the suspension (and the suspension saga cancels
 * it) or refused after it (and the placement saga cancels it). State:
 * {customerId, email, name, status, registrationDate, lastUpdated,
 * suspensionReason}. */
#include "../decider.h"
#include "cqrs/json.h"
#include "cqrs/saga_sign.h" /* CQRS_CMD_*: the commands sagas send */

#include <string.h>

#define EMAIL_MAX 254
#define NAME_MAX_CHARS 200
#define REASON_MAX_CHARS 500


static const cqrs_command_spec_t commands[] = {
    {"RegisterCustomer", true},
    {"UpdateEmail", false},
    {"SuspendCustomer", false},
    {CQRS_CMD_RECORD_CUSTOMER_ORDER, false},
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
  if (strcmp(cmd->type, CQRS_CMD_RECORD_CUSTOMER_ORDER) == 0)
    return cqrs_json_get_string(&cmd->fields, "orderId", NULL, true, CQRS_ID_MAX, &s, err);
  return cqrs_json_get_string(&cmd->fields, "reason", NULL, true, REASON_MAX_CHARS, &s, err);
}

/* Updates need an ACTIVE customer. */
static bool check_active(const bson_t *state, const cqrs_command_t *cmd, cqrs_error_t *err) {
  const char *status = cqrs_decider_str(state, "status");
  if (strcmp(status, CQRS_CUSTOMER_ACTIVE) == 0) return true;
  cqrs_error_set(err, CQRS_ERR_REFUSED, NULL, "customer %s is %s, not ACTIVE: %s refused", cmd->aggregate_id,
                 status, cmd->type);
  return false;
}

static bool decide(const bson_t *state, const cqrs_command_t *cmd, const char *now,
                   cqrs_decision_t *out, cqrs_error_t *err) {
  if (strcmp(cmd->type, "RegisterCustomer") == 0) {
    cqrs_customer_registered_t e = {.customer_id = cmd->aggregate_id, .registered_at = now};
    cqrs_json_get_string(&cmd->fields, "email", NULL, true, 0, &e.email, NULL);
    cqrs_json_get_string(&cmd->fields, "name", NULL, true, 0, &e.name, NULL);
    cqrs_customer_registered_encode(&e, cqrs_decision_add(out, &cqrs_customer_registered_event));
    return true;
  }
  if (!check_active(state, cmd, err)) return false;
  if (strcmp(cmd->type, CQRS_CMD_RECORD_CUSTOMER_ORDER) == 0) {
    cqrs_customer_order_recorded_t e = {.customer_id = cmd->aggregate_id, .recorded_at = now};
    cqrs_json_get_string(&cmd->fields, "orderId", NULL, true, 0, &e.order_id, NULL);
    cqrs_customer_order_recorded_encode(&e, cqrs_decision_add(out, &cqrs_customer_order_recorded_event));
    return true;
  }
  if (strcmp(cmd->type, "UpdateEmail") == 0) {
    cqrs_customer_email_updated_t e = {.customer_id = cmd->aggregate_id, .old_email = cqrs_decider_str(state, "email"),
                                       .updated_at = now};
    cqrs_json_get_string(&cmd->fields, "newEmail", NULL, true, 0, &e.email, NULL);
    if (strcmp(e.email, e.old_email) == 0) return true; /* valid, changes nothing */
    cqrs_customer_email_updated_encode(&e, cqrs_decision_add(out, &cqrs_customer_email_updated_event));
    return true;
  }
  cqrs_customer_suspended_t e = {.customer_id = cmd->aggregate_id, .suspended_at = now};
  cqrs_json_get_string(&cmd->fields, "reason", NULL, true, 0, &e.reason, NULL);
  cqrs_customer_suspended_encode(&e, cqrs_decision_add(out, &cqrs_customer_suspended_event));
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

static void registered(const bson_t *state, const cqrs_event_data_t *e, bson_t *out) {
  (void)state;
  const cqrs_customer_registered_t *ev = &e->customer_registered;
  write_state(out, ev->customer_id ? ev->customer_id : "", ev->email, ev->name, CQRS_CUSTOMER_ACTIVE, ev->registered_at,
              ev->registered_at, NULL);
}

static void email_updated(const bson_t *state, const cqrs_event_data_t *e, bson_t *out) {
  const cqrs_customer_email_updated_t *ev = &e->customer_email_updated;
  write_state(out, cqrs_decider_str(state, "customerId"), ev->email, cqrs_decider_str(state, "name"),
              cqrs_decider_str(state, "status"), cqrs_decider_str(state, "registrationDate"), ev->updated_at,
              state_reason(state));
}

static void suspended(const bson_t *state, const cqrs_event_data_t *e, bson_t *out) {
  const cqrs_customer_suspended_t *ev = &e->customer_suspended;
  write_state(out, cqrs_decider_str(state, "customerId"), cqrs_decider_str(state, "email"),
              cqrs_decider_str(state, "name"), CQRS_CUSTOMER_SUSPENDED, cqrs_decider_str(state, "registrationDate"),
              ev->suspended_at, ev->reason);
}

static const cqrs_evolver_t evolvers[] = {
    {&cqrs_customer_registered_event, registered},
    {&cqrs_customer_email_updated_event, email_updated},
    {&cqrs_customer_suspended_event, suspended},
};

static void evolve(const bson_t *state, const char *event_type, const bson_t *data, bson_t *out) {
  cqrs_decider_evolve(evolvers, sizeof evolvers / sizeof evolvers[0], state, event_type, data, out);
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
