/* The web console's routes: the page at /, its files under /console/, and
 * whether it needs a token. No authentication here: nothing served holds
 * data; the page's requests to /v1/... carry the user's token. */
#include "../console.h"

#include <bson/bson.h>
#include <string.h>

/* The page runs only its own script and style, talks only to this origin and
 * is never framed. */
static void add_headers(cqrs_http_req_t *req) {
  cqrs_http_req_add_header(req, "Content-Security-Policy",
                           "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  cqrs_http_req_add_header(req, "X-Content-Type-Options", "nosniff");
  cqrs_http_req_add_header(req, "Referrer-Policy", "no-referrer");
  cqrs_http_req_add_header(req, "Cache-Control", "no-cache");
}

const admin_console_asset_t *admin_console_find(const char *name) {
  for (size_t i = 0; i < admin_console_assets_count; i++)
    if (strcmp(admin_console_assets[i].name, name) == 0) return &admin_console_assets[i];
  return NULL;
}

static void serve(cqrs_http_req_t *req, const char *name) {
  const admin_console_asset_t *a = admin_console_find(name);
  if (!a) {
    cqrs_http_reply_error(req, 404, "no such file", NULL);
    return;
  }
  add_headers(req);
  cqrs_http_reply(req, 200, a->content_type, a->bytes, a->len);
}

static void page_cb(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  serve(req, "index.html");
}

/* The console's sections and a route each needs: the page shows "not
 * available" for a section this admin-svc does not serve (another part of
 * the control plane not built in), without asking for it. */
static const struct {
  const char *section, *path;
} sections[] = {
    {"projections", "/v1/admin/projections"}, {"replays", "/v1/admin/replays"}, {"dlq", "/v1/admin/dlq"},
    {"sagas", "/v1/admin/sagas"},             {"schemas", "/v1/schemas/subjects"}, {"audit", "/v1/admin/audit"},
};

/* {"auth":bool,"sections":{"projections":bool,...}}: whether the page must
 * ask for a token, and which sections it can show. */
static void session(cqrs_http_req_t *req, admin_ctx_t *ctx) {
  bson_string_t *out = bson_string_new("{\"auth\":");
  bson_string_append(out, cqrs_auth_enabled(ctx->auth) ? "true" : "false");
  bson_string_append(out, ",\"sections\":{");
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
    bson_string_append_printf(out, "%s\"%s\":%s", i ? "," : "", sections[i].section,
                              cqrs_http_req_route_exists(req, "GET", sections[i].path) ? "true" : "false");
  bson_string_append(out, "}}");
  cqrs_http_req_add_header(req, "Cache-Control", "no-store");
  cqrs_http_reply_json(req, 200, out->str, out->len);
  bson_string_free(out, true);
}

static void asset_cb(cqrs_http_req_t *req, void *arg) {
  if (strcmp(cqrs_http_req_tail(req), "session.json") == 0)
    session(req, arg);
  else
    serve(req, cqrs_http_req_tail(req));
}

void admin_console_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  cqrs_http_server_route(http, "GET", "/", "/", page_cb, ctx);
  cqrs_http_server_route(http, "GET", "/console/", "/console/{file}", asset_cb, ctx);
}
