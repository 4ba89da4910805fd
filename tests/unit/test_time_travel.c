/* Time travel (projector-svc/time_travel.h): a read model's document after the
 * first n events of an aggregate, by the projection's own code. */
#include "fold.h"
#include "time_travel.h"
#include "unit.h"

#include <stdio.h>

TestSuite(time_travel);

#define N_ORDER 4

static const char *const ORDER_DATA[N_ORDER] = {
    "{\"orderId\":\"o-1\",\"userId\":\"u-7\",\"items\":[{\"product\":\"pen\",\"quantity\":3,\"price\":1.5}],"
    "\"totalAmount\":4.5,\"createdAt\":\"2026-03-01T10:00:00.000Z\"}",
    "{\"orderId\":\"o-1\",\"status\":\"Processing\",\"previousStatus\":\"Created\",\"updatedAt\":\"2026-03-01T11:00:00.000Z\"}",
    "{\"orderId\":\"o-1\",\"status\":\"Shipped\",\"previousStatus\":\"Processing\",\"updatedAt\":\"2026-03-01T12:00:00.000Z\"}",
    "{\"orderId\":\"o-1\",\"status\":\"Delivered\",\"previousStatus\":\"Shipped\",\"updatedAt\":\"2026-03-01T13:00:00.000Z\"}",
};
static const char *const ORDER_STATUS[N_ORDER] = {"Created", "Processing", "Shipped", "Delivered"};

static cqrs_event_t events[N_ORDER];

static void order_events(void) {
  for (int i = 0; i < N_ORDER; i++)
    events[i] = (cqrs_event_t){.id = "e", .type = i ? "OrderStatusUpdated" : "OrderCreated",
                               .aggregate_type = "order", .aggregate_id = "o-1", .time = "t",
                               .version = i + 1, .data = u_parse(ORDER_DATA[i])};
}

static void free_events(void) {
  for (int i = 0; i < N_ORDER; i++)
    if (events[i].data) bson_destroy(events[i].data);
}

Test(time_travel, each_prefix_of_an_orders_history_gives_that_status, .init = order_events, .fini = free_events) {
  for (size_t n = 1; n <= N_ORDER; n++) {
    bson_t doc;
    bool exists;
    cqrs_error_t err = {0};
    cr_assert(cqrs_time_travel(&cqrs_order_summaries_projection, events, n, &doc, &exists, &err), "%s",
              err.message);
    cr_assert(exists);
    cr_assert_str_eq(u_str(&doc, "_id"), "o-1");
    cr_assert_str_eq(u_str(&doc, "status"), ORDER_STATUS[n - 1], "after %zu events", n);
    cr_assert_eq(u_i64(&doc, "version"), (int64_t)n);
    cr_assert_str_eq(u_str(&doc, "createdAt"), "2026-03-01T10:00:00.000Z");
    cr_assert_str_eq(u_str(&doc, "userId"), "u-7", "the creation's fields stay");
    bson_destroy(&doc);
  }
}

Test(time_travel, nothing_before_the_creation, .init = order_events, .fini = free_events) {
  bson_t doc;
  bool exists = true;
  cr_assert(cqrs_time_travel(&cqrs_order_summaries_projection, events, 0, &doc, &exists, NULL));
  cr_assert_not(exists);
  cr_assert_eq(u_count(&doc), 0);
  bson_destroy(&doc);
  /* updates without their creation make no document either */
  cr_assert(cqrs_time_travel(&cqrs_order_summaries_projection, events + 1, 2, &doc, &exists, NULL));
  cr_assert_not(exists);
  bson_destroy(&doc);
}

Test(time_travel, the_full_history_gives_what_the_store_writer_inserts, .init = order_events, .fini = free_events) {
  /* The live path for a document created in one batch: the fold's insert. */
  cqrs_write_t w[N_ORDER];
  for (int i = 0; i < N_ORDER; i++) {
    bool skip;
    cr_assert(cqrs_order_summaries_projection.apply(&events[i], &w[i], &skip, NULL));
  }
  cqrs_fold_t f;
  cr_assert(cqrs_fold(w, NULL, N_ORDER, &f, NULL));
  bson_t doc;
  bool exists;
  cr_assert(cqrs_time_travel(&cqrs_order_summaries_projection, events, N_ORDER, &doc, &exists, NULL));
  cr_assert(bson_equal(&doc, &f.writes[0].insert), "one definition of the read model");
  bson_destroy(&doc);
  cqrs_fold_cleanup(&f);
  for (int i = 0; i < N_ORDER; i++) cqrs_write_cleanup(&w[i]);
}

Test(time_travel, another_read_models_events_are_skipped) {
  cqrs_event_t evs[2] = {
      {.id = "e1", .type = "UserCreated", .aggregate_type = "user", .aggregate_id = "u-1", .time = "t", .version = 1,
       .data = u_parse("{\"email\":\"a@example.com\",\"name\":\"A\",\"createdAt\":\"2026-01-01T00:00:00.000Z\"}")},
      {.id = "e2", .type = "UserProfileUpdated", .aggregate_type = "user", .aggregate_id = "u-1", .time = "t",
       .version = 2,
       .data = u_parse("{\"changes\":{\"name\":\"B\"},\"updatedAt\":\"2026-01-02T00:00:00.000Z\"}")},
  };
  bson_t doc;
  bool exists = true;
  cr_assert(cqrs_time_travel(&cqrs_order_summaries_projection, evs, 2, &doc, &exists, NULL));
  cr_assert_not(exists, "order_summaries ignores user events");
  bson_destroy(&doc);
  cr_assert(cqrs_time_travel(&cqrs_user_profiles_projection, evs, 2, &doc, &exists, NULL));
  cr_assert(exists);
  cr_assert_str_eq(u_str(&doc, "name"), "B");
  cr_assert_str_eq(u_str(&doc, "email"), "a@example.com");
  cr_assert_eq(u_i64(&doc, "version"), 2);
  bson_destroy(&doc);
  bson_destroy(evs[0].data);
  bson_destroy(evs[1].data);
}

Test(time_travel, a_poison_event_is_an_error) {
  cqrs_event_t ev = {.id = "e", .type = "OrderCreated", .aggregate_type = "order", .aggregate_id = "o-1",
                     .time = "t", .version = 1, .data = u_parse("{\"userId\":\"u\"}")};
  bson_t doc;
  bool exists = true;
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_time_travel(&cqrs_order_summaries_projection, &ev, 1, &doc, &exists, &err));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_not(exists);
  bson_destroy(&doc);
  bson_destroy(ev.data);
}
