/* The audit trail: GET /v1/admin/audit?limit=&cursor=, newest first, read
 * from the audit topic (audit.h). The cursor is the offset of the last
 * record shown. A tenant's administrator sees its tenant's records only. */
#include "../routes.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const admin_caller_t *caller;
  int64_t before; /* only records at offsets below it (-1: any) */
  bson_t **docs;  /* every visible record, oldest first */
  int64_t *offsets;
  size_t n, cap;
} collect_t;

static void collect(const rd_kafka_message_t *m, void *arg) {
  collect_t *c = arg;
  if (c->before >= 0 && m->offset >= c->before) return;
  cqrs_error_t err = {0};
  bson_t *doc = m->payload ? cqrs_json_parse(m->payload, m->len, &err) : NULL;
  if (!doc) return;
  bson_iter_t it;
  const char *t = bson_iter_init_find(&it, doc, "tenant") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
  if (!c->caller->platform && strcmp(t, c->caller->who.tenant) != 0) {
    bson_destroy(doc);
    return;
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 64;
    c->docs = cqrs_xrealloc(c->docs, c->cap * sizeof *c->docs);
    c->offsets = cqrs_xrealloc(c->offsets, c->cap * sizeof *c->offsets);
  }
  c->docs[c->n] = doc;
  c->offsets[c->n++] = m->offset;
}

static void audit_list(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  admin_caller_t caller;
  if (!admin_gate_admin(req, ctx, "audit.list", &caller)) return;
  static const char *const params[] = {"limit", "cursor", NULL};
  int limit;
  if (!admin_query_only(req, params) || !admin_limit(req, &limit)) return;
  collect_t c = {.caller = &caller, .before = -1};
  const char *cursor = cqrs_http_req_query(req, "cursor");
  if (cursor) {
    char *end;
    c.before = strtoll(cursor, &end, 10);
    if (!*cursor || *end || c.before < 0) {
      cqrs_http_reply_error(req, 400, "cursor is not one this service gave", "cursor");
      return;
    }
  }
  cqrs_error_t err = {0};
  if (!admin_probe_read_all(ctx->probe, CQRS_TOPIC_AUDIT, collect, &c, &err)) {
    cqrs_log_warn(ctx->log, "cannot read the audit trail", "error", err.message, NULL);
    cqrs_http_req_add_header(req, "Retry-After", "1");
    cqrs_http_reply_error(req, 503, "the audit trail did not answer in time; retry", NULL);
  } else {
    bson_string_t *out = bson_string_new("{\"items\":[");
    size_t shown = 0;
    for (size_t i = c.n; i-- > 0 && shown < (size_t)limit; shown++) {
      char *json = cqrs_json_write(c.docs[i], NULL);
      if (shown) bson_string_append_c(out, ',');
      bson_string_append(out, json);
      bson_free(json);
    }
    if (shown < c.n)
      bson_string_append_printf(out, "],\"nextCursor\":\"%lld\"}", (long long)c.offsets[c.n - shown]);
    else
      bson_string_append(out, "],\"nextCursor\":null}");
    cqrs_http_reply_json(req, 200, out->str, out->len);
    bson_string_free(out, true);
  }
  for (size_t i = 0; i < c.n; i++) bson_destroy(c.docs[i]);
  free(c.docs);
  free(c.offsets);
}

void admin_audit_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  cqrs_http_server_route(http, "GET", "/v1/admin/audit", "/v1/admin/audit", audit_list, ctx);
}
