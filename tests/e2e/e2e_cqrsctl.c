/* End to end: the cqrsctl binary against a running admin-svc (authentication
 * on, a platform token from tk_auth) and the real broker: each verb's output
 * and exit code, the credential never printed, usage errors sending nothing,
 * an unreachable admin-svc. The control-plane lists whose routes this
 * admin-svc has are run for real; the others must say "not available".
 * Replays are paused, resumed and cancelled, a saga is shown, and the schema
 * registry's subjects shown and checked. */
#include "testkit.h"
#include "tk_auth.h"

#include "cqrs/event_schema.h"
#include "cqrs/events.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static tk_env_t env;
static pid_t admin;
static tk_auth_t *auth;
static char *platform_token;
static char admin_url[64];

static void setup(void) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  const char *extra[TK_AUTH_ENV_MAX];
  admin = tk_start(&env, TK_ADMIN, tk_auth_env(auth, (const char *const[]){"TOPIC_REPLICATION=1", NULL}, extra));
  platform_token = tk_auth_token(auth, NULL, "platform:admin", 600);
  snprintf(admin_url, sizeof admin_url, "http://127.0.0.1:%d", env.admin_port);
}

static void teardown(void) {
  if (admin > 0) tk_stop(admin, SIGTERM);
  admin = 0;
  tk_auth_destroy(auth);
  auth = NULL;
  free(platform_token);
  platform_token = NULL;
}

TestSuite(cqrsctl, .init = setup, .fini = teardown, .timeout = 300);

typedef struct {
  int rc;
  char *out, *err;
} run_t;

static char *slurp(int fd) {
  lseek(fd, 0, SEEK_SET);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  ssize_t n;
  while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
    len += (size_t)n;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  close(fd);
  return buf;
}

/* Runs cqrsctl with argv (NULL-terminated, without the program) and the
 * environment CQRS_ADMIN_URL=url and CQRS_TOKEN=token (NULL: unset). The
 * credential is never to be printed: checked on every run. */
static run_t ctl_env(const char *url, const char *token, const char *const *argv) {
  char out_path[] = "/tmp/cqrsctl-outXXXXXX", err_path[] = "/tmp/cqrsctl-errXXXXXX";
  int out = mkstemp(out_path), err = mkstemp(err_path);
  cr_assert(out >= 0 && err >= 0);
  unlink(out_path);
  unlink(err_path);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
    if (url) setenv("CQRS_ADMIN_URL", url, 1);
    else unsetenv("CQRS_ADMIN_URL");
    if (token) setenv("CQRS_TOKEN", token, 1);
    else unsetenv("CQRS_TOKEN");
    char *args[32] = {CQRS_BIN_DIR "/cqrsctl"};
    for (int i = 0; argv[i] && i < 30; i++) args[i + 1] = (char *)argv[i];
    execv(args[0], args);
    _exit(127);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  run_t r = {.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
  r.out = slurp(out);
  r.err = slurp(err);
  if (token) {
    cr_assert_null(strstr(r.out, token), "the credential was printed: %s", r.out);
    cr_assert_null(strstr(r.err, token), "the credential was printed: %s", r.err);
  }
  return r;
}

static run_t ctl(const char *const *argv) { return ctl_env(admin_url, platform_token, argv); }


static void run_free(run_t *r) {
  free(r->out);
  free(r->err);
}

/* Runs argv and checks its exit code and that stdout (or stderr when out is
 * false) contains want (NULL: anything). */
static void expect(int rc, bool out, const char *want, const char *const *argv) {
  run_t r = ctl(argv);
  cr_assert_eq(r.rc, rc, "cqrsctl %s %s: exit %d, not %d\nstdout: %s\nstderr: %s", argv[0], argv[1] ? argv[1] : "",
               r.rc, rc, r.out, r.err);
  if (want)
    cr_assert_not_null(strstr(out ? r.out : r.err, want), "cqrsctl %s %s: %s lacks \"%s\":\n%s", argv[0],
                       argv[1] ? argv[1] : "", out ? "stdout" : "stderr", want, out ? r.out : r.err);
  run_free(&r);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(cqrsctl, tenants_and_keys) {
  expect(0, true, "tenantId: acme\nstate: active\n", ARGS("tenants", "create", "acme"));
  expect(1, false, "cqrsctl: 409: tenant acme already exists", ARGS("tenants", "create", "acme"));
  expect(1, false, "cqrsctl: 400: ", ARGS("tenants", "create", "Not-Valid!"));
  expect(0, true, "TENANT  STATE   CREATED", ARGS("tenants"));
  expect(0, true, "\nacme    active  ", ARGS("tenants", "list"));
  /* --json: the server's answer as it is. */
  run_t r = ctl(ARGS("--json", "tenants", "list"));
  cr_assert_eq(r.rc, 0);
  cr_assert(strncmp(r.out, "{\"items\":[{\"tenantId\":\"acme\",\"state\":\"active\"", 45) == 0, "%s", r.out);
  run_free(&r);

  /* A key is printed once, at issue; the list never shows it. */
  r = ctl(ARGS("keys", "issue", "acme", "--scopes", "queries:read,commands:write"));
  cr_assert_eq(r.rc, 0, "%s%s", r.out, r.err);
  cr_assert_not_null(strstr(r.out, "key: cqrs_"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "scopes: commands:write,queries:read\n"), "%s", r.out);
  char key_id[32] = "";
  cr_assert_eq(sscanf(r.out, "keyId: %31s", key_id), 1, "%s", r.out);
  const char *key = strstr(r.out, "key: ") + 5;
  char secret[128];
  snprintf(secret, sizeof secret, "%.*s", (int)strcspn(key, "\n"), key);
  run_free(&r);
  r = ctl(ARGS("keys", "list", "acme"));
  cr_assert_eq(r.rc, 0);
  cr_assert_not_null(strstr(r.out, "KEY ID"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, key_id), "%s", r.out);
  cr_assert_null(strstr(r.out, secret), "the list shows the key: %s", r.out);
  cr_assert_not_null(strstr(r.out, "false"), "not revoked: %s", r.out);
  run_free(&r);
  expect(0, true, "revoked: true", ARGS("keys", "revoke", "acme", key_id));
  expect(0, true, "  true ", ARGS("keys", "list", "acme"));
  expect(1, false, "404", ARGS("keys", "list", "nobody"));
  expect(1, false, "404", ARGS("keys", "revoke", "acme", "0123456789abcdef"));
  expect(0, true, "state: deleted", ARGS("tenants", "delete", "acme"));
}

/* A file holding text (a temporary path into path; unlink it). */
static void temp_file(const char *text, char path[64]) {
  snprintf(path, 64, "/tmp/cqrsctl-schemaXXXXXX");
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

Test(cqrsctl, schemas_show_and_check) {
  const cqrs_event_type_t *type = &cqrs_user_created_event; /* registered by admin-svc at start */
  char want[96];
  run_t r = ctl(ARGS("schemas", "show", type->name));
  cr_assert_eq(r.rc, 0, "%s%s", r.out, r.err);
  snprintf(want, sizeof want, "subject: %s\n", type->name);
  cr_assert_not_null(strstr(r.out, want), "%s", r.out);
  snprintf(want, sizeof want, "\nversion: %d\n", type->version);
  cr_assert_not_null(strstr(r.out, want), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "\nid: "), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "\nschema: {"), "%s", r.out);
  run_free(&r);
  expect(1, false, "cqrsctl: 404: ", ARGS("schemas", "show", "NoSuchSubject"));

  /* the subject's own schema is compatible with it */
  char same[64], breaking[64];
  char *schema = cqrs_event_json_schema(type, NULL);
  temp_file(schema, same);
  bson_free(schema);
  r = ctl(ARGS("schemas", "check", type->name, "--file", same));
  cr_assert_eq(r.rc, 0, "%s%s", r.out, r.err);
  cr_assert_str_eq(r.out, "compatible\n");
  run_free(&r);
  /* a closed schema that requires a field no recorded event has: NOT (exit 1, with the registry's reasons) */
  temp_file("{\"type\":\"object\",\"properties\":{\"nickname\":{\"type\":\"string\"}},"
            "\"required\":[\"nickname\"],\"additionalProperties\":false}",
            breaking);
  r = ctl(ARGS("schemas", "check", type->name, "--file", breaking));
  cr_assert_eq(r.rc, 1, "%s%s", r.out, r.err);
  cr_assert(strncmp(r.out, "NOT compatible\n  ", 17) == 0 && strstr(r.out, "nickname"), "no reason given: %s", r.out);
  run_free(&r);
  expect(2, false, "needs --file", ARGS("schemas", "check", type->name));
  expect(1, false, "cqrsctl: 404: ", ARGS("schemas", "check", "NoSuchSubject", "--file", same));
  unlink(same);
  unlink(breaking);
}

Test(cqrsctl, credentials_usage_and_reachability) {
  /* No credential, a bad one: the server says no (exit 1) and why. */
  run_t r = ctl_env(admin_url, NULL, ARGS("tenants"));
  cr_assert_eq(r.rc, 1, "%s", r.err);
  cr_assert_not_null(strstr(r.err, "cqrsctl: 401: "), "%s", r.err);
  cr_assert_not_null(strstr(r.err, "CQRS_TOKEN"), "%s", r.err);
  run_free(&r);
  r = ctl_env(admin_url, "not-a-valid-token", ARGS("tenants"));
  cr_assert_eq(r.rc, 1, "%s", r.err);
  run_free(&r);
  /* A tenant's admin token is no platform administrator. */
  expect(0, true, "tenantId: acme", ARGS("tenants", "create", "acme"));
  char *tenant_admin = tk_auth_token(auth, "acme", "admin", 600);
  r = ctl_env(admin_url, tenant_admin, ARGS("tenants", "create", "x"));
  cr_assert_eq(r.rc, 1, "%s", r.err);
  cr_assert_not_null(strstr(r.err, "cqrsctl: 403: "), "%s", r.err);
  run_free(&r);
  free(tenant_admin);
  /* --token wins over the environment. */
  const char *args[] = {"--token", platform_token, "tenants", NULL};
  r = ctl_env(admin_url, "not-a-valid-token", args);
  cr_assert_eq(r.rc, 0, "%s", r.err);
  cr_assert_null(strstr(r.out, platform_token));
  run_free(&r);
  /* --url wins over the environment. */
  char url_flag[80];
  snprintf(url_flag, sizeof url_flag, "--url=%s", admin_url);
  r = ctl_env("http://127.0.0.1:1", platform_token, ARGS(url_flag, "tenants"));
  cr_assert_eq(r.rc, 0, "%s", r.err);
  run_free(&r);

  /* Usage errors: exit 2, a message, nothing sent. */
  expect(2, false, "needs --from", ARGS("replay", "start", "user_profiles"));
  expect(2, false, "unknown command", ARGS("frobnicate"));
  expect(2, false, "needs --reason", ARGS("dlq", "discard", "0-1"));
  /* Help on every verb: exit 0, its usage. */
  expect(0, true, "usage: cqrsctl replay status <replay id> [--watch]", ARGS("replay", "status", "--help"));
  expect(0, true, "exit codes:", ARGS("--help"));

  /* Nothing listens: exit 3. */
  r = ctl_env("http://127.0.0.1:1", platform_token, ARGS("tenants"));
  cr_assert_eq(r.rc, 3, "%s", r.err);
  cr_assert_not_null(strstr(r.err, "cannot reach admin-svc at http://127.0.0.1:1"), "%s", r.err);
  run_free(&r);
}

/* ---- replays and projections on a whole stack (AUTH=off: loopback) ---- */

static pid_t stack[3], saga;

/* A user with this name is a poison event for projector-svc (its test-only
 * PROJECTION_TEST_REFUSE_NAME): it lands in the dead letters. */
#define POISON_NAME "Poison"

static void setup_stack(void) {
  tk_env_init(&env);
  stack[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  stack[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, (const char *const[]){"PROJECTION_TEST_REFUSE_NAME=" POISON_NAME, NULL});
  stack[TK_QUERY] = tk_start(&env, TK_QUERY, NULL);
  admin = tk_start(&env, TK_ADMIN, (const char *const[]){"TOPIC_REPLICATION=1", NULL});
  snprintf(admin_url, sizeof admin_url, "http://127.0.0.1:%d", env.admin_port);
  for (int i = 0; i < 12; i++)
    free(tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"c%d.%s@example.com\",\"name\":\"C\"}", i,
                    env.prefix));
}

static void teardown_stack(void) {
  if (saga > 0) tk_stop(saga, SIGTERM);
  saga = 0;
  if (admin > 0) tk_stop(admin, SIGTERM);
  admin = 0;
  tk_stop_all(stack);
}

TestSuite(cqrsctl_replay, .init = setup_stack, .fini = teardown_stack, .timeout = 300);

static run_t ctl_open(const char *const *argv) { return ctl_env(admin_url, NULL, argv); }

/* True when admin-svc has a route for GET path (asked directly). */
static bool served(const char *path) {
  tk_response_t r;
  tk_auth_http("GET", env.admin_port, path, platform_token, NULL, NULL, &r);
  bool yes = !(r.status == 404 && r.body && strstr(r.body, "no such route"));
  tk_response_cleanup(&r);
  return yes;
}

Test(cqrsctl_replay, control_plane_lists_or_not_available) {
  static const struct {
    const char *prefix, *group, *header;
  } lists[] = {
      {"/v1/admin/projections", "projections", "PROJECTION"}, {"/v1/admin/replays", "replay", NULL},
      {"/v1/admin/dlq", "dlq", NULL},                         {"/v1/admin/sagas", "sagas", NULL},
      {"/v1/schemas/subjects", "schemas", NULL},                       {"/v1/admin/audit", "audit", NULL},
  };
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
    if (served(lists[i].prefix)) {
      run_t r = ctl(ARGS(lists[i].group));
      cr_assert_eq(r.rc, 0, "cqrsctl %s: %d %s", lists[i].group, r.rc, r.err);
      if (lists[i].header) cr_assert_not_null(strstr(r.out, lists[i].header), "%s", r.out);
      run_free(&r);
    } else {
      char want[96];
      snprintf(want, sizeof want, "cqrsctl: %s: not available on this admin-svc", lists[i].group);
      expect(1, false, want, ARGS(lists[i].group));
    }
  }
}

Test(cqrsctl_replay, dry_run_apply_watch) {
  run_t r = ctl_open(ARGS("projections"));
  cr_assert_eq(r.rc, 0, "%s", r.err);
  cr_assert_not_null(strstr(r.out, "PROJECTION "), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "\nuser_profiles "), "%s", r.out);
  run_free(&r);

  /* A dry run prints its numbers and starts nothing. */
  r = ctl_open(ARGS("replay", "start", "user_profiles", "--from", "beginning"));
  cr_assert_eq(r.rc, 0, "%s", r.err);
  cr_assert_not_null(strstr(r.out, "dry run (nothing changed): replay of user_profiles from beginning"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "PARTITION  FROM OFFSET  END OFFSET  EVENTS\n"), "%s", r.out);
  long events = -1;
  const char *ev = strstr(r.out, "\nevents: ");
  cr_assert(ev && sscanf(ev, "\nevents: %ld", &events) == 1 && events >= 12, "%s", r.out);
  cr_assert_not_null(strstr(r.out, "with --apply"), "%s", r.out);
  run_free(&r);
  expect(0, true, "(none)", ARGS("replay", "list"));
  expect(1, false, "cqrsctl: 400: ", ARGS("replay", "start", "no_such_projection", "--from", "beginning"));
  expect(1, false, "cqrsctl: 400: ", ARGS("replay", "start", "user_profiles", "--from", "yesterday"));

  /* Applied: an id, then a second one while it runs is refused. */
  r = ctl_open(ARGS("replay", "start", "user_profiles", "--from", "beginning", "--apply"));
  cr_assert_eq(r.rc, 0, "%s", r.err);
  char id[64] = "";
  cr_assert_eq(sscanf(r.out, "replay started: %63s", id), 1, "%s", r.out);
  run_free(&r);
  r = ctl_open(ARGS("replay", "start", "user_profiles", "--from", "beginning", "--apply"));
  if (r.rc != 0) { /* the first may already be done on a fast machine */
    cr_assert_eq(r.rc, 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "cqrsctl: 409: a replay of user_profiles is running"), "%s", r.err);
  }
  bool second = r.rc == 0;
  char id2[64] = "";
  if (second) cr_assert_eq(sscanf(r.out, "replay started: %63s", id2), 1);
  run_free(&r);

  /* --watch on a pipe: plain lines, the last one completed, exit 0. */
  r = ctl_open(ARGS("replay", "status", id, "--watch", "--interval", "0.2"));
  cr_assert_eq(r.rc, 0, "watch: %d\n%s%s", r.rc, r.out, r.err);
  cr_assert_null(strchr(r.out, '\r'), "no terminal codes on a pipe: %s", r.out);
  cr_assert_null(strchr(r.out, '['), "no bar on a pipe: %s", r.out);
  size_t len = strlen(r.out);
  cr_assert(len > 1 && r.out[len - 1] == '\n', "%s", r.out);
  const char *last = r.out + len - 1;
  while (last > r.out && last[-1] != '\n') last--;
  cr_assert(strncmp(last, "completed ", 10) == 0, "last line: %s", last);
  cr_assert_not_null(strstr(last, " 100% "), "last line: %s", last);
  run_free(&r);
  if (second) {
    r = ctl_open(ARGS("replay", "status", id2, "--watch", "--interval", "0.2"));
    cr_assert_eq(r.rc, 0, "%s", r.err);
    run_free(&r);
  }

  r = ctl_open(ARGS("replay", "status", id));
  cr_assert_eq(r.rc, 0);
  cr_assert_not_null(strstr(r.out, "state: completed\n"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "progress: completed "), "%s", r.out);
  run_free(&r);
  expect(0, true, id, ARGS("replay", "list"));
  r = ctl_open(ARGS("--json", "replay", "status", id));
  cr_assert_eq(r.rc, 0);
  cr_assert(r.out[0] == '{' && strstr(r.out, "\"state\":\"completed\""), "%s", r.out);
  run_free(&r);
  /* A completed replay cannot be paused; an unknown one is 404. */
  r = ctl_open(ARGS("replay", "pause", id));
  cr_assert_eq(r.rc, 1, "%s%s", r.out, r.err);
  cr_assert_not_null(strstr(r.err, "cqrsctl: 409: "), "%s", r.err);
  run_free(&r);
  expect(1, false, "cqrsctl: 404: ", ARGS("replay", "status", "0123456789abcdef"));
  /* Projections pause and resume: the projection object back. */
  expect(0, true, "projection: user_profiles\n", ARGS("projections", "pause", "user_profiles"));
  expect(0, true, "projection: user_profiles\n", ARGS("projections", "resume", "user_profiles"));
  expect(1, false, "cqrsctl: 4", ARGS("projections", "pause", "no_such_projection"));
  expect(1, false, "cqrsctl: 404: ", ARGS("replay", "cancel", "0123456789abcdef"));
}

/* cqrsctl --json dlq list, repeated until an item's state is state (bounded:
 * 60 s); returns that item's id (free it). */
static char *await_dead_letter(const char *state) {
  char want[64];
  snprintf(want, sizeof want, "\"state\":\"%s\"", state);
  for (int i = 0; i < 300; i++) {
    run_t r = ctl_open(ARGS("--json", "dlq", "list"));
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *at = strstr(r.out, want);
    if (at) {
      const char *end = strchr(at, '}'); /* the items are flat objects */
      while (at > r.out && *at != '{') at--;
      char *item = strndup(at, end ? (size_t)(end - at) + 1 : strlen(at));
      char *id = tk_json_string(item, "id");
      free(item);
      cr_assert_not_null(id, "no id in %s", r.out);
      run_free(&r);
      return id;
    }
    run_free(&r);
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
  }
  cr_assert_fail("no dead letter in state %s within 60 s", state);
  return NULL;
}

Test(cqrsctl_replay, dead_letters) {
  expect(0, true, "(none)", ARGS("dlq"));
  free(tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"p.%s@example.com\",\"name\":\"" POISON_NAME "\"}",
                  env.prefix));
  char *id = await_dead_letter("dead");
  expect(0, true, "ID ", ARGS("dlq", "list", "--projection", "user_profiles"));
  run_t r = ctl_open(ARGS("dlq", "show", id));
  cr_assert_eq(r.rc, 0, "%s", r.err);
  cr_assert_not_null(strstr(r.out, "refused by PROJECTION_TEST_REFUSE_NAME"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "payload: {"), "%s", r.out);
  /* and the data as readers read it, upcast to its type's current version */
  cr_assert_not_null(strstr(r.out, "data: {"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, POISON_NAME), "%s", r.out);
  run_free(&r);
  expect(1, false, "cqrsctl: 404: ", ARGS("dlq", "show", "0-999999"));
  /* Discard needs a reason (exit 2, nothing sent), then is done. */
  expect(2, false, "needs --reason", ARGS("dlq", "discard", id));
  expect(0, true, "state: discarded", ARGS("dlq", "discard", id, "--reason", "a test poison"));
  expect(1, false, "cqrsctl: 409: ", ARGS("dlq", "redrive", id));
  free(id);
  /* A second one, redriven: it still fails, so it is back as a new dead letter. */
  free(tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"q.%s@example.com\",\"name\":\"" POISON_NAME "\"}",
                  env.prefix));
  id = await_dead_letter("dead");
  expect(0, true, "state: ", ARGS("dlq", "redrive", id));
  free(id);
  free(await_dead_letter("redriven"));
  expect(0, true, "redriven: ", ARGS("dlq", "redrive", "--projection", "user_profiles"));
  /* Every action above is in the audit trail. */
  expect(0, true, "dlq.discard", ARGS("audit"));
}

/* cqrsctl replay status <id> until it says state (bounded: 60 s). */
static void await_replay_state(const char *id, const char *state) {
  char want[64];
  snprintf(want, sizeof want, "state: %s\n", state);
  for (int i = 0; i < 300; i++) {
    run_t r = ctl_open(ARGS("replay", "status", id));
    cr_assert_eq(r.rc, 0, "%s", r.err);
    bool ok = strstr(r.out, want) != NULL;
    run_free(&r);
    if (ok) return;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
  }
  cr_assert_fail("replay %s never said %s", id, want);
}

static pid_t start_projector(void) {
  return tk_start(&env, TK_PROJECTOR, (const char *const[]){"PROJECTION_TEST_REFUSE_NAME=" POISON_NAME, NULL});
}

/* Applies a replay of user_profiles while no projector runs (it stays
 * pending, whatever the machine's speed); its id into id. */
static void pending_replay(char id[64]) {
  tk_stop(stack[TK_PROJECTOR], SIGTERM);
  stack[TK_PROJECTOR] = 0;
  run_t r = ctl_open(ARGS("replay", "start", "user_profiles", "--from", "beginning", "--apply"));
  cr_assert_eq(r.rc, 0, "%s", r.err);
  cr_assert_eq(sscanf(r.out, "replay started: %63s", id), 1, "%s", r.out);
  run_free(&r);
}

Test(cqrsctl_replay, pause_resume_and_cancel) {
  char id[64];
  pending_replay(id);
  run_t r = ctl_open(ARGS("replay", "pause", id));
  cr_assert_eq(r.rc, 0, "pause: %s%s", r.out, r.err);
  char want[96];
  snprintf(want, sizeof want, "replayId: %s\n", id);
  cr_assert_not_null(strstr(r.out, want), "pause prints the replay: %s", r.out);
  run_free(&r);
  stack[TK_PROJECTOR] = start_projector();
  await_replay_state(id, "paused");
  r = ctl_open(ARGS("replay", "resume", id));
  cr_assert_eq(r.rc, 0, "resume: %s%s", r.out, r.err);
  cr_assert_not_null(strstr(r.out, want), "%s", r.out);
  run_free(&r);
  r = ctl_open(ARGS("replay", "status", id, "--watch", "--interval", "0.2"));
  cr_assert_eq(r.rc, 0, "the resumed replay did not complete: %s%s", r.out, r.err);
  run_free(&r);
  expect(1, false, "cqrsctl: 409: ", ARGS("replay", "resume", id)); /* completed */

  /* cancelled: status --watch ends with exit 4 */
  pending_replay(id);
  snprintf(want, sizeof want, "replayId: %s\n", id);
  expect(0, true, want, ARGS("replay", "cancel", id));
  stack[TK_PROJECTOR] = start_projector();
  await_replay_state(id, "cancelled");
  r = ctl_open(ARGS("replay", "status", id, "--watch", "--interval", "0.2"));
  cr_assert_eq(r.rc, 4, "watch of a cancelled replay: %d %s%s", r.rc, r.out, r.err);
  run_free(&r);
  expect(1, false, "cqrsctl: 409: ", ARGS("replay", "cancel", id));
  expect(0, true, "replay.cancel", ARGS("audit"));
}

Test(cqrsctl_replay, sagas_list_and_show) {
  saga = tk_start(&env, TK_SAGA, NULL);
  char *b = tk_command(&env, 201,
                       "{\"commandType\":\"CreateOrder\",\"userId\":\"no-such-user-ctl\",\"totalAmount\":1,"
                       "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}]}");
  char *order = tk_json_string(b, "aggregateId");
  free(b);
  cr_assert_not_null(order);
  /* its placement saga compensates (no such user) */
  char *id = NULL;
  for (int i = 0; i < 300 && !id; i++) {
    run_t r = ctl_open(ARGS("--json", "sagas", "list", "--type", "order_placement", "--key", order));
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *at = strstr(r.out, "\"sagaId\":\""); /* the one item's, a top-level member of none */
    if (at && strstr(r.out, "\"state\":\"compensated\"")) id = strndup(at + 10, strcspn(at + 10, "\""));
    run_free(&r);
    if (!id) {
      struct timespec ts = {0, 200 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  cr_assert_not_null(id, "order %s's placement saga never compensated", order);
  run_t r = ctl_open(ARGS("sagas", "list", "--key", order));
  cr_assert_eq(r.rc, 0, "%s", r.err);
  cr_assert_not_null(strstr(r.out, id), "%s", r.out);
  run_free(&r);
  r = ctl_open(ARGS("sagas", "show", id));
  cr_assert_eq(r.rc, 0, "%s%s", r.out, r.err);
  char want[128];
  snprintf(want, sizeof want, "sagaId: %s\n", id);
  cr_assert_not_null(strstr(r.out, want), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "\nstate: compensated\n"), "%s", r.out);
  snprintf(want, sizeof want, "\nkey: %s\n", order);
  cr_assert_not_null(strstr(r.out, want), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "\nsteps: ["), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "RecordUserOrder"), "the owner check is among the steps: %s", r.out);
  cr_assert_not_null(strstr(r.out, "USER_NOT_FOUND"), "the compensation is among the steps: %s", r.out);
  run_free(&r);
  expect(1, false, "cqrsctl: 404: ", ARGS("sagas", "show", "no-such-saga"));
  free(id);
  free(order);
}
