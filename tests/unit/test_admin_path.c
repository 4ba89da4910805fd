/* admin-svc's paths (admin-svc/path.h): under /v1/admin/tenants/, which are
 * a tenant, its keys or one key, and that anything else is none of them;
 * under /v1/schemas/, the segments, and which paths have none. */
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

/* The schema registry's paths under /v1/schemas/ (admin_schema_path_split):
 * segments in order, rebuilt to the input. */
static void assert_segments(const char *tail, size_t n, const char *const *want) {
  admin_schema_path_t path;
  cr_assert(admin_schema_path_split(tail, &path), "\"%s\" was not split", tail);
  cr_assert_eq(path.n, n, "\"%s\": %zu segments", tail, path.n);
  for (size_t i = 0; i < n; i++) cr_assert_str_eq(path.seg[i], want[i], "\"%s\": segment %zu", tail, i);
}

Test(admin_path, schema_paths_split_into_segments) {
  assert_segments("subjects", 1, (const char *const[]){"subjects"});
  assert_segments("subjects/Widget/versions/latest", 4,
                  (const char *const[]){"subjects", "Widget", "versions", "latest"});
  assert_segments("subjects/Widget/versions/1/schema", 5,
                  (const char *const[]){"subjects", "Widget", "versions", "1", "schema"});
  assert_segments("compatibility/subjects/OrderCreated/versions/latest", 5,
                  (const char *const[]){"compatibility", "subjects", "OrderCreated", "versions", "latest"});
  assert_segments("a/b/c/d/e/f", 6, (const char *const[]){"a", "b", "c", "d", "e", "f"});
  assert_segments("config/Order Created.v1", 2, (const char *const[]){"config", "Order Created.v1"});
}

Test(admin_path, schema_path_length_limit) {
  char tail[ADMIN_SCHEMA_PATH_MAX + 2];
  memset(tail, 'x', sizeof tail);
  tail[ADMIN_SCHEMA_PATH_MAX] = '\0';
  admin_schema_path_t path;
  cr_assert(admin_schema_path_split(tail, &path), "%d bytes", ADMIN_SCHEMA_PATH_MAX);
  cr_assert_eq(path.n, 1);
  cr_assert_eq(strlen(path.seg[0]), ADMIN_SCHEMA_PATH_MAX);
  tail[ADMIN_SCHEMA_PATH_MAX] = 'x';
  tail[ADMIN_SCHEMA_PATH_MAX + 1] = '\0';
  cr_assert_not(admin_schema_path_split(tail, &path), "%d bytes", ADMIN_SCHEMA_PATH_MAX + 1);
  cr_assert_eq(path.n, 0);
}

Test(admin_path, schema_paths_with_empty_or_too_many_segments_are_none) {
  static const char *const bad[] = {"",          "/",        "/subjects",     "subjects/", "subjects//versions",
                                    "config//",  "a/b/c/d/e/f/g", "a/b/c/d/e/f/", NULL};
  for (const char *const *b = bad; *b; b++) {
    admin_schema_path_t path;
    memset(&path, 'x', sizeof path);
    cr_expect_not(admin_schema_path_split(*b, &path), "\"%s\" was split", *b);
    cr_expect_eq(path.n, 0, "\"%s\" left %zu segments", *b, path.n);
  }
}
