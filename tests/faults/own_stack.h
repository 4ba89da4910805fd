/* The fault suite's own infrastructure: a FerretDB and a Kafka broker a
 * scenario starts for itself, so it can stop and start them without
 * touching the local stack every test on the machine shares. Each function
 * fails the test (criterion) when it cannot do its work. */
#ifndef FAULTS_OWN_STACK_H
#define FAULTS_OWN_STACK_H

#include <sys/types.h>

/* A FerretDB on the local stack's PostgreSQL (FERRETDB_PG_URI). The binary:
 * FERRETDB_BIN, else <repo>/.local/bin/ferretdb (deploy/local/stack.sh
 * install builds it). */
typedef struct {
  pid_t pid;
  int port; /* set before the first start; kept across restarts */
  char state[512], log[512];
} own_store_t;

/* Starts s on s->port and waits (30 s) until it accepts connections. The
 * process dies with the test's. */
void own_store_start(own_store_t *s);

/* A Kafka broker (tests/faults/own_broker.sh: a single KRaft node like the
 * local stack's, on other ports, its data under dir). */
typedef struct {
  pid_t pid;
  int port, controller_port; /* set before the first start; kept across restarts */
  char dir[512], log[512];
} own_broker_t;

/* Starts b (formatting dir the first time) and waits (180 s) until it
 * listens. The process dies with the test's. */
void own_broker_start(own_broker_t *b);

#endif
