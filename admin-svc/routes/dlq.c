/* Dead letters: GET /v1/admin/dlq[?projection=&limit=&cursor=] and
 * GET /v1/admin/dlq/{id} read events.dlq itself; POST
 * /v1/admin/dlq/{id}/redrive, POST /v1/admin/dlq/redrive (by filter) and
 * POST /v1/admin/dlq/{id}/discard write "dlq/<id>" records on the ops topic
 * (cqrs/ops.h): projector-svc redrives, in order; a discard is only recorded.
 * An id is "<partition>-<offset>" in events.dlq; pages are keyset pages in
 * that order (the cursor is the last id shown). A tenant's administrator
 * sees and acts on its tenant's dead letters only. */
#include "../routes.h"
#include "projection.h"

#include "cqrs/alloc.h"
#include "cqrs/event.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/upcast.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PUT_TIMEOUT_MS 10000
#define REASON_MAX 500

/* ---- reading ---- */

typedef struct {
  int32_t partition;
  int64_t offset;
} dlq_id_t;

static bool parse_id(const char *s, dlq_id_t *id) {
  char *end;
  long p = strtol(s, &end, 10);
  if (end == s || *end != '-' || p < 0) return false;
  const char *o = end + 1;
  long long off = strtoll(o, &end, 10);
  if (end == o || *end || off < 0) return false;
  id->partition = (int32_t)p;
  id->offset = off;
  return true;
}

static int id_cmp(dlq_id_t a, dlq_id_t b) {
  if (a.partition != b.partition) return a.partition < b.partition ? -1 : 1;
  return (a.offset > b.offset) - (a.offset < b.offset);
}

/* A copy of header name of m, or NULL. */
static char *header(const rd_kafka_message_t *m, const char *name) {
  rd_kafka_headers_t *h = NULL;
  const void *v;
  size_t len;
  if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len) || !v) return NULL;
  return cqrs_xstrndup(v, len);
}

static void put_str(bson_t *doc, const char *key, const char *v) {
  if (v)
    bson_append_utf8(doc, key, -1, v, -1);
  else
    bson_append_null(doc, key, -1);
}

/* The state of dead letter id: discarded, redriven or dead. */
static const char *state_of(admin_ctx_t *ctx, const char *id) {
  char key[96];
  snprintf(key, sizeof key, "%s%s", CQRS_OPS_DLQ_STATE, id);
  char *v = cqrs_ops_get(ctx->ops, key);
  if (v) {
    free(v);
    return CQRS_DLQ_REDRIVEN;
  }
  snprintf(key, sizeof key, "%s%s", CQRS_OPS_DLQ, id);
  v = cqrs_ops_get(ctx->ops, key);
  bool discarded = false;
  if (v) {
    cqrs_error_t err = {0};
    bson_t *doc = cqrs_json_parse(v, strlen(v), &err);
    const char *a = NULL;
    discarded = doc && cqrs_json_get_string(doc, "action", NULL, false, 16, &a, &err) && a &&
                strcmp(a, CQRS_DLQ_DISCARD) == 0;
    if (doc) bson_destroy(doc);
    free(v);
  }
  return discarded ? CQRS_DLQ_DISCARDED : CQRS_DLQ_DEAD;
}

/* The dead letter's data as every reader reads it, next to the payload as
 * written: writtenSchemaVersion (its ce_schemaversion, 1 without), and data
 * upcast to its type's current schemaVersion by the contract's upcasters
 * (cqrs/upcast.h), both null when the contract cannot read it (unknown type
 * or version: often why it is dead) or the payload is not a JSON object. */
static void append_upcast(bson_t *doc, const cqrs_event_t *ev, const bson_t *payload) {
  cqrs_upcast_t up = {0};
  cqrs_error_t err = {0};
  int written = cqrs_event_schema_version(ev);
  bool ok = payload && ev->type && cqrs_upcast(ev->type, written, payload, &up, &err);
  BSON_APPEND_INT32(doc, "writtenSchemaVersion", written);
  if (ok) {
    BSON_APPEND_INT32(doc, "schemaVersion", up.type->version);
    BSON_APPEND_DOCUMENT(doc, "data", up.data);
  } else {
    BSON_APPEND_NULL(doc, "schemaVersion");
    BSON_APPEND_NULL(doc, "data");
  }
  cqrs_upcast_cleanup(&up);
}

/* One dead letter as the API shows it (full: headers, payload and its
 * upcast data too). */
typedef struct {
  dlq_id_t id;
  char tenant[CQRS_TENANT_MAX + 1];
  char projection[64];
  char event_type[128];
  bson_t doc;
} item_t;

static void make_item(admin_ctx_t *ctx, const rd_kafka_message_t *m, bool full, item_t *it) {
  char id[48];
  snprintf(id, sizeof id, "%d-%lld", m->partition, (long long)m->offset);
  it->id = (dlq_id_t){m->partition, m->offset};
  cqrs_header_t hdrs[40];
  size_t nh = cqrs_kafka_headers((rd_kafka_message_t *)m, hdrs, 40);
  cqrs_event_t ev;
  cqrs_error_t err = {0};
  /* the headers only (no value): what decodes of them is filled in, whatever the payload */
  cqrs_event_from_record(&ev, hdrs, nh, NULL, 0, &err);
  char *error = header(m, CQRS_DLQ_ERROR), *proj = header(m, CQRS_DLQ_PROJECTION),
       *sp = header(m, CQRS_DLQ_SOURCE_PARTITION), *so = header(m, CQRS_DLQ_SOURCE_OFFSET);
  snprintf(it->tenant, sizeof it->tenant, "%s", ev.tenant ? ev.tenant : "");
  snprintf(it->projection, sizeof it->projection, "%s", proj ? proj : "");
  snprintf(it->event_type, sizeof it->event_type, "%s", ev.type ? ev.type : "");
  bson_init(&it->doc);
  BSON_APPEND_UTF8(&it->doc, "id", id);
  put_str(&it->doc, "projection", proj);
  put_str(&it->doc, "eventType", ev.type);
  put_str(&it->doc, "eventId", ev.id);
  put_str(&it->doc, "aggregateId", ev.aggregate_id);
  put_str(&it->doc, "tenant", ev.tenant);
  put_str(&it->doc, "error", error);
  if (sp)
    BSON_APPEND_INT32(&it->doc, "sourcePartition", atoi(sp));
  else
    BSON_APPEND_NULL(&it->doc, "sourcePartition");
  if (so)
    BSON_APPEND_INT64(&it->doc, "sourceOffset", strtoll(so, NULL, 10));
  else
    BSON_APPEND_NULL(&it->doc, "sourceOffset");
  rd_kafka_timestamp_type_t tt;
  int64_t ts = rd_kafka_message_timestamp(m, &tt);
  if (ts > 0) {
    time_t secs = (time_t)(ts / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char at[40], buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(at, sizeof at, "%s.%03dZ", buf, (int)(ts % 1000));
    BSON_APPEND_UTF8(&it->doc, "deadAt", at);
  } else {
    BSON_APPEND_NULL(&it->doc, "deadAt");
  }
  BSON_APPEND_UTF8(&it->doc, "state", state_of(ctx, id));
  if (full) {
    bson_t h;
    BSON_APPEND_DOCUMENT_BEGIN(&it->doc, "headers", &h);
    for (size_t i = 0; i < nh; i++) {
      char *v = hdrs[i].value ? cqrs_xstrndup(hdrs[i].value, hdrs[i].len) : cqrs_xstrdup("");
      bson_append_utf8(&h, hdrs[i].name, -1, v, -1);
      free(v);
    }
    bson_append_document_end(&it->doc, &h);
    cqrs_error_t perr = {0};
    bson_t *payload = m->payload ? cqrs_json_parse(m->payload, m->len, &perr) : NULL;
    if (payload) {
      bson_append_document(&it->doc, "payload", -1, payload);
    } else if (m->payload) {
      char *raw = cqrs_xstrndup(m->payload, m->len);
      BSON_APPEND_UTF8(&it->doc, "payload", bson_utf8_validate(raw, strlen(raw), false) ? raw : "(not UTF-8)");
      free(raw);
    } else {
      BSON_APPEND_NULL(&it->doc, "payload");
    }
    append_upcast(&it->doc, &ev, payload);
    if (payload) bson_destroy(payload);
  }
  cqrs_event_cleanup(&ev);
  free(error);
  free(proj);
  free(sp);
  free(so);
}

/* Which dead letters a read collects. */
typedef struct {
  admin_ctx_t *ctx;
  const admin_caller_t *caller;
  const char *projection; /* NULL: any */
  const char *event_type; /* NULL: any */
  bool only_dead;
  bool only_redrivable; /* a projection's only (saga-svc's are not redriven) */
  bool has_after;
  dlq_id_t after; /* keyset: strictly after this id */
  bool has_one;
  dlq_id_t one; /* just this one (full) */
  size_t limit;
  item_t *items;
  size_t n;
  bool more;
} collect_t;

static void collect(const rd_kafka_message_t *m, void *arg) {
  collect_t *c = arg;
  dlq_id_t id = {m->partition, m->offset};
  if (c->has_one && id_cmp(id, c->one) != 0) return;
  if (c->has_after && id_cmp(id, c->after) <= 0) return;
  if (c->n == c->limit) {
    c->more = true;
    return;
  }
  item_t *it = &c->items[c->n];
  make_item(c->ctx, m, c->has_one, it);
  bool keep = (c->caller->platform || strcmp(it->tenant, c->caller->who.tenant) == 0) &&
              (!c->projection || strcmp(it->projection, c->projection) == 0) &&
              (!c->event_type || strcmp(it->event_type, c->event_type) == 0);
  if (keep && c->only_redrivable) keep = cqrs_projection_find(it->projection) != NULL;
  if (keep && c->only_dead) {
    bson_iter_t s;
    keep = bson_iter_init_find(&s, &it->doc, "state") && strcmp(bson_iter_utf8(&s, NULL), CQRS_DLQ_DEAD) == 0;
  }
  if (keep)
    c->n++;
  else
    bson_destroy(&it->doc);
}

static void collect_free(collect_t *c) {
  for (size_t i = 0; i < c->n; i++) bson_destroy(&c->items[i].doc);
  free(c->items);
}

static bool read_dlq(cqrs_http_req_t *req, collect_t *c) {
  cqrs_error_t err = {0};
  c->items = cqrs_xcalloc(c->limit + 1, sizeof *c->items);
  if (admin_probe_read_all(c->ctx->probe, CQRS_TOPIC_DLQ, collect, c, &err)) return true;
  cqrs_log_warn(c->ctx->log, "cannot read the dead letters", "error", err.message, NULL);
  cqrs_http_req_add_header(req, "Retry-After", "1");
  cqrs_http_reply_error(req, 503, "the dead letter topic did not answer in time; retry", NULL);
  return false;
}

static void dlq_list(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  admin_caller_t caller;
  if (!admin_gate_admin(req, ctx, "dlq.list", &caller)) return;
  static const char *const params[] = {"projection", "eventType", "limit", "cursor", NULL};
  int limit;
  if (!admin_query_only(req, params) || !admin_limit(req, &limit)) return;
  collect_t c = {.ctx = ctx, .caller = &caller, .projection = cqrs_http_req_query(req, "projection"),
                 .event_type = cqrs_http_req_query(req, "eventType"), .limit = (size_t)limit};
  const char *cursor = cqrs_http_req_query(req, "cursor");
  if (cursor) {
    if (!parse_id(cursor, &c.after)) {
      cqrs_http_reply_error(req, 400, "cursor is not one this service gave", "cursor");
      return;
    }
    c.has_after = true;
  }
  if (!read_dlq(req, &c)) {
    collect_free(&c);
    return;
  }
  bson_t doc = BSON_INITIALIZER, arr;
  BSON_APPEND_ARRAY_BEGIN(&doc, "items", &arr);
  for (size_t i = 0; i < c.n; i++) {
    char idx[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
    bson_append_document(&arr, k, -1, &c.items[i].doc);
  }
  bson_append_array_end(&doc, &arr);
  if (c.more && c.n) {
    char next[48];
    snprintf(next, sizeof next, "%d-%lld", c.items[c.n - 1].id.partition, (long long)c.items[c.n - 1].id.offset);
    BSON_APPEND_UTF8(&doc, "nextCursor", next);
  } else {
    BSON_APPEND_NULL(&doc, "nextCursor");
  }
  cqrs_http_reply_doc(req, 200, &doc);
  bson_destroy(&doc);
  collect_free(&c);
}

/* Reads dead letter id into c (one item, full); false once it answered. */
static bool find_one(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_caller_t *caller, const char *id,
                     collect_t *c, const char *action) {
  *c = (collect_t){.ctx = ctx, .caller = caller, .limit = 1};
  if (!parse_id(id, &c->one)) {
    admin_refuse(req, ctx, caller, action, id, 404, "no such dead letter");
    return false;
  }
  c->has_one = true;
  if (!read_dlq(req, c)) return false;
  if (c->n == 1) return true;
  admin_refuse(req, ctx, caller, action, id, 404, "no such dead letter");
  return false;
}

/* Writes "dlq/<id>" = {action, reason?, by, at}. */
static bool put_action(admin_ctx_t *ctx, const admin_caller_t *caller, const char *id, const char *action,
                       const char *reason, cqrs_error_t *err) {
  char now[32];
  cqrs_time_now_rfc3339(now);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "action", action);
  if (reason) BSON_APPEND_UTF8(&doc, "reason", reason);
  BSON_APPEND_UTF8(&doc, "by", caller->who.subject);
  BSON_APPEND_UTF8(&doc, "at", now);
  char *json = cqrs_json_write(&doc, NULL);
  bson_destroy(&doc);
  char key[96];
  snprintf(key, sizeof key, "%s%s", CQRS_OPS_DLQ, id);
  bool ok = cqrs_ops_put(ctx->ops, key, json, true, PUT_TIMEOUT_MS, err);
  bson_free(json);
  return ok;
}

static const char *item_state(const item_t *it) {
  bson_iter_t s;
  return bson_iter_init_find(&s, &it->doc, "state") ? bson_iter_utf8(&s, NULL) : "";
}

static void dlq_get(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_caller_t *caller, const char *id) {
  collect_t c;
  if (find_one(req, ctx, caller, id, &c, "dlq.show")) cqrs_http_reply_doc(req, 200, &c.items[0].doc);
  collect_free(&c);
}

static void dlq_redrive(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_caller_t *caller, const char *id) {
  const char *action = "dlq.redrive";
  collect_t c;
  if (find_one(req, ctx, caller, id, &c, action)) {
    cqrs_error_t err = {0};
    if (strcmp(item_state(&c.items[0]), CQRS_DLQ_DEAD) != 0) {
      admin_refuse(req, ctx, caller, action, id, 409, "only a dead letter in state dead can be redriven");
    } else if (!cqrs_projection_find(c.items[0].projection)) {
      /* saga-svc's: a saga's step cannot be applied again from here */
      admin_refuse(req, ctx, caller, action, id, 409,
                   "only a projection's dead letter can be redriven; discard this one once its event is dealt with");
    } else if (!put_action(ctx, caller, id, CQRS_DLQ_REDRIVE, NULL, &err)) {
      admin_refuse(req, ctx, caller, action, id, 503, "the control plane did not answer in time; retry");
    } else {
      admin_audit(ctx, caller, action, id, 202);
      cqrs_http_reply_doc(req, 202, &c.items[0].doc);
    }
  }
  collect_free(&c);
}

static void dlq_discard(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_caller_t *caller, const char *id) {
  const char *action = "dlq.discard";
  cqrs_error_t err = {0};
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  bson_t *doc = cqrs_json_parse(body, len, &err);
  static const char *const members[] = {"reason", NULL};
  const char *reason = NULL;
  if (!doc || !cqrs_json_members_known(doc, members, &err) ||
      !cqrs_json_get_string(doc, "reason", NULL, true, REASON_MAX, &reason, &err)) {
    if (doc && !err.field[0]) snprintf(err.field, sizeof err.field, "reason");
    cqrs_http_reply_cqrs_error(req, &err);
    admin_audit(ctx, caller, action, id, 400);
    if (doc) bson_destroy(doc);
    return;
  }
  collect_t c;
  if (find_one(req, ctx, caller, id, &c, action)) {
    if (strcmp(item_state(&c.items[0]), CQRS_DLQ_DEAD) != 0) {
      admin_refuse(req, ctx, caller, action, id, 409, "only a dead letter in state dead can be discarded");
    } else if (!put_action(ctx, caller, id, CQRS_DLQ_DISCARD, reason, &err)) {
      admin_refuse(req, ctx, caller, action, id, 503, "the control plane did not answer in time; retry");
    } else {
      char target[600];
      snprintf(target, sizeof target, "%s (reason: %s)", id, reason);
      admin_audit(ctx, caller, action, target, 200);
      bson_t out = BSON_INITIALIZER;
      bson_iter_t it;
      if (bson_iter_init(&it, &c.items[0].doc)) {
        while (bson_iter_next(&it)) {
          if (strcmp(bson_iter_key(&it), "state") == 0)
            BSON_APPEND_UTF8(&out, "state", CQRS_DLQ_DISCARDED);
          else
            bson_append_iter(&out, bson_iter_key(&it), -1, &it);
        }
      }
      BSON_APPEND_UTF8(&out, "reason", reason);
      cqrs_http_reply_doc(req, 200, &out);
      bson_destroy(&out);
    }
  }
  collect_free(&c);
  bson_destroy(doc);
}

/* POST /v1/admin/dlq/redrive {"projection"?,"eventType"?} (a body is required;
 * {} matches all): every dead one matching. */
static void dlq_redrive_bulk(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_caller_t *caller) {
  const char *action = "dlq.redrive";
  cqrs_error_t err = {0};
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  /* A body is required, {} for every dead letter: a bulk redrive is never
   * what an empty request meant by accident. */
  bson_t *doc = len ? cqrs_json_parse(body, len, &err) : NULL;
  if (!len) cqrs_error_set(&err, CQRS_ERR_INVALID, NULL, "a JSON body is required: {} redrives every dead letter");
  static const char *const members[] = {"projection", "eventType", NULL};
  collect_t c = {.ctx = ctx, .caller = caller, .only_dead = true, .only_redrivable = true, .limit = 100000};
  if (!doc || !cqrs_json_members_known(doc, members, &err) ||
      !cqrs_json_get_string(doc, "projection", NULL, false, 60, &c.projection, &err) ||
      !cqrs_json_get_string(doc, "eventType", NULL, false, 120, &c.event_type, &err)) {
    cqrs_http_reply_cqrs_error(req, &err);
    admin_audit(ctx, caller, action, "(bulk)", 400);
    if (doc) bson_destroy(doc);
    return;
  }
  if (read_dlq(req, &c)) {
    size_t done = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < c.n; i++) { /* in order: the projector redrives them in this order */
      char id[48];
      snprintf(id, sizeof id, "%d-%lld", c.items[i].id.partition, (long long)c.items[i].id.offset);
      ok = put_action(ctx, caller, id, CQRS_DLQ_REDRIVE, NULL, &err);
      if (ok) done++;
    }
    char target[200], out[64];
    snprintf(target, sizeof target, "projection=%s eventType=%s: %zu", c.projection ? c.projection : "*",
             c.event_type ? c.event_type : "*", done);
    if (!ok) {
      admin_refuse(req, ctx, caller, action, target, 503, "the control plane did not answer in time; retry");
    } else {
      admin_audit(ctx, caller, action, target, 202);
      snprintf(out, sizeof out, "{\"redriven\":%zu}", done);
      cqrs_http_reply_json(req, 202, out, strlen(out));
    }
  }
  collect_free(&c);
  bson_destroy(doc);
}

static void dlq_item(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  const char *tail = cqrs_http_req_tail(req);
  bool post = strcmp(cqrs_http_req_method(req), "POST") == 0;
  const char *slash = strchr(tail, '/');
  char id[48];
  snprintf(id, sizeof id, "%.*s", (int)(slash ? (size_t)(slash - tail) : strlen(tail)), tail);
  const char *verb = slash ? slash + 1 : "";
  const char *action = !post                              ? "dlq.show"
                       : strcmp(verb, "redrive") == 0     ? "dlq.redrive"
                       : strcmp(verb, "discard") == 0     ? "dlq.discard"
                                                          : "dlq.unknown";
  admin_caller_t caller;
  if (!admin_gate_admin(req, ctx, action, &caller)) return;
  if (!post && !slash)
    dlq_get(req, ctx, &caller, id);
  else if (post && strcmp(verb, "redrive") == 0)
    dlq_redrive(req, ctx, &caller, id);
  else if (post && strcmp(verb, "discard") == 0)
    dlq_discard(req, ctx, &caller, id);
  else
    cqrs_http_reply_error(req, 404, "no such resource", NULL);
}

static void dlq_redrive_all(cqrs_http_req_t *req, void *arg) {
  admin_caller_t caller;
  if (admin_gate_admin(req, arg, "dlq.redrive", &caller)) dlq_redrive_bulk(req, arg, &caller);
}

void admin_dlq_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  cqrs_http_server_route(http, "GET", "/v1/admin/dlq", "/v1/admin/dlq", dlq_list, ctx);
  cqrs_http_server_route(http, "POST", "/v1/admin/dlq/redrive", "/v1/admin/dlq/redrive", dlq_redrive_all, ctx);
  cqrs_http_server_route(http, "GET", "/v1/admin/dlq/{id}", "/v1/admin/dlq/{id}", dlq_item, ctx);
  cqrs_http_server_route(http, "POST", "/v1/admin/dlq/{id}/redrive", "/v1/admin/dlq/{id}/{action}", dlq_item, ctx);
  cqrs_http_server_route(http, "POST", "/v1/admin/dlq/{id}/discard", "/v1/admin/dlq/{id}/{action}", dlq_item, ctx);
}
