/* The web console's routes: the page at /, its files under /console/, and
 * whether it needs a token. No authentication here: nothing served holds
 * data; the page's requests to /v1/... carry the user's token. */
#include "../console.h"

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

static void asset_cb(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  if (strcmp(cqrs_http_req_tail(req), "session.json") == 0) {
    static const char on[] = "{\"auth\":true}", off[] = "{\"auth\":false}";
    bool auth = cqrs_auth_enabled(ctx->auth);
    cqrs_http_req_add_header(req, "Cache-Control", "no-store");
    cqrs_http_reply_json(req, 200, auth ? on : off, auth ? sizeof on - 1 : sizeof off - 1);
    return;
  }
  serve(req, cqrs_http_req_tail(req));
}

void admin_console_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  cqrs_http_server_route(http, "GET", "/", "/", page_cb, ctx);
  cqrs_http_server_route(http, "GET", "/console/", "/console/{file}", asset_cb, ctx);
}
