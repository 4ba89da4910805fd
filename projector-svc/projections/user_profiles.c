/* user_profiles: {_id, userId, email, name, createdAt, updatedAt, version}
 * from UserCreated and UserProfileUpdated.
 *
 * Two test-only settings (tests/e2e/e2e_control.c; never set in production):
 * PROJECTION_TEST_VARIANT=<v> adds "testVariant": v to each profile created,
 * so two builds of the read model differ (a replay re-derives documents with
 * the fix); PROJECTION_TEST_REFUSE_NAME=<n> refuses a profile created with
 * name n as a poison event (a cause that goes away when unset). */
#include "../projection.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TEST_VARIANT_ENV "PROJECTION_TEST_VARIANT"
#define TEST_REFUSE_ENV "PROJECTION_TEST_REFUSE_NAME"

/* The two test variables, read once (never per event); NULL when unset or empty. */
static pthread_once_t test_env_once = PTHREAD_ONCE_INIT;
static const char *test_variant, *test_refuse;

static void read_test_env(void) {
  const char *v = getenv(TEST_VARIANT_ENV), *r = getenv(TEST_REFUSE_ENV);
  test_variant = v && *v ? v : NULL;
  test_refuse = r && *r ? r : NULL;
}

static void user_created(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  const cqrs_user_created_t *c = &e->user_created;
  bson_t set;
  /* Insert once; a redelivered UserCreated finds the document and changes nothing. */
  BSON_APPEND_UTF8(&w->filter, "_id", ev->aggregate_id);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
  BSON_APPEND_UTF8(&set, "userId", ev->aggregate_id);
  BSON_APPEND_UTF8(&set, "email", c->email);
  BSON_APPEND_UTF8(&set, "name", c->name);
  BSON_APPEND_UTF8(&set, "createdAt", c->created_at);
  BSON_APPEND_UTF8(&set, "updatedAt", c->created_at);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  pthread_once(&test_env_once, read_test_env);
  if (test_variant) BSON_APPEND_UTF8(&set, "testVariant", test_variant);
  bson_append_document_end(&w->update, &set);
  w->upsert = true;
}

static void user_profile_updated(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  const cqrs_user_profile_updated_t *u = &e->user_profile_updated;
  bson_t set;
  /* Only a document older than this event moves. */
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  if (u->changes.email) BSON_APPEND_UTF8(&set, "email", u->changes.email);
  if (u->changes.name) BSON_APPEND_UTF8(&set, "name", u->changes.name);
  BSON_APPEND_UTF8(&set, "updatedAt", u->updated_at);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  bson_append_document_end(&w->update, &set);
}

/* An order recorded on the aggregate (the order placement saga's owner
 * check) changes nothing shown but the version: the document stays at the
 * aggregate's version, so a read waiting for a later one is answered. */
static void user_order_recorded(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  (void)e;
  bson_t set;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  bson_append_document_end(&w->update, &set);
}

static const cqrs_projection_handler_t handlers[] = {
    {&cqrs_user_created_event, user_created},
    {&cqrs_user_profile_updated_event, user_profile_updated},
    {&cqrs_user_order_recorded_event, user_order_recorded},
};

/* PROJECTION_TEST_REFUSE_NAME: is w the creation of a profile with that name? */
static bool refused_for_test(const cqrs_write_t *w) {
  pthread_once(&test_env_once, read_test_env);
  bson_iter_t it, name;
  const char *refuse = test_refuse;
  return refuse && w->upsert && bson_iter_init(&it, &w->update) &&
         bson_iter_find_descendant(&it, "$setOnInsert.name", &name) && BSON_ITER_HOLDS_UTF8(&name) &&
         strcmp(bson_iter_utf8(&name, NULL), refuse) == 0;
}

static bool apply(const cqrs_event_t *ev, cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  if (!cqrs_projection_dispatch(handlers, sizeof handlers / sizeof handlers[0], ev, w, skip, err)) return false;
  if (refused_for_test(w)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "refused by " TEST_REFUSE_ENV " (a test's poison)");
    return false;
  }
  return true;
}

static void indexes(bson_t *array) { cqrs_projection_index(array, 0, "email_1", "email", NULL); }

const cqrs_projection_t cqrs_user_profiles_projection = {
    .name = "user_profiles",
    .aggregate_type = "user",
    .apply = apply,
    .indexes = indexes,
    .time_travel = true, /* what asOf / atVersion reads of a user compute */
};
