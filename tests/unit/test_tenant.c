/* Tenant ids and the names derived from them (cqrs/tenant.h), and the tenant
 * an event carries (cqrs/event.h). */
#include "cqrs/event.h"
#include "cqrs/tenant.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

Test(tenant, valid_ids_are_lowercase_letters_digits_and_inner_hyphens) {
  const char *good[] = {"a", "dev", "acme-eu", "t0", "9lives", "abcdefghijklmnopqrstuvwxyz01234"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) cr_expect(cqrs_tenant_valid(good[i], NULL), "%s", good[i]);
  const char *bad[] = {"", "-a", "A", "a_b", "a/b", "a.b", "a b", "ü", "a\n", "abcdefghijklmnopqrstuvwxyz012345", "..",
                       "a$b"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cqrs_error_t err = {0};
    cr_expect_not(cqrs_tenant_valid(bad[i], &err), "'%s' was accepted", bad[i]);
    cr_expect_eq(err.code, CQRS_ERR_INVALID);
    cr_expect_str_eq(err.field, "tenantId");
  }
  cr_expect_not(cqrs_tenant_valid(NULL, NULL));
}

Test(tenant, no_tenant_database_is_another_tenants_with_a_suffix) {
  /* '_' is not a tenant character, so "<db>_<t>" names one tenant only */
  char *a = cqrs_tenant_db("cqrs", "a"), *ab = cqrs_tenant_db("cqrs", "a-b");
  cr_expect_str_eq(a, "cqrs_a");
  cr_expect_str_eq(ab, "cqrs_a-b");
  free(a);
  free(ab);
}

Test(tenant, aggregate_keys_split_back_into_tenant_and_id) {
  char *k = cqrs_tenant_key("acme", "order/42");
  cr_assert_str_eq(k, "acme/order/42");
  char t[CQRS_TENANT_MAX + 1];
  const char *id = NULL;
  cr_assert(cqrs_tenant_key_split(k, strlen(k), t, &id));
  cr_expect_str_eq(t, "acme");
  cr_expect_str_eq(id, "order/42"); /* the first '/' separates: a tenant has none */
  free(k);
  const char *bad[] = {"noslash", "/id", "acme/", "Acme/id", "a_b/id", "abcdefghijklmnopqrstuvwxyz012345/id"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_expect_not(cqrs_tenant_key_split(bad[i], strlen(bad[i]), t, &id), "%s", bad[i]);
}

static size_t headers_of(cqrs_event_t *ev, cqrs_header_t h[CQRS_EVENT_MAX_HEADERS], char vbuf[24]) {
  ev->id = "e1";
  ev->type = "UserCreated";
  ev->source = "test";
  ev->aggregate_type = "user";
  ev->aggregate_id = "u1";
  ev->time = "2026-12-02T00:00:00.000Z";
  ev->version = 1;
  return cqrs_event_to_headers(ev, h, vbuf);
}

Test(tenant, an_event_carries_its_tenant_and_old_events_belong_to_default) {
  cqrs_event_t ev = {.tenant = "acme"};
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = headers_of(&ev, h, vbuf);
  cqrs_event_t back;
  cqrs_error_t err;
  cr_assert(cqrs_event_from_record(&back, h, n, "{}", 2, &err), "%s", err.message);
  cr_expect_str_eq(back.tenant, "acme");
  cqrs_event_cleanup(&back);

  cqrs_event_t old = {0};
  n = headers_of(&old, h, vbuf);
  for (size_t i = 0; i < n; i++) cr_expect_str_neq(h[i].name, "ce_tenant");
  cr_assert(cqrs_event_from_record(&back, h, n, "{}", 2, &err), "%s", err.message);
  cr_expect_str_eq(back.tenant, CQRS_TENANT_DEFAULT);
  cqrs_event_cleanup(&back);
}

Test(tenant, an_event_with_an_invalid_tenant_is_refused_naming_the_header) {
  cqrs_event_t ev = {.tenant = "../etc"};
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = headers_of(&ev, h, vbuf);
  cqrs_event_t back;
  cqrs_error_t err;
  cr_expect_not(cqrs_event_from_record(&back, h, n, "{}", 2, &err));
  cr_expect_str_eq(err.field, "ce_tenant");
  cqrs_event_cleanup(&back);
}

Test(tenant, a_tenants_own_command_topic_and_back) {
  char *t = cqrs_tenant_topic("run1.", "acme");
  cr_assert_str_eq(t, "run1.tenant.acme.commands");
  char tenant[CQRS_TENANT_MAX + 1] = "";
  cr_assert(cqrs_tenant_topic_split("run1.", t, tenant));
  cr_assert_str_eq(tenant, "acme");
  free(t);
  cr_assert(cqrs_tenant_topic_split("", "tenant.acme-eu.commands", tenant));
  cr_assert_str_eq(tenant, "acme-eu");
  const char *not_ours[] = {
      "run1.commands",                  /* the shared topic */
      "run2.tenant.acme.commands",      /* another prefix */
      "run1.tenant..commands",          /* no tenant */
      "run1.tenant.Acme.commands",      /* not a tenant id */
      "run1.tenant.acme.eu.commands",   /* a '.' is the delimiter, never in a tenant id */
      "run1.tenant.acme.commandsx",     /* another suffix */
      "run1.tenant.acme.events",
      "run1.tenant.0123456789abcdef0123456789abcdef.commands", /* 32 characters: too long */
  };
  for (size_t i = 0; i < sizeof not_ours / sizeof *not_ours; i++) {
    strcpy(tenant, "unchanged");
    cr_expect_not(cqrs_tenant_topic_split("run1.", not_ours[i], tenant), "%s", not_ours[i]);
    cr_expect_str_eq(tenant, "unchanged", "%s wrote the tenant", not_ours[i]);
  }
}
