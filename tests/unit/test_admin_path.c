/* admin-svc's paths under /v1/admin/tenants/ (admin-svc/path.h): which are
 * a tenant, its keys or one key, and that anything else is none of them. */
#include "path.h"
#include "unit.h"

Test(admin_path, tenant_keys_and_one_key) {
  admin_path_t path;
  cr_assert_eq(admin_path_split("acme", &path), 1);
  cr_assert_str_eq(path.tenant, "acme");
  cr_assert_str_eq(path.key_id, "");
  cr_assert_eq(admin_path_split("acme/keys", &path), 2);
  cr_assert_str_eq(path.tenant, "acme");
  cr_assert_eq(admin_path_split("acme/keys/0123456789abcdef", &path), 3);
  cr_assert_str_eq(path.tenant, "acme");
  cr_assert_str_eq(path.key_id, "0123456789abcdef");
}

Test(admin_path, anything_else_is_no_path) {
  static const char *const bad[] = {"",
                                    "/keys",
                                    "acme/",
                                    "acme/keys/",
                                    "acme/keys/0123456789abcde",
                                    "acme/keys/0123456789abcdef0",
                                    "acme/keys/0123456789ABCDEF",
                                    "acme/keys/0123456789abcdef/",
                                    "acme/key",
                                    "acme/keysx",
                                    "acme//keys",
                                    "Acme Corp",
                                    "a-tenant-id-that-is-far-too-long-to-be-one",
                                    NULL};
  for (const char *const *b = bad; *b; b++) {
    admin_path_t path;
    memset(&path, 'x', sizeof path);
    cr_expect_eq(admin_path_split(*b, &path), 0, "\"%s\" was split", *b);
  }
}
