/* How queries are invoked: from a GET's path and query string, or by seed name
 * from a POST /v1/query body. Either way the same query function answers. */
#include "../routes.h"

#include "cqrs/json.h"

#include <inttypes.h>
#include <stdio.h>
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

static bool allowed_in(const char *const *allowed, const char *name) {
  for (; *allowed; allowed++)
    if (strcmp(*allowed, name) == 0) return true;
  return false;
}

/* The body's members but queryType as parameters of q: strings as they are,
 * integers (a JSON limit) in decimal, null as absent. */
static bool body_params(const bson_t *body, const cqrs_routes_query_t *q, cqrs_params_t *p,
                        cqrs_error_t *err) {
  bson_iter_t it;
  bool seen_type = false;
  bson_iter_init(&it, body);
  while (bson_iter_next(&it)) {
    const char *name = bson_iter_key(&it);
    char num[24];
    const char *value;
    if (strcmp(name, "queryType") == 0 && !seen_type) {
      seen_type = true;
      continue;
    }
    if (strcmp(name, "queryType") == 0) {
      cqrs_error_set(err, CQRS_ERR_INVALID, name, "queryType is given more than once");
      return false;
    }
    if (!allowed_in(q->params, name)) {
      cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s takes no parameter \"%.60s\"", q->name, name);
      return false;
    }
    if (BSON_ITER_HOLDS_NULL(&it)) continue;
    if (BSON_ITER_HOLDS_UTF8(&it)) {
      uint32_t len;
      value = bson_iter_utf8(&it, &len);
      if (strlen(value) != len) {
        cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must not contain NUL characters", name);
        return false;
      }
    } else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
      snprintf(num, sizeof num, "%" PRId64, bson_iter_as_int64(&it));
      value = num;
    } else {
      cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must be a string or an integer", name);
      return false;
    }
    if (!cqrs_params_add(p, name, value, err)) return false;
  }
  return true;
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
  if (!body || !cqrs_json_get_string(body, "queryType", NULL, true, 64, &type, &err)) goto invalid;
  if (!(q = find_query(type))) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "queryType", "unknown queryType \"%.64s\"", type);
    goto invalid;
  }
  p = cqrs_params_new();
  if (!body_params(body, q, p, &err)) goto invalid;
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
