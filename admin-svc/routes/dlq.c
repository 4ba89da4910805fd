/* Dead letters: see routes.h. */
#include "../routes.h"

void admin_dlq_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  (void)http;
  (void)ctx;
}
