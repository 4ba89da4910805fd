/* The audit trail's writer (audit.h). */
#include "audit.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/ops.h"
#include "cqrs/util.h"

#include <stdlib.h>
#include <string.h>

#define ACK_MS 5000

struct admin_audit {
  cqrs_log_t log;
  rd_kafka_t *rk;
  char *topic;
};

admin_audit_t *admin_audit_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_error_t *err) {
  admin_audit_t *a = cqrs_xcalloc(1, sizeof *a);
  a->log = *log;
  a->topic = cqrs_config_topic(cfg, CQRS_TOPIC_AUDIT);
  if (!(a->rk = cqrs_kafka_producer_new(cfg, log, NULL, NULL, err, "enable.idempotence", "true", "acks", "all",
                                        "linger.ms", "0", NULL)) ||
      !cqrs_kafka_topic_ensure(a->rk, cfg->topic_prefix, CQRS_TOPIC_AUDIT, 1, cfg->topic_replication, 10000, err)) {
    admin_audit_destroy(a);
    return NULL;
  }
  return a;
}

void admin_audit_destroy(admin_audit_t *a) {
  if (!a) return;
  if (a->rk) {
    rd_kafka_flush(a->rk, ACK_MS);
    rd_kafka_destroy(a->rk);
  }
  free(a->topic);
  free(a);
}

void admin_audit_write(admin_audit_t *a, const char *who, const char *tenant, const char *action, const char *target,
                       int status) {
  char now[32];
  cqrs_time_now_rfc3339(now);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "at", now);
  BSON_APPEND_UTF8(&doc, "who", who && *who ? who : "unknown");
  if (tenant && *tenant)
    BSON_APPEND_UTF8(&doc, "tenant", tenant);
  else
    BSON_APPEND_NULL(&doc, "tenant");
  BSON_APPEND_UTF8(&doc, "action", action);
  BSON_APPEND_UTF8(&doc, "target", target ? target : "");
  bool refused = status == 401 || status == 403 || status == 409;
  BSON_APPEND_UTF8(&doc, "outcome", status < 400 ? "ok" : refused ? "refused" : "failed");
  BSON_APPEND_INT32(&doc, "status", status);
  size_t len;
  char *json = cqrs_json_write(&doc, &len);
  bson_destroy(&doc);
  rd_kafka_resp_err_t e = rd_kafka_producev(a->rk, RD_KAFKA_V_TOPIC(a->topic), RD_KAFKA_V_PARTITION(0),
                                            RD_KAFKA_V_VALUE(json, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                            RD_KAFKA_V_END);
  if (!e && rd_kafka_flush(a->rk, ACK_MS)) e = RD_KAFKA_RESP_ERR__TIMED_OUT;
  if (e) cqrs_log_error(&a->log, "cannot write an audit record", "action", action, "error", rd_kafka_err2str(e), NULL);
  bson_free(json);
}
