/* The customer aggregate's events (cqrs/events.h): CustomerRegistered,
 * CustomerEmailUpdated and CustomerSuspended. */
#include "contract.h"

CQRS_CUSTOMER_EVENTS(CQRS_EVENT_DEFINE)
