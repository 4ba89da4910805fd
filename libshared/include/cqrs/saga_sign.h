/* How command-svc knows a command record came from saga-svc: saga-svc has no
 * tenant credential (it acts for every tenant, one saga at a time), so it
 * signs each command it emits with HMAC-SHA256 under SAGA_SIGNING_KEY, a
 * secret only saga-svc and command-svc hold. The MAC covers the tenant and
 * the whole record value, so a signature cannot be moved to another tenant or
 * another command; a replayed record is the same commandId, answered from the
 * aggregate's idempotency window or refused by its decider.
 *
 * command-svc accepts a signed record only when SAGA_SIGNING_KEY is set (off
 * by default), only for the command types sagas emit
 * (CQRS_SAGA_COMMAND_TYPES), and only for the tenant the MAC covers; it
 * never grants more than commands:write for that tenant. The key is a secret:
 * never log it. */
#ifndef CQRS_SAGA_SIGN_H
#define CQRS_SAGA_SIGN_H

#include <stdbool.h>
#include <stddef.h>

/* The Kafka headers of a signed command record. */
#define CQRS_SAGA_TENANT_HEADER "x-cqrs-saga-tenant"
#define CQRS_SAGA_SIGNATURE_HEADER "x-cqrs-saga-signature"

/* The command types sagas send (saga-svc/sagas/ emits them; the deciders of
 * command-svc handle them): the only ones a signed record may carry. */
#define CQRS_CMD_RECORD_USER_ORDER "RecordUserOrder"
#define CQRS_CMD_RECORD_CUSTOMER_ORDER "RecordCustomerOrder"
#define CQRS_CMD_UPDATE_ORDER_STATUS "UpdateOrderStatus"

/* Hex SHA-256 MAC and its NUL. */
#define CQRS_SAGA_SIGNATURE_LEN 65

/* Writes the MAC of (tenant, value[0..len)) under key as lower-case hex into
 * out. False only when OpenSSL fails. */
bool cqrs_saga_sign(const char *key, const char *tenant, const char *value, size_t len,
                    char out[CQRS_SAGA_SIGNATURE_LEN]);

/* True when signature (hex, may be NULL) is the MAC of (tenant, value) under
 * key. Constant-time in the signature. */
bool cqrs_saga_verify(const char *key, const char *tenant, const char *value, size_t len, const char *signature);

/* True when a saga may emit command_type: the only types command-svc accepts
 * from a signed record. */
bool cqrs_saga_command_allowed(const char *command_type);

#endif
