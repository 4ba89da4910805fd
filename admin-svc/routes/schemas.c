/* The schema registry's HTTP API: Confluent Schema Registry's REST API under
 * /v1/schemas (subjects, versions, ids, compatibility, config), schemaType
 * JSON only. Answers in Confluent's content type and error shape
 * {"error_code":40401,"message":"..."}; authentication is admin-svc's gate
 * (its 401/403 keep the project's {"error"} shape). Reads need a credential
 * with scope admin, queries:read or platform:admin; writes (register, config)
 * platform:admin. */
#include "../routes.h"

#include "cqrs/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SR_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

/* Confluent's error codes. */
enum {
  SR_SUBJECT_NOT_FOUND = 40401,
  SR_VERSION_NOT_FOUND = 40402,
  SR_SCHEMA_NOT_FOUND = 40403,
  SR_SUBJECT_LEVEL_NOT_CONFIGURED = 40408,
  SR_INCOMPATIBLE = 409,
  SR_INVALID_SCHEMA = 42201,
  SR_INVALID_VERSION = 42202,
  SR_INVALID_LEVEL = 42203,
  SR_BAD_REQUEST = 400,
  SR_NOT_FOUND = 404,
  SR_STORE_ERROR = 50001,
  SR_TIMEOUT = 50002,
};

static void reply(cqrs_http_req_t *req, int status, const char *json, size_t len) {
  cqrs_http_reply(req, status, SR_CONTENT_TYPE, json, len);
}

__attribute__((format(printf, 4, 5))) static void reply_error(cqrs_http_req_t *req, int status, int code,
                                                              const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  bson_string_t *out = bson_string_new(NULL);
  bson_string_append_printf(out, "{\"error_code\":%d,\"message\":", code);
  cqrs_json_append_string(out, msg);
  bson_string_append_c(out, '}');
  reply(req, status, out->str, out->len);
  bson_string_free(out, true);
}

/* A failed write or read-back: 503 (Kafka did not answer) or 500. */
static void reply_store_error(cqrs_http_req_t *req, const cqrs_error_t *err) {
  if (err->code == CQRS_ERR_UNAVAILABLE) {
    cqrs_http_req_add_header(req, "Retry-After", "1");
    reply_error(req, 503, SR_TIMEOUT, "the schema registry's store did not answer in time; retry");
  } else {
    reply_error(req, 500, SR_STORE_ERROR, "%s", err->message);
  }
}

static bool gate_read(cqrs_http_req_t *req, admin_ctx_t *ctx) {
  cqrs_principal_t who;
  if (!cqrs_auth_http(ctx->auth, req, 0, &who)) return false;
  if (!cqrs_auth_enabled(ctx->auth) ||
      (who.scopes & (CQRS_SCOPE_ADMIN | CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_PLATFORM)))
    return true;
  cqrs_http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"queries:read\"");
  cqrs_http_reply_error(req, 403, "reading schemas needs scope admin, queries:read or platform:admin", NULL);
  return false;
}

/* The subject of a path segment, answering 40401 for a name that cannot be one. */
static bool subject_ok(cqrs_http_req_t *req, const char *s) {
  if (cqrs_schema_subject_valid(s)) return true;
  reply_error(req, 404, SR_SUBJECT_NOT_FOUND, "Subject '%.200s' not found.", s);
  return false;
}

/* A version segment: "latest" or -1 -> 0, else 1 .. 2^31-1. False once it
 * has answered 42202. */
static bool version_parse(cqrs_http_req_t *req, const char *s, int *out) {
  if (strcmp(s, "latest") == 0 || strcmp(s, "-1") == 0) {
    *out = 0;
    return true;
  }
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (isdigit((unsigned char)s[0]) && !*end && !errno && v >= 1 && v <= 2147483647L) {
    *out = (int)v;
    return true;
  }
  reply_error(req, 422, SR_INVALID_VERSION,
              "The specified version '%.40s' is not a valid version id. Allowed values are between [1, "
              "2^31-1] and the string \"latest\"",
              s);
  return false;
}

/* The subject's version (0: latest), answering 40401 / 40402 when absent. */
static bool version_get(cqrs_http_req_t *req, admin_ctx_t *ctx, const char *subject, int version,
                        cqrs_schema_version_t *out) {
  cqrs_schemas_t *reg = admin_schemas_registry(ctx->schemas);
  if (cqrs_schemas_get(reg, subject, version, out)) return true;
  if (cqrs_schemas_latest(reg, subject) == 0)
    reply_error(req, 404, SR_SUBJECT_NOT_FOUND, "Subject '%s' not found.", subject);
  else
    reply_error(req, 404, SR_VERSION_NOT_FOUND, "Version %d not found.", version);
  return false;
}

static void append_version(bson_string_t *out, const cqrs_schema_version_t *v) {
  bson_string_append(out, "{\"subject\":");
  cqrs_json_append_string(out, v->subject);
  bson_string_append_printf(out, ",\"version\":%d,\"id\":%d,\"schemaType\":\"%s\",\"schema\":", v->version,
                            (int)v->id, CQRS_SCHEMA_TYPE_JSON);
  cqrs_json_append_string(out, v->schema);
  bson_string_append_c(out, '}');
}

static void reply_version(cqrs_http_req_t *req, const cqrs_schema_version_t *v) {
  bson_string_t *out = bson_string_new(NULL);
  append_version(out, v);
  reply(req, 200, out->str, out->len);
  bson_string_free(out, true);
}

/* A request body {"schema":"...","schemaType":"JSON","references":[]}:
 * compiled and canonical. False once it has answered 422 / 400. */
static bool schema_body(cqrs_http_req_t *req, char **canonical, cqrs_jsonschema_t **compiled) {
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  cqrs_error_t err = {0};
  bson_t *doc = cqrs_json_parse(body, len, &err);
  const char *schema = NULL, *type = NULL;
  bson_t refs;
  bool has_refs = false;
  bool ok = false;
  if (!doc) {
    reply_error(req, 400, SR_BAD_REQUEST, "the body is not a JSON object: %s", err.message);
  } else if (!cqrs_json_get_string(doc, "schema", NULL, true, 0, &schema, &err) ||
             !cqrs_json_get_string(doc, "schemaType", NULL, false, 0, &type, &err) ||
             !cqrs_json_get_array(doc, "references", NULL, false, &refs, &has_refs, &err)) {
    reply_error(req, 422, SR_INVALID_SCHEMA, "Invalid schema: %s", err.message);
  } else if (!type || strcmp(type, CQRS_SCHEMA_TYPE_JSON) != 0) {
    /* Confluent reads an absent schemaType as AVRO. */
    reply_error(req, 422, SR_INVALID_SCHEMA, "Invalid schema: schemaType %s is not supported; only JSON is",
                type ? type : "AVRO (the default when schemaType is absent)");
  } else if (has_refs && !bson_empty(&refs)) {
    reply_error(req, 422, SR_INVALID_SCHEMA, "Invalid schema: schema references are not supported");
  } else if (!(*canonical = cqrs_schema_canonical(schema, strlen(schema), compiled, &err))) {
    reply_error(req, 422, SR_INVALID_SCHEMA, "Invalid schema: %s", err.message);
  } else {
    ok = true;
  }
  if (doc) bson_destroy(doc);
  return ok;
}

static void append_messages(bson_string_t *out, const cqrs_compat_messages_t *msgs) {
  bson_string_append(out, "\"messages\":[");
  for (size_t i = 0; i < msgs->n; i++) {
    if (i) bson_string_append_c(out, ',');
    cqrs_json_append_string(out, msgs->items[i]);
  }
  bson_string_append_c(out, ']');
}

/* ---- handlers: seg[] is the split path (path.h) ---- */

typedef void (*sr_handler_cb)(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p);

static void subjects_list(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  (void)p;
  size_t n;
  char **names = cqrs_schemas_subjects(admin_schemas_registry(ctx->schemas), &n);
  bson_string_t *out = bson_string_new("[");
  for (size_t i = 0; i < n; i++) {
    if (i) bson_string_append_c(out, ',');
    cqrs_json_append_string(out, names[i]);
  }
  bson_string_append_c(out, ']');
  reply(req, 200, out->str, out->len);
  bson_string_free(out, true);
  cqrs_schemas_strings_free(names, n);
}

static void versions_list(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  if (!subject_ok(req, p->seg[1])) return;
  int latest = cqrs_schemas_latest(admin_schemas_registry(ctx->schemas), p->seg[1]);
  if (!latest) {
    reply_error(req, 404, SR_SUBJECT_NOT_FOUND, "Subject '%s' not found.", p->seg[1]);
    return;
  }
  bson_string_t *out = bson_string_new("[");
  for (int v = 1; v <= latest; v++) bson_string_append_printf(out, "%s%d", v > 1 ? "," : "", v);
  bson_string_append_c(out, ']');
  reply(req, 200, out->str, out->len);
  bson_string_free(out, true);
}

static void version_show(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  int version;
  cqrs_schema_version_t v = {0};
  if (!subject_ok(req, p->seg[1]) || !version_parse(req, p->seg[3], &version) ||
      !version_get(req, ctx, p->seg[1], version, &v))
    return;
  if (p->n == 5) /* .../schema: the schema itself */
    reply(req, 200, v.schema, strlen(v.schema));
  else
    reply_version(req, &v);
  cqrs_schema_version_cleanup(&v);
}

static void schema_by_id(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  char *end;
  errno = 0;
  long id = strtol(p->seg[2], &end, 10);
  char *schema = NULL;
  if (!isdigit((unsigned char)p->seg[2][0]) || *end || errno || id < 1 || id > 2147483647L ||
      !cqrs_schemas_by_id(admin_schemas_registry(ctx->schemas), (int32_t)id, &schema)) {
    reply_error(req, 404, SR_SCHEMA_NOT_FOUND, "Schema %.20s not found", p->seg[2]);
    return;
  }
  if (p->n == 4) { /* .../schema */
    reply(req, 200, schema, strlen(schema));
  } else {
    bson_string_t *out = bson_string_new("{\"schemaType\":\"" CQRS_SCHEMA_TYPE_JSON "\",\"schema\":");
    cqrs_json_append_string(out, schema);
    bson_string_append_c(out, '}');
    reply(req, 200, out->str, out->len);
    bson_string_free(out, true);
  }
  free(schema);
}

static void schema_types(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  (void)ctx;
  (void)p;
  static const char types[] = "[\"" CQRS_SCHEMA_TYPE_JSON "\"]";
  reply(req, 200, types, sizeof types - 1);
}

static void subject_register(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  const char *subject = p->seg[1];
  char *canonical = NULL;
  cqrs_jsonschema_t *compiled = NULL;
  if (!cqrs_schema_subject_valid(subject)) {
    reply_error(req, 422, SR_INVALID_SCHEMA, "Invalid subject '%.200s': 1 to %d printable characters, no '/'",
                subject, CQRS_SUBJECT_MAX);
    return;
  }
  if (!schema_body(req, &canonical, &compiled)) return;
  cqrs_schema_version_t v = {0};
  cqrs_compat_messages_t msgs = {0};
  cqrs_error_t err = {0};
  switch (admin_schemas_register(ctx->schemas, subject, canonical, compiled, true, &v, &msgs, &err)) {
  case ADMIN_SCHEMA_REGISTERED: {
    char version[16];
    snprintf(version, sizeof version, "%d", v.version);
    cqrs_log_info(ctx->log, "schema registered", "subject", subject, "version", version, NULL);
  } /* fall through */
  case ADMIN_SCHEMA_EXISTS: {
    char out[32];
    int n = snprintf(out, sizeof out, "{\"id\":%d}", (int)v.id);
    reply(req, 200, out, (size_t)n);
    break;
  }
  case ADMIN_SCHEMA_INCOMPATIBLE: {
    bson_string_t *out = bson_string_new(NULL);
    bson_string_t *msg = bson_string_new("Schema being registered is incompatible with an earlier schema for subject '");
    bson_string_append_printf(msg, "%s': ", subject);
    for (size_t i = 0; i < msgs.n; i++) bson_string_append_printf(msg, "%s%s", i ? "; " : "", msgs.items[i]);
    bson_string_append_printf(out, "{\"error_code\":%d,\"message\":", SR_INCOMPATIBLE);
    cqrs_json_append_string(out, msg->str);
    bson_string_append_c(out, ',');
    append_messages(out, &msgs);
    bson_string_append_c(out, '}');
    reply(req, 409, out->str, out->len);
    bson_string_free(out, true);
    bson_string_free(msg, true);
    break;
  }
  case ADMIN_SCHEMA_FAILED: reply_store_error(req, &err); break;
  }
  cqrs_schema_version_cleanup(&v);
  cqrs_compat_messages_cleanup(&msgs);
  cqrs_jsonschema_destroy(compiled);
  bson_free(canonical);
}

static void subject_lookup(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  const char *subject = p->seg[1];
  char *canonical = NULL;
  cqrs_jsonschema_t *compiled = NULL;
  cqrs_schemas_t *reg = admin_schemas_registry(ctx->schemas);
  if (!subject_ok(req, subject)) return;
  if (!cqrs_schemas_latest(reg, subject)) {
    reply_error(req, 404, SR_SUBJECT_NOT_FOUND, "Subject '%s' not found.", subject);
    return;
  }
  if (!schema_body(req, &canonical, &compiled)) return;
  cqrs_schema_version_t v = {0};
  if (cqrs_schemas_find(reg, subject, canonical, &v))
    reply_version(req, &v);
  else
    reply_error(req, 404, SR_SCHEMA_NOT_FOUND, "Schema not found");
  cqrs_schema_version_cleanup(&v);
  cqrs_jsonschema_destroy(compiled);
  bson_free(canonical);
}

static void compatibility(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  const char *subject = p->seg[2];
  int version = 0;
  cqrs_schemas_t *reg = admin_schemas_registry(ctx->schemas);
  if (!subject_ok(req, subject) || (p->n == 5 && !version_parse(req, p->seg[4], &version))) return;
  int latest = cqrs_schemas_latest(reg, subject);
  if (!latest) {
    reply_error(req, 404, SR_SUBJECT_NOT_FOUND, "Subject '%s' not found.", subject);
    return;
  }
  if (version > latest) {
    reply_error(req, 404, SR_VERSION_NOT_FOUND, "Version %d not found.", version);
    return;
  }
  char *canonical = NULL;
  cqrs_jsonschema_t *compiled = NULL;
  if (!schema_body(req, &canonical, &compiled)) return;
  cqrs_compat_messages_t msgs = {0};
  bool ok = cqrs_schemas_check(reg, subject, compiled, cqrs_schemas_effective_level(reg, subject), version, &msgs);
  const char *verbose = cqrs_http_req_query(req, "verbose");
  bson_string_t *out = bson_string_new(ok ? "{\"is_compatible\":true" : "{\"is_compatible\":false");
  if (verbose && strcmp(verbose, "true") == 0) {
    bson_string_append_c(out, ',');
    append_messages(out, &msgs);
  }
  bson_string_append_c(out, '}');
  reply(req, 200, out->str, out->len);
  bson_string_free(out, true);
  cqrs_compat_messages_cleanup(&msgs);
  cqrs_jsonschema_destroy(compiled);
  bson_free(canonical);
}

static void config_get(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  const char *subject = p->n == 2 ? p->seg[1] : NULL;
  cqrs_schemas_t *reg = admin_schemas_registry(ctx->schemas);
  cqrs_compat_level_t level;
  if (subject && !subject_ok(req, subject)) return;
  const char *fallback = cqrs_http_req_query(req, "defaultToGlobal");
  if (!cqrs_schemas_level(reg, subject, &level)) {
    if (!(fallback && strcmp(fallback, "true") == 0)) {
      reply_error(req, 404, SR_SUBJECT_LEVEL_NOT_CONFIGURED,
                  "Subject '%s' does not have subject-level compatibility configured", subject);
      return;
    }
    cqrs_schemas_level(reg, NULL, &level);
  }
  char out[64];
  int n = snprintf(out, sizeof out, "{\"compatibilityLevel\":\"%s\"}", cqrs_compat_level_name(level));
  reply(req, 200, out, (size_t)n);
}

static void config_put(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_schema_path_t *p) {
  const char *subject = p->n == 2 ? p->seg[1] : NULL;
  if (subject && !cqrs_schema_subject_valid(subject)) {
    reply_error(req, 422, SR_INVALID_SCHEMA, "Invalid subject '%.200s'", subject);
    return;
  }
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  cqrs_error_t err = {0};
  bson_t *doc = cqrs_json_parse(body, len, &err);
  /* Confluent's clients send "compatibility"; its answers say
   * "compatibilityLevel". Each one given must name a level; with both,
   * "compatibility" is the one set. */
  static const char *const members[] = {"compatibility", "compatibilityLevel"};
  cqrs_compat_level_t level = 0, each;
  int named = 0;
  bool ok = doc != NULL;
  for (size_t m = 0; ok && m < 2; m++) {
    const char *name = NULL;
    if (!cqrs_json_get_string(doc, members[m], NULL, false, 31, &name, &err)) ok = false;
    if (!ok || !name) continue;
    char upper[32] = "";
    for (size_t i = 0; name[i] && i < sizeof upper - 1; i++) {
      upper[i] = (char)toupper((unsigned char)name[i]);
      upper[i + 1] = '\0';
    }
    ok = cqrs_compat_level_parse(upper, &each);
    if (!named++) level = each;
  }
  if (doc) bson_destroy(doc);
  if (!ok || !named) {
    reply_error(req, 422, SR_INVALID_LEVEL,
                "Invalid compatibility level. Valid values are none, backward, forward, full, "
                "backward_transitive, forward_transitive, and full_transitive");
    return;
  }
  if (!admin_schemas_set_level(ctx->schemas, subject, level, &err)) {
    reply_store_error(req, &err);
    return;
  }
  cqrs_log_info(ctx->log, "compatibility level set", "subject", subject ? subject : "(global)", "level",
                cqrs_compat_level_name(level), NULL);
  char out[64];
  int n = snprintf(out, sizeof out, "{\"compatibility\":\"%s\"}", cqrs_compat_level_name(level));
  reply(req, 200, out, (size_t)n);
}

/* ---- routing ---- */

typedef struct {
  const char *method;
  const char *pattern[ADMIN_SCHEMA_PATH_SEGMENTS]; /* "*": any one segment */
  const char *audit_action; /* a write (platform:admin, audited as this); NULL: a read */
  sr_handler_cb cb;
} sr_route_t;

static const sr_route_t routes[] = {
    {"GET", {"subjects"}, NULL, subjects_list},
    {"POST", {"subjects", "*"}, NULL, subject_lookup},
    {"GET", {"subjects", "*", "versions"}, NULL, versions_list},
    {"POST", {"subjects", "*", "versions"}, "schema.register", subject_register},
    {"GET", {"subjects", "*", "versions", "*"}, NULL, version_show},
    {"GET", {"subjects", "*", "versions", "*", "schema"}, NULL, version_show},
    {"GET", {"schemas", "ids", "*"}, NULL, schema_by_id},
    {"GET", {"schemas", "ids", "*", "schema"}, NULL, schema_by_id},
    {"GET", {"schemas", "types"}, NULL, schema_types},
    {"POST", {"compatibility", "subjects", "*", "versions"}, NULL, compatibility},
    {"POST", {"compatibility", "subjects", "*", "versions", "*"}, NULL, compatibility},
    {"GET", {"config"}, NULL, config_get},
    {"PUT", {"config"}, "schema.config", config_put},
    {"GET", {"config", "*"}, NULL, config_get},
    {"PUT", {"config", "*"}, "schema.config", config_put},
};

static bool matches(const sr_route_t *r, const admin_schema_path_t *p) {
  size_t n = 0;
  while (n < ADMIN_SCHEMA_PATH_SEGMENTS && r->pattern[n]) n++;
  if (n != p->n) return false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(r->pattern[i], "*") != 0 && strcmp(r->pattern[i], p->seg[i]) != 0) return false;
  return true;
}

#define SR_PREFIX "/v1/schemas/"

/* Every route of the table: the router chose it by method and path; this
 * finds its entry again. */
static void dispatch(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  admin_schema_path_t p;
  const char *method = cqrs_http_req_method(req);
  if (strcmp(method, "HEAD") == 0) method = "GET";
  bool parsed = admin_schema_path_split(cqrs_http_req_path(req) + strlen(SR_PREFIX), &p);
  for (size_t i = 0; parsed && i < sizeof routes / sizeof routes[0]; i++) {
    if (!matches(&routes[i], &p) || strcmp(routes[i].method, method) != 0) continue;
    if (!routes[i].audit_action) {
      if (gate_read(req, ctx)) routes[i].cb(req, ctx, &p);
      return;
    }
    /* Registrations and level changes are admin actions: audited with who
     * and the status they got (the gate audits its own refusals). */
    admin_caller_t caller;
    if (!admin_gate_platform(req, ctx, &caller)) return;
    routes[i].cb(req, ctx, &p);
    admin_audit(ctx, &caller, routes[i].audit_action, p.n > 1 ? p.seg[1] : "", cqrs_http_req_status(req));
    return;
  }
  if (gate_read(req, ctx)) reply_error(req, 404, SR_NOT_FOUND, "HTTP 404 Not Found");
}

/* A path under /v1/schemas/ no route serves, or a method its routes do not
 * take: authenticated before saying anything about the path, then refused
 * in the registry's error format, a 405 with Allow. */
static void fallback(cqrs_http_req_t *req, void *arg) {
  if (!gate_read(req, arg)) return;
  if (*cqrs_http_req_allow(req)) {
    cqrs_http_req_add_header(req, "Allow", cqrs_http_req_allow(req));
    reply_error(req, 405, 405, "HTTP 405 Method Not Allowed");
  } else {
    reply_error(req, 404, SR_NOT_FOUND, "HTTP 404 Not Found");
  }
}

void admin_schema_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  /* Each entry as the router's pattern: "*" becomes a placeholder. */
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    char path[128] = SR_PREFIX;
    for (size_t s = 0; s < ADMIN_SCHEMA_PATH_SEGMENTS && routes[i].pattern[s]; s++) {
      const char *seg = routes[i].pattern[s];
      snprintf(path + strlen(path), sizeof path - strlen(path), "%s%s", s ? "/" : "",
               strcmp(seg, "*") == 0 ? "{_}" : seg);
    }
    cqrs_http_server_route(http, routes[i].method, path, "/v1/schemas/...", dispatch, ctx);
  }
  cqrs_http_server_fallback(http, SR_PREFIX, "/v1/schemas/...", fallback, ctx);
}
