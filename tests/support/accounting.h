/* Exactly-once accounting: what the clients were told, checked against the
 * log, the command results and the read models. Reusable by every end-to-end
 * test: the fault suite (tests/faults/) asserts it after each fault, e2e tests
 * at their end.
 *
 * Two layers. tk_acct_check is pure: the commands with their answers, the
 * events in log order, the command results and the stored documents in, a
 * report out (unit-tested with doctored inputs, tests/unit/test_accounting.c).
 * tk_acct_check_env (accounting_env.c) reads those from a test environment's
 * topics and store, waits for the read models to catch up, and calls it.
 *
 * What is checked (each failure is one line in the report's violations):
 *  - every command answered 201, or 200 with an eventId (a repeat), has its
 *    event exactly once in the log: matched by ce_causationid = commandId,
 *    the event's id, aggregate and version equal to the answer's;
 *  - a no-op (200 without eventId) and a refusal (4xx) have no event; a
 *    command whose answer was lost (status 0: timeout, dropped connection,
 *    503) has at most one;
 *  - every answer that came from the command loop (200, 201, 404, 409, 422)
 *    is on command-results with the same status and eventId, and every
 *    command known to have reached the commands topic (Kafka ingress) has a
 *    result there;
 *  - per aggregate the versions are 1, 2, ... with no gap and no duplicate,
 *    in that order in the log, all on one partition; no event id twice;
 *  - with all_commands_known, no event without a command the caller sent;
 *  - every result on command-results that names an event matches that
 *    event in the log (id, aggregate, version, causation), and a refusal on
 *    command-results has no event;
 *  - every read model document equals the fold of the log: the projector's
 *    own projections (projector_core) applied to each aggregate's events in
 *    version order and folded (fold.h) give the expected documents, compared
 *    field by field with what the store holds; a stored document no event
 *    explains is a violation too;
 *  - with sagas (the instances on saga-state and the saga commands on the
 *    commands topic given), every command a saga emitted is decided at most
 *    once and every order reaches its saga's outcome: see "Sagas" below. */
#ifndef TK_ACCOUNTING_H
#define TK_ACCOUNTING_H

#include "cqrs/event.h"
#include "projection.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One command a client sent, with the answer it finally got. Strings are
 * borrowed. */
typedef struct {
  const char *tenant;       /* NULL: "default" (AUTH=off) */
  const char *command_id;   /* the idempotency key */
  int status;               /* 201, 200, 4xx; 0 = unknown: the answer was lost */
  const char *aggregate_id; /* from the answer; may be NULL */
  int64_t version;          /* from the answer */
  const char *event_id;     /* from the answer; NULL for a no-op or a refusal */
  bool delivered;           /* known to be on the commands topic (Kafka ingress):
                               a result must exist on command-results */
} tk_acct_command_t;

/* One event as read from the log. */
typedef struct {
  cqrs_event_t ev; /* borrowed by the checker */
  int32_t partition;
  int64_t offset;
} tk_acct_event_t;

/* One record of command-results (key "<tenant>/<commandId>"). Borrowed. */
typedef struct {
  const char *tenant; /* "" for a 401 result (keyed "/<commandId>") */
  const char *command_id;
  int status;
  const char *aggregate_id; /* may be NULL */
  int64_t version;
  const char *event_id; /* may be NULL */
} tk_acct_result_t;

/* What the store holds for one read model of one tenant. Borrowed. */
typedef struct {
  const char *tenant;
  const cqrs_projection_t *projection;
  const bson_t *const *docs;
  size_t n;
} tk_acct_docs_t;

/* Sagas. A saga's commands are its steps (saga-svc/saga.h: each step with a
 * command records its commandId, a UUIDv5 of saga id + step, and its outcome:
 * "pending" or the result's HTTP status). Checked, when in->sagas is set:
 *  - every step's commandId is one step's only; its results on
 *    command-results agree (one decision: the same event, or the same
 *    refusal); its event, if any, is on the step's aggregate; its outcome is
 *    the result's status (a step still pending, or without a result, is
 *    unfinished: the caller waits for the sagas to settle first);
 *  - no causation id that is no client command has two events (a saga
 *    command decided twice); an event caused by a saga step is no orphan;
 *  - a saga command is on the commands topic at most once per partition (a
 *    command-svc forward to its aggregate's partition is a second record, on
 *    another), and only as a step its saga records (emitted once, ever);
 *  - every event that triggers a saga type has that saga's instance
 *    (tenant, type, key = the event's aggregate id);
 *  - order placement: every OrderCreated is recorded on its user at most once
 *    (UserOrderRecorded), on its customer at most once, cancelled at most
 *    once; its placement saga is not running; an order of a user created
 *    before it is recorded on that user exactly once; an order of no user is
 *    never recorded and its saga compensates it (the order ends Cancelled,
 *    or Delivered when the cancel came late); a completed saga has its
 *    records; a failed one is a violation;
 *  - customer suspension: every order recorded on a customer before its
 *    CustomerSuspended ends Cancelled or Delivered, and the suspension saga
 *    is not running. */

/* A saga command record on the commands topic: one whose correlationId is
 * set (a saga's commands carry their saga id there). Borrowed. */
typedef struct {
  const char *tenant;         /* from the record key "<tenant>/<aggregateId>" */
  const char *command_id;
  const char *correlation_id; /* the saga id */
  int32_t partition;
  int64_t offset;
} tk_acct_emitted_t;

typedef struct {
  const tk_acct_command_t *commands;
  size_t n_commands;
  const tk_acct_event_t *events; /* in the order read: per partition, offset order */
  size_t n_events;
  const tk_acct_result_t *results;
  size_t n_results;
  const tk_acct_docs_t *stores; /* every (tenant, projection) to compare; may be empty */
  size_t n_stores;
  bool all_commands_known; /* an event whose causation id is no command given is a violation */
  bool sagas;              /* check the sagas (saga-svc ran): the two lists below */
  const bson_t *const *saga_instances; /* the newest value of each saga id on saga-state */
  size_t n_saga_instances;
  const tk_acct_emitted_t *emitted; /* the saga command records on the commands topic */
  size_t n_emitted;
} tk_acct_input_t;

typedef struct {
  size_t commands;     /* given */
  size_t acknowledged; /* answered 201 or 200 */
  size_t refused;      /* answered 4xx */
  size_t unknown;      /* answer lost (status 0) */
  size_t lost;         /* acknowledged with an event, but that event is not in the log */
  size_t duplicated;   /* events beyond the first for one command, one version or one event id */
  size_t reordered;    /* an aggregate's version lower than the one before it in the log */
  size_t gaps;         /* a version missing between two of an aggregate's (or before its first) */
  size_t orphans;      /* events without a command (all_commands_known) */
  size_t events;       /* in the log */
  size_t documents;    /* read model documents compared */
  size_t documents_wrong;
  size_t sagas;           /* saga instances given */
  size_t saga_commands;   /* their steps with a command */
  size_t saga_duplicated; /* a saga command emitted or decided twice; an order recorded or cancelled twice */
  size_t saga_unfinished; /* a trigger without its saga, a step without its result, an order without its outcome */
  size_t saga_wrong;      /* an instance that disagrees with the log or command-results */
  char **violations; /* n_violations lines, owned */
  size_t n_violations;
} tk_acct_report_t;

/* Checks in and fills out (zeroed first; release with tk_acct_report_cleanup).
 * Can't fail: every problem found is a violation. */
void tk_acct_check(const tk_acct_input_t *in, tk_acct_report_t *out);

void tk_acct_report_cleanup(tk_acct_report_t *r);

/* The report as text: the counts on one line, then up to max_violations
 * violations, one a line. malloc'd. */
char *tk_acct_report_format(const tk_acct_report_t *r, size_t max_violations);

/* The expected documents of projection for tenant: the fold of the events
 * of that tenant (each aggregate's in version order, one per version: the
 * first met in the log). A reading projection (snapshots) reads those events
 * as its history, every SNAPSHOT_EVERY versions as the services read it from
 * the environment the test gives them (default CQRS_SNAPSHOT_EVERY_DEFAULT). *docs gets a malloc'd array of n owned documents
 * (free with tk_acct_docs_free). False with err when the projection refuses
 * an event (a poison event) or the writes cannot be folded. */
bool tk_acct_expected_docs(const cqrs_projection_t *projection, const char *tenant, const tk_acct_event_t *events,
                           size_t n_events, bson_t ***docs, size_t *n, cqrs_error_t *err);
void tk_acct_docs_free(bson_t **docs, size_t n);

#endif
