/* The command loop: a member of the command-svc consumer group on `commands`.
 * An instance runs COMMAND_LANES of them ("lanes"), each its own member with
 * its own transactional producer and thread, so the transactions of
 * different partitions overlap instead of queueing behind one another
 * (README, "Why lanes").
 * For the partitions it owns it is the only writer: per batch, ONE Kafka
 * transaction carries the events, the new aggregate states, the results and
 * the consumed offsets (send_offsets_to_transaction with the group metadata,
 * so an instance that lost its partitions is fenced and cannot commit).
 * On assignment it restores the partitions' aggregates from aggregate-state;
 * on revocation it drops them. Runs on its own thread.
 *
 * Kafka ingress is authenticated like HTTP: each command record carries its
 * credential in the Kafka header "authorization" ("Bearer <credential>", the
 * value of the HTTP header). The loop verifies it (cqrs_auth_verify, cached)
 * and requires the scope commands:write; the record's tenant is the
 * credential's, never one named in the command ("tenantId" naming another
 * tenant: 403). A missing or invalid credential gives a 401 result keyed
 * "/<commandId>", a missing scope a 403 result keyed "<tenant>/<commandId>";
 * nothing is appended and the batch goes on. With AUTH=off every record is
 * tenant "default"'s. The header's value is never logged. */
#ifndef CQRS_COMMAND_LOOP_H
#define CQRS_COMMAND_LOOP_H

#include "cqrs/auth.h"
#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"
#include "cqrs/ratelimit.h"

#include <librdkafka/rdkafka.h>

typedef struct cqrs_command_loop cqrs_command_loop_t;

/* Creates lane number lane of an instance: the consumer and the
 * transactional producer (transactional.id = prefix + "command-svc-" +
 * instance_id + "-" + lane) and initialises transactions. NULL with err when
 * Kafka is unusable. cfg, log, metrics, auth and limits are borrowed (auth
 * checks each record's credential; limits, the instance's per-tenant command
 * rate shared by its lanes and its HTTP gate, takes a token for each command
 * a credential sent, saga-svc's not, when AUTH is on; NULL: no limit); they
 * must outlive the loop.
 * Test hook: COMMAND_TEST_ABORT_TXN="<lane>:<n>" makes that lane abort its
 * n-th transaction after producing all of it and waiting until the broker
 * has it (as when the broker refuses the commit); the batch is then
 * consumed and decided again. COMMAND_TEST_HOLD_TXN="<lane>:<n>:<ms>" holds
 * that lane's n-th transaction open, all of it produced, for ms before the
 * commit (a slow commit), "<lane>:<n>:stop" stops the whole process there
 * with SIGSTOP until SIGCONT (a zombie with a transaction open), and
 * "<lane>:<n>:stop-before" stops it before that transaction begins, its
 * batch consumed (a zombie between batches). */
cqrs_command_loop_t *cqrs_command_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                           cqrs_metrics_t *metrics, cqrs_auth_t *auth, cqrs_ratelimit_t *limits,
                                           const char *instance_id, int lane, cqrs_error_t *err);

/* Starts the loop thread. False with err when it cannot be started. */
bool cqrs_command_loop_start(cqrs_command_loop_t *loop, cqrs_error_t *err);

/* Finishes the batch in hand (commits or aborts it) and joins the thread;
 * the member stays in the group until destroy, so stop every lane of an
 * instance before destroying any (else the others take over the first's
 * partitions, restoring them, only to be stopped). Safe to call twice. */
void cqrs_command_loop_stop(cqrs_command_loop_t *loop);

/* True when the loop hit a fatal error (fenced by a newer member of the
 * group, a transaction in an unknown state, a failed restore): it logged it,
 * put it in err (may be NULL) and its thread ended; nothing more is appended.
 * The process must then stop and exit non-zero so it is restarted clean (main
 * watches this through cqrs_service_set_failed). Any thread. */
bool cqrs_command_loop_failed(cqrs_command_loop_t *loop, cqrs_error_t *err);

/* True once the loop joined its consumer group, while Kafka answers and the
 * loop has not failed. */
bool cqrs_command_loop_ready(cqrs_command_loop_t *loop, cqrs_error_t *err);

/* Stops (if needed), leaves the group and frees. NULL is fine. */
void cqrs_command_loop_destroy(cqrs_command_loop_t *loop);

#endif
