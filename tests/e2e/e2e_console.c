/* End to end: the web console in a real browser. Starts the four services
 * with authentication on, then runs tests/browser/console_test.py (Selenium from
 * the pinned venv of tests/browser/venv.sh, Debian's chromium and
 * chromium-driver, headless) against it with a platform token, which the
 * script types into the page; then, on a whole stack with AUTH=off, a dry
 * run and an applied replay through the page. A missing browser fails the
 * test with the script's message; it is never skipped. Also checks, over plain HTTP, what
 * the browser cannot see: the files are served without a credential, with
 * their content types and a content security policy, and the data routes
 * still want one. */
#include "testkit.h"
#include "tk_auth.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static tk_env_t env;
static pid_t admin;
static tk_auth_t *auth;
static char *platform_token;

static pid_t stack[3];

/* The whole system with AUTH=on: the console's sections read topics the
 * other services make (the dead letters'). */
static void setup(void) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  const char *extra[TK_AUTH_ENV_MAX];
  const char *const *e = tk_auth_env(auth, (const char *const[]){"TOPIC_REPLICATION=1", NULL}, extra);
  admin = tk_start(&env, TK_ADMIN, e);
  for (tk_service_t s = TK_COMMAND; s <= TK_QUERY; s++) stack[s] = tk_start(&env, s, e);
  platform_token = tk_auth_token(auth, NULL, "platform:admin", 600);
}

static void teardown(void) {
  tk_stop_all(stack);
  if (admin > 0) tk_stop(admin, SIGTERM);
  admin = 0;
  tk_auth_destroy(auth);
  auth = NULL;
  free(platform_token);
}

TestSuite(console, .init = setup, .fini = teardown, .timeout = 600);

static void expect_file(const char *path, const char *type, const char *contains) {
  tk_response_t r;
  cr_assert(tk_http("GET", env.admin_port, path, NULL, 0, &r), "admin-svc does not answer");
  cr_assert_eq(r.status, 200, "GET %s without a credential: %d %s", path, r.status, r.body);
  cr_assert_not_null(strstr(r.headers, type), "GET %s: %s", path, r.headers);
  cr_assert_not_null(strstr(r.headers, "Content-Security-Policy: default-src 'none'"), "%s", r.headers);
  cr_assert_not_null(strstr(r.body, contains), "GET %s lacks %s", path, contains);
  tk_response_cleanup(&r);
}

Test(console, files_open_data_closed) {
  expect_file("/", "Content-Type: text/html; charset=utf-8", "<title>cqrs console</title>");
  expect_file("/console/console.js", "Content-Type: text/javascript", "sessionStorage");
  expect_file("/console/console.css", "Content-Type: text/css", ":focus-visible");
  tk_response_t r;
  cr_assert(tk_http("GET", env.admin_port, "/console/session.json", NULL, 0, &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strncmp(r.body, "{\"auth\":true,\"sections\":{\"projections\":", 39) == 0, "%s", r.body);
  cr_assert_not_null(strstr(r.body, "\"sagas\":"), "%s", r.body);
  tk_response_cleanup(&r);
  cr_assert(tk_http("GET", env.admin_port, "/console/nothing.js", NULL, 0, &r));
  cr_assert_eq(r.status, 404);
  tk_response_cleanup(&r);
  /* The root is exact: other paths are not the page. */
  cr_assert(tk_http("GET", env.admin_port, "/elsewhere", NULL, 0, &r));
  cr_assert_eq(r.status, 404);
  tk_response_cleanup(&r);
  cr_assert(tk_http("GET", env.admin_port, "/v1/admin/tenants", NULL, 0, &r));
  cr_assert_eq(r.status, 401, "a data route without a credential: %d", r.status);
  tk_response_cleanup(&r);
}

/* Runs cmd through the shell; its output goes to the test's log. Returns
 * the exit status (-1 when it could not run). */
static int shell(const char *cmd) {
  int status = system(cmd);
  return status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Runs tests/browser/console_test.py against the admin-svc on env's port
 * with token (NULL: none) and checks (CONSOLE_CHECKS); fails the test unless
 * every check passed. */
static void browser(const char *token, const char *checks) {
  /* The venv (pinned Selenium); its python's path on stdout. */
  FILE *p = popen("bash " CQRS_SOURCE_DIR "/tests/browser/venv.sh", "r");
  cr_assert_not_null(p);
  char python[512] = "";
  if (!fgets(python, sizeof python, p)) python[0] = '\0';
  int st = pclose(p);
  python[strcspn(python, "\n")] = '\0';
  cr_assert(st == 0 && python[0], "tests/browser/venv.sh failed (python3-venv and PyPI needed the first time)");
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", env.admin_port);
  setenv("CONSOLE_URL", url, 1);
  setenv("CONSOLE_CHECKS", checks, 1);
  if (token)
    setenv("CONSOLE_TOKEN", token, 1); /* to the child only, never printed */
  else
    unsetenv("CONSOLE_TOKEN");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' %s/tests/browser/console_test.py 1>&2", python, CQRS_SOURCE_DIR);
  int rc = shell(cmd);
  unsetenv("CONSOLE_TOKEN");
  cr_assert_eq(rc, 0, "the console test in chromium failed (exit %d): see its FAIL line above", rc);
}

/* AUTH=on: the page asks for the token, takes it from the keyboard, lists. */
Test(console, token_in_a_real_browser) { browser(platform_token, "page"); }

/* ---- a whole stack (AUTH=off): a dry run and an applied replay ---- */

static void setup_stack(void) {
  tk_env_init(&env);
  tk_start_all(&env, stack);
  admin = tk_start(&env, TK_ADMIN, (const char *const[]){"TOPIC_REPLICATION=1", NULL});
  for (int i = 0; i < 12; i++)
    free(tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"b%d.%s@example.com\",\"name\":\"B\"}", i,
                    env.prefix));
}

static void teardown_stack(void) {
  if (admin > 0) tk_stop(admin, SIGTERM);
  admin = 0;
  tk_stop_all(stack);
}

TestSuite(console_stack, .init = setup_stack, .fini = teardown_stack, .timeout = 600);

Test(console_stack, replay_in_a_real_browser) { browser(NULL, "replay"); }
