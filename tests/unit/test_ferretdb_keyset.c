/* Keyset pages over FerretDB's tables in PostgreSQL (cqrs/ferretdb_keyset.h):
 * which lists match an index, the statements, and the check of a document
 * read back by _id; and that every projection's keyset lists name an index
 * that can serve them. */
#include "unit.h"

#include "projection.h"

#include "cqrs/ferretdb_keyset.h"

static const char *const STATUS_KEYS[] = {"status", "createdAt", "_id"};
static const char *const EMAIL_KEYS[] = {"email", "_id"};

/* U+10FFFF, as routes/customers.c bounds a prefix */
#define TOP "\xf4\x8f\xbf\xbf"

static bool match_json(const char *const *keys, size_t n, const char *filter_json, const char *sort,
                       cqrs_keyset_query_t *q, bson_t **filter) {
  *filter = u_parse(filter_json);
  return cqrs_keyset_match(keys, n, *filter, sort, q);
}

Test(ferretdb_keyset, an_equality_list_sorted_on_the_index_tail_matches) {
  cqrs_keyset_query_t q;
  bson_t *f;
  cr_assert(match_json(STATUS_KEYS, 3, "{\"status\": \"Shipped\"}", "createdAt", &q, &f));
  cr_expect_eq(q.n_keys, 3);
  cr_expect_str_eq(q.keys[0], "status");
  cr_expect_str_eq(q.equal[0], "Shipped");
  cr_expect_null(q.lower);
  cr_expect_null(q.upper);
  bson_destroy(f);
}

Test(ferretdb_keyset, a_prefix_range_on_the_sort_key_matches) {
  cqrs_keyset_query_t q;
  bson_t *f = bson_new(), range;
  BSON_APPEND_DOCUMENT_BEGIN(f, "email", &range);
  BSON_APPEND_UTF8(&range, "$gte", "anna.1");
  BSON_APPEND_UTF8(&range, "$lt", "anna.1" TOP);
  bson_append_document_end(f, &range);
  cr_assert(cqrs_keyset_match(EMAIL_KEYS, 2, f, "email", &q));
  cr_expect_str_eq(q.lower, "anna.1");
  cr_expect_str_eq(q.upper, "anna.1" TOP);
  cr_expect_not(q.lower_open);
  cr_expect_not(q.upper_closed);
  bson_destroy(f);
}

Test(ferretdb_keyset, any_other_list_is_left_to_the_store) {
  static const char *const filters[] = {
      "{\"status\": \"Shipped\"}",                              /* sorted on another field (below) */
      "{}",                                                     /* the equality is missing */
      "{\"status\": \"Shipped\", \"userId\": \"u\"}",           /* a key the index does not have */
      "{\"status\": 3}",                                        /* not a string */
      "{\"status\": null}",                                     /* not a string */
      "{\"status\": {\"$ne\": \"Shipped\"}}",                   /* an operator */
      "{\"createdAt\": {\"$gte\": \"a\"}}",                     /* a range, but no equality */
      "{\"status\": \"S\", \"createdAt\": {\"$in\": [\"a\"]}}", /* not a range */
      "{\"status\": \"S\", \"createdAt\": {\"$gte\": 1}}",      /* a range of numbers */
      "{\"status\": \"S\", \"_id\": \"x\"}",                    /* the id */
      "{\"status\": \"S\", \"status\": \"T\"}",                 /* twice */
  };
  for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
    cqrs_keyset_query_t q;
    bson_t *f;
    bool m = match_json(STATUS_KEYS, 3, filters[i], i == 0 ? "updatedAt" : "createdAt", &q, &f);
    cr_expect_not(m, "matched: %s", filters[i]);
    bson_destroy(f);
  }
  /* a string PostgreSQL's text cannot hold */
  bson_t *f = bson_new();
  bson_append_utf8(f, "status", -1, "a\0b", 3);
  cqrs_keyset_query_t q;
  cr_expect_not(cqrs_keyset_match(STATUS_KEYS, 3, f, "createdAt", &q));
  bson_destroy(f);
  /* an index whose tail is not (sort key, _id), or whose keys need quoting */
  static const char *const no_id[] = {"status", "createdAt"};
  static const char *const quoted[] = {"sta'tus", "createdAt", "_id"};
  bson_t *g = u_parse("{\"status\": \"Shipped\"}");
  cr_expect_not(cqrs_keyset_match(no_id, 2, g, "createdAt", &q));
  cr_expect_not(cqrs_keyset_match(quoted, 3, g, "createdAt", &q));
  bson_destroy(g);
}

Test(ferretdb_keyset, the_index_and_the_statement_use_the_same_expressions) {
  char *ddl = cqrs_keyset_index_sql("cqrs_keyset_1", "db_t\"x", "order_summaries_1", STATUS_KEYS, 3);
  cr_assert_not_null(ddl);
  cr_expect_str_eq(ddl, "CREATE INDEX IF NOT EXISTS \"cqrs_keyset_1\" ON \"db_t\"\"x\".\"order_summaries_1\" "
                        "(((_jsonb->>'status') COLLATE \"C\"), ((_jsonb->>'createdAt') COLLATE \"C\"), "
                        "((_jsonb->>'_id') COLLATE \"C\"))");
  free(ddl);
  static const char *const quoted[] = {"a'b", "_id"};
  cr_expect_null(cqrs_keyset_index_sql("i", "s", "t", quoted, 2));
  cr_expect_null(cqrs_keyset_index_sql("i", "s", "t", STATUS_KEYS, 1));

  cqrs_keyset_query_t q;
  bson_t *f;
  cr_assert(match_json(STATUS_KEYS, 3, "{\"status\": \"Shipped\"}", "createdAt", &q, &f));
  q.limit = 51;
  const char *params[CQRS_KEYSET_KEYS_MAX + 4];
  int n;
  char *sql = cqrs_keyset_select_sql("db", "t", &q, params, &n);
  cr_expect_str_eq(sql, "SELECT _jsonb->>'_id', _jsonb->>'createdAt' FROM \"db\".\"t\" WHERE "
                        "((_jsonb->>'status') COLLATE \"C\") = $1 ORDER BY ((_jsonb->>'status') COLLATE \"C\"), "
                        "((_jsonb->>'createdAt') COLLATE \"C\"), ((_jsonb->>'_id') COLLATE \"C\") LIMIT 51");
  cr_expect_eq(n, 1);
  cr_expect_str_eq(params[0], "Shipped");
  free(sql);
  /* after a cursor, newest first */
  q.after_value = "2026-01-01T00:00:00Z";
  q.after_id = "o-1";
  q.descending = true;
  sql = cqrs_keyset_select_sql("db", "t", &q, params, &n);
  cr_expect(strstr(sql, " AND (((_jsonb->>'createdAt') COLLATE \"C\"), ((_jsonb->>'_id') COLLATE \"C\")) < ($2, $3) "
                        "ORDER BY ((_jsonb->>'status') COLLATE \"C\") DESC, ((_jsonb->>'createdAt') COLLATE \"C\") "
                        "DESC, ((_jsonb->>'_id') COLLATE \"C\") DESC LIMIT 51"),
            "%s", sql);
  cr_expect_eq(n, 3);
  cr_expect_str_eq(params[1], "2026-01-01T00:00:00Z");
  cr_expect_str_eq(params[2], "o-1");
  free(sql);
  bson_destroy(f);
}

Test(ferretdb_keyset, a_range_and_a_cursor_become_parameters_in_order) {
  cqrs_keyset_query_t q;
  bson_t *f;
  cr_assert(match_json(EMAIL_KEYS, 2, "{\"email\": {\"$gt\": \"a\", \"$lte\": \"b\"}}", "email", &q, &f));
  q.limit = 3;
  q.after_value = "a.x";
  q.after_id = "c-9";
  const char *params[CQRS_KEYSET_KEYS_MAX + 4];
  int n;
  char *sql = cqrs_keyset_select_sql("db", "t", &q, params, &n);
  cr_expect(strstr(sql, "WHERE ((_jsonb->>'email') COLLATE \"C\") > $1 AND ((_jsonb->>'email') COLLATE \"C\") <= $2 "
                        "AND (((_jsonb->>'email') COLLATE \"C\"), ((_jsonb->>'_id') COLLATE \"C\")) > ($3, $4) "),
            "%s", sql);
  cr_expect_eq(n, 4);
  const char *want[] = {"a", "b", "a.x", "c-9"};
  for (int i = 0; i < 4; i++) cr_expect_str_eq(params[i], want[i]);
  free(sql);
  bson_destroy(f);
}

Test(ferretdb_keyset, a_document_read_back_is_checked_against_the_list) {
  cqrs_keyset_query_t q;
  bson_t *f;
  cr_assert(match_json(STATUS_KEYS, 3, "{\"status\": \"Shipped\"}", "createdAt", &q, &f));
  static const struct {
    const char *doc;
    bool in;
  } status_docs[] = {
      {"{\"_id\": \"o\", \"status\": \"Shipped\"}", true},
      {"{\"_id\": \"o\", \"status\": \"Delivered\"}", false}, /* moved on since its id was read */
      {"{\"_id\": \"o\", \"status\": \"Shipped2\"}", false},
      {"{\"_id\": \"o\", \"status\": \"Ship\"}", false},
      {"{\"_id\": \"o\"}", false},
      {"{\"_id\": \"o\", \"status\": 1}", false},
  };
  for (size_t i = 0; i < sizeof status_docs / sizeof *status_docs; i++) {
    bson_t *d = u_parse(status_docs[i].doc);
    cr_expect_eq(cqrs_keyset_holds(&q, d), status_docs[i].in, "%s", status_docs[i].doc);
    bson_destroy(d);
  }
  bson_destroy(f);

  bson_t *g = bson_new(), range;
  BSON_APPEND_DOCUMENT_BEGIN(g, "email", &range);
  BSON_APPEND_UTF8(&range, "$gte", "anna.1");
  BSON_APPEND_UTF8(&range, "$lt", "anna.1" TOP);
  bson_append_document_end(g, &range);
  cr_assert(cqrs_keyset_match(EMAIL_KEYS, 2, g, "email", &q));
  static const struct {
    const char *email;
    bool in;
  } emails[] = {{"anna.1", true},      {"anna.1@example.com", true}, {"anna.19@x", true}, {"anna.", false},
                {"anna.2@x", false},   {"anna.0@x", false},          {"Anna.1@x", false}, {"anna.1\xc3\xa9", true},
                {"anna.1" TOP, false}, {"anna.1" TOP "x", false}};
  for (size_t i = 0; i < sizeof emails / sizeof *emails; i++) {
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "email", emails[i].email);
    cr_expect_eq(cqrs_keyset_holds(&q, d), emails[i].in, "%s", emails[i].email);
    bson_destroy(d);
  }
  bson_destroy(g);
}

/* The projector mirrors each keyset list's index, and query-svc matches the
 * list against it: every name must be an index of the projection whose keys
 * end in _id and need no quoting. */
Test(ferretdb_keyset, every_projections_keyset_lists_name_an_index_that_serves_them) {
  size_t lists = 0;
  for (size_t i = 0; cqrs_projections[i]; i++) {
    const cqrs_projection_t *p = cqrs_projections[i];
    for (const char *const *k = p->keysets; k && *k; k++, lists++) {
      char keys[CQRS_KEYSET_KEYS_MAX][64];
      const char *names[CQRS_KEYSET_KEYS_MAX];
      size_t n = cqrs_projection_index_keys(p, *k, keys, CQRS_KEYSET_KEYS_MAX);
      cr_assert_geq(n, 2, "%s: no index %s with 2 to %d keys", p->name, *k, CQRS_KEYSET_KEYS_MAX);
      for (size_t j = 0; j < n; j++) names[j] = keys[j];
      cr_expect_str_eq(names[n - 1], "_id", "%s.%s", p->name, *k);
      char *ddl = cqrs_keyset_index_sql("i", "s", "t", names, n);
      cr_expect_not_null(ddl, "%s.%s", p->name, *k);
      free(ddl);
    }
  }
  cr_expect_eq(lists, 3, "orders by status, customers by status and by email prefix");
  char keys[CQRS_KEYSET_KEYS_MAX][64];
  cr_expect_eq(cqrs_projection_index_keys(&cqrs_customers_projection, "nope", keys, CQRS_KEYSET_KEYS_MAX), 0);
  cr_expect_eq(cqrs_projection_index_keys(&cqrs_customers_projection, "status_registrationDate", keys, 2), 0,
               "more keys than room");
}
