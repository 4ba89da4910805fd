/* The cqrs-token tool, run as a user would: --help, keygen (files and modes),
 * and a token from `sign` that an authenticator on the written JWKS accepts. */
#include "cqrs/auth.h"
#include "unit.h"

#include <sys/stat.h>
#include <sys/wait.h>

static char *run(const char *cmd, int *status) {
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char *out = calloc(1, 16384);
  size_t n = fread(out, 1, 16383, p);
  out[n] = '\0';
  *status = pclose(p);
  return out;
}

Test(cqrs_token, help_keygen_sign) {
  int st;
  char *out = run(CQRS_BIN_DIR "/cqrs-token --help", &st);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  cr_assert(strstr(out, "keygen") && strstr(out, "sign"), "%s", out);
  free(out);
  out = run(CQRS_BIN_DIR "/cqrs-token frobnicate 2>/dev/null", &st);
  cr_assert_eq(WEXITSTATUS(st), 2, "an unknown command is a usage error");
  free(out);

  char dir[256], cmd[1024], path[300];
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/cqrs-token-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
  cr_assert_not_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd, CQRS_BIN_DIR "/cqrs-token keygen --dir %s --alg RS256", dir);
  free(run(cmd, &st));
  cr_assert_eq(WEXITSTATUS(st), 0);
  struct stat sb;
  snprintf(path, sizeof path, "%s/signing-key.jwk", dir);
  cr_assert_eq(stat(path, &sb), 0);
  cr_assert_eq(sb.st_mode & 0777, 0600, "the private key is readable by its owner only");
  snprintf(path, sizeof path, "%s/jwks.json", dir);
  cr_assert_eq(stat(path, &sb), 0);

  snprintf(cmd, sizeof cmd,
           CQRS_BIN_DIR "/cqrs-token sign --key %s/signing-key.jwk --iss https://dev/ --aud cqrs --sub me "
                        "--tenant dev --scope 'commands:write queries:read' --ttl 60",
           dir);
  char *jwt = run(cmd, &st);
  cr_assert_eq(WEXITSTATUS(st), 0);
  jwt[strcspn(jwt, "\n")] = '\0';
  cr_assert_null(strstr(jwt, "\"d\""), "no key material in the token");

  char file_var[320];
  snprintf(file_var, sizeof file_var, "AUTH_JWKS_FILE=%s", path);
  char *env[] = {file_var, "AUTH_ISSUER=https://dev/", "AUTH_AUDIENCE=cqrs", NULL};
  cqrs_config_t cfg;
  cqrs_error_t err;
  cr_assert(cqrs_config_load(&cfg, env, 8080, &err), "%s", err.message);
  const cqrs_log_t log = {.service = "test", .level = CQRS_LOG_ERROR};
  cqrs_registry_t *reg = cqrs_registry_new();
  const char *k = "tenant/dev", *v = "{\"tenantId\":\"dev\",\"state\":\"active\",\"createdAt\":\"2026-01-01T00:00:00Z\"}";
  cr_assert(cqrs_registry_apply(reg, k, strlen(k), v, strlen(v), &err), "%s", err.message);
  cqrs_auth_t *a = cqrs_auth_new(&cfg, &log, reg, &err);
  cr_assert_not_null(a, "%s", err.message);
  char header[4096];
  snprintf(header, sizeof header, "Bearer %s", jwt);
  cqrs_principal_t who;
  cr_assert(cqrs_auth_verify(a, header, &who, &err), "%s", err.message);
  cr_assert_str_eq(who.tenant, "dev");
  cr_assert_str_eq(who.subject, "me");
  cr_assert_eq(who.scopes, CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ);

  snprintf(cmd, sizeof cmd, CQRS_BIN_DIR "/cqrs-token sign --key %s/jwks.json --iss i --aud a --sub s --scope x 2>&1",
           dir);
  out = run(cmd, &st);
  cr_assert_neq(WEXITSTATUS(st), 0, "a JWKS is not a signing key");
  free(out);

  cqrs_auth_destroy(a);
  cqrs_registry_destroy(reg);
  cqrs_config_cleanup(&cfg);
  free(jwt);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}
