/* The fault-injection suite: a steady mixed load (load.h) on two command-svc
 * instances, a projector and a query-svc, one fault at a time, then the
 * exactly-once accounting (tests/support/accounting.h) over everything the
 * clients were told. Each scenario:
 *
 *   1. start the services (a fresh topic prefix and database);
 *   2. run the load until 40 commands are acknowledged (FAULTS_LONG: 300
 *      and 30 s);
 *   3. inject the fault (and repair it: restart, SIGCONT, ...);
 *   4. time to recover = from the fault until every aggregate the load works
 *      on has had a command acknowledged that was sent after the fault, and
 *      query-svc shows the newest acknowledged user at its version;
 *   5. run on as long again, stop the load;
 *   6. retry every command whose answer was lost (same commandId) until it
 *      has one, collect the Kafka-ingress commands' results;
 *   7. check: zero violations, every command accounted for; append the row
 *      to <test-logs>/faults-results.md.
 *
 * saga-svc runs in every scenario: the load's orders start the sagas, step 4
 * waits for a saga started after the fault to finish too, and step 7 checks
 * the sagas (accounting.h, "Sagas"). The admin-svc scenario runs with
 * AUTH=on: a tenant and an API key made through admin-svc, the load
 * authenticated with it, saga-svc signing its commands (SAGA_SIGNING_KEY).
 *
 * Short version (ctest, in make test): SIGKILL command-svc, the SIGSTOP
 * zombie and SIGKILL saga-svc. FAULTS_LONG=1 (make test-faults): every scenario, a longer load;
 * the store and broker scenarios stop a FerretDB (on the local stack's
 * PostgreSQL) and a Kafka broker of their own, never the ones every test on
 * the machine shares; FAULTS_PRIVATE_STORE=1 gives every scenario its own
 * FerretDB. */
#include "accounting_env.h"
#include "ledger.h"
#include "load.h"
#include "own_stack.h"
#include "testkit.h"
#include "tk_auth.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* command-svc's session.timeout.ms (command_loop.c): a frozen instance's
 * partitions move after it; the zombie stays frozen longer. */
#define SESSION_TIMEOUT_MS 10000
#define FREEZE_MIN_MS (SESSION_TIMEOUT_MS + 2000)
#define RECOVER_MS 90000  /* a scenario that does not recover within this fails */
#define RESOLVE_MS 90000  /* lost answers retried / Kafka results awaited within this */
#define ZOMBIE_EXIT_MS 15000 /* a woken zombie that is fenced exits within this */
#define CLIENT_TIMEOUT_MS 8000 /* > COMMAND_TIMEOUT_MS (5 s): a slow answer is still an answer */
#define STORE_DOWN_MIN_MS 5000  /* the store outage lasts at least this */
#define BROKER_DOWN_MIN_MS 5000 /* and the broker's */
#define LONG_PHASE_MS 30000     /* FAULTS_LONG: the load runs this long before the fault and after recovery */
#define ADMIN_DOWN_MIN_MS 5000  /* admin-svc stays down at least this */
#define LOAD_TENANT "load"      /* AUTH=on: the load's tenant, made through admin-svc */
#define SAGA_KEY "faults-saga-signing-key-0123456789abcdef" /* AUTH=on: SAGA_SIGNING_KEY, >= 32 bytes */

static bool long_run(void) {
  const char *v = getenv("FAULTS_LONG");
  return v && *v && strcmp(v, "0") != 0;
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The services of one scenario. command[0] answers on env.command_port,
 * command[1] on env_b.command_port (env_b: env with that port). */
typedef struct {
  tk_env_t env, env_b, env_saga_b; /* env_saga_b: env with another saga-svc port */
  pid_t command[2], projector, query, saga, admin; /* admin: AUTH=on only */
  pid_t saga_b;     /* a second saga-svc (stack_opts_t.two_sagas), else 0 */
  int ports[2];
  bool frozen;      /* command[0] is SIGSTOPped */
  bool saga_frozen; /* saga is SIGSTOPped */
  own_store_t store; /* pid 0: the shared store */
  own_broker_t broker; /* pid 0: the shared broker */
  char tag[64];    /* the topic prefix without its dot: makes ids unique to the scenario */
  /* AUTH=on: the JWKS, the services' settings, the platform administrator's
   * token, and the load's tenant and API key (issued by admin-svc) */
  tk_auth_t *auth;
  const char *extra[TK_AUTH_ENV_MAX]; /* the services' extra settings; NULL-terminated */
  char *platform_token;
  char key_id[64], key[256], auth_header[512]; /* "" with AUTH=off */
  const char *tenant; /* the load's: LOAD_TENANT, or NULL ("default") */
} services_t;

static services_t st;

/* FAULTS_PRIVATE_STORE=1: every scenario on a FerretDB of its own. */
static bool private_store_wanted(void) {
  const char *v = getenv("FAULTS_PRIVATE_STORE");
  return v && strcmp(v, "1") == 0;
}

/* What a scenario runs on besides the default. */
typedef struct {
  bool own_store, own_broker;
  bool auth;      /* AUTH=on, with admin-svc */
  bool two_sagas; /* a second saga-svc instance, sharing the partitions */
} stack_opts_t;

static const char *const *extra(void) { return st.auth ? st.extra : NULL; }

/* One request to admin-svc as the platform administrator; fails the test
 * unless it answers want. Returns the body (free it). */
static char *admin_call(int want, const char *method, const char *path, const char *body) {
  tk_response_t r;
  tk_auth_http(method, st.env.admin_port, path, st.platform_token, NULL, body, &r);
  cr_assert_eq(r.status, want, "admin-svc: %s %s answered %d, not %d: %s", method, path, r.status, want,
               r.body ? r.body : "");
  char *out = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  return out;
}

/* An API key of the load's tenant, issued by admin-svc: its id into key_id
 * (may be NULL), the key returned (free it). */
static char *issue_key(char key_id[64]) {
  char *b = admin_call(201, "POST", "/v1/admin/tenants/" LOAD_TENANT "/keys",
                       "{\"scopes\":[\"commands:write\",\"queries:read\"]}");
  char *key = tk_json_string(b, "key"), *id = tk_json_string(b, "keyId");
  cr_assert(key && id, "no key in %s", b);
  if (key_id) snprintf(key_id, 64, "%s", id);
  tk_auth_remember(st.auth, key);
  free(id);
  free(b);
  return key;
}

/* AUTH=on: admin-svc first, then the load's tenant and key through it. */
static void auth_start(void) {
  st.auth = tk_auth_new(&st.env);
  static const char *const more[] = {"SAGA_SIGNING_KEY=" SAGA_KEY, NULL};
  tk_auth_env(st.auth, more, st.extra);
  st.admin = tk_start(&st.env, TK_ADMIN, st.extra);
  st.platform_token = tk_auth_token(st.auth, NULL, "platform:admin", 3600);
  free(admin_call(201, "POST", "/v1/admin/tenants", "{\"tenantId\":\"" LOAD_TENANT "\"}"));
  char *key = issue_key(st.key_id);
  snprintf(st.key, sizeof st.key, "%s", key);
  snprintf(st.auth_header, sizeof st.auth_header, "Authorization: Bearer %s\r\n", key);
  free(key);
  st.tenant = LOAD_TENANT;
}

static void stack_start_with(stack_opts_t o) {
  bool own_store = o.own_store, own_broker = o.own_broker;
  memset(&st, 0, sizeof st);
  tk_env_init(&st.env);
  snprintf(st.tag, sizeof st.tag, "%.*s", (int)strlen(st.env.prefix) - 1, st.env.prefix); /* without the dot */
  if (own_broker) {
    st.broker.port = tk_free_port();
    st.broker.controller_port = tk_free_port();
    snprintf(st.broker.dir, sizeof st.broker.dir, "%s/%skafka", CQRS_TEST_LOG_DIR, st.env.prefix);
    snprintf(st.broker.log, sizeof st.broker.log, "%s/%skafka.log", CQRS_TEST_LOG_DIR, st.env.prefix);
    own_broker_start(&st.broker);
    snprintf(st.env.brokers, sizeof st.env.brokers, "127.0.0.1:%d", st.broker.port);
  }
  if (own_store || private_store_wanted()) {
    st.store.port = tk_free_port();
    snprintf(st.store.state, sizeof st.store.state, "%s/%sferretdb-state", CQRS_TEST_LOG_DIR, st.env.prefix);
    snprintf(st.store.log, sizeof st.store.log, "%s/%sferretdb.log", CQRS_TEST_LOG_DIR, st.env.prefix);
    own_store_start(&st.store);
    snprintf(st.env.mongo_uri, sizeof st.env.mongo_uri, "mongodb://127.0.0.1:%d", st.store.port);
  }
  st.env_b = st.env;
  st.env_b.command_port = tk_free_port();
  st.ports[0] = st.env.command_port;
  st.ports[1] = st.env_b.command_port;
  if (o.auth) auth_start();
  char logs[5][512];
  st.command[0] = tk_spawn(&st.env, TK_COMMAND, extra(), logs[0]);
  st.command[1] = tk_spawn(&st.env_b, TK_COMMAND, extra(), logs[1]);
  st.projector = tk_spawn(&st.env, TK_PROJECTOR, extra(), logs[2]);
  st.query = tk_spawn(&st.env, TK_QUERY, extra(), logs[3]);
  st.saga = tk_spawn(&st.env, TK_SAGA, extra(), logs[4]);
  tk_await_ready(&st.env, TK_COMMAND, st.command[0], logs[0]);
  tk_await_ready(&st.env_b, TK_COMMAND, st.command[1], logs[1]);
  tk_await_ready(&st.env, TK_PROJECTOR, st.projector, logs[2]);
  tk_await_ready(&st.env, TK_QUERY, st.query, logs[3]);
  tk_await_ready(&st.env, TK_SAGA, st.saga, logs[4]);
  if (o.two_sagas) {
    st.env_saga_b = st.env;
    st.env_saga_b.saga_port = tk_free_port();
    st.saga_b = tk_start(&st.env_saga_b, TK_SAGA, extra());
  }
}

static void stack_start(void) { stack_start_with((stack_opts_t){0}); }

static void stack_stop(void) {
  if (st.frozen && st.command[0] > 0) kill(st.command[0], SIGCONT);
  if (st.saga_frozen && st.saga > 0) kill(st.saga, SIGCONT);
  pid_t *all[] = {&st.command[0], &st.command[1], &st.projector, &st.query, &st.saga, &st.saga_b, &st.admin};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (*all[i] > 0) tk_stop(*all[i], SIGTERM), *all[i] = 0;
  if (st.store.pid > 0) tk_stop(st.store.pid, SIGTERM), st.store.pid = 0;
  if (st.broker.pid > 0) tk_stop(st.broker.pid, SIGTERM), st.broker.pid = 0;
  free(st.platform_token);
  st.platform_token = NULL;
  tk_auth_destroy(st.auth);
  st.auth = NULL;
}

/* ---- the faults ---- */

typedef struct {
  ledger_t *ledger; /* the scenario's: a fault that sends commands of its own records them here */
  int64_t fault_ms; /* when the fault hit: recovery is timed from here */
  char note[512];   /* what happened, for the results table */
} fault_run_t;

static void kill_command_svc(load_t *load, fault_run_t *run) {
  (void)load;
  run->fault_ms = load_now_ms();
  tk_stop(st.command[0], SIGKILL);
  st.command[0] = tk_start(&st.env, TK_COMMAND, extra());
  snprintf(run->note, sizeof run->note, "one of two instances killed, restarted at once (ready after %lld ms)",
           (long long)(load_now_ms() - run->fault_ms));
}

static void kill_projector_svc(load_t *load, fault_run_t *run) {
  (void)load;
  run->fault_ms = load_now_ms();
  tk_stop(st.projector, SIGKILL);
  st.projector = tk_start(&st.env, TK_PROJECTOR, extra());
  snprintf(run->note, sizeof run->note, "killed, restarted at once (ready after %lld ms)",
           (long long)(load_now_ms() - run->fault_ms));
}

static void kill_query_svc(load_t *load, fault_run_t *run) {
  (void)load;
  run->fault_ms = load_now_ms();
  tk_stop(st.query, SIGKILL);
  st.query = tk_start(&st.env, TK_QUERY, extra());
  snprintf(run->note, sizeof run->note, "killed, restarted at once (ready after %lld ms)",
           (long long)(load_now_ms() - run->fault_ms));
}

/* saga-svc (one instance) killed mid-stream and restarted at once: its
 * sagas resume from saga-state, its open transaction is aborted by the new
 * process (same transactional.id), its group moves once the dead member's
 * session expires. */
/* The "sagas restored" lines of saga-svc's log (it outlives restarts): how
 * many, and the instances the newest counts (*n; -1 without one). */
static int restores_logged(long *n) {
  char path[512], line[4096];
  FILE *f = fopen(tk_log_path(&st.env, TK_SAGA, path), "r");
  int lines = 0;
  *n = -1;
  while (f && fgets(line, sizeof line, f)) {
    const char *at = strstr(line, "sagas restored");
    if (at && (at = strstr(at, "\"sagas\":\""))) *n = strtol(at + strlen("\"sagas\":\""), NULL, 10), lines++;
  }
  if (f) fclose(f);
  return lines;
}

static void kill_saga_svc(load_t *load, fault_run_t *run) {
  (void)load;
  long restored;
  int before = restores_logged(&restored);
  run->fault_ms = load_now_ms();
  tk_stop(st.saga, SIGKILL);
  st.saga = tk_start(&st.env, TK_SAGA, extra());
  int64_t ready = load_now_ms() - run->fault_ms;
  while (restores_logged(&restored) == before && load_now_ms() - run->fault_ms < RECOVER_MS) pause_ms(50);
  snprintf(run->note, sizeof run->note, "killed, restarted at once (ready after %lld ms, %ld sagas restored from saga-state)",
           (long long)ready, restored);
}

/* A command through command-svc with the load's credential, ledgered, sent
 * again (same commandId; either instance) until it is answered 2xx within
 * the deadline; 401 too, as a key just issued reaches command-svc through
 * the control topic. Returns the body (free it). */
static char *command_until_accepted(ledger_t *ledger, const char *cmd, const char *json, const char *header,
                                    int64_t deadline) {
  size_t row = ledger_add(ledger, LEDGER_HTTP, cmd, json);
  for (unsigned turn = 0;; turn++) {
    tk_response_t r;
    tk_http_timeout("POST", st.ports[turn % 2], "/v1/commands", header, json, strlen(json), CLIENT_TIMEOUT_MS, &r);
    ledger_answer(ledger, row, r.status, r.body);
    if (r.status == 200 || r.status == 201) {
      char *body = strdup(r.body);
      tk_response_cleanup(&r);
      return body;
    }
    cr_assert(r.status == 0 || r.status == 401 || r.status >= 500, "%s answered %d: %s", json, r.status,
              r.body ? r.body : "");
    cr_assert(load_now_ms() < deadline, "%s not accepted within its deadline (last %d %s)", json, r.status,
              r.body ? r.body : "");
    tk_response_cleanup(&r);
    pause_ms(100);
  }
}

/* admin-svc (AUTH=on) killed, kept down ADMIN_DOWN_MIN_MS while the load
 * goes on with its API key, started again: it lists the load's tenant and
 * key (from its compacted control topic), its schema registry answers, and
 * a key it issues after the restart is accepted by command-svc. */
static void kill_admin_svc(load_t *load, fault_run_t *run) {
  cr_assert(st.admin > 0, "the admin-svc scenario runs with AUTH=on and admin-svc");
  run->fault_ms = load_now_ms();
  size_t acked = load_acknowledged(load);
  tk_stop(st.admin, SIGKILL);
  st.admin = 0;
  while (load_now_ms() - run->fault_ms < ADMIN_DOWN_MIN_MS) pause_ms(50); /* the outage's length */
  size_t during = load_acknowledged(load) - acked;
  int64_t down = load_now_ms() - run->fault_ms;
  cr_assert_gt(during, 0, "no command acknowledged while admin-svc was down");
  st.admin = tk_start(&st.env, TK_ADMIN, extra());
  int64_t ready = load_now_ms() - run->fault_ms;
  char *b = admin_call(200, "GET", "/v1/admin/tenants/" LOAD_TENANT, NULL);
  cr_assert(strstr(b, "\"active\""), "the load's tenant after the restart: %s", b);
  free(b);
  b = admin_call(200, "GET", "/v1/admin/tenants/" LOAD_TENANT "/keys", NULL);
  cr_assert(strstr(b, st.key_id), "the load's key %s is not listed after the restart: %s", st.key_id, b);
  free(b);
  b = admin_call(200, "GET", "/v1/schemas/subjects", NULL);
  cr_assert(strstr(b, "OrderCreated"), "the schema registry after the restart: %s", b);
  free(b);
  char *key = issue_key(NULL), header[512], cmd[128], json[512];
  snprintf(header, sizeof header, "Authorization: Bearer %s\r\n", key);
  snprintf(cmd, sizeof cmd, "new-key-%s", st.tag);
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateUser\",\"email\":\"%s@example.com\",\"name\":\"New key\",\"commandId\":\"%s\"}",
           cmd, cmd);
  int64_t issued = load_now_ms();
  free(command_until_accepted(run->ledger, cmd, json, header, issued + RECOVER_MS));
  free(key);
  snprintf(run->note, sizeof run->note,
           "AUTH=on; admin-svc killed, down %.1f s (%zu commands acknowledged meanwhile with the load's API key), "
           "ready again after %.1f s: tenant and key listed, schema registry answering, a key issued after the "
           "restart accepted by command-svc after %.1f s",
           (double)down / 1000.0, during, (double)ready / 1000.0, (double)(load_now_ms() - issued) / 1000.0);
}

/* SIGCONTs the frozen *pid (svc, on env) and says in after what the zombie
 * did: fenced and gone within ZOMBIE_EXIT_MS (then started again, as an
 * orchestrator would), or back in its group. */
static void wake_zombie(pid_t *pid, bool *frozen, tk_service_t svc, char after[128]) {
  kill(*pid, SIGCONT);
  *frozen = false;
  int status = 0;
  pid_t done = 0;
  for (int64_t end = load_now_ms() + ZOMBIE_EXIT_MS; !(done = waitpid(*pid, &status, WNOHANG)) && load_now_ms() < end;)
    pause_ms(50);
  if (done == *pid) {
    snprintf(after, 128, "woken, it exited %d (fenced), restarted",
             WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    *pid = tk_start(&st.env, svc, extra());
  } else {
    snprintf(after, 128, "woken, it stayed up (rejoined)");
  }
}

/* SIGSTOP one of the two instances until the other has taken its
 * partitions over (every aggregate served since the freeze) and at least
 * FREEZE_MIN_MS, then SIGCONT: a zombie. Its group session is gone; its next
 * commit must be fenced (KIP-447), after which it exits for the orchestrator
 * to restart it, as this driver does. */
static void freeze_command_svc(load_t *load, fault_run_t *run) {
  run->fault_ms = load_now_ms();
  kill(st.command[0], SIGSTOP);
  st.frozen = true;
  int64_t deadline = run->fault_ms + RECOVER_MS;
  while (!load_all_served_since(load, run->fault_ms + 1) && load_now_ms() < deadline) pause_ms(50);
  int64_t took_over = load_now_ms() - run->fault_ms;
  while (load_now_ms() - run->fault_ms < FREEZE_MIN_MS) pause_ms(50); /* the fault's length, not a wait for a result */
  int64_t frozen_for = load_now_ms() - run->fault_ms;
  char after[128];
  wake_zombie(&st.command[0], &st.frozen, TK_COMMAND, after);
  snprintf(run->note, sizeof run->note,
           "one of two instances frozen %.1f s (session timeout %d s); the other served every aggregate after %.1f s; "
           "%s",
           (double)frozen_for / 1000.0, SESSION_TIMEOUT_MS / 1000, (double)took_over / 1000.0, after);
}

/* The scenario's own broker stopped (SIGTERM: a controlled shutdown, as a
 * rolling restart does), kept down at least BROKER_DOWN_MIN_MS, started again
 * on its data. */
static void restart_broker(load_t *load, fault_run_t *run) {
  (void)load;
  cr_assert(st.broker.pid > 0, "the broker scenario runs on a broker of its own");
  run->fault_ms = load_now_ms();
  tk_stop(st.broker.pid, SIGTERM); /* SIGKILL after 15 s */
  st.broker.pid = 0;
  int64_t stopped = load_now_ms() - run->fault_ms;
  while (load_now_ms() - run->fault_ms < BROKER_DOWN_MIN_MS) pause_ms(50); /* the outage's length */
  int64_t down = load_now_ms() - run->fault_ms;
  own_broker_start(&st.broker);
  snprintf(run->note, sizeof run->note,
           "the scenario's own broker stopped (%.1f s to exit), down %.1f s, listening again after %.1f s",
           (double)stopped / 1000.0, (double)down / 1000.0, (double)(load_now_ms() - run->fault_ms) / 1000.0);
}

/* The sum of the projector's store_write_retries_total samples, or -1 when
 * /metrics does not answer. */
static double write_retries(void) {
  tk_response_t r;
  double sum = -1;
  if (tk_http("GET", st.env.projector_port, "/metrics", NULL, 0, &r) && r.status == 200 && r.body) {
    sum = 0;
    static const char name[] = "\nstore_write_retries_total{";
    for (const char *p = strstr(r.body, name); p; p = strstr(p + 1, name)) {
      const char *v = strstr(p, "} ");
      if (v) sum += strtod(v + 2, NULL);
    }
  }
  tk_response_cleanup(&r);
  return sum;
}

/* The scenario's own FerretDB killed (as in a crash) and started again on
 * the same port and PostgreSQL once the projector has met the outage (a
 * write retried) — the shared one is never touched. */
static void restart_store(load_t *load, fault_run_t *run) {
  (void)load;
  cr_assert(st.store.pid > 0, "the store scenario runs on a store of its own");
  double before = write_retries();
  run->fault_ms = load_now_ms();
  tk_stop(st.store.pid, SIGKILL);
  st.store.pid = 0;
  int64_t deadline = load_now_ms() + RECOVER_MS;
  bool noticed = false;
  while (!(noticed = write_retries() > before) && load_now_ms() < deadline) pause_ms(100);
  while (load_now_ms() - run->fault_ms < STORE_DOWN_MIN_MS) pause_ms(50); /* the outage's length */
  int64_t down = load_now_ms() - run->fault_ms;
  own_store_start(&st.store);
  snprintf(run->note, sizeof run->note,
           "the scenario's own FerretDB SIGKILLed, down %.1f s (the projector retried a write%s), started again",
           (double)down / 1000.0, noticed ? "" : ": it never did");
}

typedef struct {
  const char *name;
  void (*inject)(load_t *load, fault_run_t *run);
} scenario_t;

static const scenario_t kill_command = {"SIGKILL command-svc", kill_command_svc};
static const scenario_t freeze_command = {"SIGSTOP command-svc > session timeout, SIGCONT (zombie)", freeze_command_svc};
static const scenario_t kill_projector = {"SIGKILL projector-svc", kill_projector_svc};
static const scenario_t kill_query = {"SIGKILL query-svc", kill_query_svc};
static const scenario_t broker = {"stop the broker (one of the scenario's own), start it again", restart_broker};
static const scenario_t store = {"SIGKILL the store (a FerretDB of the scenario's own), start it again", restart_store};
static const scenario_t kill_saga = {"SIGKILL saga-svc", kill_saga_svc};
static const scenario_t kill_admin = {"SIGKILL admin-svc (AUTH=on)", kill_admin_svc};

/* ---- the steps around a fault ---- */

static bool user_at_least(const char *body, void *ctx) { return tk_json_int(body, "version") >= *(int64_t *)ctx; }

static bool order_cancelled(const char *body, void *ctx) {
  (void)ctx;
  char *status = tk_json_string(body, "status");
  bool yes = status && strcmp(status, "Cancelled") == 0;
  free(status);
  return yes;
}

/* Repeats GET path on query-svc (with the load's credential) until it
 * answers 200 and pred accepts the body, or timeout_ms passes; r holds the
 * last answer. */
static bool await_read(const char *path, bool (*pred)(const char *body, void *ctx), void *ctx, int timeout_ms,
                       tk_response_t *r) {
  int64_t deadline = load_now_ms() + timeout_ms;
  for (;;) {
    tk_http_timeout("GET", st.env.query_port, path, st.auth_header, NULL, 0, CLIENT_TIMEOUT_MS, r);
    if (r->status == 200 && r->body && pred(r->body, ctx)) return true;
    if (load_now_ms() > deadline) return false;
    tk_response_cleanup(r);
    pause_ms(50);
  }
}

/* A saga started after the fault runs to its end: an order of no user
 * (ledgered, retried with its commandId until answered) shows Cancelled on
 * query-svc, which takes the placement saga's RecordUserOrder (404) and its
 * cancel. */
static void await_saga_probe(ledger_t *ledger, int64_t deadline) {
  static unsigned probes;
  char cmd[128], json[512], path[256];
  snprintf(cmd, sizeof cmd, "probe-%s-%u", st.tag, probes++);
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateOrder\",\"userId\":\"nobody-%s\",\"items\":[{\"product\":\"Probe\","
           "\"quantity\":1,\"price\":1.0}],\"totalAmount\":1.0,\"commandId\":\"%s\"}",
           cmd, cmd);
  char *body = command_until_accepted(ledger, cmd, json, st.auth_header, deadline);
  char *order = tk_json_string(body, "aggregateId");
  free(body);
  cr_assert_not_null(order, "the saga probe's answer has no aggregateId");
  snprintf(path, sizeof path, "/v1/orders/%s", order);
  tk_response_t r;
  int64_t left = deadline - load_now_ms();
  bool ok = await_read(path, order_cancelled, NULL, left > 0 ? (int)left : 0, &r);
  cr_assert(ok, "the saga probe's order %s (no such user) was not cancelled within %d ms (last %d %s)", order,
            RECOVER_MS, r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  free(order);
}

/* The partitions saga-svc on port holds (its saga_partitions gauge); -1 when
 * it does not answer. */
static double saga_partitions(int port) { return tk_metric(port, "saga_partitions"); }

/* Two saga-svc instances share the partitions; the one on env's port is
 * SIGSTOPped until the other holds them all (its group session expired) and
 * a saga started meanwhile ran to its end on the other, and at least
 * FREEZE_MIN_MS, then SIGCONT: a zombie, whose next commit must be fenced
 * (KIP-447: the group's generation moved on), after which it exits for the
 * orchestrator to restart it, as this driver does. The accounting then says
 * whether any saga command was emitted twice or a saga left unfinished. */
static void freeze_saga_svc(load_t *load, fault_run_t *run) {
  (void)load;
  cr_assert(st.saga_b > 0, "the saga zombie scenario runs two saga-svc instances");
  int64_t deadline = load_now_ms() + RECOVER_MS;
  double a, b;
  while ((a = saga_partitions(st.env.saga_port)) < 1 || (b = saga_partitions(st.env_saga_b.saga_port)) < 1) {
    cr_assert(load_now_ms() < deadline, "the two saga-svc instances did not share the partitions (%.0f and %.0f)",
              a, saga_partitions(st.env_saga_b.saga_port));
    pause_ms(100);
  }
  double total = a + b;
  run->fault_ms = load_now_ms();
  kill(st.saga, SIGSTOP);
  st.saga_frozen = true;
  deadline = run->fault_ms + RECOVER_MS;
  while (saga_partitions(st.env_saga_b.saga_port) < total) {
    cr_assert(load_now_ms() < deadline, "the other saga-svc did not take the frozen one's partitions over within %d ms",
              RECOVER_MS);
    pause_ms(100);
  }
  int64_t took_over = load_now_ms() - run->fault_ms;
  await_saga_probe(run->ledger, deadline); /* on the other instance: this one is frozen */
  int64_t probe_done = load_now_ms() - run->fault_ms;
  while (load_now_ms() - run->fault_ms < FREEZE_MIN_MS) pause_ms(50); /* the fault's length, not a wait for a result */
  int64_t frozen_for = load_now_ms() - run->fault_ms;
  char after[128];
  wake_zombie(&st.saga, &st.saga_frozen, TK_SAGA, after);
  snprintf(run->note, sizeof run->note,
           "one of two saga-svc instances frozen %.1f s (session timeout 10 s); the other held all %.0f partitions "
           "after %.1f s and ran a saga started meanwhile to its end after %.1f s; %s",
           (double)frozen_for / 1000.0, total, (double)took_over / 1000.0, (double)probe_done / 1000.0, after);
}

static const scenario_t freeze_saga = {"SIGSTOP one of two saga-svc > session timeout, SIGCONT (zombie)",
                                       freeze_saga_svc};

/* Step 4: every aggregate served after the fault, the newest user readable
 * at its version, a saga started after the fault finished. Returns the time
 * to recover in ms. */
static int64_t await_recovery(load_t *load, const fault_run_t *run) {
  int64_t deadline = load_now_ms() + RECOVER_MS;
  while (!load_all_served_since(load, run->fault_ms + 1)) {
    if (load_now_ms() > deadline) {
      char why[2048];
      load_describe_unserved(load, run->fault_ms + 1, why, sizeof why);
      cr_assert_fail("the load was not served again within %d ms: %s", RECOVER_MS, why);
    }
    pause_ms(50);
  }
  char id[128], path[256];
  int64_t version;
  cr_assert(load_last_user(load, id, &version), "no user acknowledged");
  snprintf(path, sizeof path, "/v1/users/%s", id);
  tk_response_t r;
  bool ok = await_read(path, user_at_least, &version, RECOVER_MS, &r);
  cr_assert(ok, "user %s v%lld not visible through query-svc within %d ms (last %d %s)", id, (long long)version,
            RECOVER_MS, r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  await_saga_probe(run->ledger, run->fault_ms + RECOVER_MS);
  return load_now_ms() - run->fault_ms;
}

/* Lets the load run until target commands are acknowledged and at least
 * min_ms have passed (the length of a phase is the scenario's parameter). */
static void await_acks(load_t *load, size_t target, int min_ms, const char *phase) {
  int64_t start = load_now_ms(), deadline = start + min_ms + RECOVER_MS;
  while (load_acknowledged(load) < target || load_now_ms() - start < min_ms) {
    cr_assert(load_now_ms() < deadline, "%s: %zu of %zu commands acknowledged within %d ms", phase,
              load_acknowledged(load), target, min_ms + RECOVER_MS);
    pause_ms(50);
  }
}

/* Step 6a: every HTTP command whose answer was lost, sent again (same
 * commandId) until it has one. */
static void resolve_http(ledger_t *ledger) {
  int64_t deadline = load_now_ms() + RESOLVE_MS;
  for (unsigned turn = 0;; turn++) {
    size_t n;
    size_t *rows = ledger_unanswered(ledger, LEDGER_HTTP, &n);
    for (size_t i = 0; i < n; i++) {
      const char *json = ledger_json(ledger, rows[i]);
      tk_response_t r;
      tk_http_timeout("POST", st.ports[(turn + i) % 2], "/v1/commands", st.auth_header, json, strlen(json),
                      CLIENT_TIMEOUT_MS, &r);
      ledger_answer(ledger, rows[i], r.status, r.body);
      tk_response_cleanup(&r);
    }
    free(rows);
    if (n == 0) return;
    cr_assert(load_now_ms() < deadline, "%zu commands still without an answer after %d ms of retries", n, RESOLVE_MS);
    pause_ms(100);
  }
}

/* Step 6b: the results of the Kafka-ingress commands, as a Kafka client
 * reads them from command-results (first result of each command). */
static void resolve_kafka(ledger_t *ledger) {
  int64_t deadline = load_now_ms() + RESOLVE_MS;
  char topic[128], key[256];
  tk_topic(&st.env, "command-results", topic);
  for (;;) {
    size_t n, n_recs;
    size_t *rows = ledger_unanswered(ledger, LEDGER_KAFKA, &n);
    if (n == 0) {
      free(rows);
      return;
    }
    tk_record_t *recs = tk_kafka_read_all(&st.env, topic, &n_recs);
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
      snprintf(key, sizeof key, "%s/%s", ledger_tenant(ledger), ledger_command_id(ledger, rows[i]));
      const tk_record_t *found = NULL;
      for (size_t j = 0; !found && j < n_recs; j++)
        if (recs[j].key && strcmp(recs[j].key, key) == 0) found = &recs[j];
      if (found) {
        int64_t status = tk_json_int(found->value, "status");
        ledger_answer(ledger, rows[i], status == INT64_MIN ? 0 : (int)status, found->value);
      } else {
        missing++;
      }
    }
    tk_records_free(recs, n_recs);
    free(rows);
    if (missing == 0) return;
    if (load_now_ms() > deadline) {
      /* left unknown: the checker says whether any reached the topic */
      fprintf(stderr, "faults: %zu Kafka-ingress commands without a result after %d ms\n", missing, RESOLVE_MS);
      return;
    }
    pause_ms(200);
  }
}

static void append_result(const scenario_t *sc, const char *load_desc, const ledger_stats_t *ls,
                          const tk_acct_report_t *rep, int64_t recover_ms, const fault_run_t *run) {
  char path[512];
  snprintf(path, sizeof path, "%s/faults-results.md", CQRS_TEST_LOG_DIR);
  FILE *f = fopen(path, "a");
  char line[2048];
  snprintf(line, sizeof line,
           "| %s | %s | %zu (%zu HTTP, %zu Kafka) | %zu | %zu | %zu | %zu | %zu answers lost, %zu retried to an answer, "
           "%zu left | %.1f s | %zu | %s |\n",
           sc->name, load_desc, ls->sent, ls->http, ls->kafka, rep->acknowledged, rep->lost, rep->duplicated,
           rep->reordered, ls->answers_lost, ls->retried, rep->unknown, (double)recover_ms / 1000.0, rep->n_violations,
           run->note);
  if (f) {
    fputs(line, f);
    fclose(f);
  }
  fprintf(stderr, "faults: %s", line);
}

static void run_scenario_on(const scenario_t *sc, stack_opts_t so) {
  stack_start_with(so);
  bool lng = long_run();
  size_t warm = lng ? 300 : 40, after = lng ? 300 : 40;
  int phase_ms = lng ? LONG_PHASE_MS : 0;
  load_opts_t opts = {.http_clients = lng ? 6 : 3,
                      .slots_per_type = 2,
                      .kafka_interval_ms = 100,
                      .client_timeout_ms = CLIENT_TIMEOUT_MS,
                      .tag = st.tag,
                      .credential = st.key[0] ? st.key : NULL};
  char load_desc[256];
  snprintf(load_desc, sizeof load_desc,
           "%d HTTP clients (closed loop, %d users + %d orders + %d customers each, 2 instances) + Kafka ingress "
           "every %d ms",
           opts.http_clients, opts.slots_per_type, opts.slots_per_type, opts.slots_per_type, opts.kafka_interval_ms);

  ledger_t *ledger = ledger_new(st.tenant);
  int64_t t0 = load_now_ms();
  load_t *load = load_start(&st.env, st.ports, 2, &opts, ledger);
  await_acks(load, warm, phase_ms, "warm-up");

  fault_run_t run = {.ledger = ledger};
  sc->inject(load, &run);
  int64_t recover_ms = await_recovery(load, &run);
  await_acks(load, load_acknowledged(load) + after, phase_ms, "after recovery");
  load_stop(load);
  int64_t load_ms = load_now_ms() - t0;

  resolve_http(ledger);
  resolve_kafka(ledger);
  ledger_stats_t ls = ledger_stats(ledger);
  char desc[512];
  snprintf(desc, sizeof desc, "%s; %.0f s, %.0f commands/s", load_desc, (double)load_ms / 1000.0,
           (double)ls.sent * 1000.0 / (double)load_ms);

  size_t n;
  tk_acct_command_t *cmds = ledger_commands(ledger, &n);
  tk_acct_opts_t aopts = {.all_commands_known = true, .catchup_ms = RECOVER_MS, .sagas = true};
  tk_acct_report_t rep;
  int64_t c0 = load_now_ms();
  tk_acct_check_env(&st.env, cmds, n, &aopts, &rep);
  fprintf(stderr, "faults: the check took %.1f s\n", (double)(load_now_ms() - c0) / 1000.0);
  append_result(sc, desc, &ls, &rep, recover_ms, &run);
  cr_expect_gt(rep.acknowledged, warm + after, "the load did run");
  cr_expect_gt(rep.saga_commands, 0, "the load started sagas");
  tk_acct_assert_clean(&rep);
  tk_acct_report_cleanup(&rep);
  free(cmds);
  load_destroy(load);
  ledger_destroy(ledger);
}

static void run_scenario(const scenario_t *sc) { run_scenario_on(sc, (stack_opts_t){0}); }

TestSuite(faults, .fini = stack_stop, .timeout = 600);

/* A checker that cannot fail proves nothing: after a short load without a
 * fault the accounting is clean, and each guarantee broken on purpose in
 * what the checker sees (tk_acct_opts_t.doctor, test only) is reported. */
Test(faults, the_checker_catches_a_broken_guarantee) {
  stack_start();
  load_opts_t opts = {.http_clients = 2, .slots_per_type = 1, .kafka_interval_ms = 100,
                      .client_timeout_ms = CLIENT_TIMEOUT_MS, .tag = st.tag};
  ledger_t *ledger = ledger_new(NULL);
  load_t *load = load_start(&st.env, st.ports, 2, &opts, ledger);
  await_acks(load, 30, 0, "load");
  load_stop(load);
  resolve_http(ledger);
  resolve_kafka(ledger);
  size_t n;
  tk_acct_command_t *cmds = ledger_commands(ledger, &n);

  tk_acct_opts_t aopts = {.all_commands_known = true, .catchup_ms = RECOVER_MS, .sagas = true, .doctor = "none"};
  tk_acct_report_t rep;
  tk_acct_check_env(&st.env, cmds, n, &aopts, &rep);
  tk_acct_assert_clean(&rep);
  tk_acct_report_cleanup(&rep);

  /* each doctor, and the counter that must see it */
  static const struct {
    const char *doctor, *counter;
    size_t offset;
  } cases[] = {{"drop-event", "lost", offsetof(tk_acct_report_t, lost)},
               {"duplicate-event", "duplicated", offsetof(tk_acct_report_t, duplicated)},
               {"swap-events", "reordered", offsetof(tk_acct_report_t, reordered)},
               {"edit-document", "documents wrong", offsetof(tk_acct_report_t, documents_wrong)},
               {"saga-twice", "saga duplicated", offsetof(tk_acct_report_t, saga_duplicated)},
               {"saga-lost", "saga unfinished", offsetof(tk_acct_report_t, saga_unfinished)}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    aopts.doctor = cases[i].doctor;
    tk_acct_check_env(&st.env, cmds, n, &aopts, &rep);
    size_t got = *(const size_t *)((const char *)&rep + cases[i].offset);
    char *text = tk_acct_report_format(&rep, 10);
    fprintf(stderr, "faults: doctored (%s): %s", cases[i].doctor, text);
    cr_expect_gt(got, 0, "%s: the checker did not count it as %s:\n%s", cases[i].doctor, cases[i].counter, text);
    cr_expect_gt(rep.n_violations, 0, "%s: no violation reported", cases[i].doctor);
    free(text);
    tk_acct_report_cleanup(&rep);
  }
  free(cmds);
  load_destroy(load);
  ledger_destroy(ledger);
}

Test(faults, sigkill_command_svc) { run_scenario(&kill_command); }

Test(faults, sigstop_zombie_command_svc) { run_scenario(&freeze_command); }

Test(faults, sigkill_projector_svc) {
  if (!long_run()) cr_skip_test("long version only (FAULTS_LONG=1, make test-faults)");
  run_scenario(&kill_projector);
}

Test(faults, sigkill_query_svc) {
  if (!long_run()) cr_skip_test("long version only (FAULTS_LONG=1, make test-faults)");
  run_scenario(&kill_query);
}

Test(faults, restart_the_broker) {
  if (!long_run()) cr_skip_test("long version only (FAULTS_LONG=1, make test-faults)");
  run_scenario_on(&broker, (stack_opts_t){.own_broker = true});
}

Test(faults, restart_the_store) {
  if (!long_run()) cr_skip_test("long version only (FAULTS_LONG=1, make test-faults)");
  run_scenario_on(&store, (stack_opts_t){.own_store = true});
}

Test(faults, sigkill_saga_svc) { run_scenario(&kill_saga); }

Test(faults, sigstop_zombie_saga_svc) { run_scenario_on(&freeze_saga, (stack_opts_t){.two_sagas = true}); }

Test(faults, sigkill_admin_svc) {
  if (!long_run()) cr_skip_test("long version only (FAULTS_LONG=1, make test-faults)");
  run_scenario_on(&kill_admin, (stack_opts_t){.auth = true});
}
