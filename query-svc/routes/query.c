/* How queries are invoked: from a GET's path and query string, or by seed name
 * from a POST /v1/query body (whose members become parameters in params.c,
 * cqrs_params_body). Either way the same query function answers. */
#include "../routes.h"

#include "cqrs/json.h"

#include <string.h>

bool cqrs_routes_reply_invalid(cqrs_http_req_t *req, const cqrs_error_t *err) {
  cqrs_http_reply_cqrs_error(req, err);
  return false;
}

cqrs_params_t *cqrs_routes_query_params(cqrs_http_req_t *req, const char *const *allowed,
                                        const char *path_name) {
  if (!cqrs_routes_check_params(req, allowed)) return NULL;
  cqrs_params_t *p = cqrs_params_new();
  cqrs_error_t err = {0};
  /* cqrs_http_req_query gives the first of repeated names: http.h has no way
   * to see the others yet. */
  for (const char *const *a = allowed; *a; a++) {
    const char *v = cqrs_http_req_query(req, *a);
    if (v) cqrs_params_add(p, *a, v, NULL);
  }
  if (path_name && !cqrs_params_add(p, path_name, cqrs_http_req_tail(req), &err)) {
    cqrs_routes_reply_invalid(req, &err);
    cqrs_params_destroy(p);
    return NULL;
  }
  return p;
}

static const cqrs_routes_query_t *find_query(const char *name) {
  for (const cqrs_routes_resource_t *const *r = cqrs_routes_resources; *r; r++)
    for (const cqrs_routes_query_t *q = (*r)->queries; q && q->name; q++)
      if (strcmp(q->name, name) == 0) return q;
  return NULL;
}

static void query_cb(cqrs_http_req_t *req, const cqrs_routes_call_t *call) {
  cqrs_error_t err = {0};
  cqrs_params_t *p = NULL;
  const cqrs_routes_query_t *q = NULL;
  const char *type;
  size_t len;
  /* Every parameter, minVersion and waitMs included, comes in the body. */
  static const char *const no_params[] = {NULL};
  if (!cqrs_routes_check_params(req, no_params)) return;
  const char *buf = cqrs_http_req_body(req, &len);
  bson_t *body = cqrs_json_parse(buf, len, &err);
  if (!body ||
      !cqrs_json_get_string(body, CQRS_PARAMS_QUERY_TYPE, NULL, true, CQRS_PARAMS_QUERY_TYPE_MAX, &type, &err))
    goto invalid;
  if (!(q = find_query(type))) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, CQRS_PARAMS_QUERY_TYPE, "unknown " CQRS_PARAMS_QUERY_TYPE " \"%.64s\"",
                   type);
    goto invalid;
  }
  p = cqrs_params_new();
  if (!cqrs_params_body(body, q->name, q->params, p, &err)) goto invalid;
  q->run(req, call, p);
  goto done;
invalid:
  cqrs_routes_reply_invalid(req, &err);
done:
  cqrs_params_destroy(p);
  if (body) bson_destroy(body);
}

static void add_routes(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  cqrs_routes_add(http, ctx, "POST", "/v1/query", "/v1/query", query_cb);
}

/* POST /v1/query: {"queryType": <seed name>, <parameters>...} answered as the
 * matching route would (every resource's queries). */
const cqrs_routes_resource_t cqrs_routes_query = {NULL, NULL, add_routes};
