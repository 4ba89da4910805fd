/* admin-svc's view of a saga instance (admin-svc/saga_view.c): the item and
 * detail shapes of /v1/admin/sagas, and when a running saga lists as stuck. */
#include "sagas.h"

#include "cqrs/util.h"
#include "unit.h"

TestSuite(admin_sagas);

#define INSTANCE(steps, deadlines)                                                                             \
  "{\"sagaId\":\"s-1\",\"type\":\"order_placement\",\"tenant\":\"acme\",\"key\":\"o-1\",\"state\":\"running\"," \
  "\"startedAt\":\"2026-12-02T03:00:00.000Z\",\"updatedAt\":\"2026-12-02T03:00:00.000Z\",\"partition\":1,"      \
  "\"data\":{},\"steps\":" steps ",\"deadlines\":" deadlines "}"

static int64_t at(const char *t) {
  int64_t ms;
  cr_assert(cqrs_time_parse_rfc3339(t, &ms));
  return ms;
}

Test(admin_sagas, a_running_saga_is_stuck_once_its_command_waited_too_long) {
  bson_t *doc = u_parse(INSTANCE("[{\"at\":\"2026-12-02T03:00:00.000Z\",\"trigger\":\"OrderCreated\",\"step\":\"record-user\","
                                 "\"command\":{\"commandType\":\"RecordUserOrder\"},\"commandId\":\"c-1\",\"outcome\":\"pending\"}]",
                                 "[]"));
  cr_assert_str_eq(admin_saga_view_state(doc, at("2026-12-02T03:59:59.000Z"), 3600000), "running");
  cr_assert_str_eq(admin_saga_view_state(doc, at("2026-12-02T04:00:00.000Z"), 3600000), "stuck");
  bson_destroy(doc);
}

Test(admin_sagas, a_running_saga_with_an_overdue_deadline_is_stuck) {
  bson_t *doc = u_parse(INSTANCE("[]", "[{\"due\":\"2026-12-02T05:00:00.000Z\",\"what\":\"cancel-unprocessed\"}]"));
  cr_assert_str_eq(admin_saga_view_state(doc, at("2026-12-02T05:00:59.000Z"), 60000), "running");
  cr_assert_str_eq(admin_saga_view_state(doc, at("2026-12-02T05:01:00.000Z"), 60000), "stuck");
  bson_destroy(doc);
}

Test(admin_sagas, a_tracking_saga_with_nothing_pending_is_never_stuck) {
  bson_t *doc = u_parse(INSTANCE("[{\"at\":\"2026-01-01T00:00:00.000Z\",\"trigger\":\"CustomerOrderRecorded\","
                                 "\"step\":\"x\",\"command\":null,\"commandId\":null,\"outcome\":\"\"}]",
                                 "[]"));
  cr_assert_str_eq(admin_saga_view_state(doc, at("2026-12-02T05:00:00.000Z"), 60000), "running");
  bson_destroy(doc);
}

Test(admin_sagas, the_item_and_the_detail) {
  bson_t *doc = u_parse(INSTANCE("[{\"at\":\"2026-12-02T03:00:00.000Z\",\"trigger\":\"OrderCreated\",\"step\":\"record-user\","
                                 "\"command\":{\"commandType\":\"RecordUserOrder\"},\"commandId\":\"c-1\",\"outcome\":\"404\"},"
                                 "{\"at\":\"2026-12-02T03:00:01.000Z\",\"trigger\":\"OrderCreated\",\"step\":\"deadline set\","
                                 "\"command\":null,\"commandId\":null,\"outcome\":\"\"}]",
                                 "[{\"due\":\"2026-12-03T03:00:00.000Z\",\"what\":\"cancel-unprocessed\"}]"));
  bson_t item;
  bson_init(&item);
  admin_saga_view(doc, "running", false, &item);
  cr_assert_eq(u_count(&item), 7, "sagaId type state key tenant startedAt updatedAt");
  cr_assert_str_eq(u_str(&item, "key"), "o-1");
  cr_assert_str_eq(u_str(&item, "tenant"), "acme");
  bson_destroy(&item);
  bson_t detail;
  bson_init(&detail);
  admin_saga_view(doc, "stuck", true, &detail);
  cr_assert_str_eq(u_str(&detail, "state"), "stuck", "the view state, not the stored one");
  cr_assert_str_eq(u_str(&detail, "steps.0.commandId"), "c-1");
  cr_assert_str_eq(u_str(&detail, "steps.0.outcome"), "404");
  cr_assert_str_eq(u_str(&detail, "steps.0.command.commandType"), "RecordUserOrder");
  cr_assert(u_is_null(&detail, "steps.1.command") && u_is_null(&detail, "steps.1.commandId"));
  cr_assert_str_eq(u_str(&detail, "steps.1.outcome"), "deadline set", "a note names what happened");
  cr_assert_str_eq(u_str(&detail, "deadlines.0.due"), "2026-12-03T03:00:00.000Z");
  bson_destroy(&detail);
  cr_assert(admin_saga_state_known("stuck") && !admin_saga_state_known("sleepy") && !admin_saga_state_known(""));
  cr_assert(admin_saga_type_known("order_deadline") && !admin_saga_type_known("") &&
            !admin_saga_type_known("order_placements"));
  bson_destroy(doc);
}
