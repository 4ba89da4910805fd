/* Every event type of the contract (cqrs/events.h), for code that lists them
 * or finds one by its ce_type and schema version. */
#include "cqrs/events.h"

#include <string.h>

#define ROW(aggregate, ev, type_name, version, FIELDS) &cqrs_##ev##_event,
const cqrs_event_type_t *const cqrs_event_types[] = {CQRS_EVENT_TYPES(ROW) NULL};
/* The past versions first: each type's are listed in ascending order there,
 * and its current version is the highest. */
const cqrs_event_type_t *const cqrs_event_versions[] = {CQRS_EVENT_PAST_VERSIONS(ROW) CQRS_EVENT_TYPES(ROW) NULL};
#undef ROW

const cqrs_event_type_t *cqrs_event_type_find(const char *name) {
  for (size_t i = 0; cqrs_event_types[i]; i++)
    if (strcmp(cqrs_event_types[i]->name, name) == 0) return cqrs_event_types[i];
  return NULL;
}

const cqrs_event_type_t *cqrs_event_type_find_version(const char *name, int version) {
  for (size_t i = 0; cqrs_event_versions[i]; i++)
    if (cqrs_event_versions[i]->version == version && strcmp(cqrs_event_versions[i]->name, name) == 0)
      return cqrs_event_versions[i];
  return NULL;
}

bool cqrs_event_validate(const cqrs_event_type_t *type, const bson_t *data, cqrs_error_t *err) {
  cqrs_event_data_t scratch; /* what decode fills borrows from data: nothing to free */
  return type->decode(data, &scratch, err);
}

const char *cqrs_field_type_json(cqrs_field_type_t type) {
  switch (type) {
  case CQRS_FIELD_STRING: return "string";
  case CQRS_FIELD_NUMBER: return "number";
  case CQRS_FIELD_INTEGER: return "integer";
  case CQRS_FIELD_OBJECT: return "object";
  case CQRS_FIELD_ARRAY: return "array";
  }
  return "string"; /* not reached: every type is named above */
}
