/* The fault suite's steady mixed load: HTTP clients sending commands to
 * every command-svc instance (users, orders and customers, several
 * aggregates each; creates, then updates with expectedVersion) and a Kafka
 * producer putting commands straight on the commands topic. Every command
 * goes into a ledger (ledger.h). An HTTP client whose answer is lost (a
 * timeout, a dropped connection, a 503) retries the same command (same
 * commandId) on the next instance before it sends anything else for that
 * aggregate, as a careful client does, and skips an instance that did not
 * answer for a few seconds (a load balancer's passive health check); the
 * Kafka producer never retries (its producer is idempotent).
 *
 * Orders start the sagas: an order names a user of its client the load has
 * had acknowledged (the placement saga records it on the user), except every
 * fifth, which names no user (the saga cancels it: USER_NOT_FOUND), and every
 * other one names its client's current customer too (recorded on the
 * customer; the load suspends each customer after three email changes, and
 * the suspension saga cancels its open orders). The sagas' commands bump the
 * users', customers' and orders' versions under the load's expectedVersion:
 * the 409s that follow are answers, and the load goes on from the current
 * version. */
#ifndef FAULTS_LOAD_H
#define FAULTS_LOAD_H

#include "ledger.h"
#include "testkit.h"

#include <stdint.h>

#define LOAD_MAX_PORTS 4

typedef struct {
  int http_clients;       /* threads, each with its own aggregates */
  int slots_per_type;     /* aggregates per type per client */
  int kafka_interval_ms;  /* one Kafka-ingress command every so often; 0: none */
  int client_timeout_ms;  /* an HTTP answer slower than this is lost */
  const char *tag;        /* makes command ids and emails unique to the run */
  const char *credential; /* AUTH=on: the API key or JWT every command carries
                             (HTTP and Kafka "authorization: Bearer ..."); NULL: none */
} load_opts_t;

typedef struct load load_t;

/* Starts the load against env, HTTP to ports[0..n_ports) in turn (at most
 * LOAD_MAX_PORTS; borrowed, fixed: a restarted instance keeps its port).
 * Records into ledger (borrowed). */
load_t *load_start(const tk_env_t *env, const int *ports, int n_ports, const load_opts_t *opts, ledger_t *ledger);

/* Stops the load and joins its threads (the command in flight finishes). */
void load_stop(load_t *l);
void load_destroy(load_t *l); /* stops first; NULL is fine */

/* Acknowledged answers so far. */
size_t load_acknowledged(load_t *l);

/* True when every aggregate slot of every HTTP client has had a command
 * acknowledged that was sent at or after since_ms (monotonic ms): the whole
 * load is being served again. */
bool load_all_served_since(load_t *l, int64_t since_ms);

/* The user aggregate and version most recently acknowledged (for a read
 * back); false when none yet. id gets a copy. */
bool load_last_user(load_t *l, char id[128], int64_t *version);

/* Writes which slots have not been served since since_ms into buf, for a
 * failure message. */
void load_describe_unserved(load_t *l, int64_t since_ms, char *buf, size_t cap);

/* Monotonic milliseconds, the clock of load_all_served_since. */
int64_t load_now_ms(void);

#endif
