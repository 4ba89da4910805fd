/* The read models projector-svc maintains. */
#include "../projection.h"

#include <string.h>

const cqrs_projection_t *const cqrs_projections[] = {&cqrs_user_profiles_projection, &cqrs_order_summaries_projection,
                                                     &cqrs_customers_projection, NULL};

const cqrs_projection_t *cqrs_projection_find(const char *name) {
  for (size_t i = 0; cqrs_projections[i]; i++)
    if (strcmp(cqrs_projections[i]->name, name) == 0) return cqrs_projections[i];
  return NULL;
}

void cqrs_write_cleanup(cqrs_write_t *w) {
  bson_destroy(&w->filter);
  bson_destroy(&w->update);
}
