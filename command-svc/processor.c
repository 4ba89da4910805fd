/* The pure command pipeline: parse, route, check, decide, evolve. */
#include "processor.h"

#include "cqrs/alloc.h"
#include "cqrs/event_schema.h"

#include "cqrs/result.h"
#include "cqrs/util.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_result(cqrs_outcome_t *out, const cqrs_result_t *r) {
  out->status = r->status;
  out->result_json = cqrs_result_to_json(r, &out->result_len);
}

static void refuse(cqrs_outcome_t *out, const cqrs_command_t *cmd, const cqrs_error_t *err) {
  cqrs_result_t r = {.status = cqrs_error_http_status(err->code),
                     .command_id = cmd->command_id,
                     .aggregate_id = cmd->aggregate_id,
                     .error = err};
  set_result(out, &r);
}

/* Builds the wire event for decided event i at version. */
static void make_event(cqrs_event_t *ev, const cqrs_decider_t *d, const cqrs_command_t *cmd,
                       const cqrs_decided_event_t *de, int64_t version, const cqrs_process_ctx_t *ctx) {
  char id[CQRS_UUID_LEN];
  cqrs_uuid_random(id);
  ev->id = cqrs_xstrdup(id);
  ev->type = cqrs_xstrdup(de->type);
  ev->source = cqrs_xstrdup(ctx->source);
  ev->aggregate_type = cqrs_xstrdup(d->aggregate_type);
  ev->aggregate_id = cqrs_xstrdup(cmd->aggregate_id);
  ev->tenant = cqrs_xstrdup(ctx->tenant);
  ev->time = cqrs_xstrdup(ctx->now);
  ev->correlation_id = cmd->correlation_id ? cqrs_xstrdup(cmd->correlation_id) : NULL;
  ev->causation_id = cqrs_xstrdup(cmd->command_id);
  ev->traceparent = ctx->traceparent ? cqrs_xstrdup(ctx->traceparent) : NULL;
  ev->auth_type = ctx->actor_type ? cqrs_xstrdup(ctx->actor_type) : NULL;
  ev->auth_id = ctx->actor_type && ctx->actor_id ? cqrs_xstrdup(ctx->actor_id) : NULL;
  ev->version = version;
  ev->data = bson_copy(&de->data);
  cqrs_event_set_schema(ev, ctx->schema_registry, de->schema->version);
}

/* Validates one decided event against the JSON Schema the registry holds for
 * its (type, version): the one generated from the contract
 * (cqrs/event_schema.h), compiled once per process. It is stricter than the
 * contract's decode (no member outside the contract, no empty required
 * string) and cheaper (0.1-0.9 us against ~1.1 us, BENCHMARKS.md). False
 * with err naming the first failing field. */
static bool validate_event(const cqrs_decided_event_t *de, cqrs_error_t *err) {
  const cqrs_event_schemas_t *schemas = cqrs_event_schemas_shared(err);
  return schemas && cqrs_event_schemas_validate(schemas, de->schema, &de->data, err);
}

bool cqrs_decision_validate(const cqrs_decision_t *d, size_t *bad, cqrs_error_t *err) {
  for (size_t i = 0; i < d->n_events; i++) {
    const cqrs_decided_event_t *de = &d->events[i];
    cqrs_error_t why = {0};
    *bad = i;
    if (de->schema != cqrs_event_type_find(de->type)) {
      cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "%s v%d is not the current version of %s: deciders write only "
                     "the current one", de->type, de->schema->version, de->type);
      return false;
    }
    if (!validate_event(de, &why)) {
      cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "event %s v%d does not match its schema: %s", de->type,
                     de->schema->version, why.message);
      return false;
    }
  }
  return true;
}

/* Runs the decider and, when it accepts, fills events, staged state and the
 * 201 result (200 when nothing changes). */
static void decide(const cqrs_decider_t *d, const cqrs_aggregate_t *current, cqrs_command_t *cmd,
                   const cqrs_process_ctx_t *ctx, cqrs_outcome_t *out) {
  cqrs_error_t err = {0};
  cqrs_decision_t decision = {0};
  const bson_t *state = current && current->version > 0 ? current->state : NULL;
  int64_t version = current ? current->version : 0;
  if (d->complete && ctx->settings) d->complete(cmd, ctx->now, ctx->settings);
  if (!d->decide(state, cmd, ctx->now, &decision, &err)) {
    refuse(out, cmd, &err);
    goto done;
  }
  size_t bad;
  if (!cqrs_decision_validate(&decision, &bad, &err)) {
    char what[128];
    snprintf(what, sizeof what, "%s v%d", decision.events[bad].type, decision.events[bad].schema->version);
    out->invalid_event = cqrs_xstrdup(what);
    out->invalid_reason = cqrs_xstrdup(err.message);
    cqrs_error_set(&err, CQRS_ERR_INTERNAL, NULL,
                   "command-svc decided an invalid event (%s); nothing was appended. This is a bug in command-svc, "
                   "not in the command", out->invalid_reason);
    refuse(out, cmd, &err);
    goto done;
  }
  if (decision.n_events == 0) {
    cqrs_result_t r = {.status = 200, .command_id = cmd->command_id,
                       .aggregate_id = cmd->aggregate_id, .version = version};
    set_result(out, &r);
    goto done;
  }
  cqrs_aggregate_t *next = current ? cqrs_aggregate_copy(current)
                                   : cqrs_aggregate_new(ctx->tenant, cmd->aggregate_id, d->aggregate_type,
                                                        ctx->partition);
  /* Where its state is written now (an aggregate restored from a record
   * written before tenancy may have come from another partition). */
  next->partition = ctx->partition;
  for (size_t i = 0; i < decision.n_events; i++) {
    make_event(&out->events[i], d, cmd, &decision.events[i], version + (int64_t)i + 1, ctx);
    bson_t *evolved = bson_new();
    d->evolve(next->state, decision.events[i].type, &decision.events[i].data, evolved);
    if (next->state) bson_destroy(next->state);
    next->state = evolved;
  }
  out->n_events = decision.n_events;
  next->version = version + (int64_t)decision.n_events;
  const cqrs_event_t *last = &out->events[out->n_events - 1];
  cqrs_result_t r = {.status = 201, .command_id = cmd->command_id, .aggregate_id = cmd->aggregate_id,
                     .version = next->version, .event_id = last->id, .event_type = last->type};
  set_result(out, &r);
  cqrs_aggregate_remember(next, cmd->command_id, out->result_json, ctx->now_ms);
  out->staged = next;
done:
  cqrs_decision_cleanup(&decision);
}

char *cqrs_result_key(const char *tenant, const char *command_id) {
  return cqrs_tenant_key(tenant ? tenant : "", command_id);
}

bool cqrs_command_check_tenant(const cqrs_command_t *cmd, const char *tenant, cqrs_error_t *err) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, &cmd->fields, CQRS_COMMAND_TENANT_FIELD)) return true;
  if (BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), tenant) == 0) return true;
  cqrs_error_set(err, CQRS_ERR_FORBIDDEN, CQRS_COMMAND_TENANT_FIELD,
                 "tenantId does not match the credential's tenant (the tenant comes from the credential)");
  return false;
}

void cqrs_process_command(const cqrs_aggregate_store_t *store, const cqrs_process_ctx_t *ctx,
                          const char *json, size_t len, cqrs_outcome_t *out) {
  assert(ctx->tenant || ctx->denied); /* an authorized record has a tenant */
  memset(out, 0, sizeof *out);
  out->forward_partition = -1;
  cqrs_command_t cmd;
  cqrs_error_t err = {0};
  const cqrs_command_spec_t *spec = NULL;
  const cqrs_decider_t *d = NULL;
  bool ok = cqrs_decider_prepare(&cmd, json, len, &d, &spec, &err);
  /* Even a malformed command gets a result, under a new id if it had none. */
  if (!cmd.command_id) {
    char id[CQRS_UUID_LEN];
    cqrs_uuid_random(id);
    cqrs_command_set_id(&cmd.command_id, id);
  }
  out->command_id = cqrs_xstrdup(cmd.command_id);
  out->result_key = cqrs_result_key(ctx->tenant, cmd.command_id);
  if (d) out->command_type = cqrs_xstrdup(cmd.type);
  if (cmd.correlation_id) out->correlation_id = cqrs_xstrdup(cmd.correlation_id);
  if (cmd.aggregate_id) out->aggregate_id = cqrs_xstrdup(cmd.aggregate_id);
  /* Who may send it comes before what it says, as at the HTTP gate. */
  if (ctx->denied) {
    refuse(out, &cmd, ctx->denied);
    goto done;
  }
  if (!ok || !cqrs_command_check_tenant(&cmd, ctx->tenant, &err)) {
    refuse(out, &cmd, &err);
    goto done;
  }
  out->aggregate_key = cqrs_tenant_key(ctx->tenant, cmd.aggregate_id);
  int32_t owner = ctx->partition_of(out->aggregate_key, ctx->partition_ctx);
  if (owner != ctx->partition) {
    /* Not ours (e.g. a Kafka producer without a key): hand it, with its ids
     * fixed, to the partition that owns the aggregate. */
    out->forward_partition = owner;
    out->forward_json = cqrs_command_to_json(&cmd, NULL);
    goto done;
  }
  const cqrs_aggregate_t *current = cqrs_aggregate_store_get(store, out->aggregate_key);
  const char *seen = current ? cqrs_aggregate_recent(current, cmd.command_id) : NULL;
  if (!seen && ctx->deadline_ms > 0 && ctx->now_ms > ctx->deadline_ms) {
    out->expired = true; /* CQRS_COMMAND_DEADLINE_HEADER */
    goto done;
  }
  int64_t retry_ms = 0;
  if (ctx->admit && !ctx->admit(ctx->tenant, &retry_ms, ctx->admit_ctx)) {
    cqrs_error_set(&err, CQRS_ERR_RATE_LIMITED, NULL,
                   "the tenant's command rate limit is exceeded; retry after retryAfter seconds");
    err.retry_after_ms = retry_ms;
    refuse(out, &cmd, &err);
    goto done;
  }
  int64_t version = current ? current->version : 0;
  if (current && current->unreadable) {
    /* restored from an event log with an event we cannot read: deciding on
     * that state could contradict the log */
    cqrs_error_set(&err, CQRS_ERR_INTERNAL, NULL, "%s %s cannot be decided on: %s", d->aggregate_type,
                   cmd.aggregate_id, current->unreadable);
    refuse(out, &cmd, &err);
  } else if (seen) {
    out->status = 200;
    out->result_json = cqrs_result_restatus(seen, strlen(seen), 200, &out->result_len);
  } else if (current && strcmp(current->aggregate_type, d->aggregate_type) != 0) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "aggregateId", "aggregate %s is a %s, not a %s",
                   cmd.aggregate_id, current->aggregate_type, d->aggregate_type);
    refuse(out, &cmd, &err);
  } else if (!spec->creates && version == 0) {
    cqrs_error_set(&err, CQRS_ERR_NOT_FOUND, NULL, "%s %s does not exist", d->aggregate_type, cmd.aggregate_id);
    refuse(out, &cmd, &err);
  } else if (cmd.has_expected_version && cmd.expected_version != version) {
    cqrs_error_set(&err, CQRS_ERR_CONFLICT, NULL, "expectedVersion %lld but the %s is at version %lld",
                   (long long)cmd.expected_version, d->aggregate_type, (long long)version);
    err.current_version = version;
    refuse(out, &cmd, &err);
  } else if (spec->creates && version > 0) {
    cqrs_error_set(&err, CQRS_ERR_REFUSED, NULL, "%s %s already exists", d->aggregate_type, cmd.aggregate_id);
    refuse(out, &cmd, &err);
  } else {
    decide(d, current, &cmd, ctx, out);
  }
done:
  cqrs_command_cleanup(&cmd);
}

void cqrs_outcome_cleanup(cqrs_outcome_t *out) {
  for (size_t i = 0; i < out->n_events; i++) cqrs_event_cleanup(&out->events[i]);
  cqrs_aggregate_destroy(out->staged);
  bson_free(out->result_json);
  bson_free(out->forward_json);
  free(out->command_id);
  free(out->result_key);
  free(out->aggregate_id);
  free(out->aggregate_key);
  free(out->command_type);
  free(out->correlation_id);
  free(out->invalid_event);
  free(out->invalid_reason);
  memset(out, 0, sizeof *out);
}
