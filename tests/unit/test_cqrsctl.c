/* cqrsctl's pure part without a server: command lines into requests, answers
 * into text and progress bars, statuses into exit codes. */
#include "cqrsctl.h"
#include "verbs.h"

#include <criterion/criterion.h>
#include <string.h>

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static ctl_request_t req;
static char err[256];

static void cleanup(void) { ctl_request_cleanup(&req); }
TestSuite(cqrsctl, .fini = cleanup);

static bool parse(int argc, char *const *argv) {
  return ctl_parse(argc, argv, NULL, NULL, &req, err, sizeof err);
}

Test(cqrsctl, replay_start_is_a_dry_run_unless_apply) {
  char *a[] = {"cqrsctl", "replay", "start", "user_profiles", "--from", "beginning"};
  cr_assert(parse(ARGC(a), a), "%s", err);
  cr_assert_str_eq(req.method, "POST");
  cr_assert_str_eq(req.path, "/v1/admin/replays");
  cr_assert_str_eq(req.body, "{\"projection\":\"user_profiles\",\"from\":\"beginning\",\"dryRun\":true}");
  ctl_request_cleanup(&req);
  char *b[] = {"cqrsctl", "replay", "start", "user_profiles", "--from=2026-12-02T03:00:00.000Z", "--tenant", "acme",
               "--apply"};
  cr_assert(parse(ARGC(b), b), "%s", err);
  cr_assert_str_eq(req.body, "{\"projection\":\"user_profiles\",\"from\":\"2026-12-02T03:00:00.000Z\","
                             "\"tenant\":\"acme\",\"dryRun\":false}");
}

Test(cqrsctl, usage_errors_name_the_problem) {
  struct {
    int argc;
    char *argv[6];
    const char *says;
  } cases[] = {
      {1, {"cqrsctl"}, "no command"},
      {2, {"cqrsctl", "bogus"}, "unknown command \"bogus\""},
      {3, {"cqrsctl", "replay", "rewind"}, "unknown verb \"replay rewind\""},
      {4, {"cqrsctl", "replay", "start", "p"}, "needs --from"},
      {2 + 1, {"cqrsctl", "replay", "status"}, "usage: cqrsctl replay status <replay id>"},
      {5, {"cqrsctl", "replay", "status", "r1", "--bogus"}, "unknown option --bogus"},
      {5, {"cqrsctl", "replay", "status", "r1", "extra"}, "unexpected argument \"extra\""},
      {6, {"cqrsctl", "replay", "status", "r1", "--interval", "0"}, "--interval takes seconds"},
      {4, {"cqrsctl", "dlq", "discard", "0-1"}, "needs --reason"},
      {3, {"cqrsctl", "dlq", "redrive"}, "needs an id, or --all"},
      {5, {"cqrsctl", "dlq", "redrive", "0-1", "--all"}, "an id or a filter"},
      {4, {"cqrsctl", "keys", "issue", "acme"}, "needs --scopes"},
      {4, {"cqrsctl", "schemas", "check", "s"}, "needs --file"},
      {3, {"cqrsctl", "projections", "--url"}, "--url needs a value"},
      {5, {"cqrsctl", "replay", "status", "r1", "--watch=yes"}, "takes no value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_not(parse(cases[i].argc, cases[i].argv), "case %zu parsed", i);
    cr_assert_not_null(strstr(err, cases[i].says), "case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].says);
    cr_assert_null(req.path, "a failed parse keeps nothing");
  }
}

Test(cqrsctl, url_and_token_from_environment_flags_win) {
  char *a[] = {"cqrsctl", "tenants"};
  cr_assert(ctl_parse(ARGC(a), a, NULL, NULL, &req, err, sizeof err));
  cr_assert_str_eq(req.url, CTL_DEFAULT_URL);
  cr_assert_null(req.token);
  ctl_request_cleanup(&req);
  cr_assert(ctl_parse(ARGC(a), a, "http://env:1", "envtoken", &req, err, sizeof err));
  cr_assert_str_eq(req.url, "http://env:1");
  cr_assert_str_eq(req.token, "envtoken");
  ctl_request_cleanup(&req);
  char *b[] = {"cqrsctl", "--token=flagtoken", "tenants", "--url", "http://flag:2", "--json"};
  cr_assert(ctl_parse(ARGC(b), b, "http://env:1", "envtoken", &req, err, sizeof err), "%s", err);
  cr_assert_str_eq(req.url, "http://flag:2");
  cr_assert_str_eq(req.token, "flagtoken");
  cr_assert(req.json);
  /* A group alone lists. */
  cr_assert_str_eq(req.verb->name, "list");
  cr_assert_str_eq(req.path, "/v1/admin/tenants");
}

Test(cqrsctl, paths_are_percent_encoded_and_query_options_added) {
  char *a[] = {"cqrsctl", "keys", "revoke", "acme", "ab/c d"};
  cr_assert(parse(ARGC(a), a), "%s", err);
  cr_assert_str_eq(req.method, "DELETE");
  cr_assert_str_eq(req.path, "/v1/admin/tenants/acme/keys/ab%2Fc%20d");
  ctl_request_cleanup(&req);
  char *b[] = {"cqrsctl", "dlq", "list", "--projection", "user profiles", "--limit=5"};
  cr_assert(parse(ARGC(b), b), "%s", err);
  cr_assert_str_eq(req.path, "/v1/admin/dlq?projection=user%20profiles&limit=5");
  ctl_request_cleanup(&req);
  char *c[] = {"cqrsctl", "schemas", "check", "user.registered", "--file", "s.json"};
  cr_assert(parse(ARGC(c), c), "%s", err);
  cr_assert_str_eq(req.path, "/v1/schemas/compatibility/subjects/user.registered/versions/latest?verbose=true");
  cr_assert_str_eq(req.file, "s.json");
  ctl_request_set_file_text(&req, "{\"type\":\"object\"}\n", 18);
  cr_assert_str_eq(req.body, "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"object\\\"}\\n\"}");
}

Test(cqrsctl, bodies_of_the_other_writes) {
  char *a[] = {"cqrsctl", "dlq", "discard", "0-42", "--reason", "fixed \"by hand\""};
  cr_assert(parse(ARGC(a), a), "%s", err);
  cr_assert_str_eq(req.path, "/v1/admin/dlq/0-42/discard");
  cr_assert_str_eq(req.body, "{\"reason\":\"fixed \\\"by hand\\\"\"}");
  ctl_request_cleanup(&req);
  char *b[] = {"cqrsctl", "dlq", "redrive", "--projection", "user_profiles", "--event-type", "UserRenamed"};
  cr_assert(parse(ARGC(b), b), "%s", err);
  cr_assert_str_eq(req.path, "/v1/admin/dlq/redrive");
  cr_assert_str_eq(req.body, "{\"projection\":\"user_profiles\",\"eventType\":\"UserRenamed\"}");
  ctl_request_cleanup(&req);
  char *c[] = {"cqrsctl", "dlq", "redrive", "0-42"};
  cr_assert(parse(ARGC(c), c), "%s", err);
  cr_assert_str_eq(req.path, "/v1/admin/dlq/0-42/redrive");
  cr_assert_null(req.body);
  ctl_request_cleanup(&req);
  char *d[] = {"cqrsctl", "keys", "issue", "acme", "--scopes", "commands:write,,queries:read", "--scope", "admin"};
  cr_assert(parse(ARGC(d), d), "%s", err);
  cr_assert_str_eq(req.body, "{\"scopes\":[\"commands:write\",\"queries:read\",\"admin\"]}");
  ctl_request_cleanup(&req);
  char *e[] = {"cqrsctl", "tenants", "create", "acme"};
  cr_assert(parse(ARGC(e), e), "%s", err);
  cr_assert_str_eq(req.body, "{\"tenantId\":\"acme\"}");
  ctl_request_cleanup(&req);
  char *f[] = {"cqrsctl", "replay", "status", "r1", "--watch", "--interval", "0.5"};
  cr_assert(parse(ARGC(f), f), "%s", err);
  cr_assert(req.watch);
  cr_assert_eq(req.interval_ms, 500);
}

Test(cqrsctl, help_everywhere_sends_nothing) {
  char *a[] = {"cqrsctl", "--help"};
  cr_assert(parse(ARGC(a), a));
  cr_assert(req.help);
  cr_assert_null(req.verb);
  bson_string_t *out = bson_string_new(NULL);
  ctl_help(NULL, out);
  /* The general help names every verb and every exit code. */
  for (size_t i = 0; i < ctl_verbs_count; i++) {
    char words[64];
    snprintf(words, sizeof words, "%s %s", ctl_verbs[i].group, ctl_verbs[i].name);
    cr_assert_not_null(strstr(out->str, words), "help lacks %s", words);
  }
  for (int code = 0; code <= 4; code++) {
    char line[8];
    snprintf(line, sizeof line, "  %d  ", code);
    cr_assert_not_null(strstr(out->str, line), "help lacks exit code %d", code);
  }
  bson_string_free(out, true);
  ctl_request_cleanup(&req);
  /* Every verb has its own help. */
  for (size_t i = 0; i < ctl_verbs_count; i++) {
    char *b[] = {"cqrsctl", (char *)ctl_verbs[i].group, (char *)ctl_verbs[i].name, "-h"};
    cr_assert(parse(ARGC(b), b), "%s", err);
    cr_assert(req.help);
    cr_assert_eq(req.verb, &ctl_verbs[i]);
    cr_assert_null(req.path, "help sends nothing");
    out = bson_string_new(NULL);
    ctl_help(req.verb, out);
    cr_assert_not_null(strstr(out->str, ctl_verbs[i].usage));
    cr_assert_not_null(strstr(out->str, "exit codes"));
    bson_string_free(out, true);
    ctl_request_cleanup(&req);
  }
}

Test(cqrsctl, exit_codes_for_statuses) {
  cr_assert_eq(ctl_exit_for_status(200), CTL_EXIT_OK);
  cr_assert_eq(ctl_exit_for_status(202), CTL_EXIT_OK);
  cr_assert_eq(ctl_exit_for_status(400), CTL_EXIT_REFUSED);
  cr_assert_eq(ctl_exit_for_status(409), CTL_EXIT_REFUSED);
  cr_assert_eq(ctl_exit_for_status(0), CTL_EXIT_UNAVAILABLE);
  cr_assert_eq(ctl_exit_for_status(503), CTL_EXIT_UNAVAILABLE);
}

static char *render(char *const *argv, int argc, const char *body, int *rc) {
  cr_assert(parse(argc, argv), "%s", err);
  bson_string_t *out = bson_string_new(NULL);
  *rc = ctl_render(&req, body, strlen(body), out);
  ctl_request_cleanup(&req);
  return bson_string_free(out, false);
}

Test(cqrsctl, lists_are_tables) {
  char *a[] = {"cqrsctl", "projections"};
  int rc;
  char *text = render(a, ARGC(a),
                      "{\"items\":[{\"projection\":\"user_profiles\",\"state\":\"running\",\"lag\":[],"
                      "\"lagTotal\":12,\"eventsApplied\":3400,\"lastError\":null,\"updatedAt\":\"T1\"},"
                      "{\"projection\":\"orders\",\"state\":\"halted\",\"lagTotal\":0,\"eventsApplied\":7,"
                      "\"lastError\":\"bad\\nevent\",\"updatedAt\":\"T2\"}],\"nextCursor\":\"abc\"}",
                      &rc);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(text, "PROJECTION     STATE    LAG  APPLIED  UPDATED  LAST ERROR\n"
                         "user_profiles  running  12   3400     T1       -\n"
                         "orders         halted   0    7        T2       bad event\n"
                         "more: add --cursor abc\n");
  bson_free(text);
  char *b[] = {"cqrsctl", "keys", "list", "acme"};
  text = render(b, ARGC(b), "{\"items\":[]}", &rc);
  cr_assert_str_eq(text, "(none)\n");
  bson_free(text);
}

Test(cqrsctl, a_dry_run_shows_its_numbers) {
  char *a[] = {"cqrsctl", "replay", "start", "user_profiles", "--from", "beginning"};
  int rc;
  char *text = render(a, ARGC(a),
                      "{\"dryRun\":true,\"projection\":\"user_profiles\",\"from\":\"beginning\",\"tenant\":null,"
                      "\"partitions\":[{\"partition\":0,\"fromOffset\":0,\"endOffset\":120,\"events\":120},"
                      "{\"partition\":1,\"fromOffset\":5,\"endOffset\":100,\"events\":95}],\"events\":215,"
                      "\"aggregates\":40,\"estimatedSeconds\":1.25}",
                      &rc);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(text, "dry run (nothing changed): replay of user_profiles from beginning, every tenant\n"
                         "PARTITION  FROM OFFSET  END OFFSET  EVENTS\n"
                         "0          0            120         120\n"
                         "1          5            100         95\n"
                         "events: 215\n"
                         "aggregates: 40\n"
                         "estimated time: 1.2 s\n"
                         "to start it, run the same command with --apply\n");
  bson_free(text);
  char *b[] = {"cqrsctl", "replay", "start", "p", "--from", "beginning", "--apply"};
  text = render(b, ARGC(b), "{\"replayId\":\"r-7\"}", &rc);
  cr_assert_str_eq(text, "replay started: r-7\nfollow it with: cqrsctl replay status r-7 --watch\n");
  bson_free(text);
}

Test(cqrsctl, progress_bar_and_plain_line) {
  const char *body = "{\"replayId\":\"r1\",\"projection\":\"p\",\"state\":\"running\",\"applied\":420,"
                     "\"total\":1000,\"rate\":350.4,\"etaSeconds\":65.4}";
  ctl_progress_t p;
  cr_assert(ctl_progress_read(body, strlen(body), &p));
  cr_assert_not(p.finished);
  bson_string_t *out = bson_string_new(NULL);
  ctl_progress_line(&p, true, 60, out);
  cr_assert_str_eq(out->str, "[#######...........]  42% 420/1000 350 ev/s ETA 1:05 running");
  cr_assert_eq(out->len, 60, "the line fills the width: %zu", out->len);
  bson_string_truncate(out, 0);
  ctl_progress_line(&p, false, 0, out);
  cr_assert_str_eq(out->str, "running 420/1000 42% 350 ev/s eta 65s");
  bson_string_free(out, true);

  const char *done = "{\"replayId\":\"r1\",\"state\":\"completed\",\"applied\":0,\"total\":0,\"rate\":0,"
                     "\"etaSeconds\":null}";
  cr_assert(ctl_progress_read(done, strlen(done), &p));
  cr_assert(p.finished);
  cr_assert_eq(p.exit_code, CTL_EXIT_OK);
  out = bson_string_new(NULL);
  ctl_progress_line(&p, true, 50, out);
  cr_assert_not_null(strstr(out->str, "[##########"), "%s", out->str);
  cr_assert_not_null(strstr(out->str, "100% 0/0"), "a completed replay is 100%%: %s", out->str);
  bson_string_free(out, true);

  const char *failed = "{\"replayId\":\"r1\",\"state\":\"failed\",\"applied\":5,\"total\":10}";
  cr_assert(ctl_progress_read(failed, strlen(failed), &p));
  cr_assert(p.finished);
  cr_assert_eq(p.exit_code, CTL_EXIT_REPLAY_ENDED);
  cr_assert_not(ctl_progress_read("{\"items\":[]}", 12, &p), "not a replay");
  cr_assert_not(ctl_progress_read("nope", 4, &p));
}

Test(cqrsctl, schema_checks_and_errors) {
  char *a[] = {"cqrsctl", "schemas", "check", "s", "--file", "f"};
  int rc;
  char *text = render(a, ARGC(a), "{\"is_compatible\":false,\"messages\":[\"field x removed\"]}", &rc);
  cr_assert_eq(rc, CTL_EXIT_REFUSED);
  cr_assert_str_eq(text, "NOT compatible\n  field x removed\n");
  bson_free(text);
  char *b[] = {"cqrsctl", "schemas"};
  text = render(b, ARGC(b), "[\"a.b\",\"c.d\"]", &rc);
  cr_assert_str_eq(text, "a.b\nc.d\n");
  bson_free(text);

  char *c[] = {"cqrsctl", "sagas", "--url", "http://x:1"};
  cr_assert(parse(ARGC(c), c));
  bson_string_t *out = bson_string_new(NULL);
  ctl_render_error(&req, 404, "{\"error\":\"no such route\"}", 25, out);
  cr_assert_str_eq(out->str, "cqrsctl: sagas: not available on this admin-svc (404 no such route)\n");
  bson_string_truncate(out, 0);
  ctl_render_error(&req, 409, "{\"error\":\"a replay of p is running: r1\"}", 40, out);
  cr_assert_str_eq(out->str, "cqrsctl: 409: a replay of p is running: r1\n");
  bson_string_truncate(out, 0);
  ctl_render_error(&req, 422, "{\"error_code\":42201,\"message\":\"invalid schema\"}", 47, out);
  cr_assert_str_eq(out->str, "cqrsctl: 422: invalid schema\n");
  bson_string_truncate(out, 0);
  ctl_render_error(&req, 0, "", 0, out);
  cr_assert_str_eq(out->str, "cqrsctl: cannot reach admin-svc at http://x:1 (set --url or CQRS_ADMIN_URL)\n");
  bson_string_free(out, true);
}
