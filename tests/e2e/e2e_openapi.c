/* End to end: each service's GET /openapi.json (docs/openapi/<service>.json,
 * embedded at build time) against what the running service does. For every
 * documented path and method it sends requests (path parameters filled with a
 * random id; query parameters from their examples; POST bodies from the
 * documented examples plus two invalid ones) and checks the status is one the
 * operation documents, and the content type the documented one. Also: every
 * operation documents a 2xx or 4xx, and paths no document has answer 404. */
#include "testkit.h"

#include "cqrs/events.h"
#include "cqrs/json.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define N_SERVICES 5

static tk_env_t env;
static pid_t pids[3], admin, saga;

/* admin-svc with AUTH=off (on loopback, where these requests come from): every
 * request reaches its route, so the answers past authentication are checked. */
static void setup(void) {
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  tk_env_init(&env);
  tk_start_all(&env, pids);
  const char *admin_env[] = {"AUTH=off", NULL};
  admin = tk_start(&env, TK_ADMIN, admin_env);
  saga = tk_start(&env, TK_SAGA, NULL);
}

static void teardown(void) {
  if (admin > 0) tk_stop(admin, SIGTERM);
  if (saga > 0) tk_stop(saga, SIGTERM);
  admin = saga = 0;
  tk_stop_all(pids);
}

TestSuite(openapi, .init = setup, .fini = teardown, .timeout = 300);

typedef struct {
  const char *name;
  int port;
  bson_t *doc;
} service_t;

static void load_services(service_t s[N_SERVICES]) {
  s[0] = (service_t){"command-svc", env.command_port, NULL};
  s[1] = (service_t){"query-svc", env.query_port, NULL};
  s[2] = (service_t){"projector-svc", env.projector_port, NULL};
  s[3] = (service_t){"admin-svc", env.admin_port, NULL};
  s[4] = (service_t){"saga-svc", env.saga_port, NULL};
  for (int i = 0; i < N_SERVICES; i++) {
    tk_response_t r;
    tk_http("GET", s[i].port, "/openapi.json", NULL, 0, &r);
    cr_assert_eq(r.status, 200, "%s: GET /openapi.json answered %d", s[i].name, r.status);
    cqrs_error_t err = {0};
    s[i].doc = cqrs_json_parse(r.body, r.len, &err);
    cr_assert_not_null(s[i].doc, "%s: /openapi.json is not a JSON object: %s", s[i].name, err.message);
    const char *version, *title;
    cr_assert(cqrs_json_get_string(s[i].doc, "openapi", NULL, true, 0, &version, &err) &&
                  strncmp(version, "3.1.", 4) == 0,
              "%s: not an OpenAPI 3.1 document", s[i].name);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, s[i].doc, "info") && BSON_ITER_HOLDS_DOCUMENT(&it));
    bson_iter_t t;
    cr_assert(bson_iter_init(&it, s[i].doc) && bson_iter_find_descendant(&it, "info.title", &t) &&
                  BSON_ITER_HOLDS_UTF8(&t) && (title = bson_iter_utf8(&t, NULL)) && strcmp(title, s[i].name) == 0,
              "%s: info.title names another service", s[i].name);
    tk_response_cleanup(&r);
  }
}

static void free_services(service_t s[N_SERVICES]) {
  for (int i = 0; i < N_SERVICES; i++)
    if (s[i].doc) bson_destroy(s[i].doc);
}

/* A sub-document of it (which must hold one) as a static bson_t. */
static void sub_doc(const bson_iter_t *it, bson_t *out) {
  const uint8_t *data;
  uint32_t len;
  if (BSON_ITER_HOLDS_ARRAY(it))
    bson_iter_array(it, &len, &data);
  else
    bson_iter_document(it, &len, &data);
  cr_assert(bson_init_static(out, data, len));
}

/* The document at dotted path (NULL-safe: false when absent or no document). */
static bool find_doc(const bson_t *doc, const char *path, bson_t *out) {
  bson_iter_t it, found;
  if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &found)) return false;
  if (!BSON_ITER_HOLDS_DOCUMENT(&found) && !BSON_ITER_HOLDS_ARRAY(&found)) return false;
  sub_doc(&found, out);
  return true;
}

/* Follows a local "$ref" ("#/components/parameters/x") when obj is one. */
static void resolve(const bson_t *root, const bson_t *obj, bson_t *out) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, obj, "$ref")) {
    /* Not a struct copy: a static bson_t points into itself. */
    cr_assert(bson_init_static(out, bson_get_data(obj), obj->len));
    return;
  }
  const char *ref = bson_iter_utf8(&it, NULL);
  cr_assert(ref && strncmp(ref, "#/", 2) == 0, "non-local $ref %s", ref ? ref : "?");
  char path[256];
  snprintf(path, sizeof path, "%s", ref + 2);
  for (char *c = path; *c; c++)
    if (*c == '/') *c = '.';
  cr_assert(find_doc(root, path, out), "dangling $ref %s", ref);
}

static void url_append(bson_string_t *s, const char *v) {
  for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
    if (isalnum(*c) || strchr("-._~", *c))
      bson_string_append_c(s, (char)*c);
    else
      bson_string_append_printf(s, "%%%02X", *c);
  }
}

/* A parameter's value: its example, else its schema's default or first enum
 * value, else a random id. Returns a string to bson_free. */
static char *param_value(const bson_t *root, const bson_t *param) {
  bson_iter_t it;
  const char *keys[] = {"example", "schema.default", "schema.enum.0", NULL};
  for (const char **k = keys; *k; k++) {
    if (!bson_iter_init(&it, param) || !bson_iter_find_descendant(&it, *k, &it)) continue;
    if (BSON_ITER_HOLDS_UTF8(&it)) return bson_strdup(bson_iter_utf8(&it, NULL));
    if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it))
      return bson_strdup_printf("%lld", (long long)bson_iter_as_int64(&it));
  }
  (void)root;
  return bson_strdup_printf("oa-%08x%08x", (unsigned)rand(), (unsigned)rand());
}

typedef struct {
  bson_t params[16]; /* resolved parameter objects */
  size_t n_params;
  int statuses[32];
  char *media[32]; /* documented media type per status, NULL when no body */
  size_t n_statuses;
} operation_t;

static void add_params(const bson_t *root, const bson_t *holder, operation_t *op) {
  bson_t list;
  bson_iter_t it;
  if (!bson_iter_init_find(&it, holder, "parameters")) return;
  sub_doc(&it, &list);
  bson_iter_init(&it, &list);
  while (bson_iter_next(&it)) {
    bson_t p;
    sub_doc(&it, &p);
    cr_assert_lt(op->n_params, 16);
    resolve(root, &p, &op->params[op->n_params++]);
  }
}

static const char *param_str(const bson_t *p, const char *key) {
  bson_iter_t it;
  return bson_iter_init_find(&it, p, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
}

static bool param_required(const bson_t *p) {
  bson_iter_t it;
  return bson_iter_init_find(&it, p, "required") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

static bool param_has_example(const bson_t *p) {
  bson_iter_t it;
  return bson_iter_init_find(&it, p, "example");
}

/* path with every {name} replaced by a random id (path parameters). */
static char *fill_path(const char *tmpl) {
  bson_string_t *s = bson_string_new(NULL);
  for (const char *c = tmpl; *c; c++) {
    if (*c != '{') {
      bson_string_append_c(s, *c);
      continue;
    }
    const char *end = strchr(c, '}');
    cr_assert_not_null(end, "unclosed { in %s", tmpl);
    bson_string_append_printf(s, "oa-%08x%08x", (unsigned)rand(), (unsigned)rand());
    c = end;
  }
  return bson_string_free(s, false);
}

static int checked_requests;

/* Sends one request and checks its answer against op. */
static void check_request(const service_t *svc, const char *method, const char *url, const char *body,
                          const operation_t *op) {
  tk_response_t r;
  char upper[16];
  size_t i;
  for (i = 0; method[i] && i < sizeof upper - 1; i++) upper[i] = (char)toupper((unsigned char)method[i]);
  upper[i] = '\0';
  tk_http(upper, svc->port, url, body, body ? strlen(body) : 0, &r);
  cr_assert_neq(r.status, 0, "%s: %s %s: no answer", svc->name, upper, url);
  size_t k;
  for (k = 0; k < op->n_statuses && op->statuses[k] != r.status; k++) {
  }
  cr_assert_lt(k, op->n_statuses, "%s: %s %s%s%s answered %d, which its operation does not document: %s", svc->name,
               upper, url, body ? " " : "", body ? body : "", r.status, r.body ? r.body : "");
  if (op->media[k]) {
    /* The documented media type, and a body of that type. */
    const char *ct = r.headers ? strcasestr(r.headers, "\ncontent-type:") : NULL;
    cr_assert_not_null(ct, "%s: %s %s: %d without Content-Type", svc->name, upper, url, r.status);
    ct += strlen("\ncontent-type:");
    while (*ct == ' ') ct++;
    cr_assert(strncasecmp(ct, op->media[k], strlen(op->media[k])) == 0,
              "%s: %s %s: %d with Content-Type %.40s, documented %s", svc->name, upper, url, r.status, ct,
              op->media[k]);
    if (strcmp(op->media[k], "application/json") == 0 && strcmp(upper, "HEAD") != 0) {
      bson_t *b = cqrs_json_parse(r.body, r.len, NULL);
      cr_assert_not_null(b, "%s: %s %s: %d body is not a JSON object: %s", svc->name, upper, url, r.status, r.body);
      bson_destroy(b);
    }
  }
  checked_requests++;
  tk_response_cleanup(&r);
}

/* The query string of the required query parameters, plus extra (a name, or
 * NULL), plus, with all_examples, every one that has an example. */
static char *query_string(const bson_t *root, const operation_t *op, const char *extra, bool all_examples) {
  bson_string_t *s = bson_string_new(NULL);
  for (size_t i = 0; i < op->n_params; i++) {
    const bson_t *p = &op->params[i];
    const char *name = param_str(p, "name");
    if (strcmp(param_str(p, "in"), "query") != 0) continue;
    bool pick = param_required(p) || (extra && strcmp(extra, name) == 0) || (all_examples && param_has_example(p));
    if (!pick) continue;
    char *v = param_value(root, p);
    bson_string_append_c(s, s->len ? '&' : '?');
    url_append(s, name);
    bson_string_append_c(s, '=');
    url_append(s, v);
    bson_free(v);
  }
  return bson_string_free(s, false);
}

static void check_operation(const service_t *svc, const char *path, const char *method, const bson_t *path_item,
                            const bson_t *op_doc) {
  operation_t op = {0};
  const bson_t *root = svc->doc;
  add_params(root, path_item, &op);
  add_params(root, op_doc, &op);

  bson_t responses;
  bson_iter_t it;
  cr_assert(bson_iter_init_find(&it, op_doc, "responses") && BSON_ITER_HOLDS_DOCUMENT(&it),
            "%s: %s %s documents no responses", svc->name, method, path);
  sub_doc(&it, &responses);
  bool answers_2xx_or_4xx = false;
  bson_iter_init(&it, &responses);
  while (bson_iter_next(&it)) {
    char *end;
    long status = strtol(bson_iter_key(&it), &end, 10);
    cr_assert(*end == '\0' && status >= 100 && status <= 599, "%s: %s %s: response key %s is not a status",
              svc->name, method, path, bson_iter_key(&it));
    cr_assert_lt(op.n_statuses, 32);
    answers_2xx_or_4xx |= (status >= 200 && status < 300) || (status >= 400 && status < 500);
    bson_t resp, content;
    sub_doc(&it, &resp);
    bson_t resolved;
    resolve(root, &resp, &resolved);
    op.media[op.n_statuses] = NULL;
    bson_iter_t c;
    if (bson_iter_init_find(&c, &resolved, "content") && BSON_ITER_HOLDS_DOCUMENT(&c)) {
      sub_doc(&c, &content);
      if (bson_iter_init(&c, &content) && bson_iter_next(&c)) op.media[op.n_statuses] = bson_strdup(bson_iter_key(&c));
    }
    op.statuses[op.n_statuses++] = (int)status;
  }
  cr_assert(answers_2xx_or_4xx, "%s: %s %s documents neither a 2xx nor a 4xx answer", svc->name, method, path);

  char *base = fill_path(path);
  /* Bodies: the documented examples, then an empty object and not-JSON. */
  const char *bodies[64];
  char *owned[64];
  size_t n_bodies = 0, n_owned = 0;
  bson_t examples;
  if (strcmp(method, "get") != 0) {
    if (find_doc(op_doc, "requestBody.content.application/json.examples", &examples)) {
      bson_iter_init(&it, &examples);
      while (bson_iter_next(&it) && n_owned < 60) {
        bson_t ex, value;
        sub_doc(&it, &ex);
        cr_assert(find_doc(&ex, "value", &value), "%s: %s %s: example %s has no object value", svc->name, method,
                  path, bson_iter_key(&it));
        owned[n_owned] = cqrs_json_write(&value, NULL);
        bodies[n_bodies++] = owned[n_owned++];
      }
    }
    bodies[n_bodies++] = "{}";
    bodies[n_bodies++] = "not json";
  } else {
    bodies[n_bodies++] = NULL;
  }

  for (size_t b = 0; b < n_bodies; b++) {
    /* Bare, with the required query parameters, with each one more, with all examples. */
    char *q = query_string(root, &op, NULL, false);
    char *url = bson_strdup_printf("%s%s", base, q);
    check_request(svc, method, url, bodies[b], &op);
    bson_free(url);
    if (*q) {
      check_request(svc, method, base, bodies[b], &op);
    }
    bson_free(q);
    if (b > 0) continue; /* the query variations once per operation */
    size_t optional = 0;
    for (size_t i = 0; i < op.n_params; i++) {
      if (strcmp(param_str(&op.params[i], "in"), "query") != 0 || param_required(&op.params[i])) continue;
      q = query_string(root, &op, param_str(&op.params[i], "name"), false);
      url = bson_strdup_printf("%s%s", base, q);
      check_request(svc, method, url, bodies[b], &op);
      bson_free(url);
      bson_free(q);
      optional++;
    }
    if (optional < 2) continue; /* all of them together: nothing new */
    q = query_string(root, &op, NULL, true);
    url = bson_strdup_printf("%s%s", base, q);
    check_request(svc, method, url, bodies[b], &op);
    bson_free(url);
    bson_free(q);
  }
  for (size_t i = 0; i < n_owned; i++) bson_free(owned[i]);
  for (size_t i = 0; i < op.n_statuses; i++) bson_free(op.media[i]);
  bson_free(base);
}

static const char *const METHODS[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace", NULL};

Test(openapi, every_documented_operation_answers_a_documented_status) {
  service_t svcs[N_SERVICES];
  load_services(svcs);
  int operations = 0;
  for (int s = 0; s < N_SERVICES; s++) {
    bson_t paths;
    cr_assert(find_doc(svcs[s].doc, "paths", &paths), "%s: no paths", svcs[s].name);
    bson_iter_t p;
    bson_iter_init(&p, &paths);
    while (bson_iter_next(&p)) {
      const char *path = bson_iter_key(&p);
      bson_t item;
      sub_doc(&p, &item);
      bson_iter_t m;
      bson_iter_init(&m, &item);
      while (bson_iter_next(&m)) {
        const char *method = bson_iter_key(&m);
        bool is_method = false;
        for (const char *const *k = METHODS; *k; k++) is_method |= strcmp(*k, method) == 0;
        if (!is_method) continue; /* parameters, summary, ... */
        bson_t op;
        sub_doc(&m, &op);
        check_operation(&svcs[s], path, method, &item, &op);
        operations++;
      }
    }
  }
  cr_log_info("openapi: %d operations, %d requests, every answer documented", operations, checked_requests);
  cr_assert_geq(operations, 14);
  free_services(svcs);
}

/* True when some path template of doc matches path ({x} = one non-empty segment). */
static bool documented(const bson_t *doc, const char *path) {
  bson_t paths;
  bson_iter_t it;
  if (!find_doc(doc, "paths", &paths) || !bson_iter_init(&it, &paths)) return false;
  while (bson_iter_next(&it)) {
    const char *t = bson_iter_key(&it), *u = path;
    while (*t && *u) {
      if (*t == '{') {
        if (*u == '/') break;
        while (*u && *u != '/') u++;
        t = strchr(t, '}');
        if (!t) break;
        t++;
      } else if (*t == *u) {
        t++, u++;
      } else {
        break;
      }
    }
    if (t && !*t && !*u) return true;
  }
  return false;
}

/* GET /v1/events?type= lists the types it takes; they are the event contract's, no more, no less. */
Test(openapi, the_documented_event_types_are_the_contracts) {
  service_t svcs[N_SERVICES];
  load_services(svcs);
  bson_iter_t it, e;
  cr_assert(bson_iter_init(&it, svcs[1].doc) &&
                bson_iter_find_descendant(&it, "components.parameters.eventType.schema.enum", &e) &&
                BSON_ITER_HOLDS_ARRAY(&e),
            "query-svc documents no enum for GET /v1/events?type=");
  bson_iter_t v;
  bson_iter_recurse(&e, &v);
  size_t n = 0;
  while (bson_iter_next(&v)) {
    const char *name = bson_iter_utf8(&v, NULL);
    cr_expect_not_null(cqrs_event_type_find(name), "the document lists %s, which the contract does not know", name);
    n++;
  }
  size_t known = 0;
  for (const cqrs_event_type_t *const *t = cqrs_event_types; *t; t++) known++;
  cr_expect_eq(n, known, "the document lists %zu event types, the contract has %zu", n, known);
  free_services(svcs);
}

Test(openapi, undocumented_paths_answer_404) {
  service_t svcs[N_SERVICES];
  load_services(svcs);
  static const char *const common[] = {"/", "/nope", "/v1", "/v2/users/1", "/openapi.yaml", "/healthz/extra",
                                       "/v1/commands/1", "/metrics/", NULL};
  for (int s = 0; s < N_SERVICES; s++) {
    /* The fixed list, plus what the other services document and this one does not. */
    bson_string_t *urls = bson_string_new(NULL);
    for (const char *const *u = common; *u; u++) bson_string_append_printf(urls, "%s\n", *u);
    for (int o = 0; o < N_SERVICES; o++) {
      bson_t paths;
      bson_iter_t it;
      if (o == s || !find_doc(svcs[o].doc, "paths", &paths) || !bson_iter_init(&it, &paths)) continue;
      while (bson_iter_next(&it)) {
        char *filled = fill_path(bson_iter_key(&it));
        bson_string_append_printf(urls, "%s\n", filled);
        bson_free(filled);
      }
    }
    int n = 0;
    for (char *line = urls->str, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
      *nl = '\0';
      if (documented(svcs[s].doc, line)) continue;
      tk_response_t r;
      tk_http("GET", svcs[s].port, line, NULL, 0, &r);
      cr_assert_eq(r.status, 404, "%s: GET %s (undocumented) answered %d: %s", svcs[s].name, line, r.status,
                   r.body ? r.body : "");
      tk_response_cleanup(&r);
      n++;
    }
    cr_assert_geq(n, 8, "%s: too few undocumented paths tried", svcs[s].name);
    cr_log_info("openapi: %s: %d undocumented paths answer 404", svcs[s].name, n);
    bson_string_free(urls, true);
  }
  free_services(svcs);
}

/* The value of header name in r (malloc'd), NULL when absent. */
static char *header_of(const tk_response_t *r, const char *name) {
  size_t n = strlen(name);
  for (const char *h = r->headers; h && *h; h = strstr(h, "\r\n") ? strstr(h, "\r\n") + 2 : NULL)
    if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
      const char *v = h + n + 1 + strspn(h + n + 1, " ");
      return bson_strndup(v, strcspn(v, "\r\n"));
    }
  return NULL;
}

/* Every documented path of every service answers a method it does not
 * document with 405, an Allow header naming exactly its documented methods
 * (HEAD with GET) and a JSON body: TRACE, PATCH, OPTIONS and the usual ones
 * it lacks. */
Test(openapi, undeclared_methods_answer_405_with_the_paths_allow) {
  service_t svcs[N_SERVICES];
  load_services(svcs);
  static const char *const order[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL};
  static const char *const tried[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "TRACE", "OPTIONS", NULL};
  int checked = 0;
  for (int s = 0; s < N_SERVICES; s++) {
    bson_t paths;
    bson_iter_t p;
    cr_assert(find_doc(svcs[s].doc, "paths", &paths) && bson_iter_init(&p, &paths), "%s: no paths", svcs[s].name);
    while (bson_iter_next(&p)) {
      const char *path = bson_iter_key(&p);
      bson_t item;
      sub_doc(&p, &item);
      bool has[8] = {false};
      char allow[64] = "";
      for (int i = 0; order[i]; i++) {
        char lower[8];
        for (int c = 0; (lower[c] = (char)tolower((unsigned char)order[i][c])); c++) {}
        bson_iter_t m;
        has[i] = bson_iter_init_find(&m, &item, lower) || (i == 1 && has[0]);
        if (has[i]) snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", *allow ? ", " : "", order[i]);
      }
      char *url = fill_path(path);
      for (const char *const *m = tried; *m; m++) {
        bool declared = false;
        for (int i = 0; order[i]; i++) declared |= has[i] && strcmp(order[i], *m) == 0;
        if (declared) continue;
        tk_response_t r;
        tk_http(*m, svcs[s].port, url, NULL, 0, &r);
        char *got = header_of(&r, "Allow");
        cr_expect_eq(r.status, 405, "%s: %s %s answered %d: %s", svcs[s].name, *m, url, r.status, r.body ? r.body : "");
        cr_expect(got && strcmp(got, allow) == 0, "%s: %s %s: Allow is \"%s\", the document says \"%s\"",
                  svcs[s].name, *m, url, got ? got : "(none)", allow);
        cqrs_error_t err = {0};
        bson_t *body = r.body ? cqrs_json_parse(r.body, r.len, &err) : NULL;
        cr_expect_not_null(body, "%s: %s %s: the 405's body is not a JSON object: %s", svcs[s].name, *m, url,
                           r.body ? r.body : "");
        if (body) bson_destroy(body);
        bson_free(got);
        tk_response_cleanup(&r);
        checked++;
      }
      bson_free(url);
    }
  }
  cr_log_info("openapi: %d undeclared methods answer 405 with their path's Allow", checked);
  cr_assert_geq(checked, 200);
  free_services(svcs);
}

/* ---- answers against their documented schemas ---- */

#include "schema_check.h"

static bool has_text(const char *body, void *needle) { return strstr(body, needle) != NULL; }

/* Checks body against the schema documented for (path, method, status) of svc. */
static void expect_schema(const service_t *svc, const char *path, const char *method, int status, const char *body) {
  bson_t schema;
  cr_assert(tk_schema_of_response(svc->doc, path, method, status, &schema), "%s: %s %s documents no JSON %d",
            svc->name, method, path, status);
  char why[600];
  cr_expect(tk_schema_check(svc->doc, &schema, body, why, sizeof why), "%s: %s %s %d does not match its schema: %s\n%s",
            svc->name, method, path, status, why, body);
  checked_requests++;
}

/* A body with a duplicate key at any level answers 400 naming the key's path
 * (as field and in the message), on every service taking a JSON body: a
 * gateway and we must not read one body two ways. */
Test(openapi, a_body_with_a_duplicate_key_answers_400_naming_its_path) {
  static const struct {
    int svc; /* index in load_services */
    const char *path, *body, *field;
  } cases[] = {
      {0, "/v1/commands",
       "{\"commandType\":\"CreateUser\",\"commandType\":\"SuspendCustomer\",\"email\":\"d@example.com\",\"name\":\"D\"}",
       "commandType"},
      {0, "/v1/commands",
       "{\"commandType\":\"CreateOrder\",\"payload\":{\"userId\":\"u\",\"items\":[{\"sku\":\"a\",\"sku\":\"b\","
       "\"quantity\":1,\"unitPrice\":1}]}}",
       "payload.items.0.sku"},
      {1, "/v1/query", "{\"queryType\":\"GetOrder\",\"orderId\":\"a\",\"orderId\":\"b\"}", "orderId"},
      {3, "/v1/admin/tenants", "{\"tenantId\":\"dupa\",\"tenantId\":\"dupb\"}", "tenantId"},
  };
  service_t svcs[N_SERVICES];
  load_services(svcs);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const service_t *svc = &svcs[cases[i].svc];
    tk_response_t r;
    tk_http("POST", svc->port, cases[i].path, cases[i].body, strlen(cases[i].body), &r);
    char *field = tk_json_string(r.body, "field"), *error = tk_json_string(r.body, "error");
    char want[96];
    snprintf(want, sizeof want, "duplicate key \"%s\"", cases[i].field);
    cr_expect_eq(r.status, 400, "%s: POST %s %s: %d %s", svc->name, cases[i].path, cases[i].body, r.status, r.body);
    cr_expect(field && strcmp(field, cases[i].field) == 0, "%s: field is not %s: %s", svc->name, cases[i].field,
              r.body);
    cr_expect(error && strstr(error, want), "%s: the error does not say %s: %s", svc->name, want, r.body);
    free(field);
    free(error);
    tk_response_cleanup(&r);
  }
  free_services(svcs);
}

/* The seed query GetActiveCustomers lists ACTIVE customers with no further
 * parameter; a status given with it must be ACTIVE (400 naming status). */
Test(openapi, get_active_customers_takes_no_status_but_active) {
  service_t svcs[N_SERVICES];
  load_services(svcs);
  static const struct {
    const char *body;
    int status;
  } cases[] = {
      {"{\"queryType\":\"GetActiveCustomers\"}", 200},
      {"{\"queryType\":\"GetActiveCustomers\",\"status\":\"ACTIVE\"}", 200},
      {"{\"queryType\":\"GetActiveCustomers\",\"status\":\"SUSPENDED\"}", 400},
      {"{\"queryType\":\"GetActiveCustomers\",\"status\":\"active\"}", 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tk_response_t r;
    tk_http("POST", svcs[1].port, "/v1/query", cases[i].body, strlen(cases[i].body), &r);
    cr_expect_eq(r.status, cases[i].status, "%s: %d %s", cases[i].body, r.status, r.body);
    if (cases[i].status == 400) {
      char *field = tk_json_string(r.body, "field");
      cr_expect(field && strcmp(field, "status") == 0, "%s: %s", cases[i].body, r.body);
      free(field);
    }
    expect_schema(&svcs[1], "/v1/query", "post", r.status, r.body);
    tk_response_cleanup(&r);
  }
  free_services(svcs);
}

/* GET url on svc until it answers 200 with needle in the body, then checks
 * that body against the schema of documented path. */
static void expect_read(const service_t *svc, const char *path, const char *url, const char *needle) {
  tk_response_t r;
  cr_assert(tk_await_get(svc->port, url, 200, has_text, (void *)needle, 30000, &r), "%s: GET %s: %d %s", svc->name,
            url, r.status, r.body ? r.body : "");
  expect_schema(svc, path, "get", 200, r.body);
  tk_response_cleanup(&r);
}

/* POST body to url (NULL: path) and check the answer against path's schema. */
static void expect_post_at(const service_t *svc, const char *path, const char *url, const char *body, int want) {
  tk_response_t r;
  if (!url) url = path;
  tk_http("POST", svc->port, url, body, strlen(body), &r);
  cr_assert_eq(r.status, want, "%s: POST %s %s: %d %s", svc->name, path, body, r.status, r.body ? r.body : "");
  expect_schema(svc, path, "post", want, r.body);
  tk_response_cleanup(&r);
}

static void expect_post(const service_t *svc, const char *path, const char *body, int want) {
  expect_post_at(svc, path, NULL, body, want);
}

static bool compensated(const char *body, void *ctx) {
  (void)ctx;
  return strstr(body, "\"state\":\"compensated\"") != NULL;
}

/* Real documents, after every kind of write, carry every field of their
 * schema and nothing else: user, order and customer documents and pages from
 * each read route and from POST /v1/query, command results, admin-svc's
 * tenants and keys, and every service's health answers. */
Test(openapi, answers_match_their_documented_schemas) {
  service_t s[N_SERVICES];
  load_services(s);
  const service_t *cmd = &s[0], *query = &s[1], *adm = &s[3];
  unsigned tag = (unsigned)rand();
  char u[64], o[64], c1[64], c2[64], body[1024], url[256], mail1[96], mail2[96];
  snprintf(u, sizeof u, "user-%08x", tag);
  snprintf(o, sizeof o, "order-%08x", tag);
  snprintf(c1, sizeof c1, "cust-%08x-a", tag);
  snprintf(c2, sizeof c2, "cust-%08x-b", tag);
  snprintf(mail1, sizeof mail1, "s%08x@example.com", tag);
  snprintf(mail2, sizeof mail2, "t%08x@example.com", tag);

  /* every kind of write, each result against CommandResult */
  const char *writes[] = {
      "{\"commandType\":\"CreateUser\",\"aggregateId\":\"%1$s\",\"email\":\"%1$s@example.com\",\"name\":\"Ann\"}",
      "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%1$s\",\"changes\":{\"name\":\"Ann B\"}}",
      "{\"commandType\":\"CreateOrder\",\"aggregateId\":\"%2$s\",\"userId\":\"%1$s\","
      "\"items\":[{\"product\":\"p\",\"quantity\":2,\"price\":1.5}],\"totalAmount\":3}",
      "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%2$s\",\"status\":\"Processing\"}",
      "{\"commandType\":\"RegisterCustomer\",\"aggregateId\":\"%3$s\",\"email\":\"%5$s\",\"name\":\"Cy\"}",
      "{\"commandType\":\"SuspendCustomer\",\"aggregateId\":\"%3$s\",\"reason\":\"unpaid\"}",
      "{\"commandType\":\"RegisterCustomer\",\"aggregateId\":\"%4$s\",\"email\":\"x%6$s\",\"name\":\"Di\"}",
      "{\"commandType\":\"UpdateEmail\",\"aggregateId\":\"%4$s\",\"newEmail\":\"%6$s\"}",
  };
  for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
    snprintf(body, sizeof body, writes[i], u, o, c1, c2, mail1, mail2);
    expect_post(cmd, "/v1/commands", body, 201);
  }

  snprintf(url, sizeof url, "/v1/users/%s", u);
  expect_read(query, "/v1/users/{userId}", url, "Ann B");
  snprintf(url, sizeof url, "/v1/users?email=%s@example.com", u);
  expect_read(query, "/v1/users", url, u);
  snprintf(url, sizeof url, "/v1/orders/%s", o);
  expect_read(query, "/v1/orders/{orderId}", url, "Processing");
  snprintf(url, sizeof url, "/v1/orders?userId=%s", u);
  expect_read(query, "/v1/orders", url, "Processing");
  expect_read(query, "/v1/orders", "/v1/orders?status=Processing&limit=500", o);
  snprintf(url, sizeof url, "/v1/customers/%s", c1);
  expect_read(query, "/v1/customers/{customerId}", url, "unpaid");
  snprintf(url, sizeof url, "/v1/customers/%s", c2);
  expect_read(query, "/v1/customers/{customerId}", url, mail2);
  expect_read(query, "/v1/customers", "/v1/customers?status=SUSPENDED&limit=500", c1);
  expect_read(query, "/v1/customers", "/v1/customers?status=ACTIVE&limit=500", c2);
  snprintf(url, sizeof url, "/v1/customers?emailPrefix=%.9s", mail2);
  expect_read(query, "/v1/customers", url, c2);
  /* the history read model: its items, with who caused each event */
  snprintf(url, sizeof url, "/v1/orders/%s/history", o);
  expect_read(query, "/v1/orders/{orderId}/history", url, "\"version\":2");
  expect_read(query, "/v1/events", "/v1/events?type=OrderCreated&order=newest&limit=500", o);

  /* the same documents through POST /v1/query, one per seed query name */
  const char *queries[] = {
      "{\"queryType\":\"GetUserProfile\",\"userId\":\"%1$s\"}",
      "{\"queryType\":\"GetUserByEmail\",\"email\":\"%1$s@example.com\"}",
      "{\"queryType\":\"GetOrder\",\"orderId\":\"%2$s\"}",
      "{\"queryType\":\"GetOrdersByUser\",\"userId\":\"%1$s\"}",
      "{\"queryType\":\"GetOrdersByStatus\",\"status\":\"Processing\",\"limit\":500}",
      "{\"queryType\":\"GetCustomerById\",\"customerId\":\"%3$s\"}",
      "{\"queryType\":\"GetActiveCustomers\",\"limit\":500}",
      "{\"queryType\":\"SearchCustomersByEmail\",\"emailPrefix\":\"%4$.9s\"}",
  };
  for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
    snprintf(body, sizeof body, queries[i], u, o, c1, mail2);
    expect_post(query, "/v1/query", body, 200);
  }

  /* admin-svc: a tenant, its key (shown once) and the lists */
  char tenant[32];
  snprintf(tenant, sizeof tenant, "t%08x", tag);
  snprintf(body, sizeof body, "{\"tenantId\":\"%s\"}", tenant);
  expect_post(adm, "/v1/admin/tenants", body, 201);
  snprintf(url, sizeof url, "/v1/admin/tenants/%s", tenant);
  expect_read(adm, "/v1/admin/tenants/{tenantId}", url, tenant);
  expect_read(adm, "/v1/admin/tenants", "/v1/admin/tenants", tenant);
  snprintf(url, sizeof url, "/v1/admin/tenants/%s/keys", tenant);
  expect_post_at(adm, "/v1/admin/tenants/{tenantId}/keys", url, "{\"scopes\":[\"queries:read\"]}", 201);
  expect_read(adm, "/v1/admin/tenants/{tenantId}/keys", url, "queries:read");

  /* an order of an unknown user: cancelled by its saga, which admin-svc lists and shows */
  char lost[64];
  snprintf(lost, sizeof lost, "order-%08x-lost", tag);
  snprintf(body, sizeof body,
           "{\"commandType\":\"CreateOrder\",\"aggregateId\":\"%s\",\"userId\":\"nobody-%08x\","
           "\"items\":[{\"product\":\"p\",\"quantity\":1,\"price\":1}],\"totalAmount\":1}",
           lost, tag);
  expect_post(cmd, "/v1/commands", body, 201);
  snprintf(url, sizeof url, "/v1/admin/sagas?type=order_placement&key=%s", lost);
  tk_response_t r;
  cr_assert(tk_await_get(adm->port, url, 200, compensated, NULL, 30000, &r), "%d %s", r.status, r.body);
  const char *id_at = strstr(r.body, "\"sagaId\":\"");
  cr_assert_not_null(id_at, "%s", r.body);
  char saga_id[40];
  snprintf(saga_id, sizeof saga_id, "%.36s", id_at + 10);
  tk_response_cleanup(&r);
  expect_read(adm, "/v1/admin/sagas", url, "compensated");
  snprintf(url, sizeof url, "/v1/admin/sagas/%s", saga_id);
  expect_read(adm, "/v1/admin/sagas/{sagaId}", url, "USER_NOT_FOUND");
  snprintf(url, sizeof url, "/v1/orders/%s", lost);
  expect_read(query, "/v1/orders/{orderId}", url, "USER_NOT_FOUND");

  for (int i = 0; i < N_SERVICES; i++) {
    expect_read(&s[i], "/healthz", "/healthz", "ok");
    expect_read(&s[i], "/readyz", "/readyz", "ready");
  }
  free_services(s);
}
