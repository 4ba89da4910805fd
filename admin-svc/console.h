/* The web console: static files (console/index.html, .css, .js) embedded at build
 * time (console/embed.cmake) and served without authentication at / and
 * /console/<file>; they hold no data. The page reads the data routes, which
 * keep their authentication, with a token the user gives it. */
#ifndef ADMIN_CONSOLE_H
#define ADMIN_CONSOLE_H

#include "routes.h"

#include <stddef.h>

typedef struct {
  const char *name;         /* "index.html" */
  const char *content_type; /* "text/html; charset=utf-8" */
  const char *bytes;        /* NUL-terminated */
  size_t len;               /* without the NUL */
} admin_console_asset_t;

/* The embedded files (generated: <build>/admin-svc/admin_core_console.c). */
extern const admin_console_asset_t admin_console_assets[];
extern const size_t admin_console_assets_count;

/* The asset called name, or NULL. Pure; cannot fail. */
const admin_console_asset_t *admin_console_find(const char *name);

/* Registers GET / (the page), GET /console/<file> (its assets) and GET
 * /console/session.json ({"auth":bool,"sections":{"projections":bool,...}}:
 * whether the page must ask for a token, and which sections this admin-svc
 * serves). ctx is borrowed for the server's life. */
void admin_console_routes(cqrs_http_server_t *http, admin_ctx_t *ctx);

#endif
