/* The clients' side of the accounting: every command the fault suite's load
 * sent, with the answer it finally got, as tk_acct_command_t rows for the
 * checker (tests/support/accounting.h). Thread-safe: the load's threads
 * record into one ledger. */
#ifndef FAULTS_LEDGER_H
#define FAULTS_LEDGER_H

#include "accounting.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { LEDGER_HTTP, LEDGER_KAFKA } ledger_ingress_t;

typedef struct ledger ledger_t;

/* A ledger of the commands of tenant (copied; NULL: "default", as with AUTH=off). */
ledger_t *ledger_new(const char *tenant);
/* Its tenant (borrowed). */
const char *ledger_tenant(const ledger_t *l);
void ledger_destroy(ledger_t *l); /* NULL is fine */

/* Records a command about to be sent (json copied) and returns its row. */
size_t ledger_add(ledger_t *l, ledger_ingress_t ingress, const char *command_id, const char *json);

/* Sets row's answer from an HTTP status and body (body may be NULL). A
 * status of 0 or 5xx is an answer lost: the row stays unknown and its
 * count of lost answers grows. */
void ledger_answer(ledger_t *l, size_t row, int status, const char *body);

/* Marks a Kafka-ingress row as on the commands topic (delivery report). */
void ledger_delivered(ledger_t *l, size_t row);

/* The rows still without an answer, of ingress: *n of them (malloc'd array
 * of row numbers). */
size_t *ledger_unanswered(ledger_t *l, ledger_ingress_t ingress, size_t *n);

/* Row's command id and JSON (borrowed; valid while l lives). */
const char *ledger_command_id(ledger_t *l, size_t row);
const char *ledger_json(ledger_t *l, size_t row);

typedef struct {
  size_t sent, http, kafka;
  size_t acknowledged;  /* answered 200/201 */
  size_t answers_lost;  /* answers that never came (timeouts, drops, 503) before a retry */
  size_t retried;       /* rows whose answer came only on a retry */
  size_t unknown;       /* rows still without an answer */
} ledger_stats_t;

ledger_stats_t ledger_stats(ledger_t *l);

/* The rows for the checker: *n of them; the strings are borrowed from l.
 * Free the array with free(). Take it after the load has stopped. */
tk_acct_command_t *ledger_commands(ledger_t *l, size_t *n);

#endif
