/* The customer aggregate's events (cqrs/events.h): CustomerRegistered,
 * CustomerEmailUpdated and CustomerSuspended; and CustomerEmailUpdated v1. */
#include "contract.h"

CQRS_CUSTOMER_EVENTS(CQRS_EVENT_DEFINE)
CQRS_CUSTOMER_EVENTS_PAST(CQRS_EVENT_DEFINE)

const char *const cqrs_customer_statuses[] = {CQRS_CUSTOMER_ACTIVE, CQRS_CUSTOMER_SUSPENDED, NULL};
