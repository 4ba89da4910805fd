/* cqrs-token: make a signing key and sign access tokens for development and
 * tests (wiring only; the work is in token.c). */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *to) {
  fputs("usage: cqrs-token keygen --dir DIR [--alg ES256|RS256]\n"
        "       cqrs-token sign --key FILE --iss ISS --aud AUD --sub SUB [--tenant T] --scope \"a b\" [--ttl SECONDS]\n"
        "\n"
        "keygen  writes DIR/signing-key.jwk (the private key, mode 0600) and DIR/jwks.json\n"
        "        (the public key set to serve or point AUTH_JWKS_FILE at); default alg ES256.\n"
        "sign    prints a JWT signed with the private key FILE; --ttl defaults to 3600.\n"
        "        Omit --tenant for a platform administrator (--scope platform:admin).\n",
        to);
}

/* Writes text to path with mode, replacing it. */
static bool write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0 || fchmod(fd, mode) != 0) {
    fprintf(stderr, "cqrs-token: %s: %s\n", path, strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  bool ok = off == len && write(fd, "\n", 1) == 1;
  if (close(fd) != 0) ok = false;
  if (!ok) fprintf(stderr, "cqrs-token: cannot write %s\n", path);
  return ok;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "re");
  if (!f) {
    fprintf(stderr, "cqrs-token: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t cap = 0, len = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      char *grown = realloc(buf, cap = cap * 2 + 8192);
      if (!grown) break;
      buf = grown;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
  }
  fclose(f);
  if (buf) buf[len] = '\0';
  return buf;
}

static int keygen(int argc, char **argv) {
  const char *dir = NULL, *alg = "ES256";
  static const struct option opts[] = {{"dir", required_argument, 0, 'd'}, {"alg", required_argument, 0, 'a'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    if (c == 'd') dir = optarg;
    else if (c == 'a') alg = optarg;
    else {
      usage(c == 'h' ? stdout : stderr);
      return c == 'h' ? 0 : 2;
    }
  }
  if (!dir) {
    usage(stderr);
    return 2;
  }
  char *priv, *jwks;
  cqrs_error_t err;
  if (!cqrs_token_keygen(alg, &priv, &jwks, &err)) {
    fprintf(stderr, "cqrs-token: %s\n", err.message);
    return 1;
  }
  char key_path[4096], jwks_path[4096];
  snprintf(key_path, sizeof key_path, "%s/signing-key.jwk", dir);
  snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
  bool ok = write_file(key_path, priv, 0600) && write_file(jwks_path, jwks, 0644);
  explicit_bzero(priv, strlen(priv));
  free(priv);
  free(jwks);
  if (ok) printf("wrote %s (private, 0600) and %s\n", key_path, jwks_path);
  return ok ? 0 : 1;
}

static int sign(int argc, char **argv) {
  const char *key = NULL, *iss = NULL, *aud = NULL, *sub = NULL, *tenant = NULL, *scope = NULL;
  long ttl = 3600;
  static const struct option opts[] = {
      {"key", required_argument, 0, 'k'},   {"iss", required_argument, 0, 'i'},
      {"aud", required_argument, 0, 'a'},   {"sub", required_argument, 0, 's'},
      {"tenant", required_argument, 0, 't'}, {"scope", required_argument, 0, 'c'},
      {"ttl", required_argument, 0, 'l'},   {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    switch (c) {
    case 'k': key = optarg; break;
    case 'i': iss = optarg; break;
    case 'a': aud = optarg; break;
    case 's': sub = optarg; break;
    case 't': tenant = optarg; break;
    case 'c': scope = optarg; break;
    case 'l': {
      char *end;
      ttl = strtol(optarg, &end, 10);
      if (*end || ttl <= 0) {
        fprintf(stderr, "cqrs-token: --ttl must be a positive number of seconds\n");
        return 2;
      }
      break;
    }
    default: usage(c == 'h' ? stdout : stderr); return c == 'h' ? 0 : 2;
    }
  }
  if (!key || !iss || !aud || !sub || !scope) {
    usage(stderr);
    return 2;
  }
  char *key_json = read_file(key);
  if (!key_json) return 1;
  char *claims = cqrs_token_claims(iss, aud, sub, tenant, scope, (int64_t)time(NULL), ttl);
  cqrs_error_t err;
  char *jwt = claims ? cqrs_token_sign(key_json, claims, &err) : NULL;
  explicit_bzero(key_json, strlen(key_json));
  free(key_json);
  free(claims);
  if (!jwt) {
    fprintf(stderr, "cqrs-token: %s\n", claims ? err.message : "out of memory");
    return 1;
  }
  printf("%s\n", jwt);
  free(jwt);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "keygen") == 0) return keygen(argc - 1, argv + 1);
  if (strcmp(argv[1], "sign") == 0) return sign(argc - 1, argv + 1);
  fprintf(stderr, "cqrs-token: unknown command %s\n", argv[1]);
  usage(stderr);
  return 2;
}
