/* user_profiles: {_id, userId, email, name, createdAt, updatedAt, version}
 * from UserCreated and UserProfileUpdated. */
#include "../projection.h"

#include "cqrs/json.h"

#include <string.h>

static bool str(const bson_t *data, const char *key, bool required, const char **out, cqrs_error_t *err) {
  return cqrs_json_get_string(data, key, key, required, 0, out, err);
}

static bool apply(const cqrs_event_t *ev, cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  const char *email, *name, *at;
  bson_t set;
  *skip = false;
  bson_init(&w->filter);
  bson_init(&w->update);
  if (strcmp(ev->type, "UserCreated") == 0) {
    if (!str(ev->data, "email", true, &email, err) || !str(ev->data, "name", true, &name, err) ||
        !str(ev->data, "createdAt", true, &at, err))
      return false;
    /* Insert once; a redelivered UserCreated finds the document and changes nothing. */
    BSON_APPEND_UTF8(&w->filter, "_id", ev->aggregate_id);
    BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
    BSON_APPEND_UTF8(&set, "userId", ev->aggregate_id);
    BSON_APPEND_UTF8(&set, "email", email);
    BSON_APPEND_UTF8(&set, "name", name);
    BSON_APPEND_UTF8(&set, "createdAt", at);
    BSON_APPEND_UTF8(&set, "updatedAt", at);
    BSON_APPEND_INT64(&set, "version", ev->version);
    bson_append_document_end(&w->update, &set);
    w->upsert = true;
    return true;
  }
  if (strcmp(ev->type, "UserProfileUpdated") == 0) {
    bson_t changes;
    bool present;
    if (!cqrs_json_get_object(ev->data, "changes", NULL, true, &changes, &present, err) ||
        !str(&changes, "email", false, &email, err) || !str(&changes, "name", false, &name, err) ||
        !str(ev->data, "updatedAt", true, &at, err))
      return false;
    /* Only a document older than this event moves. */
    cqrs_projection_match_older(&w->filter, ev);
    BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
    if (email) BSON_APPEND_UTF8(&set, "email", email);
    if (name) BSON_APPEND_UTF8(&set, "name", name);
    BSON_APPEND_UTF8(&set, "updatedAt", at);
    BSON_APPEND_INT64(&set, "version", ev->version);
    bson_append_document_end(&w->update, &set);
    w->upsert = false;
    return true;
  }
  *skip = true;
  return true;
}

static void indexes(bson_t *array) { cqrs_projection_index(array, 0, "email_1", "email", NULL); }

const cqrs_projection_t cqrs_user_profiles_projection = {
    .name = "user_profiles",
    .aggregate_type = "user",
    .apply = apply,
    .indexes = indexes,
};
