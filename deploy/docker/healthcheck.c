/* Container HEALTHCHECK probe: GET /healthz on 127.0.0.1:$HTTP_PORT, exit 0 on 200.
 *
 * The run images have no shell and no curl, so the Dockerfiles build this file
 * statically (-static, libc only) and copy the one binary in. Usage:
 *
 *   healthcheck <default-port> [path]
 *
 * HTTP_PORT from the environment wins over <default-port> (Docker runs the
 * HEALTHCHECK command with the container's environment). Exit 0 = healthy,
 * 1 = anything else (no answer within 2 s, not HTTP, not 200). Kubernetes does
 * not use this: the Helm chart probes /healthz and /readyz with httpGet. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int parse_port(const char *s) {
  if (!s || !*s) return -1;
  char *end;
  long n = strtol(s, &end, 10);
  return (*end || n < 1 || n > 65535) ? -1 : (int)n;
}

int main(int argc, char **argv) {
  int port = parse_port(getenv("HTTP_PORT"));
  if (port < 0 && argc > 1) port = parse_port(argv[1]);
  const char *path = argc > 2 ? argv[2] : "/healthz";
  if (port < 0) {
    fprintf(stderr, "healthcheck: no port (set HTTP_PORT or pass one)\n");
    return 1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1;
  struct timeval tv = {.tv_sec = 2};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("healthcheck: connect");
    return 1;
  }
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) return 1;
  char buf[64];
  size_t got = 0;
  while (got < sizeof buf - 1) { /* the status line is all we need */
    ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
    if (memchr(buf, '\n', got)) break;
  }
  buf[got] = '\0';
  close(fd);
  /* "HTTP/1.x 200 ..." */
  if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0) return 0;
  fprintf(stderr, "healthcheck: GET %s on port %d: %.40s\n", path, port, got ? buf : "(no answer)");
  return 1;
}
