/* The Decider pattern: each aggregate is a set of pure functions, one file per
 * aggregate under deciders/. decide(state, command) -> events or a refusal;
 * evolve(state, event) -> state. No I/O, no clock: the caller passes "now".
 *
 * Events are the contract's (libshared cqrs/events.h): decide fills a
 * cqrs_<ev>_t and encodes it into cqrs_decision_add(out, &cqrs_<ev>_event);
 * evolve is a table of rows (cqrs_evolver_t), one per event type, each given
 * the event decoded. No event name or event field is spelled here: command
 * fields ("userId" of CreateOrder) are the command contract, and the names in
 * a state document are the decider's own.
 *
 * Adding an aggregate = its events in cqrs/events.h (+ src/events/), one
 * decider file + one line in deciders/registry.c. Adding an event field = one
 * line in the contract + the decide/evolve code that uses it. */
#ifndef CQRS_DECIDER_H
#define CQRS_DECIDER_H

#include "cqrs/command.h"
#include "cqrs/error.h"
#include "cqrs/events.h"

#include <bson/bson.h>

#define CQRS_MAX_EVENTS 4

typedef struct {
  const char *type;                   /* the contract's name of its type (cqrs_event_type_t.name) */
  const cqrs_event_type_t *schema;    /* its descriptor: the type at the version written */
  bson_t data;                        /* the event data (record value) */
} cqrs_decided_event_t;

/* What decide produced: zero events means "valid, changes nothing" (200). */
typedef struct {
  size_t n_events;
  cqrs_decided_event_t events[CQRS_MAX_EVENTS];
} cqrs_decision_t;

/* Appends an event of type to d and returns its (empty) data document, for
 * the type's encode: cqrs_<ev>_encode(&e, cqrs_decision_add(d, &cqrs_<ev>_event)).
 * More than CQRS_MAX_EVENTS events is a decider bug (assert). */
bson_t *cqrs_decision_add(cqrs_decision_t *d, const cqrs_event_type_t *type);

/* Frees the events' data. Safe on a zeroed decision. */
void cqrs_decision_cleanup(cqrs_decision_t *d);

/* Settings a decider's defaults depend on (from the configuration). */
typedef struct {
  int order_processing_timeout_s; /* ORDER_PROCESSING_TIMEOUT: a CreateOrder's default processBy after now */
} cqrs_decider_settings_t;

typedef struct {
  const char *type;
  bool creates; /* creates its aggregate: it must not exist yet, and an absent
                   aggregateId is derived from the commandId */
} cqrs_command_spec_t;

typedef struct {
  const char *aggregate_type;            /* "user" */
  const char *id_alias;                  /* a field that may carry the aggregateId
                                            ("customerId"), or NULL */
  const cqrs_command_spec_t *commands;   /* the commands it handles */
  size_t n_commands;
  /* Checks cmd's own fields (types, required, shapes, lengths). False with a
   * CQRS_ERR_INVALID err naming the field. Needs no state. */
  bool (*validate)(const cqrs_command_t *cmd, cqrs_error_t *err);
  /* Decides on a validated command. state is NULL when the aggregate does not
   * exist (the caller already refused updates of a missing aggregate and
   * creates of an existing one). now is RFC 3339. False with err (422, ...)
   * for a refusal; out is then empty. */
  bool (*decide)(const bson_t *state, const cqrs_command_t *cmd, const char *now,
                 cqrs_decision_t *out, cqrs_error_t *err);
  /* Writes into out (an empty document) the state after event; state is NULL
   * before the first event. */
  void (*evolve)(const bson_t *state, const char *event_type, const bson_t *data, bson_t *out);
  /* Optional: adds to a validated cmd's fields the defaults that depend on
   * settings and now (a CreateOrder's processBy), just before decide. NULL:
   * none. */
  void (*complete)(cqrs_command_t *cmd, const char *now, const cqrs_decider_settings_t *settings);
} cqrs_decider_t;

/* One row of a decider's evolve table: the state after an event of type, given
 * the event decoded through the contract (the union member named after it). */
typedef struct {
  const cqrs_event_type_t *type;
  void (*evolve)(const bson_t *state, const cqrs_event_data_t *e, bson_t *out);
} cqrs_evolver_t;

/* Runs the row of rows[0..n) whose type is event_type on data decoded. An
 * event type without a row, or data that does not decode (never the case for
 * events decide wrote), leaves the state as it is: out gets a copy of state
 * (nothing when state is NULL). The decider's evolve is this over its table. */
void cqrs_decider_evolve(const cqrs_evolver_t *rows, size_t n, const bson_t *state, const char *event_type,
                         const bson_t *data, bson_t *out);

/* The decider and command spec for a command type, or NULL when no aggregate
 * handles it. */
const cqrs_decider_t *cqrs_decider_for_command(const char *command_type,
                                               const cqrs_command_spec_t **spec);

/* Parses a command and makes it ready to decide: finds its decider (400
 * "commandType" when none), gives it a commandId when it has none (UUIDv4), an
 * aggregateId from the decider's id_alias field or, for a create, derived
 * from the commandId (UUIDv5, so a retried create lands on the same
 * aggregate), else 400 "aggregateId"; then runs the decider's field checks.
 * *d and *spec are set as soon as the decider is known (NULL before). cmd is
 * caller storage to cqrs_command_cleanup, also after a failure. Used by the
 * HTTP ingress and the command loop alike. */
bool cqrs_decider_prepare(cqrs_command_t *cmd, const char *json, size_t len, const cqrs_decider_t **d,
                          const cqrs_command_spec_t **spec, cqrs_error_t *err);

/* The decider of an aggregate type ("user"), or NULL. */
const cqrs_decider_t *cqrs_decider_for_aggregate(const char *aggregate_type);

/* The string member key of doc (a state or event data document; doc may be
 * NULL), or "" when absent or not a string. Borrowed from doc. */
const char *cqrs_decider_str(const bson_t *doc, const char *key);

/* Shared field checks for deciders. */
bool cqrs_decider_check_email(const char *email, const char *field, cqrs_error_t *err);

extern const cqrs_decider_t cqrs_user_decider;
extern const cqrs_decider_t cqrs_order_decider, cqrs_customer_decider;

#endif
