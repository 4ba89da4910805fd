/* The commands and values the sagas send: one definition each. */
#ifndef CQRS_SAGA_ORDER_COMMANDS_H
#define CQRS_SAGA_ORDER_COMMANDS_H

#include "cqrs/events.h"    /* the status values: CQRS_ORDER_CANCELLED */
#include "cqrs/saga_sign.h" /* the command types: CQRS_CMD_* */

/* Why a saga cancelled an order (the order's cancellationReason). */
#define CQRS_REASON_USER_NOT_FOUND "USER_NOT_FOUND"
#define CQRS_REASON_CUSTOMER_NOT_ACTIVE "CUSTOMER_NOT_ACTIVE"
#define CQRS_REASON_CUSTOMER_SUSPENDED "CUSTOMER_SUSPENDED"
#define CQRS_REASON_PROCESSING_TIMEOUT "PROCESSING_TIMEOUT"

#endif
