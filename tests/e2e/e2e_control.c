/* End to end, the control plane (issue 11) on the real stack: admin-svc
 * writes control records, projector-svc acts on them. Replays: a dry run
 * changes nothing; a replay from a time re-derives exactly the documents
 * touched since (with a projection whose output differs between two builds:
 * PROJECTION_TEST_VARIANT) and leaves the others byte-identical, and one
 * tenant's replay from the beginning rebuilds its database; pause holds
 * the position (also of a replay paused while it runs) and resume completes; a second replay while one is open is
 * 409; cancel leaves the live collection serving; a replay whose projector is
 * killed (-9) while it runs is resumed from its checkpoint by the other
 * replica and completes once. Dead
 * letters: listed with their coordinates, redriven after the cause is fixed
 * (PROJECTION_TEST_REFUSE_NAME unset), back in the dead letters when it still
 * fails, discarded with a reason, and audited; one of a v1 event written
 * before schema versions shows its data upcast and redrives into the current
 * document shape; a write the store keeps refusing among them with its
 * record's coordinates. Projections: pause and resume, and a projection halted
 * at a poison event (POISON_POLICY=halt) resumed past it, and still halted
 * there after a restart until then. AUTH=off: every event is tenant
 * "default"'s. */
#include "testkit.h"

#include "cqrs/event.h"
#include "cqrs/events.h"
#include "cqrs/json.h"
#include "cqrs/ops.h"
#include "cqrs/tenant.h"
#include "cqrs/util.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 120000
#define LOAD_EVENTS 1500
#define POISON_NAME "Poison"

static tk_env_t env;
static pid_t cmd, proj, proj2, admin;
static mongoc_client_t *client;

static void setup(void) {
  tk_env_init(&env);
  mongoc_init();
  client = mongoc_client_new(env.mongo_uri);
}

static void stop(pid_t *pid) {
  if (*pid > 0) tk_stop(*pid, SIGTERM);
  *pid = 0;
}

static void teardown(void) {
  stop(&admin);
  stop(&proj2);
  stop(&proj);
  stop(&cmd);
  if (client) mongoc_client_destroy(client);
  client = NULL;
}

TestSuite(control, .init = setup, .fini = teardown, .timeout = 600);

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A projector's settings: one store command in flight per loop (two replicas
 * and a replay on one FerretDB stay well inside its connection pool), then
 * extra (NULL-terminated, may be NULL). Static storage: one call at a time. */
static const char *const *projector_env(const char *const *extra) {
  static const char *out[8];
  size_t n = 0;
  out[n++] = "MONGO_WRITE_CONCURRENCY=1";
  for (; extra && *extra && n < 7; extra++) out[n++] = *extra;
  out[n] = NULL;
  return out;
}

static pid_t start_projector(const tk_env_t *e, const char *const *extra) {
  return tk_start(e, TK_PROJECTOR, projector_env(extra));
}

/* Starts command-svc, projector-svc (with extra settings) and admin-svc. */
static void start(const char *const *projector_extra) {
  cmd = tk_start(&env, TK_COMMAND, NULL);
  proj = start_projector(&env, projector_extra);
  admin = tk_start(&env, TK_ADMIN, NULL);
}

/* ---- admin-svc ---- */

/* A request to admin-svc; fails the test unless it answers want. Returns the body (free it). */
static char *call(int want, const char *method, const char *path, const char *body) {
  tk_response_t r;
  tk_http(method, env.admin_port, path, body, body ? strlen(body) : 0, &r);
  cr_assert_eq(r.status, want, "%s %s answered %d, not %d: %s", method, path, r.status, want, r.body ? r.body : "");
  char *out = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  return out;
}

static char *replay_start(const char *projection, const char *from) {
  char body[256];
  snprintf(body, sizeof body, "{\"projection\":\"%s\",\"from\":\"%s\",\"dryRun\":false}", projection, from);
  char *b = call(202, "POST", "/v1/admin/replays", body);
  char *id = tk_json_string(b, "replayId");
  cr_assert_not_null(id, "%s", b);
  free(b);
  return id;
}

static char *replay_get(const char *id) {
  char path[128];
  snprintf(path, sizeof path, "/v1/admin/replays/%s", id);
  return call(200, "GET", path, NULL);
}

static void replay_act(const char *id, const char *verb, int want) {
  char path[128];
  snprintf(path, sizeof path, "/v1/admin/replays/%s/%s", id, verb);
  free(call(want, "POST", path, NULL));
}

static bool state_is(const char *body, void *want) {
  char *s = tk_json_string(body, "state");
  bool ok = s && strcmp(s, want) == 0;
  free(s);
  return ok;
}

/* Waits until replay id is in state want; returns its object (free it). */
static char *await_replay(const char *id, const char *want) {
  char path[128];
  snprintf(path, sizeof path, "/v1/admin/replays/%s", id);
  tk_response_t r;
  bool ok = tk_await_get(env.admin_port, path, 200, state_is, (void *)want, WAIT_MS, &r);
  char *out = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  cr_assert(ok, "replay %s did not reach %s: %s", id, want, out);
  return out;
}

/* ---- events ---- */

static char *create_user(const char *name) {
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"%s.%d.%s@example.com\",\"name\":\"%s\"}",
                       name, rand(), env.db, name);
  char *id = tk_json_string(b, "aggregateId");
  cr_assert_not_null(id, "%s", b);
  free(b);
  return id;
}

static void rename_user(const char *id, const char *name) {
  free(tk_command(&env, 201,
                  "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"%s\"}}", id,
                  name));
}

/* Puts n UserCreated events straight on the events topic (tenant "default"),
 * so a replay has enough to read that it can be paused on the way. */
static void load_users(int n) {
  cqrs_event_t *evs = calloc((size_t)n, sizeof *evs);
  cqrs_event_data_t d = {0};
  for (int i = 0; i < n; i++) {
    char id[64], ev_id[96], email[128];
    snprintf(id, sizeof id, "load-%d", i);
    snprintf(ev_id, sizeof ev_id, "load-%s-%d", env.db, i);
    snprintf(email, sizeof email, "%s@example.com", id);
    d.user_created = (cqrs_user_created_t){.user_id = id, .email = email, .name = "Load",
                                           .created_at = "2026-03-01T10:00:00.000Z"};
    bson_t *doc = bson_new();
    cqrs_user_created_event.encode(&d, doc);
    evs[i] = (cqrs_event_t){.id = strdup(ev_id), .type = (char *)cqrs_user_created_event.name, .source = "/e2e",
                            .aggregate_type = (char *)cqrs_user_created_event.aggregate_type,
                            .aggregate_id = strdup(id), .time = "2026-03-01T10:00:00.000Z",
                            .tenant = CQRS_TENANT_DEFAULT, .version = 1, .data = doc};
  }
  tk_produce_events(&env, evs, (size_t)n);
  for (int i = 0; i < n; i++) {
    free(evs[i].id);
    free(evs[i].aggregate_id);
    bson_destroy(evs[i].data);
  }
  free(evs);
}

/* ---- the store ---- */

static const char *db(void) {
  static char out[128];
  return tk_tenant_db(&env, CQRS_TENANT_DEFAULT, out);
}

/* The collection serving read model name (its alias, or its own name). */
static char *live(const char *name) {
  mongoc_collection_t *c = mongoc_client_get_collection(client, db(), "read_models");
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(name));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
  const bson_t *doc;
  bson_iter_t it;
  char *out = strdup(mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "collection") ?
                         bson_iter_utf8(&it, NULL) : name);
  mongoc_cursor_destroy(cur);
  bson_destroy(filter);
  mongoc_collection_destroy(c);
  return out;
}

/* Every document of collection, in _id order, as canonical extended JSON (free it). */
static char *dump(const char *collection) {
  mongoc_collection_t *c = mongoc_client_get_collection(client, db(), collection);
  bson_t filter = BSON_INITIALIZER;
  bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, opts, NULL);
  const bson_t *doc;
  bson_string_t *out = bson_string_new("");
  while (mongoc_cursor_next(cur, &doc)) {
    char *j = bson_as_canonical_extended_json(doc, NULL);
    bson_string_append(out, j);
    bson_string_append_c(out, '\n');
    bson_free(j);
  }
  bson_error_t e;
  cr_assert(!mongoc_cursor_error(cur, &e), "reading %s: %s", collection, e.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(opts);
  mongoc_collection_destroy(c);
  return bson_string_free(out, false);
}

static int64_t count(const char *collection) {
  mongoc_collection_t *c = mongoc_client_get_collection(client, db(), collection);
  bson_t filter = BSON_INITIALIZER;
  int64_t n = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL, NULL);
  mongoc_collection_destroy(c);
  return n;
}

/* The names of the database's collections, sorted, one string (free it). */
static char *collections(void) {
  mongoc_database_t *d = mongoc_client_get_database(client, db());
  char **names = mongoc_database_get_collection_names_with_opts(d, NULL, NULL);
  size_t n = 0;
  while (names && names[n]) n++;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) > 0) {
        char *t = names[i];
        names[i] = names[j];
        names[j] = t;
      }
  bson_string_t *out = bson_string_new("");
  for (size_t i = 0; i < n; i++) bson_string_append_printf(out, "%s,", names[i]);
  bson_strfreev(names);
  mongoc_database_destroy(d);
  return bson_string_free(out, false);
}

/* id's document in the live collection of projection as canonical JSON
 * (free it), or NULL. */
static char *live_doc(const char *projection, const char *id) {
  char *coll = live(projection);
  mongoc_collection_t *c = mongoc_client_get_collection(client, db(), coll);
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
  const bson_t *doc;
  char *out = mongoc_cursor_next(cur, &doc) ? bson_as_canonical_extended_json(doc, NULL) : NULL;
  mongoc_cursor_destroy(cur);
  bson_destroy(filter);
  mongoc_collection_destroy(c);
  free(coll);
  return out;
}

static char *user_doc(const char *id) { return live_doc("user_profiles", id); }

/* Waits until id's document in projection holds needle; returns it (free it). */
static char *await_doc(const char *projection, const char *id, const char *needle) {
  char *doc = NULL;
  for (int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS; cqrs_time_monotonic_ms() < deadline; nap(50)) {
    free(doc);
    doc = live_doc(projection, id);
    if (doc && strstr(doc, needle)) return doc;
  }
  cr_assert_fail("%s %s never held %s: %s", projection, id, needle, doc ? doc : "(no document)");
  return NULL;
}

static char *await_user(const char *id, const char *needle) { return await_doc("user_profiles", id, needle); }

/* Waits until event_history holds a document of aggregate id (the event went
 * through the projector's loops): a later check that another read model did
 * NOT apply it is then meaningful. */
static void await_history(const char *id, int64_t version) {
  for (int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS; cqrs_time_monotonic_ms() < deadline; nap(50)) {
    char *coll = live("event_history");
    mongoc_collection_t *c = mongoc_client_get_collection(client, db(), coll);
    bson_t *filter = BCON_NEW("aggregateId", BCON_UTF8(id), "version", BCON_INT64(version));
    int64_t n = mongoc_collection_count_documents(c, filter, NULL, NULL, NULL, NULL);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    free(coll);
    if (n > 0) return;
  }
  cr_assert_fail("event %s v%lld never reached event_history", id, (long long)version);
}

/* The "lag" array of projection p in GET /v1/admin/projections (free it). */
static char *lag_of(const char *p) {
  char *b = call(200, "GET", "/v1/admin/projections", NULL);
  char key[96];
  snprintf(key, sizeof key, "\"projection\":\"%s\"", p);
  char *at = strstr(b, key);
  cr_assert_not_null(at, "%s", b);
  char *lag = strstr(at, "\"lag\":[");
  char *end = lag ? strchr(lag, ']') : NULL;
  cr_assert(lag && end, "%s", b);
  char *out = strndup(lag, (size_t)(end - lag + 1));
  free(b);
  return out;
}

/* lag_of(p) once the projector has committed what it applied: every
 * partition's lag at most 1, the commit marker after its last event (the
 * projector commits its offsets every CQRS_APPLY_COMMIT_INTERVAL_MS, not with
 * each write). */
static char *settled_lag_of(const char *p) {
  for (int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS;; nap(50)) {
    char *lag = lag_of(p);
    bool settled = true;
    for (const char *at = strchr(lag, '['); settled && (at = strstr(at, "\"lag\":")); at += 6)
      settled = strtoll(at + 6, NULL, 10) <= 1;
    if (settled) return lag;
    cr_assert_lt(cqrs_time_monotonic_ms(), deadline, "%s's offsets were not committed: %s", p, lag);
    free(lag);
  }
}

/* Calls cb on each item of a list answer ({"items":[...]}) until it returns true. */
static bool each_item(const char *body, bool (*cb)(const bson_t *item, void *ctx), void *ctx) {
  bson_t *doc = cqrs_json_parse(body, strlen(body), NULL);
  bson_iter_t it, items;
  bool stopped = false;
  if (doc && bson_iter_init_find(&it, doc, "items") && bson_iter_recurse(&it, &items))
    while (!stopped && bson_iter_next(&items)) {
      uint32_t len;
      const uint8_t *data;
      bson_t item;
      bson_iter_document(&items, &len, &data);
      if (data && bson_init_static(&item, data, len)) stopped = cb(&item, ctx);
    }
  if (doc) bson_destroy(doc);
  return stopped;
}

static const char *item_str(const bson_t *item, const char *key) {
  bson_iter_t it;
  return bson_iter_init_find(&it, item, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

typedef struct {
  const char *projection;
  char state[32];
} find_state_t;

static bool projection_is(const bson_t *item, void *ctx) {
  find_state_t *f = ctx;
  const char *p = item_str(item, "projection"), *s = item_str(item, "state");
  if (!p || strcmp(p, f->projection) != 0) return false;
  snprintf(f->state, sizeof f->state, "%s", s ? s : "");
  return true;
}

static char *projection_state(const char *p) {
  char *b = call(200, "GET", "/v1/admin/projections", NULL);
  find_state_t f = {p, ""};
  cr_assert(each_item(b, projection_is, &f), "%s is not listed: %s", p, b);
  free(b);
  return strdup(f.state);
}

static void await_projection(const char *p, const char *want) {
  char *s = NULL;
  for (int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS; cqrs_time_monotonic_ms() < deadline; nap(100)) {
    free(s);
    s = projection_state(p);
    if (s && strcmp(s, want) == 0) {
      free(s);
      return;
    }
  }
  cr_assert_fail("projection %s never became %s (is %s)", p, want, s ? s : "?");
}

/* ---- replays ---- */

/* Replay id, paused with held events applied, is still paused at held a
 * progress period later. */
static void expect_held(const char *id, int64_t held) {
  nap(1500); /* longer than the replay's progress period (1 s): it would have moved */
  char *r = replay_get(id);
  cr_expect(state_is(r, "paused"), "%s", r);
  cr_expect_eq(tk_json_int(r, "applied"), held, "a paused replay moved: %s", r);
  free(r);
}

Test(control, a_dry_run_changes_nothing) {
  start(NULL);
  char *a = create_user("DryA"), *b = create_user("DryB");
  free(await_user(a, "DryA"));
  free(await_user(b, "DryB"));
  char *coll = live("user_profiles");
  char *docs_before = dump(coll), *colls_before = collections(), *lag_before = settled_lag_of("user_profiles");
  char *r = call(200, "POST", "/v1/admin/replays", "{\"projection\":\"user_profiles\",\"from\":\"beginning\"}");
  cr_expect(strstr(r, "\"dryRun\":true"), "%s", r);
  cr_expect_geq(tk_json_int(r, "events"), 2, "%s", r);
  cr_expect(strstr(r, "\"partitions\":[{\"partition\":0,"), "%s", r);
  int64_t all = tk_json_int(r, "events");
  free(r);
  /* the count is the log's offsets: an upper bound over every tenant and aggregate type
   * (README, "Replays"); the aggregates are known only once the replay reads the events */
  r = call(200, "POST", "/v1/admin/replays",
           "{\"projection\":\"order_summaries\",\"from\":\"beginning\",\"tenant\":\"default\"}");
  cr_expect_eq(tk_json_int(r, "events"), all, "%s", r);
  cr_expect(tk_json_is_null(r, "aggregates") && strstr(r, "\"tenant\":\"default\""), "%s", r);
  free(r);
  r = call(200, "POST", "/v1/admin/replays", "{\"projection\":\"user_profiles\",\"from\":\"2020-01-01T00:00:00Z\"}");
  cr_expect_geq(tk_json_int(r, "events"), 2, "%s", r);
  free(r);
  r = call(200, "POST", "/v1/admin/replays", "{\"projection\":\"user_profiles\",\"from\":\"2100-01-01T00:00:00Z\"}");
  cr_expect_eq(tk_json_int(r, "events"), 0, "nothing is at or after a future time: %s", r);
  free(r);
  free(call(400, "POST", "/v1/admin/replays", "{\"projection\":\"nope\",\"from\":\"beginning\"}"));
  free(call(400, "POST", "/v1/admin/replays", "{\"projection\":\"user_profiles\",\"from\":\"yesterday\"}"));
  free(call(400, "POST", "/v1/admin/replays",
            "{\"projection\":\"user_profiles\",\"from\":\"beginning\",\"tenant\":\"nobody\"}"));
  char *coll_after = live("user_profiles");
  char *docs_after = dump(coll_after), *colls_after = collections(), *lag_after = lag_of("user_profiles");
  cr_expect_str_eq(coll_after, coll);
  cr_expect_str_eq(docs_after, docs_before);
  cr_expect_str_eq(colls_after, colls_before);
  cr_expect_str_eq(lag_after, lag_before, "a dry run moved offsets");
  r = call(200, "GET", "/v1/admin/replays", NULL);
  cr_expect_str_eq(r, "{\"items\":[],\"nextCursor\":null}", "a dry run recorded a replay");
  free(r);
  free(a), free(b), free(coll), free(coll_after);
  free(docs_before), free(docs_after), free(colls_before), free(colls_after), free(lag_before), free(lag_after);
}

Test(control, a_replay_from_a_time_rederives_the_documents_touched_since_and_nothing_else) {
  start(NULL);
  char *a = create_user("Ann"), *b = create_user("Bob");
  free(await_user(a, "Ann"));
  free(await_user(b, "Bob"));
  nap(20); /* the events' timestamps (ms) are before T, the rename's after */
  char t[32];
  cqrs_time_now_rfc3339(t);
  nap(20);
  rename_user(b, "Bobby");
  char *b_before = await_user(b, "Bobby");
  char *a_before = user_doc(a);
  cr_assert_not_null(a_before);
  cr_assert(!strstr(b_before, "testVariant"), "%s", b_before);
  /* the fixed build of the projection */
  stop(&proj);
  proj = start_projector(&env, (const char *const[]){"PROJECTION_TEST_VARIANT=v2", NULL});
  char *coll = live("user_profiles");
  char *id = replay_start("user_profiles", t);
  char *done = await_replay(id, "completed");
  cr_expect_null(strstr(done, "\"error\":\""), "%s", done);
  char *a_after = user_doc(a), *b_after = user_doc(b);
  cr_assert_not_null(b_after);
  cr_expect_str_eq(a_after, a_before, "a document untouched since T changed");
  cr_expect(strstr(b_after, "\"testVariant\" : \"v2\""), "B was not re-derived: %s", b_after);
  cr_expect(strstr(b_after, "Bobby"), "B lost its later event: %s", b_after);
  cr_expect(strstr(b_after, "\"version\" : { \"$numberLong\" : \"2\" }"), "%s", b_after);
  char *coll_after = live("user_profiles");
  cr_expect_str_eq(coll_after, coll, "a replay from a time swapped the collection");
  char scratch[160];
  snprintf(scratch, sizeof scratch, "user_profiles__replay_%s,", id);
  char *colls = collections();
  cr_expect_null(strstr(colls, scratch), "the scratch collection stayed: %s", colls);

  /* one tenant's replay from the beginning: its database only, swapped in, every document re-derived */
  char *b2 = call(202, "POST", "/v1/admin/replays",
                  "{\"projection\":\"user_profiles\",\"from\":\"beginning\",\"tenant\":\"default\",\"dryRun\":false}");
  char *id2 = tk_json_string(b2, "replayId");
  free(b2);
  cr_assert_not_null(id2);
  b2 = await_replay(id2, "completed");
  cr_expect(strstr(b2, "\"tenant\":\"default\""), "%s", b2);
  free(b2);
  char *coll2 = live("user_profiles"), want2[160];
  snprintf(want2, sizeof want2, "user_profiles__replay_%s", id2);
  cr_expect_str_eq(coll2, want2);
  char *a_rebuilt = user_doc(a);
  cr_expect(a_rebuilt && strstr(a_rebuilt, "\"testVariant\" : \"v2\""), "A was not re-derived: %s", a_rebuilt);
  free(a_rebuilt), free(coll2), free(id2);
  free(colls), free(a), free(b), free(a_before), free(b_before), free(a_after), free(b_after), free(id), free(done);
  free(coll), free(coll_after);
}

Test(control, pause_holds_resume_completes_a_second_is_409_and_cancel_leaves_the_live_collection) {
  start(NULL);
  load_users(LOAD_EVENTS);
  char *probe = create_user("Probe");
  free(await_user(probe, "Probe"));
  int64_t docs = 0;
  for (int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS;
       cqrs_time_monotonic_ms() < deadline && (docs = count("user_profiles")) < LOAD_EVENTS + 1; nap(200)) {
  }
  cr_assert_eq(docs, LOAD_EVENTS + 1);

  /* asked for and paused while no projector runs: it starts paused, whatever its speed */
  stop(&proj);
  char *id = replay_start("user_profiles", "beginning");
  replay_act(id, "pause", 202);
  proj = start_projector(&env, NULL);
  free(await_replay(id, "paused"));
  char *r = replay_get(id);
  expect_held(id, tk_json_int(r, "applied"));
  free(r);
  /* a second replay of the projection while one is open */
  r = call(409, "POST", "/v1/admin/replays",
           "{\"projection\":\"user_profiles\",\"from\":\"beginning\",\"dryRun\":false}");
  cr_expect(strstr(r, id), "the 409 names the open replay: %s", r);
  free(r);
  replay_act(id, "resume", 202);
  r = await_replay(id, "completed");
  cr_expect_eq(tk_json_int(r, "applied"), tk_json_int(r, "total"), "%s", r);
  cr_expect_geq(tk_json_int(r, "applied"), LOAD_EVENTS, "%s", r);
  free(r);
  replay_act(id, "pause", 409); /* a completed one */
  char *coll = live("user_profiles");
  char want[160];
  snprintf(want, sizeof want, "user_profiles__replay_%s", id);
  cr_expect_str_eq(coll, want, "the replay's collection was not swapped in");
  cr_expect_eq(count(coll), LOAD_EVENTS + 1);

  /* cancel: the live collection keeps serving, the replay's is dropped */
  stop(&proj);
  char *id2 = replay_start("user_profiles", "beginning");
  replay_act(id2, "pause", 202);
  proj = start_projector(&env, NULL);
  free(await_replay(id2, "paused"));
  replay_act(id2, "cancel", 202);
  free(await_replay(id2, "cancelled"));
  replay_act(id2, "resume", 409);
  char *coll2 = live("user_profiles");
  cr_expect_str_eq(coll2, coll, "a cancelled replay swapped");
  cr_expect_eq(count(coll2), LOAD_EVENTS + 1);
  char dropped[160];
  snprintf(dropped, sizeof dropped, "user_profiles__replay_%s,", id2);
  char *colls = collections();
  cr_expect_null(strstr(colls, dropped), "the cancelled replay's collection stayed: %s", colls);
  r = call(200, "GET", "/v1/admin/replays?limit=1", NULL);
  cr_expect(strstr(r, id2) && !strstr(r, id) && strstr(r, "\"nextCursor\":\"1\""), "newest first, paged: %s", r);
  free(r);
  free(colls), free(coll), free(coll2), free(id), free(id2), free(probe);
}

/* Enough events that a replay of them runs for seconds: it can be paused
 * while it runs. It reads and writes 2,500-10,000 events/s here (FerretDB,
 * a shared 2-core machine) and is paused within about a second. */
#define RUNNING_EVENTS 20000

/* A replay paused while it runs (reported running, documents written into
 * its shadow collection): applied and the documents written hold still while
 * paused, and after resume it completes with every event. */
Test(control, a_running_replay_paused_holds_still_and_resumed_completes) {
  start((const char *const[]){"PROJECTIONS=user_profiles", NULL});
  load_users(RUNNING_EVENTS);
  int64_t t0 = cqrs_time_monotonic_ms();
  char *id = replay_start("user_profiles", "beginning"), shadow[160];
  snprintf(shadow, sizeof shadow, "user_profiles__replay_%s", id);
  bool running = false;
  for (int64_t deadline = t0 + WAIT_MS; !running && cqrs_time_monotonic_ms() < deadline;) {
    char *r = replay_get(id);
    cr_assert(!state_is(r, "completed") && !state_is(r, "failed"),
              "the replay ended before it could be paused (raise RUNNING_EVENTS): %s", r);
    running = state_is(r, "running") && count(shadow) > 0;
    free(r);
    if (!running) nap(20);
  }
  cr_assert(running, "the replay never ran");
  replay_act(id, "pause", 202);
  char *p = await_replay(id, "paused");
  int64_t held = tk_json_int(p, "applied");
  cr_assert_gt(held, 0, "paused before it applied anything: %s", p);
  free(p);
  int64_t written = count(shadow);
  cr_assert_lt(written, RUNNING_EVENTS, "paused after its last write (raise RUNNING_EVENTS)");
  expect_held(id, held);
  cr_expect_eq(count(shadow), written, "a paused replay wrote on");
  replay_act(id, "resume", 202);
  p = await_replay(id, "completed");
  cr_expect_eq(tk_json_int(p, "applied"), tk_json_int(p, "total"), "%s", p);
  cr_expect_geq(tk_json_int(p, "applied"), RUNNING_EVENTS, "%s", p);
  cr_log_info("replay of %d events, paused at %lld read and %lld written, done in %lld ms", RUNNING_EVENTS,
              (long long)held, (long long)written, (long long)(cqrs_time_monotonic_ms() - t0));
  free(p);
  char *coll = live("user_profiles");
  cr_expect_str_eq(coll, shadow, "the resumed replay's collection was not swapped in");
  cr_expect_geq(count(coll), RUNNING_EVENTS);
  free(coll), free(id);
}

/* How many lines of the projector's log hold both a and b. */
static int log_lines(const char *a, const char *b, char *last, size_t last_len) {
  char path[512];
  tk_log_path(&env, TK_PROJECTOR, path);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, a) && strstr(line, b)) {
      n++;
      if (last) snprintf(last, last_len, "%s", line);
    }
  fclose(f);
  return n;
}

/* The pid in the "instance":"<host>-<pid>" of a log line. */
static pid_t instance_pid(const char *line) {
  char *inst = tk_json_string(line, "instance");
  cr_assert_not_null(inst, "%s", line);
  pid_t pid = (pid_t)atoi(strrchr(inst, '-') + 1);
  free(inst);
  return pid;
}

/* projector-svc's log line when a replica resumes a replay (replay.c) */
#define RESUMED "replay resumes from its checkpoint"

/* The "applied" of a log line, a decimal string (-1: none). */
static int64_t line_applied(const char *line) {
  char *v = tk_json_string(line, "applied");
  int64_t n = v ? strtoll(v, NULL, 10) : -1;
  free(v);
  return n;
}

/* Two projector replicas; a replay from the beginning killed (-9, the
 * replica running it) while it runs, with events applied and more to go: the
 * other replica takes the jobs over, resumes the replay from its checkpoint
 * (its log line names the position, at or past what was reported before the
 * kill, and the reported count never goes back) and completes it once, every
 * document in the swapped-in collection. */
Test(control, a_replay_whose_projector_is_killed_is_resumed_by_the_other_replica_and_completes_once) {
  const char *const only[] = {"PROJECTIONS=user_profiles", NULL};
  admin = tk_start(&env, TK_ADMIN, NULL);
  tk_env_t env2 = env;
  env2.projector_port = tk_free_port();
  proj = start_projector(&env, only);
  proj2 = start_projector(&env2, only);
  load_users(RUNNING_EVENTS);
  int64_t t0 = cqrs_time_monotonic_ms();
  char *id = replay_start("user_profiles", "beginning");
  /* running with events applied and more to go, as its owner last reported */
  int64_t applied = 0, total = 0;
  for (int64_t deadline = t0 + WAIT_MS; applied == 0 && cqrs_time_monotonic_ms() < deadline;) {
    char *r = replay_get(id);
    cr_assert(state_is(r, "pending") || state_is(r, "running"),
              "the replay got past running before it could be killed (raise RUNNING_EVENTS): %s", r);
    if (state_is(r, "running")) applied = tk_json_int(r, "applied"), total = tk_json_int(r, "total");
    free(r);
    if (applied == 0) nap(20);
  }
  cr_assert_gt(applied, 0, "the replay never reported an event applied");
  cr_assert_lt(applied, total);
  /* the last replica to log it runs it (the owner may have changed while the second one joined) */
  char line[4096];
  int runs = log_lines("running a replay", id, line, sizeof line);
  int resumes = log_lines(RESUMED, id, NULL, 0);
  cr_assert_geq(runs, 1);
  pid_t owner = instance_pid(line);
  cr_assert(owner == proj || owner == proj2, "the owner %d is neither projector", (int)owner);
  tk_stop(owner, SIGKILL);
  if (owner == proj)
    proj = 0;
  else
    proj2 = 0;
  int64_t killed_at = cqrs_time_monotonic_ms();
  /* the other replica takes the jobs over after the session timeout and resumes from the checkpoint */
  for (int64_t deadline = killed_at + WAIT_MS;
       cqrs_time_monotonic_ms() < deadline && log_lines(RESUMED, id, line, sizeof line) <= resumes; nap(100)) {
  }
  cr_assert_eq(log_lines(RESUMED, id, line, sizeof line), resumes + 1,
               "no replica resumed the replay from its checkpoint");
  cr_expect_neq(instance_pid(line), owner, "%s", line);
  int64_t resumed_at = line_applied(line);
  cr_expect_geq(resumed_at, applied, "it resumed before what was reported applied: %s", line);
  cr_expect_lt(resumed_at, total, "nothing was left to resume: %s", line);
  cr_expect_eq(log_lines("running a replay", id, NULL, 0), runs + 1, "the replay was taken over other than once");
  /* from there to completed, the count reported never goes back */
  char *r = NULL;
  int64_t lowest = INT64_MAX;
  for (int64_t deadline = cqrs_time_monotonic_ms() + WAIT_MS; cqrs_time_monotonic_ms() < deadline; nap(100)) {
    free(r);
    r = replay_get(id);
    int64_t a = tk_json_int(r, "applied");
    if (a < lowest) lowest = a;
    if (!state_is(r, "running") && !state_is(r, "swapping")) break;
  }
  cr_assert(state_is(r, "completed"), "the resumed replay did not complete: %s", r);
  cr_expect_geq(lowest, resumed_at, "the resumed replay reported fewer applied than its checkpoint");
  cr_expect_eq(tk_json_int(r, "applied"), tk_json_int(r, "total"), "%s", r);
  cr_expect_geq(tk_json_int(r, "applied"), RUNNING_EVENTS, "%s", r);
  free(r);
  cr_expect_eq(log_lines("replay finished", id, NULL, 0), 1, "the replay finished other than once");
  char *coll = live("user_profiles");
  char want[160];
  snprintf(want, sizeof want, "user_profiles__replay_%s", id);
  cr_expect_str_eq(coll, want);
  cr_expect_eq(count(coll), RUNNING_EVENTS);
  cr_log_info("replay of %d events killed at %lld of %lld applied, resumed at %lld, done %lld ms after the kill",
              RUNNING_EVENTS, (long long)applied, (long long)total, (long long)resumed_at,
              (long long)(cqrs_time_monotonic_ms() - killed_at));
  free(coll), free(id);
}

/* ---- dead letters ---- */

typedef struct {
  const char *aggregate;
  int want;
  const char *state; /* NULL: any */
} dlq_want_t;

typedef struct {
  const char *aggregate;
  const char *state; /* NULL: any */
  int n;
  char first_id[48]; /* the first match's id */
} dlq_match_t;

static bool dlq_match(const bson_t *item, void *ctx) {
  dlq_match_t *m = ctx;
  const char *agg = item_str(item, "aggregateId"), *state = item_str(item, "state"), *id = item_str(item, "id");
  if (agg && strcmp(agg, m->aggregate) == 0 && (!m->state || (state && strcmp(state, m->state) == 0))) {
    if (m->n++ == 0) snprintf(m->first_id, sizeof m->first_id, "%s", id ? id : "");
  }
  return false;
}

/* How many items of GET /v1/admin/dlq name aggregate (in state, if given). */
static int dlq_count(const char *body, const char *aggregate, const char *state) {
  dlq_match_t m = {aggregate, state, 0, ""};
  each_item(body, dlq_match, &m);
  return m.n;
}

static bool dlq_has(const char *body, void *ctx) {
  dlq_want_t *w = ctx;
  return dlq_count(body, w->aggregate, w->state) == w->want;
}

static char *await_dlq_of(const char *projection, const char *aggregate, int want, const char *state) {
  dlq_want_t w = {aggregate, want, state};
  tk_response_t r;
  char path[128];
  snprintf(path, sizeof path, "/v1/admin/dlq?projection=%s", projection);
  bool ok = tk_await_get(env.admin_port, path, 200, dlq_has, &w, WAIT_MS, &r);
  char *out = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  cr_assert(ok, "the dead letters never held %d of %s in state %s: %s", want, aggregate, state ? state : "any", out);
  return out;
}

static char *await_dlq(const char *aggregate, int want, const char *state) {
  return await_dlq_of("user_profiles", aggregate, want, state);
}

/* The id of the first item of aggregate in state (free it). */
static char *dlq_id(const char *body, const char *aggregate, const char *state) {
  dlq_match_t m = {aggregate, state, 0, ""};
  each_item(body, dlq_match, &m);
  cr_assert_gt(m.n, 0, "no %s item of %s: %s", state, aggregate, body);
  return strdup(m.first_id);
}

Test(control, dead_letters_listed_redriven_after_the_fix_sent_back_when_failing_again_discarded_with_a_reason) {
  start((const char *const[]){"PROJECTION_TEST_REFUSE_NAME=" POISON_NAME, NULL});
  char *x = create_user(POISON_NAME);
  char *list = await_dlq(x, 1, "dead");
  char *xid = dlq_id(list, x, "dead");
  /* its coordinates: the event's own record on the events topic */
  char topic[128];
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  int32_t part = -1;
  int64_t off = -1;
  for (size_t i = 0; i < n; i++)
    if (ev[i].ce_subject && strcmp(ev[i].ce_subject, x) == 0) part = ev[i].partition, off = ev[i].offset;
  tk_records_free(ev, n);
  cr_assert_geq(part, 0);
  char path[128];
  snprintf(path, sizeof path, "/v1/admin/dlq/%s", xid);
  char *item = call(200, "GET", path, NULL);
  cr_expect_eq(tk_json_int(item, "sourcePartition"), part, "%s", item);
  cr_expect_eq(tk_json_int(item, "sourceOffset"), off, "%s", item);
  char *type = tk_json_string(item, "eventType");
  cr_expect(type && strcmp(type, cqrs_user_created_event.name) == 0, "%s", item);
  free(type);
  cr_expect(strstr(item, "refused by PROJECTION_TEST_REFUSE_NAME"), "%s", item);
  cr_expect(strstr(item, "\"headers\":{") && strstr(item, "\"payload\":{"), "%s", item);
  cr_expect(strstr(item, POISON_NAME), "the payload: %s", item);
  free(item);
  free(call(404, "GET", "/v1/admin/dlq/0-999999", NULL));

  /* a redrive that still fails: back in the dead letters with the new error, once */
  char *y = create_user(POISON_NAME);
  free(list);
  list = await_dlq(y, 1, "dead");
  char *yid = dlq_id(list, y, "dead");
  snprintf(path, sizeof path, "/v1/admin/dlq/%s/redrive", yid);
  free(call(202, "POST", path, NULL));
  free(list);
  list = await_dlq(y, 1, "redriven");
  free(list);
  list = await_dlq(y, 2, NULL);
  char *y2 = dlq_id(list, y, "dead");
  cr_expect_str_neq(y2, yid);
  free(call(409, "POST", path, NULL)); /* a redriven one is not redriven again */
  /* discard: a reason is required */
  snprintf(path, sizeof path, "/v1/admin/dlq/%s/discard", y2);
  free(call(400, "POST", path, "{}"));
  item = call(200, "POST", path, "{\"reason\":\"a test user nobody needs\"}");
  cr_expect(strstr(item, "\"state\":\"discarded\""), "%s", item);
  free(item);
  free(list);
  list = await_dlq(y, 1, "discarded");

  /* the cause fixed: the redrive applies */
  stop(&proj);
  proj = start_projector(&env, NULL);
  snprintf(path, sizeof path, "/v1/admin/dlq/%s/redrive", xid);
  free(call(202, "POST", path, NULL));
  free(await_user(x, POISON_NAME));
  free(list);
  list = await_dlq(x, 1, "redriven");
  cr_expect_eq(dlq_count(list, x, NULL), 1, "an applied redrive left a dead letter: %s", list);

  char *audit = call(200, "GET", "/v1/admin/audit", NULL);
  cr_expect(strstr(audit, "\"action\":\"dlq.discard\"") && strstr(audit, "a test user nobody needs"), "%s", audit);
  cr_expect(strstr(audit, "\"action\":\"dlq.redrive\""), "%s", audit);
  cr_expect(strstr(audit, "\"who\":\"anonymous\""), "%s", audit);
  cr_expect(strstr(audit, "\"outcome\":\"refused\",\"status\":409"), "%s", audit);
  free(audit);
  free(list), free(x), free(y), free(xid), free(yid), free(y2);
}

/* A dead letter of an event written before schema versions (a v1
 * OrderCreated: no ce_dataschema, no currency): its detail shows the payload
 * as written and the data upcast, and its redrive goes through the upcasters
 * into the current document shape. */
Test(control, a_v1_dead_letter_shows_its_upcast_data_and_its_redrive_gives_the_current_document) {
  start(NULL);
  char order[96], source[128], path[160];
  snprintf(order, sizeof order, "o-v1-dead-%s", env.prefix);
  tk_produce_raw_event(&env, "events.dlq", cqrs_order_created_event.name, "order", order, 1, NULL,
                       "{\"orderId\":\"x\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":2,"
                       "\"price\":1.5}],\"totalAmount\":3.0,\"createdAt\":\"2026-01-15T10:00:00.000Z\"}",
                       (const char *const[]){CQRS_DLQ_ERROR, "refused by the store (written by the test)",
                                             CQRS_DLQ_PROJECTION, "order_summaries", CQRS_DLQ_SOURCE_TOPIC,
                                             tk_topic(&env, "events", source), CQRS_DLQ_SOURCE_PARTITION, "0",
                                             CQRS_DLQ_SOURCE_OFFSET, "0", NULL});
  char *list = await_dlq_of("order_summaries", order, 1, "dead");
  char *id = dlq_id(list, order, "dead");
  snprintf(path, sizeof path, "/v1/admin/dlq/%s", id);
  char *item = call(200, "GET", path, NULL);
  cr_expect(strstr(item, "\"writtenSchemaVersion\":1,\"schemaVersion\":2,\"data\":{"), "%s", item);
  cr_expect(strstr(item, "\"currency\":\"USD\""), "the data upcast: %s", item);
  free(item);
  snprintf(path, sizeof path, "/v1/admin/dlq/%s/redrive", id);
  free(call(202, "POST", path, NULL));
  char *doc = await_doc("order_summaries", order, "USD");
  cr_expect(strstr(doc, "\"currency\" : \"USD\""), "the v2 document: %s", doc);
  free(doc);
  free(list);
  list = await_dlq_of("order_summaries", order, 1, "redriven");
  cr_expect_eq(dlq_count(list, order, NULL), 1, "an applied redrive left a dead letter: %s", list);
  free(list);
  free(id);
}

/* A header of record r (NULL when absent). */
static const char *header(const tk_record_t *r, const char *name) {
  for (size_t i = 0; i < r->n_headers; i++)
    if (strcmp(r->headers[i].name, name) == 0) return r->headers[i].value;
  return NULL;
}

/* UserCreated of tenant "default"'s user id with email, as command-svc
 * writes it; data is the caller's (bson_destroy it). */
static cqrs_event_t user_created_event(const char *id, const char *email, const char *name, bson_t *data) {
  cqrs_event_data_t d = {.user_created = {.user_id = (char *)id, .email = (char *)email, .name = (char *)name,
                                          .created_at = "2026-03-01T10:00:00.000Z"}};
  bson_init(data);
  cqrs_user_created_event.encode(&d, data);
  return (cqrs_event_t){.id = (char *)id, .type = (char *)cqrs_user_created_event.name, .source = "/e2e",
                        .aggregate_type = (char *)cqrs_user_created_event.aggregate_type,
                        .aggregate_id = (char *)id, .time = "2026-03-01T10:00:00.000Z",
                        .tenant = CQRS_TENANT_DEFAULT, .version = 1, .data = data};
}

/* Past its decoding and its projection, a write the store itself refuses
 * every time: FerretDB keeps an index on user_profiles' email in a
 * PostgreSQL btree, whose entries are at most 2,704 bytes ("index row size
 * ... exceeds btree version 4 maximum"), and an email of 6,000 random letters
 * does not compress under that. (command-svc never writes one: it caps
 * emails at 254; a producer of its own on the log could.) After its bounded
 * retries the event goes to the dead letters with its record's coordinates,
 * and the event behind it on its partition is applied. */
Test(control, a_write_the_store_keeps_refusing_reaches_the_dead_letters_with_its_coordinates) {
  start(NULL);
  char *first = create_user("First"); /* the tenant's collections and indexes exist */
  free(await_user(first, "First"));
  char id[96], email[6100], topic[128], dlq_topic[128];
  snprintf(id, sizeof id, "refused-%s", env.db);
  srand((unsigned)getpid());
  size_t n = 6000;
  for (size_t i = 0; i < n; i++) email[i] = (char)('a' + rand() % 26);
  snprintf(email + n, sizeof email - n, "@example.com");
  bson_t data;
  cqrs_event_t ev = user_created_event(id, email, "Refused", &data);
  tk_produce_events(&env, &ev, 1);
  bson_destroy(&data);
  /* its record, and one more event on the same partition behind it */
  tk_record_t *src = tk_event_record(&env, id, 1);
  char behind[96];
  snprintf(behind, sizeof behind, "behind-%s", env.db);
  ev = user_created_event(behind, "behind@example.com", "Behind", &data);
  tk_produce_event_on(&env, &ev, src->partition);
  bson_destroy(&data);

  char *list = await_dlq(id, 1, CQRS_DLQ_DEAD);
  char *item_id = dlq_id(list, id, CQRS_DLQ_DEAD);
  char path[128];
  snprintf(path, sizeof path, "/v1/admin/dlq/%s", item_id);
  char *item = call(200, "GET", path, NULL);
  cr_expect_eq(tk_json_int(item, "sourcePartition"), src->partition, "%s", item);
  cr_expect_eq(tk_json_int(item, "sourceOffset"), src->offset, "%s", item);
  char *error = tk_json_string(item, "error");
  cr_expect(error && strstr(error, "index row size"), "the store's own refusal: %s", error ? error : item);
  free(error);
  free(item);
  free(list);
  /* the record on events.dlq: the event unchanged, its coordinates in the headers */
  size_t nd;
  tk_record_t *dl = tk_kafka_read_all(&env, tk_topic(&env, "events.dlq", dlq_topic), &nd);
  const tk_record_t *d = NULL;
  for (size_t i = 0; i < nd; i++)
    if (dl[i].ce_subject && strcmp(dl[i].ce_subject, id) == 0) {
      cr_expect_null(d, "%s is on %s twice", id, dlq_topic);
      d = &dl[i];
    }
  cr_assert_not_null(d, "no dead letter of %s on %s", id, dlq_topic);
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", src->partition);
  snprintf(off, sizeof off, "%lld", (long long)src->offset);
  const char *h_topic = header(d, CQRS_DLQ_SOURCE_TOPIC), *h_part = header(d, CQRS_DLQ_SOURCE_PARTITION),
             *h_off = header(d, CQRS_DLQ_SOURCE_OFFSET), *h_proj = header(d, CQRS_DLQ_PROJECTION),
             *h_error = header(d, CQRS_DLQ_ERROR);
  cr_expect(h_topic && strcmp(h_topic, tk_topic(&env, "events", topic)) == 0, "%s: %s", CQRS_DLQ_SOURCE_TOPIC,
            h_topic ? h_topic : "absent");
  cr_expect(h_part && strcmp(h_part, part) == 0, "%s: %s, not %s", CQRS_DLQ_SOURCE_PARTITION,
            h_part ? h_part : "absent", part);
  cr_expect(h_off && strcmp(h_off, off) == 0, "%s: %s, not %s", CQRS_DLQ_SOURCE_OFFSET, h_off ? h_off : "absent", off);
  cr_expect(h_proj && strcmp(h_proj, "user_profiles") == 0, "%s: %s", CQRS_DLQ_PROJECTION, h_proj ? h_proj : "absent");
  cr_expect(h_error && strstr(h_error, "index row size"), "%s: %s", CQRS_DLQ_ERROR, h_error ? h_error : "absent");
  cr_expect_str_eq(d->value, src->value, "the dead letter's value is not the event's");
  cr_expect_str_eq(d->key, src->key);
  tk_records_free(dl, nd);
  tk_records_free(src, 1);
  /* the partition moved on; the refused document is not there */
  free(await_user(behind, "Behind"));
  char *doc = user_doc(id);
  cr_expect_null(doc, "the refused document is stored: %.200s", doc);
  free(doc);
  cr_expect_eq(tk_metric(env.projector_port, "dlq_events_total{projection=\"user_profiles\"}"), 1);
  free(item_id), free(first);
}

/* ---- projections ---- */

Test(control, a_paused_projection_holds_and_a_halted_one_resumes_past_its_poison_event) {
  start((const char *const[]){"POISON_POLICY=halt", "PROJECTION_TEST_REFUSE_NAME=" POISON_NAME, NULL});
  char *b = call(200, "GET", "/v1/admin/projections", NULL);
  cr_expect(strstr(b, "\"projection\":\"user_profiles\",\"state\":\"running\""), "%s", b);
  free(b);
  free(call(202, "POST", "/v1/admin/projections/user_profiles/pause", NULL));
  await_projection("user_profiles", "paused");
  char *p = create_user("WhilePaused");
  await_history(p, 1);
  char *doc = user_doc(p);
  cr_expect_null(doc, "a paused projection applied an event: %s", doc);
  free(doc);
  free(call(202, "POST", "/v1/admin/projections/user_profiles/resume", NULL));
  free(await_user(p, "WhilePaused"));
  await_projection("user_profiles", "running");

  /* halted at a poison event; resume moves past it (to the dead letters) */
  char *h = create_user(POISON_NAME);
  await_projection("user_profiles", "halted");
  b = call(200, "GET", "/v1/admin/projections", NULL);
  cr_expect(strstr(b, "refused by PROJECTION_TEST_REFUSE_NAME"), "the last error: %s", b);
  free(b);
  char *q = create_user("AfterPoison");
  await_history(q, 1);
  doc = user_doc(q);
  cr_expect_null(doc, "a halted projection applied an event: %s", doc);
  free(doc);
  free(call(202, "POST", "/v1/admin/projections/user_profiles/resume", NULL));
  free(await_user(q, "AfterPoison"));
  await_projection("user_profiles", "running");
  free(await_dlq(h, 1, "dead"));
  free(call(404, "POST", "/v1/admin/projections/nope/pause", NULL));
  char *audit = call(200, "GET", "/v1/admin/audit?limit=2", NULL);
  cr_expect(strstr(audit, "\"action\":\"projection.resume\"") && strstr(audit, "\"nextCursor\":\""), "%s", audit);
  free(audit);
  free(p), free(h), free(q);
}

/* /readyz says why it is not ready: a halted projection. */
static bool says_halted(const char *body, void *ctx) {
  (void)ctx;
  return body && strstr(body, "halted");
}

/* Halting stops the projection BEFORE the poison event: nothing from it on is
 * committed, so a projector restarted (a deploy, a crash) reads the same
 * event first and halts there again; a resume given before that start does
 * not carry over (projector-svc/control.c). Only a resume after it moves past
 * the event, which then goes to the dead letters, once. */
Test(control, a_halted_projection_stays_halted_across_a_restart_until_resumed) {
  const char *const halt[] = {"POISON_POLICY=halt", "PROJECTION_TEST_REFUSE_NAME=" POISON_NAME, NULL};
  start(halt);
  char *h = create_user(POISON_NAME);
  await_projection("user_profiles", "halted");
  /* events behind the poison on its partition (another partition's may be
   * read before it in a batch after the restart, and applied: the halt is a
   * place in one partition) */
  tk_record_t *poison = tk_event_record(&env, h, 1);
  char q[96], a[96];
  snprintf(q, sizeof q, "before-restart-%s", env.db);
  snprintf(a, sizeof a, "after-restart-%s", env.db);
  bson_t data;
  cqrs_event_t ev = user_created_event(q, "before.restart@example.com", "BeforeRestart", &data);
  tk_produce_event_on(&env, &ev, poison->partition);
  bson_destroy(&data);
  await_history(q, 1);

  stop(&proj);
  char log[512];
  proj = tk_spawn(&env, TK_PROJECTOR, projector_env(halt), log);
  tk_response_t r;
  cr_assert(tk_await_get(env.projector_port, "/readyz", 503, says_halted, NULL, WAIT_MS, &r),
            "the restarted projector is not halted (last %d %s); see %s", r.status, r.body ? r.body : "", log);
  tk_response_cleanup(&r);
  ev = user_created_event(a, "after.restart@example.com", "AfterRestart", &data);
  tk_produce_event_on(&env, &ev, poison->partition);
  bson_destroy(&data);
  await_history(a, 1); /* the restarted projector reads on (event_history is not halted) */
  const char *held[] = {h, q, a};
  for (int i = 0; i < 3; i++) {
    char *doc = user_doc(held[i]);
    cr_expect_null(doc, "the restarted projector applied %s past its poison event: %s", held[i], doc);
    free(doc);
  }
  char *list = call(200, "GET", "/v1/admin/dlq?projection=user_profiles", NULL);
  cr_expect_eq(dlq_count(list, h, NULL), 0, "a halted projection dead-lettered its poison event: %s", list);
  free(list);

  free(call(202, "POST", "/v1/admin/projections/user_profiles/resume", NULL));
  free(await_user(q, "BeforeRestart"));
  free(await_user(a, "AfterRestart"));
  list = await_dlq(h, 1, CQRS_DLQ_DEAD);
  char *hid = dlq_id(list, h, CQRS_DLQ_DEAD), path[128];
  snprintf(path, sizeof path, "/v1/admin/dlq/%s", hid);
  char *item = call(200, "GET", path, NULL);
  cr_expect_eq(tk_json_int(item, "sourcePartition"), poison->partition, "%s", item);
  cr_expect_eq(tk_json_int(item, "sourceOffset"), poison->offset, "%s", item);
  free(item), free(hid), free(list);
  cr_assert(tk_await_get(env.projector_port, "/readyz", 200, NULL, NULL, WAIT_MS, &r),
            "not ready after the resume: %d %s", r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  char *doc = user_doc(h);
  cr_expect_null(doc, "the poison event was applied: %s", doc);
  free(doc);
  tk_records_free(poison, 1);
  free(h);
}
