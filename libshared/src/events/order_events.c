/* The order aggregate's events (cqrs/events.h): OrderCreated, with its items,
 * and OrderStatusUpdated; and OrderCreated v1. */
#include "contract.h"

CQRS_EVENT_RECORD_DEFINE(order_item, CQRS_ORDER_ITEM_FIELDS)
CQRS_ORDER_EVENTS(CQRS_EVENT_DEFINE)
CQRS_ORDER_EVENTS_PAST(CQRS_EVENT_DEFINE)

const char *const cqrs_order_statuses[] = {CQRS_ORDER_CREATED,   CQRS_ORDER_PROCESSING, CQRS_ORDER_SHIPPED,
                                           CQRS_ORDER_DELIVERED, CQRS_ORDER_CANCELLED,  NULL};
