/* The accounting checker (accounting.h) on a test environment: reads its
 * events and command-results topics (read_committed, from the beginning) and
 * every read model of every tenant met in the log, waits for the read models
 * to catch up, checks, and reports. Every function fails the test (criterion)
 * when Kafka or the store cannot be read. */
#ifndef TK_ACCOUNTING_ENV_H
#define TK_ACCOUNTING_ENV_H

#include "accounting.h"
#include "testkit.h"

typedef struct {
  /* every command sent to env is in the list: an event without one is a
   * violation (false for tests that send commands they do not record) */
  bool all_commands_known;
  /* how long the read models may take to show every event: the check waits
   * until every expected document is stored at its version (default 60 s) */
  int catchup_ms;
  /* saga-svc ran in env: its instances (saga-state) and commands (the
   * commands topic) are read and checked too (accounting.h, "Sagas"), once
   * the sagas have settled (within catchup_ms): saga-svc's group has
   * committed past every event and result, no step waits for a result, and
   * that held across the read */
  bool sagas;
  /* TEST ONLY, to show the checker can fail: what the checker sees is
   * doctored before the check. NULL: the environment variable TK_ACCT_DOCTOR
   * (read here and nowhere else). "drop-event" (the event of the first
   * acknowledged command disappears from the log), "duplicate-event" (an
   * event is read twice), "swap-events" (two events of one aggregate trade
   * places in the log), "edit-document" (a stored document's field changes),
   * with sagas "saga-twice" (the first UserOrderRecorded is in the log a
   * second time, the user's next version, caused by another commandId: what
   * a saga step emitted again under a fresh commandId would leave) and
   * "saga-lost" (the first UserOrderRecorded disappears from the log).
   * "" or "none": nothing. */
  const char *doctor;
} tk_acct_opts_t;

/* Checks env against the commands cmds[0..n) (may be empty) into out
 * (release with tk_acct_report_cleanup). opts may be NULL (defaults:
 * all_commands_known false). */
void tk_acct_check_env(const tk_env_t *env, const tk_acct_command_t *cmds, size_t n, const tk_acct_opts_t *opts,
                       tk_acct_report_t *out);

/* Fails the test, printing the report, unless it holds no violation. */
void tk_acct_assert_clean(const tk_acct_report_t *r);

#endif
