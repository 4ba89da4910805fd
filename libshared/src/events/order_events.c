/* The order aggregate's events (cqrs/events.h): OrderCreated, with its items,
 * and OrderStatusUpdated; and OrderCreated v1. */
#include "contract.h"

CQRS_EVENT_RECORD_DEFINE(order_item, CQRS_ORDER_ITEM_FIELDS)
CQRS_ORDER_EVENTS(CQRS_EVENT_DEFINE)
CQRS_ORDER_EVENTS_PAST(CQRS_EVENT_DEFINE)
