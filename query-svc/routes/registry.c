/* The resources query-svc serves (routes.h): adding one is its route file,
 * which defines cqrs_routes_<name>, and its name in RESOURCES. */
#include "../routes.h"

#include <string.h>

#define RESOURCES(X) X(users) X(orders) X(customers) X(events) X(query)

#define DECLARE(name) extern const cqrs_routes_resource_t cqrs_routes_##name;
RESOURCES(DECLARE)
#undef DECLARE

#define ROW(name) &cqrs_routes_##name,
const cqrs_routes_resource_t *const cqrs_routes_resources[] = {RESOURCES(ROW) NULL};
#undef ROW

void cqrs_routes_add_all(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  for (const cqrs_routes_resource_t *const *r = cqrs_routes_resources; *r; r++) (*r)->add(http, ctx);
}

size_t cqrs_routes_read_models(const char **out, size_t max) {
  size_t n = 0;
  for (const cqrs_routes_resource_t *const *r = cqrs_routes_resources; *r; r++) {
    const char *m = (*r)->read_model;
    bool seen = !m;
    for (size_t i = 0; i < n && !seen; i++) seen = strcmp(out[i], m) == 0;
    if (seen) continue;
    BSON_ASSERT(n + 1 < max); /* a programmer's mistake: raise CQRS_ROUTES_RESOURCES_MAX */
    out[n++] = m;
  }
  out[n] = NULL;
  return n;
}
