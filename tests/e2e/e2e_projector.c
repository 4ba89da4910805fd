/* End to end, projector-svc's write path on the real stack: a batch folds
 * each document's events into one write; a redelivery that interleaves
 * applied and new events still gives the fold of the log, and an older event
 * redelivered alone after a newer one changes nothing (the version guard),
 * also when two writers race on one document (the store's own guard); a
 * store that stops and comes back under load loses nothing, and query-svc
 * answers 503 (not a hang) while it is gone. The services run with AUTH=off:
 * every event is tenant "default"'s, so the documents are checked where the
 * projector writes them, in the store's database "<db>_default". */
#include "testkit.h"

#include "projection.h"

#include "cqrs/ferretdb_keyset.h"
#include "cqrs/ferretdb_pg.h"
#include "cqrs/read_model.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>

#define VISIBLE_MS 60000

static tk_env_t env;
static pid_t pids[3];

static void teardown(void) { tk_stop_all(pids); }

TestSuite(projector, .fini = teardown, .timeout = 600);

/* Sends a command and returns its answer body; asserts the status. */
#define command(want, ...) tk_command(&env, (want), __VA_ARGS__)

static char *create_user(const char *tag) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"%s.%s@example.com\",\"name\":\"v1\"}", tag,
                    env.db);
  char *id = tk_json_string(b, "aggregateId");
  cr_assert_not_null(id, "%s", b);
  free(b);
  return id;
}

/* Renames user id to "v<version>" (each rename is one event). */
static void rename_user(const char *id, int version) {
  free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"v%d\"}}",
               id, version));
}

/* A counter or gauge from a service's /metrics: name{labels} value; 0 when
 * absent (a counter not incremented yet). */
static double metric(int port, const char *series) {
  tk_response_t r;
  tk_http("GET", port, "/metrics", NULL, 0, &r);
  cr_assert_eq(r.status, 200, "/metrics answered %d", r.status);
  double v = 0;
  for (char *line = r.body; line && *line;) {
    char *nl = strchr(line, '\n');
    size_t n = strlen(series);
    if (strncmp(line, series, n) == 0 && line[n] == ' ') v = strtod(line + n + 1, NULL);
    line = nl ? nl + 1 : NULL;
  }
  tk_response_cleanup(&r);
  return v;
}

/* Waits (bounded) until metric series reaches at least want; returns its value:
 * the counters move after the store acknowledged (the offsets are committed
 * later, every CQRS_APPLY_COMMIT_INTERVAL_MS). */
static double await_metric(int port, const char *series, double want) {
  double v = 0;
  for (int i = 0; i < 600 && (v = metric(port, series)) < want; i++) usleep(50 * 1000);
  return v;
}

typedef struct {
  const char *name;
  long version;
} want_t;

static bool has_version(const char *body, void *ctx) {
  want_t *w = ctx;
  char *name = tk_json_string(body, "name");
  bool ok = tk_json_int(body, "version") == w->version && name && strcmp(name, w->name) == 0;
  free(name);
  return ok;
}

/* The store the projector writes to when a test runs its own; "" for env's. */
static char own_store_uri[256];

/* user id's document in tenant "default"'s user_profiles as JSON (free it),
 * or NULL when absent or the store does not answer. */
static char *stored_user(mongoc_client_t *client, const char *id) {
  char db[128];
  mongoc_collection_t *coll = mongoc_client_get_collection(client, tk_tenant_db(&env, "default", db), "user_profiles");
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
  const bson_t *doc;
  char *json = mongoc_cursor_next(cur, &doc) ? bson_as_relaxed_extended_json(doc, NULL) : NULL;
  mongoc_cursor_destroy(cur);
  bson_destroy(filter);
  mongoc_collection_destroy(coll);
  return json;
}

/* Waits until user id is stored at version with name "v<version>". */
static void await_user(const char *id, long version) {
  char name[32];
  snprintf(name, sizeof name, "v%ld", version);
  want_t w = {name, version};
  mongoc_init();
  mongoc_client_t *client = mongoc_client_new(own_store_uri[0] ? own_store_uri : env.mongo_uri);
  cr_assert_not_null(client);
  char *last = NULL;
  bool ok = false;
  for (int i = 0; i < VISIBLE_MS / 50 && !ok; i++) {
    bson_free(last);
    last = stored_user(client, id);
    ok = last && has_version(last, &w);
    if (!ok) usleep(50 * 1000);
  }
  cr_assert(ok, "user %s never reached version %ld as %s in the store (last: %s)", id, version, name,
            last ? last : "absent");
  bson_free(last);
  mongoc_client_destroy(client);
}

#define USER_LABELS "{projection=\"user_profiles\"}"

/* Ten events of one user, all in the log before the projector starts: they
 * arrive in one batch and reach the store as one document write. */
Test(projector, a_batch_folds_a_documents_events_into_one_write) {
  tk_env_init(&env);
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, NULL);
  char *id = create_user("fold");
  for (int v = 2; v <= 10; v++) rename_user(id, v);
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  await_user(id, 10);
  cr_assert_eq(await_metric(env.projector_port, "events_applied_total" USER_LABELS, 10), 10);
  cr_assert_eq(metric(env.projector_port, "store_documents_written_total" USER_LABELS), 1,
               "10 events of one document in one batch: one write");
  /* each event's time from its append to its document written, all of them
   * appended before the projector started */
  cr_assert_eq(metric(env.projector_port, "projector_event_delay_seconds_count" USER_LABELS), 10);
  cr_assert_gt(metric(env.projector_port, "projector_event_delay_seconds_sum" USER_LABELS), 0);
  cr_assert_eq(metric(env.projector_port, "projector_write_seconds_count" USER_LABELS), 1, "one batch written");
  free(id);
}

/* Commits offset 0 on every partition of events for the projector's group:
 * the next projector reads everything again (the group must be empty). */
static void rewind_group(const char *projection) {
  char group[256], topic[128], errstr[512];
  snprintf(group, sizeof group, "%sprojector-%s", env.prefix, projection);
  tk_topic(&env, "events", topic);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  cr_assert_eq(rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
  for (int p = 0; p < 3; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = 0;
  rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, 0);
  cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "rewinding %s: %s", group, rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

/* The store holds a user at version 5 (applied, committed); the group is
 * rewound so versions 1..5 come again, and 6..9 are new: one batch mixes
 * both. Another user is created meanwhile. The result is the fold of the log. */
Test(projector, a_redelivery_mixing_applied_and_new_events_gives_the_fold_of_the_log) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  char *id = create_user("redeliver");
  for (int v = 2; v <= 5; v++) rename_user(id, v);
  await_user(id, 5);
  tk_stop(pids[TK_PROJECTOR], SIGTERM);
  pids[TK_PROJECTOR] = 0;
  rewind_group("user_profiles");
  for (int v = 6; v <= 9; v++) rename_user(id, v);
  char *other = create_user("other");
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  await_user(id, 9);
  await_user(other, 1);
  /* all 10 events came again, and the batch did not write one per event */
  cr_assert_eq(await_metric(env.projector_port, "events_applied_total" USER_LABELS, 10), 10);
  double written = metric(env.projector_port, "store_documents_written_total" USER_LABELS);
  cr_assert(written >= 2 && written < 10, "documents written: %g", written);
  free(id);
  free(other);
}

/* The offsets are committed every CQRS_APPLY_COMMIT_INTERVAL_MS, not with each
 * write, and once more when the projector stops: stopped right after it wrote,
 * a projector started again applies only what came after. */
Test(projector, a_projector_stopped_right_after_a_write_applies_nothing_again) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  char *id = create_user("stopped");
  for (int v = 2; v <= 5; v++) rename_user(id, v);
  await_user(id, 5);
  tk_stop(pids[TK_PROJECTOR], SIGTERM);
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  char *next = create_user("next");
  await_user(next, 1);
  cr_assert_eq(await_metric(env.projector_port, "events_applied_total" USER_LABELS, 1), 1);
  cr_assert_eq(metric(env.projector_port, "events_applied_total" USER_LABELS), 1,
               "the stopped projector's last events were applied again: their offsets were not committed");
  free(id);
  free(next);
}

/* A rewound group folds old and new events together, which gives the same
 * document with or without the version guard. Here the older event comes
 * alone, after the newer one is applied: the very record of version 2
 * produced again (a producer's retry, a mirror replaying a segment). Without
 * the guard ({_id, version: {$lt: 2}}) its $set would put the name and the
 * version back to 2. */
Test(projector, an_older_event_redelivered_after_a_newer_one_changes_nothing) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  char *id = create_user("stale");
  rename_user(id, 2);
  rename_user(id, 3);
  await_user(id, 3);
  cr_assert_eq(await_metric(env.projector_port, "events_applied_total" USER_LABELS, 3), 3);
  mongoc_init();
  mongoc_client_t *client = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(client);
  char *before = stored_user(client, id);
  cr_assert_not_null(before);

  tk_record_t *v2 = tk_event_record(&env, id, 2);
  char topic[128];
  tk_kafka_reproduce(&env, tk_topic(&env, "events", topic), v2);
  tk_records_free(v2, 1);
  /* applied (the store acknowledged it) */
  cr_assert_eq(await_metric(env.projector_port, "events_applied_total" USER_LABELS, 4), 4,
               "the redelivered event was never applied");
  char *after = stored_user(client, id);
  cr_assert_str_eq(after, before, "a redelivered version 2 changed the document at version 3");
  /* and what a reader sees */
  char path[160];
  snprintf(path, sizeof path, "/v1/users/%s", id);
  tk_response_t r;
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, 200, "%s", r.body ? r.body : "");
  want_t w = {"v3", 3};
  cr_assert(has_version(r.body, &w), "a reader sees %s", r.body);
  tk_response_cleanup(&r);
  bson_free(before);
  bson_free(after);
  mongoc_client_destroy(client);
  free(id);
}

/* ---- a swap's handoff ---- */

/* A rebuild swaps while the live loop has applied past the rebuild's
 * positions: here the new collection holds a user at version 1 (as of the
 * swap's positions, just past its first event), the live loop wrote versions
 * 2 and 3 (renames) to the previous collection, and its next write, version 4
 * (an email change), is its first into the new collection. Applied there as
 * is, the document would be version 4 with the name of version 1 for good;
 * going back to the swap's positions first (cqrs/read_model.h) gives the fold
 * of the log. The projector is restarted after the swap: a first write after
 * a start goes back as one after the alias changed under a running loop
 * does, and the test need not wait out the alias's TTL. */
Test(projector, a_live_loops_first_write_into_a_swapped_collection_starts_from_the_swaps_positions) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  char *id = create_user("handoff");
  await_user(id, 1);
  char db[128];
  tk_tenant_db(&env, "default", db);
  mongoc_init();
  mongoc_client_t *client = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(client);
  /* the "rebuilt" collection: the user as of its first event */
  mongoc_collection_t *live = mongoc_client_get_collection(client, db, "user_profiles");
  mongoc_collection_t *rebuilt = mongoc_client_get_collection(client, db, "user_profiles__handoff");
  bson_t *q = BCON_NEW("_id", BCON_UTF8(id));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(live, q, NULL, NULL);
  const bson_t *doc;
  cr_assert(mongoc_cursor_next(cur, &doc), "user %s is not stored", id);
  bson_error_t e;
  cr_assert(mongoc_collection_insert_one(rebuilt, doc, NULL, NULL, &e), "%s", e.message);
  mongoc_cursor_destroy(cur);
  tk_record_t *first = tk_event_record(&env, id, 1);
  int n = first->partition + 1;
  int64_t *positions = calloc((size_t)n, sizeof *positions);
  for (int i = 0; i < n; i++) positions[i] = -2; /* the beginning: no other event in this test's log */
  positions[first->partition] = first->offset + 1;
  tk_records_free(first, 1);

  rename_user(id, 2);
  rename_user(id, 3);
  await_user(id, 3); /* in the previous collection */
  tk_stop(pids[TK_PROJECTOR], SIGTERM);
  pids[TK_PROJECTOR] = 0;
  cqrs_error_t err = {0};
  cr_assert(cqrs_read_models_swap(client, db, "user_profiles", "user_profiles__handoff", positions, n, &err), "%s",
            err.message);
  free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"email\":"
                    "\"moved.%s@example.com\"}}",
               id, env.db));
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);

  char *got = NULL;
  bool at4 = false;
  for (int i = 0; i < VISIBLE_MS / 50 && !at4; i++) {
    bson_free(got);
    got = NULL;
    cur = mongoc_collection_find_with_opts(rebuilt, q, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc)) {
      got = bson_as_relaxed_extended_json(doc, NULL);
      at4 = tk_json_int(got, "version") == 4;
    }
    mongoc_cursor_destroy(cur);
    if (!at4) usleep(50 * 1000);
  }
  cr_assert(at4, "the swapped-in collection never got version 4 of user %s: %s", id, got ? got : "absent");
  char *name = tk_json_string(got, "name"), *email = tk_json_string(got, "email");
  cr_expect_str_eq(name, "v3", "the first write into the swapped-in collection left out versions 2 and 3: %s", got);
  cr_expect(email && strncmp(email, "moved.", 6) == 0, "%s", got);
  free(name);
  free(email);
  bson_free(got);
  free(positions);
  bson_destroy(q);
  mongoc_collection_destroy(live);
  mongoc_collection_destroy(rebuilt);
  mongoc_client_destroy(client);
  free(id);
}

/* ---- two writers of one document ---- */

#define RACE_UPDATES 1000

typedef struct {
  const char *uri, *db;
  long first;
  long below; /* reads of the document below the version this writer just wrote */
  long failed;
} racer_t;

/* Guarded updates of the document "guard-race" in user_profiles, as the
 * projector makes them, versions first, first + 2, ..., each read back. */
static void *race(void *arg) {
  racer_t *r = arg;
  mongoc_client_t *c = mongoc_client_new(r->uri);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, r->db, "user_profiles");
  for (long v = r->first; v <= RACE_UPDATES; v += 2) {
    bson_t *filter = BCON_NEW("_id", "guard-race", CQRS_PROJECTION_VERSION, "{", "$lt", BCON_INT64(v), "}");
    bson_t *update = BCON_NEW("$set", "{", CQRS_PROJECTION_VERSION, BCON_INT64(v), "}");
    if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL, NULL)) r->failed++;
    bson_destroy(filter);
    bson_destroy(update);
    bson_t *q = BCON_NEW("_id", "guard-race");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, q, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, CQRS_PROJECTION_VERSION) &&
        bson_iter_as_int64(&it) < v)
      r->below++;
    mongoc_cursor_destroy(cur);
    bson_destroy(q);
  }
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(c);
  return NULL;
}

/* What the version guard promises whoever writes: a rebuild and the live loop
 * after a swap, the old and the new owner of a partition in a rebalance, a
 * zombie. On FerretDB v1 the filter and the write are two steps (without the
 * store's guard on the projector's collections, 101-160 of 2,000 reads went
 * below the writer's own version, RELIABILITY.md); on MongoDB one. */
Test(projector, two_writers_racing_on_a_read_models_document_never_take_its_version_back) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  char *id = create_user("race");
  await_user(id, 1); /* the projector has made user_profiles ready for writing */
  char db[128];
  tk_tenant_db(&env, "default", db);
  mongoc_init();
  mongoc_client_t *client = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(client);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, "user_profiles");
  bson_t *doc = BCON_NEW("_id", "guard-race", CQRS_PROJECTION_VERSION, BCON_INT64(0));
  bson_error_t e;
  cr_assert(mongoc_collection_insert_one(coll, doc, NULL, NULL, &e), "%s", e.message);
  bson_destroy(doc);

  racer_t odd = {env.mongo_uri, db, 1, 0, 0}, even = {env.mongo_uri, db, 2, 0, 0};
  pthread_t a, b;
  pthread_create(&a, NULL, race, &odd);
  pthread_create(&b, NULL, race, &even);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  cr_expect_eq(odd.failed + even.failed, 0, "%ld updates failed", odd.failed + even.failed);
  cr_expect_eq(odd.below + even.below, 0,
               "%ld of %d reads saw the document below the version its writer had just written: an older version "
               "overwrote a newer one (on FerretDB: is FERRETDB_PG_URI set for projector-svc?)",
               odd.below + even.below, RACE_UPDATES);
  bson_t *q = BCON_NEW("_id", "guard-race");
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, q, NULL, NULL);
  const bson_t *got;
  bson_iter_t it;
  cr_assert(mongoc_cursor_next(cur, &got) && bson_iter_init_find(&it, got, CQRS_PROJECTION_VERSION));
  cr_expect_eq(bson_iter_as_int64(&it), RACE_UPDATES, "the document ended at version %lld",
               (long long)bson_iter_as_int64(&it));
  mongoc_cursor_destroy(cur);
  bson_destroy(q);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(client);
  free(id);
}

/* ---- the store's query plans ---- */

/* Fills coll with n documents: unique _id and email, a userId per 10; nine
 * in ten "ACTIVE" (what a list pages through: an index is the right plan for
 * a page only with the order in it), the rest one of 50 statuses (selective
 * enough that an index is the right plan for an equality at any size). */
static void seed(mongoc_database_t *db, const char *coll_name, int n) {
  mongoc_collection_t *coll = mongoc_database_get_collection(db, coll_name);
  bson_t **docs = calloc((size_t)n, sizeof *docs);
  for (int i = 0; i < n; i++) {
    char id[32], email[64], user[32], status[32], at[32];
    snprintf(id, sizeof id, "d-%06d", i);
    snprintf(email, sizeof email, "p%06d@example.com", i);
    snprintf(user, sizeof user, "u-%05d", i / 10);
    if (i % 10 == 9)
      snprintf(status, sizeof status, "S%02d", i / 10 % 50);
    else
      snprintf(status, sizeof status, "ACTIVE");
    snprintf(at, sizeof at, "2026-03-%02dT10:00:00.000Z", 1 + i % 28);
    docs[i] = BCON_NEW("_id", BCON_UTF8(id), "email", BCON_UTF8(email), "userId", BCON_UTF8(user), "status",
                       BCON_UTF8(status), "createdAt", BCON_UTF8(at), "registrationDate", BCON_UTF8(at), "version",
                       BCON_INT64(1));
  }
  bson_error_t e;
  cr_assert(mongoc_collection_insert_many(coll, (const bson_t **)docs, (size_t)n, NULL, NULL, &e), "seeding %s: %s",
            coll_name, e.message);
  for (int i = 0; i < n; i++) bson_destroy(docs[i]);
  free(docs);
  mongoc_collection_destroy(coll);
}

/* The store's own explain of a find on filter: an index must serve it, no
 * scan of the collection. Understands FerretDB on PostgreSQL (PostgreSQL's
 * plan: "Bitmap Index Scan" / "Index Scan" vs "Seq Scan") and MongoDB
 * ("IXSCAN" vs "COLLSCAN"). */
static void assert_index_backed(mongoc_database_t *db, const char *coll, const char *field, const char *value) {
  bson_t *cmd = BCON_NEW("explain", "{", "find", BCON_UTF8(coll), "filter", "{", field, BCON_UTF8(value), "}", "}",
                         "verbosity", BCON_UTF8("queryPlanner"));
  bson_t reply;
  bson_error_t e;
  bool ok = mongoc_database_command_simple(db, cmd, NULL, &reply, &e);
  char *json = bson_as_relaxed_extended_json(&reply, NULL);
  cr_assert(ok, "explain on %s.%s: %s", coll, field, e.message);
  bool index = strstr(json, "Index Scan") || strstr(json, "IXSCAN");
  bool scan = strstr(json, "Seq Scan") || strstr(json, "COLLSCAN");
  cr_expect(index && !scan,
            "{%s: ...} on %s is not index-backed (on FerretDB: is FERRETDB_PG_URI set for projector-svc?); "
            "the store's plan: %s",
            field, coll, json);
  bson_free(json);
  bson_destroy(&reply);
  bson_destroy(cmd);
}

/* A connection to the PostgreSQL at pg and the table FerretDB keeps coll of
 * tenant "default" in (*table, free with free; its database into name). */
static PGconn *pg_table_of(const char *pg, const char *coll, char name[128], char **table) {
  cqrs_error_t err = {0};
  PGconn *c = cqrs_ferretdb_pg_connect(pg, "e2e_projector", 5000, 10000, &err);
  cr_assert_not_null(c, "%s", err.message);
  tk_tenant_db(&env, "default", name);
  cr_assert(cqrs_ferretdb_pg_table(c, name, coll, table, &err), "%s", err.message);
  return c;
}

/* The plan of one page of a keyset list: filter (JSON) on coll sorted on
 * (sort_field, _id), after a cursor when after_value is set, must be an index
 * scan that gives the order, never a scan of the list nor a sort of it.
 * On FerretDB over PostgreSQL: EXPLAIN of the very statement query-svc runs
 * (pg_lists.h: built from the projection's keyset index by
 * cqrs/ferretdb_keyset.h, in a session with its planner settings), which must
 * use the projector's cqrs_keyset_ index; the table is analysed first, as
 * autovacuum will have. On MongoDB: the find's explain, an IXSCAN and
 * no SORT stage. */
static void assert_keyset_backed(mongoc_database_t *db, const char *coll, const char *filter_json,
                                 const char *sort_field, const char *after_value, const char *after_id) {
  bson_error_t e;
  bson_t *filter = bson_new_from_json((const uint8_t *)filter_json, -1, &e);
  cr_assert_not_null(filter, "%s: %s", filter_json, e.message);
  const char *pg = getenv("FERRETDB_PG_URI");
  if (!pg || !*pg) {
    bson_t cmd = BSON_INITIALIZER, find, sort, reply;
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "explain", &find);
    BSON_APPEND_UTF8(&find, "find", coll);
    BSON_APPEND_DOCUMENT(&find, "filter", filter);
    BSON_APPEND_DOCUMENT_BEGIN(&find, "sort", &sort);
    BSON_APPEND_INT32(&sort, sort_field, 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&find, &sort);
    BSON_APPEND_INT64(&find, "limit", 51);
    bson_append_document_end(&cmd, &find);
    BSON_APPEND_UTF8(&cmd, "verbosity", "queryPlanner");
    bool ok = mongoc_database_command_simple(db, &cmd, NULL, &reply, &e);
    char *json = bson_as_relaxed_extended_json(&reply, NULL);
    cr_assert(ok, "explain on %s: %s", coll, e.message);
    cr_expect(strstr(json, "IXSCAN") && !strstr(json, "COLLSCAN") && !strstr(json, "\"SORT\""),
              "%s on %s sorted on %s is not read in index order (on FerretDB: set FERRETDB_PG_URI); the plan: %s",
              filter_json, coll, sort_field, json);
    bson_free(json);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    bson_destroy(filter);
    return;
  }
  const cqrs_projection_t *proj = cqrs_projection_find(coll);
  cr_assert_not_null(proj, "%s is not a read model", coll);
  cqrs_keyset_query_t q;
  bool matched = cqrs_projection_keyset_match(proj, filter, sort_field, &q);
  cr_assert(matched, "%s sorted on %s is none of %s's keyset lists", filter_json, sort_field, coll);
  q.limit = 51;
  q.after_value = after_value;
  q.after_id = after_id;
  char *table, name[128];
  PGconn *c = pg_table_of(pg, coll, name, &table);
  const char *params[CQRS_KEYSET_KEYS_MAX + 4];
  int n_params;
  char *sql = cqrs_keyset_select_sql(name, table, &q, params, &n_params);
  char *schema = PQescapeIdentifier(c, name, strlen(name)), *tbl = PQescapeIdentifier(c, table, strlen(table));
  char analyze[512];
  snprintf(analyze, sizeof analyze, "ANALYZE %s.%s", schema, tbl);
  PGresult *r = PQexec(c, analyze);
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", analyze, PQerrorMessage(c));
  PQclear(r);
  r = PQexec(c, CQRS_KEYSET_SESSION_SQL);
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", CQRS_KEYSET_SESSION_SQL, PQerrorMessage(c));
  PQclear(r);
  char *explain = malloc(strlen(sql) + 16);
  sprintf(explain, "EXPLAIN %s", sql);
  r = PQexecParams(c, explain, n_params, NULL, params, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", explain, PQerrorMessage(c));
  size_t cap = 1;
  for (int i = 0; i < PQntuples(r); i++) cap += strlen(PQgetvalue(r, i, 0)) + 1;
  char *plan = calloc(1, cap);
  for (int i = 0; i < PQntuples(r); i++) strcat(strcat(plan, PQgetvalue(r, i, 0)), "\n");
  cr_expect(strstr(plan, "Index Scan using cqrs_keyset_") && !strstr(plan, "Seq Scan") && !strstr(plan, "Sort"),
            "%s on %s sorted on %s is not read in the order of its keyset index (is FERRETDB_PG_URI set for "
            "projector-svc?); %s\nthe plan:\n%s",
            filter_json, coll, sort_field, sql, plan);
  free(plan);
  PQclear(r);
  free(explain);
  PQfreemem(schema);
  PQfreemem(tbl);
  free(sql);
  free(table);
  PQfinish(c);
  bson_destroy(filter);
}

/* On FerretDB over PostgreSQL, ANALYZE gathers nothing on coll's whole
 * documents and little on its indexes' expressions
 * (cqrs_ferretdb_pg_lean_analyze). */
static void assert_lean_analyze(const char *coll) {
  const char *pg = getenv("FERRETDB_PG_URI");
  if (!pg || !*pg) return; /* MongoDB: no such table */
  char *table, name[128];
  PGconn *c = pg_table_of(pg, coll, name, &table);
  const char *params[] = {name, table};
  PGresult *r = PQexecParams(c,
                             "SELECT attstattarget FROM pg_attribute WHERE attrelid = "
                             "to_regclass(format('%I.%I', $1::text, $2::text)) AND attname = '_jsonb'",
                             2, NULL, params, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  cr_assert_eq(PQntuples(r), 1, "no _jsonb column in %s.%s", name, table);
  cr_expect_str_eq(PQgetvalue(r, 0, 0), "0", "the statistics target of %s's _jsonb", coll);
  PQclear(r);
  char target[16];
  snprintf(target, sizeof target, "%d", CQRS_FERRETDB_PG_INDEX_STATISTICS);
  r = PQexecParams(c,
                   "SELECT count(*), count(*) FILTER (WHERE a.attstattarget <> $3::int) FROM pg_index i "
                   "JOIN pg_attribute a ON a.attrelid = i.indexrelid AND a.attnum > 0 "
                   "WHERE i.indrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND i.indkey[a.attnum - 1] = 0",
                   3, NULL, (const char *[]){name, table, target}, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  cr_expect_gt(atoi(PQgetvalue(r, 0, 0)), 1, "%s has no index expressions", coll);
  cr_expect_eq(atoi(PQgetvalue(r, 0, 1)), 0, "%s of %s's %s index expressions have another statistics target than %d",
               PQgetvalue(r, 0, 1), coll, PQgetvalue(r, 0, 0), CQRS_FERRETDB_PG_INDEX_STATISTICS);
  PQclear(r);
  free(table);
  PQfinish(c);
}

/* Waits until collection of db holds at least one document. */
static void await_any(mongoc_database_t *db, const char *coll_name) {
  mongoc_collection_t *coll = mongoc_database_get_collection(db, coll_name);
  bson_t empty = BSON_INITIALIZER;
  int64_t n = 0;
  for (int i = 0; i < VISIBLE_MS / 50; i++) {
    if ((n = mongoc_collection_count_documents(coll, &empty, NULL, NULL, NULL, NULL)) >= 1) break;
    usleep(50 * 1000);
  }
  cr_assert_geq(n, 1, "nothing was projected into %s", coll_name);
  mongoc_collection_destroy(coll);
}

/* The lookups behind every query of API.md and behind every projector
 * upsert use an index (a regression to collection scans fails here), with
 * ANALYZE gathering statistics on the indexes' expressions only. The
 * projector makes a tenant's collections and their indexes before its first
 * write there: one event per read model of tenant "default" makes them. */
Test(projector, the_stores_plans_for_the_read_models_lookups_use_indexes) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  char *user = create_user("plans");
  char *b = command(201,
                    "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"items\":[{\"product\":\"W\",\"quantity\":1,"
                    "\"price\":1}],\"totalAmount\":1}",
                    user);
  free(b);
  free(command(201, "{\"commandType\":\"RegisterCustomer\",\"email\":\"plans.%s@example.com\",\"name\":\"C\"}",
               env.db));
  free(user);
  mongoc_init();
  mongoc_client_t *client = mongoc_client_new(env.mongo_uri);
  cr_assert_not_null(client);
  char name[128];
  mongoc_database_t *db = mongoc_client_get_database(client, tk_tenant_db(&env, "default", name));
  static const char *const colls[] = {"user_profiles", "order_summaries", "customers"};
  for (size_t i = 0; i < 3; i++) await_any(db, colls[i]);
  for (size_t i = 0; i < 3; i++) assert_lean_analyze(colls[i]);
  for (size_t i = 0; i < 3; i++) seed(db, colls[i], 3000);
  assert_index_backed(db, "user_profiles", "_id", "d-001234");
  assert_index_backed(db, "user_profiles", "email", "p001234@example.com");
  assert_index_backed(db, "order_summaries", "_id", "d-001234");
  assert_index_backed(db, "order_summaries", "userId", "u-00123");
  assert_index_backed(db, "order_summaries", "status", "S07");
  assert_index_backed(db, "customers", "_id", "d-001234");
  assert_index_backed(db, "customers", "status", "S07");
  assert_index_backed(db, "customers", "email", "p001234@example.com");
  /* The lists of API.md, each page read in its index's order: a cost that
   * does not grow with the list (2,700 of the 3,000 are ACTIVE). */
  assert_keyset_backed(db, "order_summaries", "{\"status\": \"ACTIVE\"}", "createdAt", NULL, NULL);
  assert_keyset_backed(db, "order_summaries", "{\"status\": \"ACTIVE\"}", "createdAt", "2026-03-11T10:00:00.000Z",
                       "d-001234");
  assert_keyset_backed(db, "customers", "{\"status\": \"ACTIVE\"}", "registrationDate", NULL, NULL);
  assert_keyset_backed(db, "customers", "{\"status\": \"ACTIVE\"}", "registrationDate",
                       "2026-03-11T10:00:00.000Z", "d-001234");
  assert_keyset_backed(db, "customers", "{\"email\": {\"$gte\": \"p\", \"$lt\": \"p\xf4\x8f\xbf\xbf\"}}", "email",
                       NULL, NULL);
  assert_keyset_backed(db, "customers", "{\"email\": {\"$gte\": \"p\", \"$lt\": \"p\xf4\x8f\xbf\xbf\"}}", "email",
                       "p001234@example.com", "d-001234");
  mongoc_database_destroy(db);
  mongoc_client_destroy(client);
}

/* ---- a store outage ---- */

/* A FerretDB of this test's own on the local stack's PostgreSQL, so the test
 * can stop and restart "the store" without disturbing anyone else. */
typedef struct {
  pid_t pid;
  int port;
  char state[256];
} store_t;

static void store_start(store_t *s) {
  const char *pg = getenv("FERRETDB_PG_URI");
  cr_assert(pg && *pg,
            "FERRETDB_PG_URI is not set: this test runs a FerretDB of its own on the local stack's PostgreSQL "
            "(make test sets it; or export FERRETDB_PG_URI=postgres://postgres@127.0.0.1:5433/ferretdb)");
  char bin[512], url[600], listen[64], state_arg[300];
  snprintf(bin, sizeof bin, "%s/.local/bin/ferretdb", CQRS_SOURCE_DIR);
  cr_assert(access(bin, X_OK) == 0, "%s is missing: deploy/local/stack.sh install builds it", bin);
  tk_ferretdb_url_arg(pg, url, sizeof url);
  snprintf(listen, sizeof listen, "--listen-addr=127.0.0.1:%d", s->port);
  snprintf(state_arg, sizeof state_arg, "--state-dir=%s", s->state);
  mkdir(s->state, 0755);
  char log[512];
  snprintf(log, sizeof log, "%s/%sferretdb.log", CQRS_TEST_LOG_DIR, env.prefix);
  s->pid = fork();
  if (s->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(bin, bin, "--handler=postgresql", url, listen, state_arg, "--telemetry=disable", "--debug-addr=-",
          "--log-level=warn", (char *)NULL);
    _exit(127);
  }
  cr_assert(s->pid > 0);
  /* ready when it accepts connections */
  for (int i = 0; i < 300; i++) {
    if (tk_port_open("127.0.0.1", s->port)) return;
    cr_assert(waitpid(s->pid, NULL, WNOHANG) == 0, "the test's FerretDB exited; see %s", log);
    usleep(100 * 1000);
  }
  cr_assert_fail("the test's FerretDB did not listen within 30 s; see %s", log);
}

typedef struct {
  atomic_bool stop;
  char ids[4000][40];
  atomic_int n;
  atomic_int failed;
} load_t;

/* ~20 commands/s: new users, every third one renamed, until stop. Keeps the
 * ids of the users, to check them all afterwards. */
static void *load_main(void *arg) {
  load_t *l = arg;
  while (!atomic_load(&l->stop) && atomic_load(&l->n) < 4000) {
    int i = atomic_load(&l->n);
    char json[256];
    snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"email\":\"out%d.%s@example.com\",\"name\":\"v1\"}",
             i, env.db);
    tk_response_t r;
    tk_http("POST", env.command_port, "/v1/commands", json, strlen(json), &r);
    char *id = r.status == 201 ? tk_json_string(r.body, "aggregateId") : NULL;
    tk_response_cleanup(&r);
    if (!id) {
      atomic_fetch_add(&l->failed, 1);
      continue;
    }
    snprintf(l->ids[i], sizeof l->ids[i], "%s", id);
    free(id);
    if (i % 3 == 0) {
      snprintf(json, sizeof json,
               "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"v2\"}}",
               l->ids[i]);
      tk_http("POST", env.command_port, "/v1/commands", json, strlen(json), &r);
      if (r.status != 201) atomic_fetch_add(&l->failed, 1);
      tk_response_cleanup(&r);
    }
    atomic_fetch_add(&l->n, 1);
    usleep(50 * 1000); /* pacing the load, not waiting for a condition */
  }
  return NULL;
}

static bool is_status(int port, const char *path, int want) {
  tk_response_t r;
  tk_http("GET", port, path, NULL, 0, &r);
  bool ok = r.status == want;
  tk_response_cleanup(&r);
  return ok;
}

Test(projector, a_store_outage_under_load_loses_nothing_and_queries_answer_503_meanwhile) {
  tk_env_init(&env);
  store_t store = {.port = tk_free_port()};
  snprintf(store.state, sizeof store.state, "%s/%sferretdb-state", CQRS_TEST_LOG_DIR, env.prefix);
  mkdir(CQRS_TEST_LOG_DIR, 0755);
  store_start(&store);
  char uri[300];
  snprintf(own_store_uri, sizeof own_store_uri, "mongodb://127.0.0.1:%d", store.port);
  snprintf(uri, sizeof uri, "MONGO_URI=%s", own_store_uri);
  const char *extra[] = {uri, NULL};
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, extra);
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, extra);
  static load_t load;
  memset(&load, 0, sizeof load);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, load_main, &load), 0);
  /* some users visible before the outage */
  while (atomic_load(&load.n) < 20) usleep(20 * 1000);
  await_user(load.ids[1], 1);

  tk_stop(store.pid, SIGKILL); /* the store is gone, as after a crash */
  /* the projector notices and retries (metric), query-svc answers 503 and is not ready */
  double retries = await_metric(env.projector_port, "store_write_retries_total" USER_LABELS, 1);
  cr_assert_geq(retries, 1, "the projector never retried a write while the store was down");
  char path[128];
  snprintf(path, sizeof path, "/v1/users/%s", load.ids[1]);
  tk_response_t r;
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, 503, "a read while the store is down answered %d: %s", r.status, r.body ? r.body : "");
  cr_assert(strstr(r.body, "store"), "the 503 says what is wrong: %s", r.body);
  tk_response_cleanup(&r);
  cr_assert(is_status(env.query_port, "/readyz", 503), "/readyz while the store is down");
  cr_assert(is_status(env.projector_port, "/readyz", 503), "projector /readyz while the store is down");

  store_start(&store); /* back on the same port, same PostgreSQL: the data is still there */
  int before_stop = atomic_load(&load.n);
  while (atomic_load(&load.n) < before_stop + 20) usleep(20 * 1000); /* load goes on after the return */
  atomic_store(&load.stop, true);
  pthread_join(t, NULL);
  cr_assert_eq(atomic_load(&load.failed), 0, "commands failed: the command side does not need the store");
  int n = atomic_load(&load.n);
  /* nothing lost: every user, at its last version */
  for (int i = 0; i < n; i++) await_user(load.ids[i], i % 3 == 0 ? 2 : 1);
  cr_assert(is_status(env.query_port, "/readyz", 200));
  tk_stop_all(pids);
  tk_stop(store.pid, SIGTERM);
  own_store_uri[0] = '\0';
}
