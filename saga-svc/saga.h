/* The saga pattern, as the decider pattern for processes that span
 * aggregates: each saga type is one file under sagas/ with a pure
 *
 *   react(data, status, input) -> commands + new data + status + deadlines
 *
 * and one row in sagas/registry.c. No I/O, no clock: the caller passes "now".
 * An input is an event of one of the saga's trigger types, the result of one
 * of its own commands (from command-results, matched by commandId), or one of
 * its deadlines falling due.
 *
 * cqrs_saga_run wraps react with what every saga shares, so react stays small:
 *   - one instance per (tenant, saga type, key): the key is the triggering
 *     event's aggregate id, the saga id a UUIDv5 of the three, so an
 *     instance is never created twice and never crosses tenants;
 *   - each command a saga emits is a named step, emitted at most once: a step
 *     already in the instance's history is not emitted again (a redelivered
 *     or duplicated input emits nothing new);
 *   - a command's commandId is a UUIDv5 of saga id + step (+ the smallest
 *     nonce that puts its result, keyed "<tenant>/<commandId>", in the saga's
 *     own partition of command-results: the owner of the saga reads it);
 *   - a result is taken once: a second result for an answered step, or one
 *     for a commandId the instance never emitted, changes nothing;
 *   - a finished saga (completed, compensated, failed) ignores events;
 *   - deadlines are part of the instance (durable with it); a fired deadline
 *     is removed before react sees it, so it fires once.
 *
 * The instance document (the value on the saga-state topic, key = saga id):
 *   {"sagaId","type","tenant","key","state","startedAt","updatedAt",
 *    "partition", "data":{...react's...},
 *    "steps":[{"at","trigger","step","command":{...}|null,"commandId"|null,"outcome"}],
 *    "deadlines":[{"due","what"}]}
 * outcome is "pending" until the command's result, then its HTTP status
 * ("201", "404", ...); a step without a command (a note) has outcome "". */
#ifndef CQRS_SAGA_H
#define CQRS_SAGA_H

#include "cqrs/error.h"
#include "cqrs/events.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

/* Saga states, as written in the instance and listed by admin-svc. */
#define CQRS_SAGA_RUNNING "running"
#define CQRS_SAGA_COMPLETED "completed"
#define CQRS_SAGA_COMPENSATED "compensated"
#define CQRS_SAGA_FAILED "failed"

#define CQRS_SAGA_PENDING "pending" /* a step's outcome before its result */

typedef enum { CQRS_SAGA_EVENT, CQRS_SAGA_RESULT, CQRS_SAGA_DEADLINE } cqrs_saga_input_kind_t;

/* What react is given. */
typedef struct {
  cqrs_saga_input_kind_t kind;
  /* EVENT: its type descriptor, its data decoded (borrowed) and its aggregate id */
  const cqrs_event_type_t *event;
  const cqrs_event_data_t *decoded;
  const char *aggregate_id;
  /* RESULT: the step whose command it answers and the result's HTTP status;
   * pending: steps of the instance still waiting for a result, this one not
   * counted */
  const char *step;
  int status;
  size_t pending;
  /* DEADLINE: what the deadline was set for */
  const char *what;
} cqrs_saga_input_t;

/* A command react emits: step names it within the instance ("record-user",
 * "cancel/<orderId>"). */
typedef struct {
  char *step;
  const char *command_type; /* static */
  char *aggregate_id;
  bson_t fields;            /* the command's own fields */
  int64_t expected_version; /* > 0: sent as expectedVersion */
} cqrs_saga_emit_t;

typedef struct {
  int64_t due_ms;
  const char *what; /* static */
} cqrs_saga_deadline_t;

/* What react decides. It starts empty; react leaves changed false when the
 * input changes nothing (then nothing is written), else writes the whole new
 * data into data. */
typedef struct {
  bool changed;
  bson_t data;
  const char *status;        /* a CQRS_SAGA_* state; NULL: unchanged */
  const char *note;          /* a step without a command worth recording ("deadline set"); static; may be NULL */
  cqrs_saga_emit_t *emits;
  size_t n_emits, cap_emits;
  bool clear_deadlines;      /* drop every pending deadline (before adding these) */
  cqrs_saga_deadline_t deadlines[4];
  size_t n_deadlines;
} cqrs_saga_reaction_t;

/* Adds a command to r: returns its fields document, empty, to fill. */
bson_t *cqrs_saga_emit(cqrs_saga_reaction_t *r, const char *step, const char *command_type,
                       const char *aggregate_id, int64_t expected_version);

/* Adds a deadline to r (at most 4 per reaction: a saga bug beyond, assert). */
void cqrs_saga_set_deadline(cqrs_saga_reaction_t *r, int64_t due_ms, const char *what);

typedef struct {
  const char *type;                        /* "order_placement" */
  const cqrs_event_type_t *const *triggers; /* the event types it reacts to, NULL-terminated */
  /* data: the instance's data (an empty document for a new instance); status
   * its state (NULL for a new one). Pure. */
  void (*react)(const bson_t *data, const char *status, const cqrs_saga_input_t *in, const char *now,
                cqrs_saga_reaction_t *out);
} cqrs_saga_t;

/* Every saga type, NULL-terminated (sagas/registry.c). */
extern const cqrs_saga_t *const cqrs_sagas[];
extern const cqrs_saga_t cqrs_order_placement_saga, cqrs_customer_suspension_saga, cqrs_order_deadline_saga;

/* The saga type named type, or NULL. */
const cqrs_saga_t *cqrs_saga_find(const char *type);

/* True when s reacts to events of type event_type. */
bool cqrs_saga_triggered_by(const cqrs_saga_t *s, const char *event_type);

/* The saga id of (tenant, type, key): a UUIDv5 of "<tenant>/<type>/<key>". */
void cqrs_saga_id(const char *tenant, const char *type, const char *key, char out[37]);

/* Where the instance lives and what time it is. */
typedef struct {
  const char *tenant;
  const char *key;        /* the aggregate id that started it */
  const char *now;        /* RFC 3339 */
  int32_t partition;      /* the saga's partition (its key's partition of events) */
  int32_t n_partitions;   /* of command-results; <= 0: no nonce search */
} cqrs_saga_ctx_t;

/* A command to produce. */
typedef struct {
  char *command_id;
  char *aggregate_id;
  char *json; /* the command record value (bson_free) */
  size_t len;
} cqrs_saga_command_t;

/* What cqrs_saga_run produced: the new instance (NULL: unchanged, write
 * nothing) and the commands to produce with it, in order. */
typedef struct {
  bson_t *instance;
  cqrs_saga_command_t *commands;
  size_t n_commands;
} cqrs_saga_outcome_t;

/* Runs saga s on instance (NULL: none yet) for input in. For a RESULT, in->step
 * is found by command_id (in->step and in->pending are filled here). For a
 * DEADLINE, the deadline (due_ms, in->what) is removed from the instance.
 * Fills out (caller storage; cqrs_saga_outcome_cleanup). Never fails. */
void cqrs_saga_run(const cqrs_saga_t *s, const bson_t *instance, const cqrs_saga_ctx_t *ctx,
                   cqrs_saga_input_t *in, const char *command_id, int64_t deadline_due_ms, cqrs_saga_outcome_t *out);

void cqrs_saga_outcome_cleanup(cqrs_saga_outcome_t *out);

/* Instance accessors (borrowed from doc; "" or 0 when absent). */
const char *cqrs_saga_str(const bson_t *doc, const char *key);
/* The earliest pending deadline of instance: true with *due_ms and *what
 * (borrowed) when it has one. */
bool cqrs_saga_next_deadline(const bson_t *instance, int64_t *due_ms, const char **what);
/* Calls cb on each step of instance whose outcome is pending, with its commandId. */
void cqrs_saga_pending_steps(const bson_t *instance, void (*cb)(const char *command_id, void *ctx), void *ctx);

#endif
