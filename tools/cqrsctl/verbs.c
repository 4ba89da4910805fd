/* cqrsctl's verbs: one row each (words, method, path, options, how the body
 * is built and how the answer reads). Adding a verb is adding a row. */
#include "verbs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- body builders ---- */

static void json_member(bson_string_t *s, const char *name, const char *value, bool *first) {
  if (!*first) bson_string_append_c(s, ',');
  *first = false;
  char *k = bson_utf8_escape_for_json(name, -1);
  char *v = value ? bson_utf8_escape_for_json(value, -1) : NULL;
  if (v)
    bson_string_append_printf(s, "\"%s\":\"%s\"", k, v);
  else
    bson_string_append_printf(s, "\"%s\":null", k);
  bson_free(k);
  bson_free(v);
}

static bool build_replay_start(ctl_request_t *req, const ctl_args_t *a, char *err, size_t n) {
  const char *from = ctl_args_opt(a, "from");
  if (!from || !*from) {
    snprintf(err, n, "replay start needs --from <RFC 3339 time|beginning>");
    return false;
  }
  const char *tenant = ctl_args_opt(a, "tenant");
  bson_string_t *s = bson_string_new("{");
  bool first = true;
  json_member(s, "projection", a->pos[0], &first);
  json_member(s, "from", from, &first);
  if (tenant) json_member(s, "tenant", tenant, &first);
  bson_string_append_printf(s, ",\"dryRun\":%s}", ctl_args_opt(a, "apply") ? "false" : "true");
  req->body = bson_string_free(s, false);
  return true;
}

static bool build_replay_status(ctl_request_t *req, const ctl_args_t *a, char *err, size_t n) {
  req->watch = ctl_args_opt(a, "watch") != NULL;
  const char *iv = ctl_args_opt(a, "interval");
  if (iv) {
    char *end;
    double s = strtod(iv, &end);
    if (end == iv || *end || s < 0.1 || s > 3600) {
      snprintf(err, n, "--interval takes seconds between 0.1 and 3600, not %s", iv);
      return false;
    }
    req->interval_ms = (int)(s * 1000);
  }
  return true;
}

static bool build_discard(ctl_request_t *req, const ctl_args_t *a, char *err, size_t n) {
  const char *reason = ctl_args_opt(a, "reason");
  if (!reason || !*reason) {
    snprintf(err, n, "dlq discard needs --reason <text>: it is recorded in the audit log");
    return false;
  }
  bson_string_t *s = bson_string_new("{");
  bool first = true;
  json_member(s, "reason", reason, &first);
  bson_string_append_c(s, '}');
  req->body = bson_string_free(s, false);
  return true;
}

/* dlq redrive <id>, or the bulk form by filter when there is no id. */
static bool build_redrive(ctl_request_t *req, const ctl_args_t *a, char *err, size_t n) {
  const char *projection = ctl_args_opt(a, "projection"), *type = ctl_args_opt(a, "event-type");
  bool all = ctl_args_opt(a, "all") != NULL;
  if (a->npos == 1) {
    if (projection || type || all) {
      snprintf(err, n, "dlq redrive takes an id or a filter (--all, --projection, --event-type), not both");
      return false;
    }
    return true;
  }
  if (!projection && !type && !all) {
    snprintf(err, n, "dlq redrive needs an id, or --all / --projection P / --event-type E for a bulk redrive");
    return false;
  }
  bson_free(req->path);
  req->path = bson_strdup("/v1/admin/dlq/redrive");
  bson_string_t *s = bson_string_new("{");
  bool first = true;
  if (projection) json_member(s, "projection", projection, &first);
  if (type) json_member(s, "eventType", type, &first);
  bson_string_append_c(s, '}');
  req->body = bson_string_free(s, false);
  return true;
}

static bool build_tenant_create(ctl_request_t *req, const ctl_args_t *a, char *err, size_t n) {
  (void)err, (void)n;
  bson_string_t *s = bson_string_new("{");
  bool first = true;
  json_member(s, "tenantId", a->pos[0], &first);
  bson_string_append_c(s, '}');
  req->body = bson_string_free(s, false);
  return true;
}

/* --scopes a,b,c (or --scope repeated) into {"scopes":["a","b","c"]}. */
static bool build_key_issue(ctl_request_t *req, const ctl_args_t *a, char *err, size_t n) {
  bson_string_t *s = bson_string_new("{\"scopes\":[");
  size_t count = 0;
  for (size_t i = 0; i < a->nopt; i++) {
    if (strcmp(a->opt_name[i], "scopes") != 0 && strcmp(a->opt_name[i], "scope") != 0) continue;
    const char *p = a->opt_value[i];
    while (*p) {
      size_t len = strcspn(p, ",");
      if (len) {
        char *one = bson_strndup(p, len);
        char *esc = bson_utf8_escape_for_json(one, -1);
        bson_string_append_printf(s, "%s\"%s\"", count++ ? "," : "", esc);
        bson_free(esc);
        bson_free(one);
      }
      p += len + (p[len] == ',');
    }
  }
  bson_string_append(s, "]}");
  if (!count) {
    bson_string_free(s, true);
    snprintf(err, n, "keys issue needs --scopes <scope,...> (e.g. commands:write,queries:read)");
    return false;
  }
  req->body = bson_string_free(s, false);
  return true;
}

/* The file's text is read by the shell (ctl_request_set_file_text). */
static bool build_schema_check(ctl_request_t *req, const ctl_args_t *a, char *err, size_t n) {
  req->file = ctl_args_opt(a, "file");
  if (!req->file || !*req->file) {
    snprintf(err, n, "schemas check needs --file <schema file> (JSON Schema; - reads stdin)");
    return false;
  }
  return true;
}

void ctl_request_set_file_text(ctl_request_t *req, const char *text, size_t len) {
  char *copy = bson_strndup(text, len);
  char *esc = bson_utf8_escape_for_json(copy, -1);
  bson_free(req->body);
  req->body = bson_strdup_printf("{\"schemaType\":\"JSON\",\"schema\":\"%s\"}", esc ? esc : "");
  bson_free(esc);
  bson_free(copy);
}

/* ---- list columns ---- */

static const ctl_column_t projection_cols[] = {{"PROJECTION", "projection"}, {"STATE", "state"},
                                               {"LAG", "lagTotal"},          {"APPLIED", "eventsApplied"},
                                               {"UPDATED", "updatedAt"},     {"LAST ERROR", "lastError"},
                                               {NULL, NULL}};
static const ctl_column_t replay_cols[] = {{"REPLAY", "replayId"}, {"PROJECTION", "projection"}, {"STATE", "state"},
                                           {"APPLIED", "applied"},  {"TOTAL", "total"},           {"FROM", "from"},
                                           {"TENANT", "tenant"},    {"CREATED", "createdAt"},     {NULL, NULL}};
static const ctl_column_t dlq_cols[] = {{"ID", "id"},          {"PROJECTION", "projection"}, {"EVENT TYPE", "eventType"},
                                        {"STATE", "state"},    {"DEAD AT", "deadAt"},        {"ERROR", "error"},
                                        {NULL, NULL}};
static const ctl_column_t saga_cols[] = {{"SAGA", "sagaId"}, {"TYPE", "type"},         {"STATE", "state"},
                                         {"KEY", "key"},     {"TENANT", "tenant"},     {"UPDATED", "updatedAt"},
                                         {NULL, NULL}};
static const ctl_column_t tenant_cols[] = {
    {"TENANT", "tenantId"}, {"STATE", "state"}, {"CREATED", "createdAt"}, {"DELETED", "deletedAt"}, {NULL, NULL}};
static const ctl_column_t key_cols[] = {{"KEY ID", "keyId"},     {"SCOPES", "scopes"},   {"CREATED", "createdAt"},
                                        {"REVOKED", "revoked"},  {"REVOKED AT", "revokedAt"}, {NULL, NULL}};
static const ctl_column_t audit_cols[] = {{"AT", "at"},         {"WHO", "who"},         {"TENANT", "tenant"},
                                          {"ACTION", "action"}, {"TARGET", "target"},   {"OUTCOME", "outcome"},
                                          {"STATUS", "status"}, {NULL, NULL}};

#define PAGE "limit? cursor?"

/* clang-format off */
const ctl_verb_t ctl_verbs[] = {
  {"projections", "list", "GET", "/v1/admin/projections", "",
   "the read models: state, consumer lag, events applied, last error", NULL,
   0, 0, PAGE, NULL, ctl_render_list, projection_cols},
  {"projections", "pause", "POST", "/v1/admin/projections/{0}/pause", "<projection>",
   "pause a projection", NULL, 1, 1, "", NULL, ctl_render_doc, NULL},
  {"projections", "resume", "POST", "/v1/admin/projections/{0}/resume", "<projection>",
   "resume a paused or halted projection", NULL, 1, 1, "", NULL, ctl_render_doc, NULL},

  {"replay", "start", "POST", "/v1/admin/replays", "<projection> --from <time|beginning> [--tenant T] [--apply]",
   "a dry run of a replay (what it would do), or with --apply the replay itself",
   "  --from T      RFC 3339 time (2026-12-02T03:00:00.000Z) or beginning: from T, the documents of\n"
   "                aggregates with an event at or after T are re-derived from their whole history;\n"
   "                from beginning the whole read model is rebuilt and swapped in\n"
   "  --tenant T    only tenant T's read model\n"
   "  --apply       start it (without: a dry run that changes nothing and prints the numbers)\n",
   1, 1, "from= tenant= apply", build_replay_start, ctl_render_dry_run, NULL},
  {"replay", "status", "GET", "/v1/admin/replays/{0}", "<replay id> [--watch] [--interval S]",
   "a replay's state and progress",
   "  --watch       follow it until it ends: a live progress bar with rate and ETA on a terminal,\n"
   "                one plain line per change otherwise; exits 0 when it completed, 4 when it\n"
   "                failed or was cancelled\n"
   "  --interval S  seconds between polls with --watch (default 1)\n",
   1, 1, "watch interval=", build_replay_status, ctl_render_replay, NULL},
  {"replay", "list", "GET", "/v1/admin/replays", "", "the replays, newest first", NULL,
   0, 0, PAGE, NULL, ctl_render_list, replay_cols},
  {"replay", "pause", "POST", "/v1/admin/replays/{0}/pause", "<replay id>", "pause a running replay (it holds its position)",
   NULL, 1, 1, "", NULL, ctl_render_replay, NULL},
  {"replay", "resume", "POST", "/v1/admin/replays/{0}/resume", "<replay id>", "resume a paused replay", NULL,
   1, 1, "", NULL, ctl_render_replay, NULL},
  {"replay", "cancel", "POST", "/v1/admin/replays/{0}/cancel", "<replay id>",
   "cancel a replay (the live read model keeps serving)", NULL, 1, 1, "", NULL, ctl_render_replay, NULL},

  {"dlq", "list", "GET", "/v1/admin/dlq", "[--projection P] [--limit N] [--cursor C]",
   "dead letters (events a projection could not apply)", NULL, 0, 0, "projection? " PAGE, NULL, ctl_render_list,
   dlq_cols},
  {"dlq", "show", "GET", "/v1/admin/dlq/{0}", "<id>", "one dead letter: headers, payload and its data upcast, error", NULL,
   1, 1, "", NULL, ctl_render_doc, NULL},
  {"dlq", "redrive", "POST", "/v1/admin/dlq/{0}/redrive", "<id> | --all | --projection P [--event-type E]",
   "apply dead letters again (through the current upcasters, in order)",
   "  <id>             one dead letter\n"
   "  --all            every dead letter\n"
   "  --projection P   every dead letter of projection P (with --event-type E: of that type only)\n",
   0, 1, "all projection= event-type=", build_redrive, ctl_render_doc, NULL},
  {"dlq", "discard", "POST", "/v1/admin/dlq/{0}/discard", "<id> --reason <text>",
   "give up on a dead letter (the reason is audited)", NULL, 1, 1, "reason=", build_discard, ctl_render_doc, NULL},

  {"sagas", "list", "GET", "/v1/admin/sagas", "[--type T] [--state S] [--key K] [--limit N] [--cursor C]",
   "sagas (long-running processes) and their states", NULL, 0, 0, "type? state? key? " PAGE, NULL, ctl_render_list,
   saga_cols},
  {"sagas", "show", "GET", "/v1/admin/sagas/{0}", "<saga id>", "one saga with its steps and deadlines", NULL,
   1, 1, "", NULL, ctl_render_doc, NULL},

  {"schemas", "list", "GET", "/v1/schemas/subjects", "", "the schema registry's subjects", NULL,
   0, 0, "", NULL, ctl_render_subjects, NULL},
  {"schemas", "show", "GET", "/v1/schemas/subjects/{0}/versions/latest", "<subject>",
   "a subject's latest schema", NULL, 1, 1, "", NULL, ctl_render_doc, NULL},
  {"schemas", "check", "POST", "/v1/schemas/compatibility/subjects/{0}/versions/latest?verbose=true",
   "<subject> --file <schema file|->",
   "is a schema compatible with the subject's latest version? (exit 1 when not)", NULL,
   1, 1, "file=", build_schema_check, ctl_render_compat, NULL},

  {"tenants", "list", "GET", "/v1/admin/tenants", "", "the tenants, deleted ones included", NULL,
   0, 0, "", NULL, ctl_render_list, tenant_cols},
  {"tenants", "create", "POST", "/v1/admin/tenants", "<tenant id>", "create a tenant", NULL,
   1, 1, "", build_tenant_create, ctl_render_doc, NULL},
  {"tenants", "delete", "DELETE", "/v1/admin/tenants/{0}", "<tenant id>",
   "mark a tenant deleted (its credentials stop working; the id is never reused)", NULL,
   1, 1, "", NULL, ctl_render_doc, NULL},

  {"keys", "list", "GET", "/v1/admin/tenants/{0}/keys", "<tenant id>", "a tenant's API keys (never the keys themselves)",
   NULL, 1, 1, "", NULL, ctl_render_list, key_cols},
  {"keys", "issue", "POST", "/v1/admin/tenants/{0}/keys", "<tenant id> --scopes <scope,...>",
   "issue an API key: it is printed once, store it then",
   "  --scopes S    comma-separated: commands:write, queries:read, admin\n",
   1, 1, "scopes= scope=", build_key_issue, ctl_render_doc, NULL},
  {"keys", "revoke", "DELETE", "/v1/admin/tenants/{0}/keys/{1}", "<tenant id> <key id>", "revoke an API key", NULL,
   2, 2, "", NULL, ctl_render_doc, NULL},

  {"audit", "list", "GET", "/v1/admin/audit", "[--limit N] [--cursor C]", "the audit log: who did what, when, outcome",
   NULL, 0, 0, PAGE, NULL, ctl_render_list, audit_cols},
};
/* clang-format on */
const size_t ctl_verbs_count = sizeof ctl_verbs / sizeof ctl_verbs[0];
