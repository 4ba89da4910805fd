/* The saga types saga-svc runs: adding one is a file under sagas/ and a line here. */
#include "../saga.h"

const cqrs_saga_t *const cqrs_sagas[] = {&cqrs_order_placement_saga, &cqrs_customer_suspension_saga,
                                         &cqrs_order_deadline_saga, NULL};
