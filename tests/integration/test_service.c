/* cqrs_service_init_ex's settings that depend on the kind of service: a
 * service whose handlers wait on a store gets more event loops by default. */
#include "cqrs/service.h"
#include "testkit.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

static long cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n;
}

/* The event loops a service started with threads (NULL: HTTP_THREADS unset) and flags gets. */
static int loops(const char *threads, unsigned flags) {
  char port[32], t[32];
  snprintf(port, sizeof port, "HTTP_PORT=%d", tk_free_port());
  snprintf(t, sizeof t, "HTTP_THREADS=%s", threads ? threads : "");
  char *envp[] = {port, "AUTH=off", threads ? t : NULL, NULL};
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  cr_assert(cqrs_service_init_ex(&svc, "test-svc", 0, envp, flags, &err), "%s", err.message);
  int n = svc.cfg.http_threads;
  cqrs_http_server_stop(svc.http);
  cqrs_service_cleanup(&svc);
  return n;
}

Test(service, blocking_handlers_get_more_event_loops_unless_http_threads_says) {
  cr_expect_eq(loops(NULL, 0), cores(), "a service's default: one event loop per core");
  cr_expect_eq(loops(NULL, CQRS_SERVICE_BLOCKING_HANDLERS), cores() * CQRS_BLOCKING_THREADS_PER_CORE,
               "handlers that wait on a store: %d per core", CQRS_BLOCKING_THREADS_PER_CORE);
  cr_expect_eq(loops("3", CQRS_SERVICE_BLOCKING_HANDLERS), 3, "HTTP_THREADS set wins");
  cr_expect_eq(loops("3", 0), 3);
}
