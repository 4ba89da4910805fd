/* The waitset (query-svc/waitset.h): one find per read and batch of values
 * however many waiters, the first document per value in sort order, and
 * every waiter settled exactly once: fresh, at its deadline, when the store
 * failed, or drained. */
#include "waitset.h"
#include "unit.h"

#define MAX_SETTLED 256

static const char *const SORT[] = {"createdAt", "_id", NULL};
static const cqrs_single_read_t BY_ID = {"user_profiles", "_id", NULL, "no such user"};
static const cqrs_single_read_t BY_EMAIL = {"user_profiles", "email", SORT, "no user with this email"};

/* What the settle callback saw, per call. */
typedef struct {
  int token;
  cqrs_read_outcome_t o;
  int status;
  bool stale;
  char body[256];
} settled_t;

static cqrs_waitset_t *ws;
static settled_t settled[MAX_SETTLED];
static int n_settled;
static int tokens[MAX_SETTLED];

static void setup(void) {
  ws = cqrs_waitset_new(1000);
  n_settled = 0;
  for (int i = 0; i < MAX_SETTLED; i++) tokens[i] = i;
}

static void cleanup(void) { cqrs_waitset_destroy(ws); }

TestSuite(waitset, .init = setup, .fini = cleanup);

static void settle_cb(void *token, cqrs_read_outcome_t o, const cqrs_read_answer_t *a, void *ctx) {
  cr_assert_eq(ctx, &n_settled);
  cr_assert_lt(n_settled, MAX_SETTLED);
  settled_t *s = &settled[n_settled++];
  s->token = *(int *)token;
  s->o = o;
  s->status = a->status;
  s->stale = a->stale;
  snprintf(s->body, sizeof s->body, "%.*s", (int)a->len, a->body);
}

static void add_for(const char *tenant, const cqrs_single_read_t *read, const char *value, int64_t min_version,
                    int64_t now, int64_t deadline, int token) {
  cqrs_waitset_add(ws, read, tenant, value, min_version, now, deadline, &tokens[token]);
}

static void add(const cqrs_single_read_t *read, const char *value, int64_t min_version, int64_t now,
                int64_t deadline, int token) {
  add_for("default", read, value, min_version, now, deadline, token);
}

/* One round of one batch: offers the documents (JSON texts, NULL-ended) and
 * settles at now. */
static void round_of(const char *const *docs, bool answered, int64_t now) {
  cr_assert_eq(cqrs_waitset_begin_round(ws), 1);
  cqrs_wait_batch_t *b = cqrs_waitset_batch(ws, 0);
  for (const char *const *d = docs; d && *d; d++) {
    bson_t *doc = u_parse(*d);
    cqrs_wait_batch_offer(b, doc);
    bson_destroy(doc);
  }
  cqrs_wait_batch_settle(ws, b, answered, now, settle_cb, &n_settled);
}

/* The values of a batch's $in, in order. */
static int in_values(const cqrs_wait_batch_t *b, const char *field, const char **out, int max) {
  bson_iter_t it, in;
  char path[64];
  snprintf(path, sizeof path, "%s.$in", field);
  cr_assert(bson_iter_init(&it, cqrs_wait_batch_filter(b)) && bson_iter_find_descendant(&it, path, &in) &&
            BSON_ITER_HOLDS_ARRAY(&in));
  cr_assert_eq(u_count(cqrs_wait_batch_filter(b)), 1, "the filter is one $in and nothing else");
  bson_iter_t v;
  int n = 0;
  bson_iter_recurse(&in, &v);
  while (bson_iter_next(&v) && n < max) out[n++] = bson_iter_utf8(&v, NULL);
  return n;
}

Test(waitset, a_waiter_is_settled_fresh_once_its_document_reaches_min_version) {
  add(&BY_ID, "u1", 2, 0, 1000, 7);
  cr_assert_eq(cqrs_waitset_size(ws), 1);
  round_of((const char *[]){"{\"_id\":\"u1\",\"version\":1}", NULL}, true, 10);
  cr_assert_eq(n_settled, 0, "version 1 is not fresh for minVersion 2");
  cr_assert_eq(cqrs_waitset_size(ws), 1);
  round_of((const char *[]){"{\"_id\":\"u1\",\"name\":\"A\",\"version\":2}", NULL}, true, 20);
  cr_assert_eq(n_settled, 1);
  cr_assert_eq(settled[0].token, 7);
  cr_assert_eq(settled[0].o, CQRS_READ_FRESH);
  cr_assert_eq(settled[0].status, 200);
  cr_assert_not(settled[0].stale);
  cr_assert_str_eq(settled[0].body, "{\"name\":\"A\",\"version\":2}");
  cr_assert_eq(cqrs_waitset_size(ws), 0);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 0, "nothing left to ask for");
}

Test(waitset, one_find_per_read_however_many_waiters) {
  char v[16];
  for (int i = 0; i < 50; i++) {
    snprintf(v, sizeof v, "u%d", i);
    add(&BY_ID, v, 1, 0, 1000, i);
  }
  for (int i = 50; i < 60; i++) add(&BY_ID, "u3", 1, 0, 1000, i); /* more waiters on one value */
  cr_assert_eq(cqrs_waitset_size(ws), 60);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 1, "60 waiters on one read: one find");
  cqrs_wait_batch_t *b = cqrs_waitset_batch(ws, 0);
  cr_assert_eq(cqrs_wait_batch_read(b), &BY_ID);
  const char *values[64];
  cr_assert_eq(in_values(b, "_id", values, 64), 50, "each value once");
  bson_t *doc = u_parse("{\"_id\":\"u3\",\"version\":1}");
  cqrs_wait_batch_offer(b, doc);
  bson_destroy(doc);
  cqrs_wait_batch_settle(ws, b, true, 10, settle_cb, &n_settled);
  cr_assert_eq(n_settled, 11, "the 11 waiters on u3 are fresh");
  for (int i = 0; i < n_settled; i++) cr_assert_eq(settled[i].o, CQRS_READ_FRESH);
  cr_assert_eq(cqrs_waitset_size(ws), 49);
  add(&BY_EMAIL, "a@example.com", 1, 20, 1000, 60);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 2, "two reads: two finds");
  for (size_t i = 0; i < 2; i++) {
    b = cqrs_waitset_batch(ws, 0 + i);
    cqrs_wait_batch_settle(ws, b, true, 30, settle_cb, &n_settled);
  }
  cqrs_waitset_drain(ws, CQRS_READ_STOPPING, settle_cb, &n_settled);
}

/* The same read and value waited on by two tenants are two finds, each
 * naming its tenant, and one tenant's document settles only its own waiter. */
Test(waitset, tenants_are_polled_apart_and_settled_only_from_their_own_documents) {
  add_for("a", &BY_ID, "u1", 2, 0, 1000, 1);
  add_for("b", &BY_ID, "u1", 2, 0, 1000, 2);
  add_for("a", &BY_ID, "u2", 1, 0, 1000, 3);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 2, "one find per tenant");
  const char *values[4];
  for (size_t i = 0; i < 2; i++) {
    cqrs_wait_batch_t *b = cqrs_waitset_batch(ws, i);
    const char *t = cqrs_wait_batch_tenant(b);
    cr_assert(strcmp(t, "a") == 0 || strcmp(t, "b") == 0, "batch of tenant %s", t);
    cr_assert_eq(in_values(b, "_id", values, 4), strcmp(t, "a") == 0 ? 2 : 1, "tenant %s's values only", t);
    /* Only a's batch finds u1 at version 2: b's store has it at version 1. */
    bson_t *doc = u_parse(strcmp(t, "a") == 0 ? "{\"_id\":\"u1\",\"name\":\"A\",\"version\":2}"
                                              : "{\"_id\":\"u1\",\"name\":\"B\",\"version\":1}");
    cqrs_wait_batch_offer(b, doc);
    bson_destroy(doc);
    cqrs_wait_batch_settle(ws, b, true, 10, settle_cb, &n_settled);
  }
  cr_assert_eq(n_settled, 1, "only a's waiter on u1 is fresh");
  cr_assert_eq(settled[0].token, 1);
  cr_assert_str_eq(settled[0].body, "{\"name\":\"A\",\"version\":2}");
  cr_assert_eq(cqrs_waitset_size(ws), 2);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 2, "a (u2) and b (u1) still wait");
  for (size_t i = 0; i < 2; i++) {
    cqrs_wait_batch_t *b = cqrs_waitset_batch(ws, i);
    bool is_b = strcmp(cqrs_wait_batch_tenant(b), "b") == 0;
    /* a's u2 is absent; b gets its own u1 at the deadline. */
    bson_t *doc = u_parse("{\"_id\":\"u1\",\"name\":\"B\",\"version\":1}");
    if (is_b) cqrs_wait_batch_offer(b, doc);
    bson_destroy(doc);
    cqrs_wait_batch_settle(ws, b, true, 2000, settle_cb, &n_settled);
  }
  cr_assert_eq(n_settled, 3);
  for (int i = 1; i < 3; i++) {
    if (settled[i].token == 2) {
      cr_assert_eq(settled[i].o, CQRS_READ_STALE);
      cr_assert_str_eq(settled[i].body, "{\"name\":\"B\",\"version\":1}", "b's own document, stale");
    } else {
      cr_assert_eq(settled[i].token, 3);
      cr_assert_eq(settled[i].o, CQRS_READ_ABSENT, "a's u2 is not found, whatever b has");
    }
  }
  cr_assert_eq(cqrs_waitset_begin_round(ws), 0, "no group is left behind");
}

Test(waitset, values_past_batch_max_are_split_into_batches_each_value_once) {
  cqrs_waitset_destroy(ws);
  ws = cqrs_waitset_new(10);
  char v[16];
  for (int i = 0; i < 25; i++) {
    snprintf(v, sizeof v, "u%02d", i);
    add(&BY_ID, v, 1, 0, 1000, i);
  }
  cr_assert_eq(cqrs_waitset_begin_round(ws), 3);
  bool seen[25] = {0};
  int total = 0;
  for (size_t i = 0; i < 3; i++) {
    const char *values[16];
    int n = in_values(cqrs_waitset_batch(ws, i), "_id", values, 16);
    cr_assert_leq(n, 10);
    for (int k = 0; k < n; k++) {
      int idx = atoi(values[k] + 1);
      cr_assert_not(seen[idx], "%s in two batches", values[k]);
      seen[idx] = true;
      total++;
    }
  }
  cr_assert_eq(total, 25);
  for (size_t i = 0; i < 3; i++) cqrs_wait_batch_settle(ws, cqrs_waitset_batch(ws, i), true, 10, settle_cb, &n_settled);
  cr_assert_eq(n_settled, 0);
  cqrs_waitset_drain(ws, CQRS_READ_STOPPING, settle_cb, &n_settled);
  cr_assert_eq(n_settled, 25);
}

Test(waitset, the_batch_asks_in_the_reads_sort_order) {
  add(&BY_EMAIL, "a@example.com", 1, 0, 1000, 0);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 1);
  cqrs_wait_batch_t *b = cqrs_waitset_batch(ws, 0);
  bson_iter_t it, s;
  cr_assert(bson_iter_init(&it, cqrs_wait_batch_opts(b)) && bson_iter_find_descendant(&it, "sort.createdAt", &s));
  const char *values[2];
  cr_assert_eq(in_values(b, "email", values, 2), 1);
  cr_assert_str_eq(values[0], "a@example.com");
  cqrs_wait_batch_settle(ws, b, true, 10, settle_cb, &n_settled);
  cqrs_waitset_drain(ws, CQRS_READ_STOPPING, settle_cb, &n_settled);
}

Test(waitset, per_value_the_first_document_in_sort_order_counts) {
  /* A user created earlier (A, version 1) and a later one with the same
   * email (B, version 2): a read of the email answers A, so a waiter for
   * version 2 is not fresh because of B. */
  add(&BY_EMAIL, "same@example.com", 2, 0, 100, 0);
  add(&BY_EMAIL, "other@example.com", 1, 0, 100, 1);
  const char *docs[] = {"{\"_id\":\"A\",\"email\":\"same@example.com\",\"createdAt\":\"1\",\"version\":1}",
                        "{\"_id\":\"C\",\"email\":\"other@example.com\",\"createdAt\":\"2\",\"version\":1}",
                        "{\"_id\":\"B\",\"email\":\"same@example.com\",\"createdAt\":\"3\",\"version\":2}", NULL};
  round_of(docs, true, 10);
  cr_assert_eq(n_settled, 1);
  cr_assert_eq(settled[0].token, 1);
  cr_assert_eq(settled[0].o, CQRS_READ_FRESH);
  round_of(docs, true, 100);
  cr_assert_eq(n_settled, 2);
  cr_assert_eq(settled[1].token, 0);
  cr_assert_eq(settled[1].o, CQRS_READ_STALE);
  cr_assert(settled[1].stale);
  cr_assert(strstr(settled[1].body, "\"createdAt\":\"1\""), "A, the first in sort order: %s", settled[1].body);
}

Test(waitset, documents_of_no_waited_value_or_without_a_string_field_are_ignored) {
  add(&BY_ID, "u1", 1, 0, 100, 0);
  round_of((const char *[]){"{\"_id\":\"u2\",\"version\":5}", "{\"_id\":7,\"version\":5}", "{\"version\":5}", NULL},
           true, 10);
  cr_assert_eq(n_settled, 0);
  cr_assert_eq(cqrs_waitset_size(ws), 1);
  cqrs_waitset_drain(ws, CQRS_READ_STOPPING, settle_cb, &n_settled);
}

Test(waitset, at_the_deadline_an_absent_document_is_404_and_an_older_one_stale) {
  add(&BY_ID, "gone", 1, 0, 100, 0);
  add(&BY_ID, "old", 3, 0, 100, 1);
  add(&BY_ID, "old", 3, 0, 500, 2); /* same value, later deadline */
  round_of((const char *[]){"{\"_id\":\"old\",\"version\":2}", NULL}, true, 100);
  cr_assert_eq(n_settled, 2);
  for (int i = 0; i < 2; i++) {
    if (settled[i].token == 0) {
      cr_assert_eq(settled[i].o, CQRS_READ_ABSENT);
      cr_assert_eq(settled[i].status, 404);
      cr_assert(settled[i].stale);
      cr_assert_str_eq(settled[i].body, "{\"error\":\"no such user\"}");
    } else {
      cr_assert_eq(settled[i].token, 1);
      cr_assert_eq(settled[i].o, CQRS_READ_STALE);
      cr_assert_eq(settled[i].status, 200);
      cr_assert(settled[i].stale);
      cr_assert_str_eq(settled[i].body, "{\"version\":2}");
    }
  }
  cr_assert_eq(cqrs_waitset_size(ws), 1, "the waiter with the later deadline waits on");
  round_of((const char *[]){"{\"_id\":\"old\",\"version\":3}", NULL}, true, 200);
  cr_assert_eq(n_settled, 3);
  cr_assert_eq(settled[2].token, 2);
  cr_assert_eq(settled[2].o, CQRS_READ_FRESH);
}

Test(waitset, when_the_store_fails_waiters_wait_on_then_get_503_if_it_never_answered_for_them) {
  add(&BY_ID, "u1", 1, 0, 100, 0);
  round_of(NULL, false, 50);
  cr_assert_eq(n_settled, 0, "time is left: keep waiting");
  round_of(NULL, false, 100);
  cr_assert_eq(n_settled, 1);
  cr_assert_eq(settled[0].o, CQRS_READ_NO_STORE);
  cr_assert_eq(settled[0].status, 503);
  cr_assert_not(settled[0].stale);
  cr_assert_str_eq(settled[0].body, "{\"error\":\"the read store did not answer\"}");
  cr_assert_eq(cqrs_waitset_size(ws), 0);
}

Test(waitset, when_the_store_fails_at_the_deadline_the_last_answer_since_the_wait_began_counts) {
  add(&BY_ID, "u1", 2, 0, 100, 0);
  add(&BY_ID, "gone", 1, 0, 100, 1);
  round_of((const char *[]){"{\"_id\":\"u1\",\"version\":1}", NULL}, true, 10);
  cr_assert_eq(n_settled, 0);
  /* A waiter that starts after that answer has had none of its own. */
  add(&BY_ID, "u1", 2, 20, 100, 2);
  round_of(NULL, false, 100);
  cr_assert_eq(n_settled, 3);
  for (int i = 0; i < 3; i++) {
    static const cqrs_read_outcome_t want[] = {CQRS_READ_STALE, CQRS_READ_ABSENT, CQRS_READ_NO_STORE};
    cr_assert_eq(settled[i].o, want[settled[i].token], "token %d: outcome %d", settled[i].token, settled[i].o);
  }
}

Test(waitset, drain_settles_every_waiter_once_and_empties_the_set) {
  for (int i = 0; i < 10; i++) add(i % 2 ? &BY_ID : &BY_EMAIL, i % 3 ? "x" : "y", 1, 0, 100, i);
  cqrs_waitset_drain(ws, CQRS_READ_STOPPING, settle_cb, &n_settled);
  cr_assert_eq(n_settled, 10);
  bool seen[10] = {0};
  for (int i = 0; i < 10; i++) {
    cr_assert_not(seen[settled[i].token], "token %d settled twice", settled[i].token);
    seen[settled[i].token] = true;
    cr_assert_eq(settled[i].status, 503);
    cr_assert_str_eq(settled[i].body, "{\"error\":\"the service is stopping\"}");
  }
  cr_assert_eq(cqrs_waitset_size(ws), 0);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 0);
}

Test(waitset, destroy_with_waiters_left_frees_everything) {
  add(&BY_ID, "u1", 1, 0, 100, 0);
  add(&BY_EMAIL, "e", 1, 0, 100, 1);
  cr_assert_eq(cqrs_waitset_begin_round(ws), 2);
  for (size_t i = 0; i < 2; i++) {
    cqrs_wait_batch_t *b = cqrs_waitset_batch(ws, i);
    bson_t *doc = u_parse("{\"_id\":\"u1\",\"email\":\"e\",\"version\":0}");
    cqrs_wait_batch_offer(b, doc);
    bson_destroy(doc);
    cqrs_wait_batch_settle(ws, b, true, 20, settle_cb, &n_settled);
  }
  cr_assert_eq(n_settled, 0);
  /* cleanup destroys ws with both waiters still in it: the sanitizers check
   * nothing leaks. */
}
