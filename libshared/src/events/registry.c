/* Every event type of the contract (cqrs/events.h), for code that lists them
 * or finds one by its ce_type. */
#include "cqrs/events.h"

#include <string.h>

#define ROW(aggregate, ev, type_name, version, FIELDS) &cqrs_##ev##_event,
const cqrs_event_type_t *const cqrs_event_types[] = {CQRS_EVENT_TYPES(ROW) NULL};
#undef ROW

const cqrs_event_type_t *cqrs_event_type_find(const char *name) {
  for (size_t i = 0; cqrs_event_types[i]; i++)
    if (strcmp(cqrs_event_types[i]->name, name) == 0) return cqrs_event_types[i];
  return NULL;
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
