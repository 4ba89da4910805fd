/* What every query route shares: the gate (authentication, the tenant), the
 * tenant's collections, single-document reads, parameter checks. */
#include "../routes.h"

#include "cqrs/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void gate_cb(cqrs_http_req_t *req, void *arg) {
  const cqrs_routes_gate_t *g = arg;
  cqrs_routes_call_t call = {.ctx = g->ctx, .arg = g->arg};
  if (!cqrs_auth_http(g->ctx->auth, req, CQRS_SCOPE_QUERIES_READ, &call.who)) return;
  if (!cqrs_tenant_valid(call.who.tenant, NULL)) {
    /* A platform administrator's credential names no tenant. */
    cqrs_http_reply_error(req, 403, "this credential belongs to no tenant: it reads no read model", NULL);
    return;
  }
  if (!cqrs_ratelimit_http(g->ctx->limits, req, call.who.tenant, g->ctx->metrics)) return; /* 429 */
  char labels[64];
  snprintf(labels, sizeof labels, "tenant=\"%s\"", cqrs_metrics_tenant(g->ctx->metrics, call.who.tenant));
  cqrs_metrics_add(g->ctx->metrics, "queries_by_tenant_total", labels, 1);
  g->cb(req, &call);
}

void cqrs_routes_add_arg(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx, const char *method, const char *path,
                         const char *label, cqrs_routes_handler_cb cb, const void *arg) {
  BSON_ASSERT(ctx->n_gates < CQRS_ROUTES_MAX); /* a programmer's mistake: raise CQRS_ROUTES_MAX */
  cqrs_routes_gate_t *g = &ctx->gates[ctx->n_gates++];
  *g = (cqrs_routes_gate_t){ctx, cb, arg};
  cqrs_http_server_route(http, method, path, label, gate_cb, g);
}

void cqrs_routes_add(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx, const char *method, const char *path,
                     const char *label, cqrs_routes_handler_cb cb) {
  cqrs_routes_add_arg(http, ctx, method, path, label, cb, NULL);
}

mongoc_collection_t *cqrs_routes_collection(const cqrs_routes_call_t *call, mongoc_client_t *client,
                                            const char *read_model, cqrs_error_t *err) {
  return cqrs_tenant_store_collection(call->ctx->store, client, &call->who, read_model, err);
}

bool cqrs_routes_locate(const cqrs_routes_call_t *call, mongoc_client_t *client, const char *read_model,
                        cqrs_tenant_place_t *at, cqrs_error_t *err) {
  return cqrs_tenant_store_locate(call->ctx->store, client, call->who.tenant, read_model, at, err);
}

void cqrs_routes_freshness(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const char *read_model) {
  int64_t lag_ms, lag_events;
  if (!call->ctx->staleness || !cqrs_staleness_get(call->ctx->staleness, read_model, &lag_ms, &lag_events)) return;
  char v[24];
  if (lag_ms >= 0) {
    snprintf(v, sizeof v, "%lld", (long long)lag_ms);
    cqrs_http_req_add_header(req, "X-Read-Model-Lag-Ms", v);
  }
  if (lag_events >= 0) {
    snprintf(v, sizeof v, "%lld", (long long)lag_events);
    cqrs_http_req_add_header(req, "X-Read-Model-Lag-Events", v);
  }
}

void cqrs_routes_reply_no_store(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const char *read_model,
                                const char *why) {
  static const cqrs_single_read_t any = {0};
  cqrs_log_error(call->ctx->log, "store read failed", "collection", read_model, "tenant", call->who.tenant, "error",
                 why, NULL);
  cqrs_read_answer_t a;
  cqrs_single_read_answer(&any, CQRS_READ_NO_STORE, NULL, 0, &a);
  cqrs_http_reply_json(req, a.status, a.body, a.len);
  cqrs_read_answer_cleanup(&a);
}

void cqrs_routes_find_one(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_single_read_t *read,
                          const char *value, const cqrs_params_t *p) {
  const cqrs_routes_ctx_t *ctx = call->ctx;
  int64_t min_version, wait_ms;
  cqrs_error_t err = {0};
  if (!cqrs_params_wait(p, &min_version, &wait_ms, &err)) {
    cqrs_http_reply_error(req, 400, err.message, err.field);
    return;
  }
  mongoc_client_t *client = mongoc_client_pool_pop(ctx->pool);
  mongoc_collection_t *coll = cqrs_routes_collection(call, client, read->read_model, &err);
  mongoc_cursor_t *cur = NULL;
  bson_t filter, opts;
  cqrs_single_read_query(read, value, &filter, &opts);
  if (!coll) {
    cqrs_routes_reply_no_store(req, call, read->read_model, err.message);
    goto done;
  }
  cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  const bson_t *doc = NULL;
  bson_error_t error;
  if (!mongoc_cursor_next(cur, &doc)) doc = NULL;
  if (!doc && mongoc_cursor_error(cur, &error)) {
    cqrs_routes_reply_no_store(req, call, read->read_model, error.message);
    goto done;
  }
  cqrs_routes_freshness(req, call, read->read_model);
  int64_t left = wait_ms - cqrs_http_req_age_ms(req);
  cqrs_read_outcome_t o = cqrs_single_read_decide(doc, min_version, left > 0);
  if (o == CQRS_READ_WAIT) {
    /* Not there yet: the hub looks again for every waiter at once, without
     * holding this loop. */
    cqrs_waiters_wait(ctx->waiters, req, call->who.tenant, read, value, min_version, left);
    goto done;
  }
  cqrs_read_answer_t a;
  cqrs_single_read_answer(read, o, doc, min_version, &a);
  if (a.stale) cqrs_http_req_add_header(req, "X-Stale", "true");
  cqrs_http_reply_json(req, a.status, a.body, a.len);
  cqrs_read_answer_cleanup(&a);
done:
  if (cur) mongoc_cursor_destroy(cur);
  bson_destroy(&opts);
  bson_destroy(&filter);
  if (coll) mongoc_collection_destroy(coll);
  mongoc_client_pool_push(ctx->pool, client);
}

bool cqrs_routes_check_params(cqrs_http_req_t *req, const char *const *allowed) {
  const char *unknown;
  if (!cqrs_http_req_query_unknown(req, allowed, &unknown)) return true;
  char msg[160];
  snprintf(msg, sizeof msg, "unknown query parameter \"%.100s\"", unknown);
  cqrs_http_reply_error(req, 400, msg, unknown);
  return false;
}

void cqrs_routes_end_page(bson_string_t *out, const char *next) {
  bson_string_append(out, "],\"nextCursor\":");
  if (next)
    cqrs_json_append_string(out, next);
  else
    bson_string_append(out, "null");
  bson_string_append_c(out, '}');
}
