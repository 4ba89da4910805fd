/* GET /v1/users/{userId} (GetUserProfile) and GET /v1/users?email=
 * (GetUserByEmail) from user_profiles. */
#include "../routes.h"

#include <stdio.h>

#define COLLECTION "user_profiles"

static void get_user_cb(cqrs_http_req_t *req, void *ctx) {
  static const char *const allowed[] = {CQRS_ROUTES_WAIT_PARAMS, NULL};
  if (!cqrs_routes_check_params(req, allowed)) return;
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", cqrs_http_req_tail(req));
  cqrs_routes_find_one(req, ctx, COLLECTION, &filter, NULL, "no such user");
  bson_destroy(&filter);
}

static void find_users_cb(cqrs_http_req_t *req, void *ctx) {
  static const char *const allowed[] = {"email", NULL};
  if (!cqrs_routes_check_params(req, allowed)) return;
  const char *email = cqrs_http_req_query(req, "email");
  if (!email || !*email) {
    cqrs_http_reply_error(req, 400, "email is required", "email");
    return;
  }
  bson_t filter = BSON_INITIALIZER, sort = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "email", email);
  /* Emails are not unique across users: the earliest user wins, every time. */
  BSON_APPEND_INT32(&sort, "createdAt", 1);
  BSON_APPEND_INT32(&sort, "_id", 1);
  cqrs_routes_find_one(req, ctx, COLLECTION, &filter, &sort, "no user with this email");
  bson_destroy(&filter);
  bson_destroy(&sort);
}

void cqrs_routes_users(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  cqrs_http_server_route(http, "GET", "/v1/users/", "/v1/users/{userId}", get_user_cb, ctx);
  cqrs_http_server_route(http, "GET", "/v1/users", "/v1/users", find_users_cb, ctx);
}
