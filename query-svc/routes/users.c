/* GET /v1/users/{userId} (GetUserProfile) and GET /v1/users?email=
 * (GetUserByEmail) from user_profiles. */
#include "../routes.h"

#define COLLECTION "user_profiles"

/* Emails are not unique across users: the earliest user wins, every time. */
static const char *const BY_EMAIL_SORT[] = {"createdAt", "_id", NULL};
static const cqrs_single_read_t USER_BY_ID = {COLLECTION, "_id", NULL, "no such user"};
static const cqrs_single_read_t USER_BY_EMAIL = {COLLECTION, "email", BY_EMAIL_SORT, "no user with this email"};

static void get_user(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p);

/* GET /v1/users/{userId} (then and now) and its history. */
static const cqrs_routes_aggregate_t USER = {"/v1/users/", "/v1/users/{userId}", "userId", "user", &USER_BY_ID,
                                             &cqrs_user_profiles_projection, "no such user", get_user};

static void get_user(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *id;
  if (!cqrs_params_string(p, "userId", true, 0, &id, &err)) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  cqrs_routes_find_aggregate(req, call, &USER, id, p);
}

static void user_by_email(cqrs_http_req_t *req, const cqrs_routes_call_t *call, const cqrs_params_t *p) {
  cqrs_error_t err = {0};
  const char *email;
  if (!cqrs_params_string(p, "email", true, 0, &email, &err)) {
    cqrs_routes_reply_invalid(req, &err);
    return;
  }
  cqrs_routes_find_one(req, call, &USER_BY_EMAIL, email, p);
}

static const char *const USER_PARAMS[] = {"userId", CQRS_ROUTES_WAIT_PARAMS, CQRS_ROUTES_TIME_PARAMS, NULL};
static const char *const EMAIL_PARAMS[] = {"email", CQRS_ROUTES_WAIT_PARAMS, NULL};

static const cqrs_routes_query_t QUERIES[] = {
    {"GetUserProfile", USER_PARAMS, get_user},
    {"GetUserByEmail", EMAIL_PARAMS, user_by_email},
    {NULL, NULL, NULL},
};

static void find_users_cb(cqrs_http_req_t *req, const cqrs_routes_call_t *call) {
  cqrs_params_t *p = cqrs_routes_query_params(req, EMAIL_PARAMS, NULL);
  if (!p) return;
  user_by_email(req, call, p);
  cqrs_params_destroy(p);
}

static void add_routes(cqrs_http_server_t *http, cqrs_routes_ctx_t *ctx) {
  cqrs_routes_add_aggregate(http, ctx, &USER);
  cqrs_routes_add(http, ctx, "GET", "/v1/users", "/v1/users", find_users_cb);
}

const cqrs_routes_resource_t cqrs_routes_users = {COLLECTION, QUERIES, add_routes};
