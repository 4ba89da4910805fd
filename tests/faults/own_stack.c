/* The fault suite's own FerretDB and Kafka broker (see own_stack.h). */
#include "own_stack.h"

#include "load.h"
#include "testkit.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

void own_store_start(own_store_t *s) {
  const char *pg = getenv("FERRETDB_PG_URI"), *bin_env = getenv("FERRETDB_BIN");
  cr_assert(pg && *pg, "FERRETDB_PG_URI is not set: a scenario with a store of its own runs a FerretDB on the local "
                       "stack's PostgreSQL (make sets it; or export FERRETDB_PG_URI=postgres://postgres@127.0.0.1:5433/"
                       "ferretdb)");
  char bin[512], url[600], listen[64], state_arg[600];
  snprintf(bin, sizeof bin, "%s", bin_env && *bin_env ? bin_env : CQRS_SOURCE_DIR "/.local/bin/ferretdb");
  cr_assert(access(bin, X_OK) == 0, "%s is missing: deploy/local/stack.sh install builds it (or set FERRETDB_BIN)",
            bin);
  tk_ferretdb_url_arg(pg, url, sizeof url);
  snprintf(listen, sizeof listen, "--listen-addr=127.0.0.1:%d", s->port);
  snprintf(state_arg, sizeof state_arg, "--state-dir=%s", s->state);
  mkdir(CQRS_TEST_LOG_DIR, 0755);
  mkdir(s->state, 0755);
  s->pid = fork();
  if (s->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(bin, bin, "--handler=postgresql", url, listen, state_arg, "--telemetry=disable", "--debug-addr=-",
          "--log-level=warn", (char *)NULL);
    _exit(127);
  }
  cr_assert(s->pid > 0, "fork failed");
  for (int64_t end = load_now_ms() + 30000; load_now_ms() < end;) { /* ready when it accepts connections */
    if (tk_port_open("127.0.0.1", s->port)) return;
    cr_assert(waitpid(s->pid, NULL, WNOHANG) == 0, "the scenario's FerretDB exited; see %s", s->log);
    pause_ms(100);
  }
  cr_assert_fail("the scenario's FerretDB did not listen within 30 s; see %s", s->log);
}


#define BROKER_START_MS 180000 /* two tool JVMs and the broker's on a busy 2-core machine */

void own_broker_start(own_broker_t *b) {
  char script[600], port[16], cport[16];
  snprintf(script, sizeof script, "%s/tests/faults/own_broker.sh", CQRS_SOURCE_DIR);
  snprintf(port, sizeof port, "%d", b->port);
  snprintf(cport, sizeof cport, "%d", b->controller_port);
  mkdir(CQRS_TEST_LOG_DIR, 0755);
  b->pid = fork();
  if (b->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(script, script, b->dir, port, cport, (char *)NULL);
    _exit(127);
  }
  cr_assert(b->pid > 0, "fork failed");
  for (int64_t end = load_now_ms() + BROKER_START_MS; load_now_ms() < end;) {
    if (tk_port_open("127.0.0.1", b->port)) return;
    cr_assert(waitpid(b->pid, NULL, WNOHANG) == 0, "the scenario's broker exited; see %s", b->log);
    pause_ms(200);
  }
  cr_assert_fail("the scenario's broker did not listen within %d s; see %s", BROKER_START_MS / 1000, b->log);
}

