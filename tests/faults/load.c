/* The fault suite's load (see load.h). */
#include "load.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { AGG_USER, AGG_ORDER, AGG_CUSTOMER, AGG_KINDS } agg_kind_t;

/* One aggregate a client works on, one command at a time. */
typedef struct {
  agg_kind_t kind;
  char id[128]; /* "" before its creation is acknowledged */
  int64_t version;
  int step;     /* order: statuses reached; customer: email changes made */
  bool pending; /* a command whose answer was lost: sent again first */
  size_t pending_row;
  int64_t last_ack_ms; /* when the last acknowledged command was sent */
} slot_t;

typedef struct {
  load_t *load;
  int index;
  slot_t *slots;
  int n_slots;
  pthread_t thread;
  unsigned long counter;
} client_t;

struct load {
  const tk_env_t *env;
  const int *ports;
  int n_ports;
  load_opts_t opts;
  ledger_t *ledger;
  atomic_bool running;
  atomic_uint next_port;
  /* a port whose last request got no answer is skipped until then (ms), as
   * a load balancer's passive health check does */
  _Atomic int64_t down_until[LOAD_MAX_PORTS];
  atomic_size_t acknowledged;
  client_t *clients;
  pthread_t kafka_thread;
  bool kafka_started;
  pthread_mutex_t mu; /* the slots (written by their client, read by the driver) and the last user */
  char last_user[128];
  int64_t last_user_version;
  char auth_header[1024];  /* "Authorization: Bearer ...\r\n" or "" */
  char authorization[1024]; /* the Kafka header's value, or "" */
};

int64_t load_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The id of one of c's aggregates of kind that exists (its creation
 * acknowledged), picked by n; NULL when none does yet. Read by c's own
 * thread, which alone writes the ids. */
static const char *owner_of(const client_t *c, agg_kind_t kind, unsigned long n) {
  const char *ids[8];
  int k = 0;
  for (int i = 0; i < c->n_slots && k < 8; i++)
    if (c->slots[i].kind == kind && c->slots[i].id[0]) ids[k++] = c->slots[i].id;
  return k ? ids[n % (unsigned long)k] : NULL;
}

/* The next command for s into json; its command id into cmd. */
static void next_command(client_t *c, slot_t *s, char *json, size_t cap, char *cmd, size_t cmd_cap) {
  const char *tag = c->load->opts.tag;
  unsigned long n = ++c->counter;
  snprintf(cmd, cmd_cap, "h-%s-%d-%lu", tag, c->index, n);
  switch (s->kind) {
  case AGG_USER:
    if (!s->id[0])
      snprintf(json, cap,
               "{\"commandType\":\"CreateUser\",\"email\":\"u%d.%lu.%s@example.com\",\"name\":\"U %lu\","
               "\"commandId\":\"%s\"}",
               c->index, n, tag, n, cmd);
    else
      snprintf(json, cap,
               "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"expectedVersion\":%lld,"
               "\"commandId\":\"%s\",\"changes\":{\"name\":\"U %lu\"}}",
               s->id, (long long)s->version, cmd, n);
    break;
  case AGG_ORDER: {
    static const char *const statuses[] = {"Processing", "Shipped", "Delivered"};
    if (!s->id[0]) {
      char user[160], customer[200] = "";
      const char *known = n % 5 ? owner_of(c, AGG_USER, n) : NULL;
      const char *by = n % 2 ? NULL : owner_of(c, AGG_CUSTOMER, n);
      if (known)
        snprintf(user, sizeof user, "%s", known);
      else
        snprintf(user, sizeof user, "nobody-%s-%d-%lu", tag, c->index, n);
      if (by) snprintf(customer, sizeof customer, ",\"customerId\":\"%s\"", by);
      snprintf(json, cap,
               "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\"%s,\"items\":[{\"product\":\"P%lu\","
               "\"quantity\":%lu,\"price\":2.5}],\"totalAmount\":%.1f,\"commandId\":\"%s\"}",
               user, customer, n, n % 5 + 1, 2.5 * (double)(n % 5 + 1), cmd);
    } else
      snprintf(json, cap,
               "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\",\"expectedVersion\":%lld,"
               "\"status\":\"%s\",\"commandId\":\"%s\"}",
               s->id, (long long)s->version, statuses[s->step], cmd);
    break;
  }
  case AGG_CUSTOMER:
  default:
    if (!s->id[0])
      snprintf(json, cap,
               "{\"commandType\":\"RegisterCustomer\",\"email\":\"c%d.%lu.%s@example.com\",\"name\":\"C %lu\","
               "\"commandId\":\"%s\"}",
               c->index, n, tag, n, cmd);
    else if (s->step < 3)
      snprintf(json, cap,
               "{\"commandType\":\"UpdateEmail\",\"aggregateId\":\"%s\",\"expectedVersion\":%lld,"
               "\"newEmail\":\"c%d.%lu.%s@example.com\",\"commandId\":\"%s\"}",
               s->id, (long long)s->version, c->index, n, tag, cmd);
    else
      snprintf(json, cap,
               "{\"commandType\":\"SuspendCustomer\",\"aggregateId\":\"%s\",\"expectedVersion\":%lld,"
               "\"reason\":\"load %lu\",\"commandId\":\"%s\"}",
               s->id, (long long)s->version, n, cmd);
    break;
  }
}

static void slot_reset(slot_t *s) {
  s->id[0] = '\0';
  s->version = 0;
  s->step = 0;
}

/* s's command was acknowledged with body: move s on. Under l->mu. */
static void slot_advance(load_t *l, slot_t *s, const char *body, int64_t sent_ms) {
  char *id = tk_json_string(body, "aggregateId");
  int64_t v = tk_json_int(body, "version");
  bool created = !s->id[0];
  if (created && id) snprintf(s->id, sizeof s->id, "%s", id);
  if (v != INT64_MIN) s->version = v;
  if (!created) s->step++;
  /* an order delivered, a customer suspended: a new one next time */
  if ((s->kind == AGG_ORDER && s->step >= 3) || (s->kind == AGG_CUSTOMER && s->step >= 4)) slot_reset(s);
  s->last_ack_ms = sent_ms;
  if (s->kind == AGG_USER && id && v != INT64_MIN) {
    snprintf(l->last_user, sizeof l->last_user, "%s", id);
    l->last_user_version = v;
  }
  free(id);
}

/* The next port in turn, skipping those marked down (all down: the next). */
static int pick_port(load_t *l, int *index) {
  int64_t now = load_now_ms();
  unsigned start = atomic_fetch_add(&l->next_port, 1);
  for (int k = 0; k < l->n_ports; k++) {
    int i = (int)((start + (unsigned)k) % (unsigned)l->n_ports);
    if (atomic_load(&l->down_until[i]) <= now) {
      *index = i;
      return l->ports[i];
    }
  }
  *index = (int)(start % (unsigned)l->n_ports);
  return l->ports[*index];
}

#define PORT_DOWN_MS 15000 /* longer than a frozen instance's takeover, so a client hangs on it about once */

static void *client_main(void *arg) {
  client_t *c = arg;
  load_t *l = c->load;
  char json[1024], cmd[128];
  for (unsigned long turn = 0; atomic_load(&l->running); turn++) {
    slot_t *s = &c->slots[turn % (unsigned long)c->n_slots];
    size_t row;
    if (s->pending) {
      row = s->pending_row;
      snprintf(json, sizeof json, "%s", ledger_json(l->ledger, row));
    } else {
      next_command(c, s, json, sizeof json, cmd, sizeof cmd);
      row = ledger_add(l->ledger, LEDGER_HTTP, cmd, json);
    }
    int pi;
    int port = pick_port(l, &pi);
    int64_t sent = load_now_ms();
    tk_response_t r;
    tk_http_timeout("POST", port, "/v1/commands", l->auth_header, json, strlen(json), l->opts.client_timeout_ms, &r);
    ledger_answer(l->ledger, row, r.status, r.body);
    if (r.status == 0) atomic_store(&l->down_until[pi], load_now_ms() + PORT_DOWN_MS);
    bool lost = r.status == 0 || r.status >= 500;
    /* 409 and 422 are the sagas' doing (a version moved on, an order cancelled): answers, not worth a line */
    if (!lost && r.status != 200 && r.status != 201 && r.status != 409 && r.status != 422)
      fprintf(stderr, "load: %s answered %d: %s\n", json, r.status, r.body ? r.body : "");
    pthread_mutex_lock(&l->mu);
    s->pending = lost;
    s->pending_row = row;
    if (r.status == 200 || r.status == 201) {
      atomic_fetch_add(&l->acknowledged, 1);
      slot_advance(l, s, r.body, sent);
    } else if (!lost) {
      int64_t current = tk_json_int(r.body, "currentVersion");
      if (r.status == 409 && current != INT64_MIN)
        s->version = current;
      else
        slot_reset(s);
    }
    pthread_mutex_unlock(&l->mu);
    if (lost) pause_ms(50); /* a client's back-off before it tries the next instance */
    tk_response_cleanup(&r);
  }
  return NULL;
}

/* ---- Kafka ingress ---- */

static void delivered_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  if (!m->err) ledger_delivered(opaque, (size_t)(uintptr_t)m->_private);
}

#define KAFKA_AGGREGATES 8 /* 4 users, 4 customers */

static void *kafka_main(void *arg) {
  load_t *l = arg;
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", l->env->brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "linger.ms", "1", errstr, sizeof errstr);
  rd_kafka_conf_set_dr_msg_cb(conf, delivered_cb);
  rd_kafka_conf_set_opaque(conf, l->ledger);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "load: no Kafka producer: %s\n", errstr);
    return NULL;
  }
  char topic[128], json[1024], cmd[128], key[256];
  tk_topic(l->env, "commands", topic);
  bool created[KAFKA_AGGREGATES] = {0};
  for (unsigned long n = 0; atomic_load(&l->running); n++) {
    int a = (int)(n % KAFKA_AGGREGATES);
    bool user = a < KAFKA_AGGREGATES / 2;
    char id[128];
    snprintf(id, sizeof id, "k-%s-%s%d", l->opts.tag, user ? "u" : "c", a);
    snprintf(cmd, sizeof cmd, "k-%s-%lu", l->opts.tag, n);
    if (!created[a])
      snprintf(json, sizeof json,
               "{\"commandType\":\"%s\",\"aggregateId\":\"%s\",\"email\":\"%s@example.com\",\"name\":\"K %lu\","
               "\"commandId\":\"%s\"}",
               user ? "CreateUser" : "RegisterCustomer", id, id, n, cmd);
    else if (user)
      snprintf(json, sizeof json,
               "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"K %lu\"},"
               "\"commandId\":\"%s\"}",
               id, n, cmd);
    else
      snprintf(json, sizeof json,
               "{\"commandType\":\"UpdateEmail\",\"aggregateId\":\"%s\",\"newEmail\":\"%s.%lu@example.com\","
               "\"commandId\":\"%s\"}",
               id, id, n, cmd);
    created[a] = true;
    snprintf(key, sizeof key, "%s/%s", ledger_tenant(l->ledger), id);
    size_t row = ledger_add(l->ledger, LEDGER_KAFKA, cmd, json);
    rd_kafka_headers_t *h = NULL;
    if (l->authorization[0]) {
      h = rd_kafka_headers_new(1);
      rd_kafka_header_add(h, "authorization", -1, l->authorization, -1);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                              RD_KAFKA_V_VALUE(json, strlen(json)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)row), RD_KAFKA_V_END);
    if (e && h) rd_kafka_headers_destroy(h);
    if (e) fprintf(stderr, "load: produce %s: %s\n", cmd, rd_kafka_err2str(e));
    rd_kafka_poll(rk, 0);
    pause_ms(l->opts.kafka_interval_ms); /* the producer's pace */
  }
  rd_kafka_flush(rk, 30000);
  rd_kafka_destroy(rk);
  return NULL;
}

load_t *load_start(const tk_env_t *env, const int *ports, int n_ports, const load_opts_t *opts, ledger_t *ledger) {
  load_t *l = calloc(1, sizeof *l);
  if (n_ports > LOAD_MAX_PORTS) n_ports = LOAD_MAX_PORTS;
  l->env = env;
  l->ports = ports;
  l->n_ports = n_ports;
  l->opts = *opts;
  l->ledger = ledger;
  if (opts->credential) {
    snprintf(l->auth_header, sizeof l->auth_header, "Authorization: Bearer %s\r\n", opts->credential);
    snprintf(l->authorization, sizeof l->authorization, "Bearer %s", opts->credential);
  }
  pthread_mutex_init(&l->mu, NULL);
  atomic_store(&l->running, true);
  l->clients = calloc((size_t)opts->http_clients, sizeof *l->clients);
  for (int i = 0; i < opts->http_clients; i++) {
    client_t *c = &l->clients[i];
    c->load = l;
    c->index = i;
    c->n_slots = opts->slots_per_type * AGG_KINDS;
    c->slots = calloc((size_t)c->n_slots, sizeof *c->slots);
    for (int s = 0; s < c->n_slots; s++) c->slots[s].kind = (agg_kind_t)(s % AGG_KINDS);
    pthread_create(&c->thread, NULL, client_main, c);
  }
  if (opts->kafka_interval_ms > 0) l->kafka_started = pthread_create(&l->kafka_thread, NULL, kafka_main, l) == 0;
  return l;
}

void load_stop(load_t *l) {
  if (!l || !atomic_exchange(&l->running, false)) return;
  for (int i = 0; i < l->opts.http_clients; i++) pthread_join(l->clients[i].thread, NULL);
  if (l->kafka_started) pthread_join(l->kafka_thread, NULL);
}

void load_destroy(load_t *l) {
  if (!l) return;
  load_stop(l);
  for (int i = 0; i < l->opts.http_clients; i++) free(l->clients[i].slots);
  free(l->clients);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

size_t load_acknowledged(load_t *l) { return atomic_load(&l->acknowledged); }

bool load_all_served_since(load_t *l, int64_t since_ms) {
  bool all = true;
  pthread_mutex_lock(&l->mu);
  for (int i = 0; all && i < l->opts.http_clients; i++)
    for (int s = 0; all && s < l->clients[i].n_slots; s++) all = l->clients[i].slots[s].last_ack_ms >= since_ms;
  pthread_mutex_unlock(&l->mu);
  return all;
}

bool load_last_user(load_t *l, char id[128], int64_t *version) {
  pthread_mutex_lock(&l->mu);
  bool ok = l->last_user[0] != '\0';
  snprintf(id, 128, "%s", l->last_user);
  *version = l->last_user_version;
  pthread_mutex_unlock(&l->mu);
  return ok;
}

void load_describe_unserved(load_t *l, int64_t since_ms, char *buf, size_t cap) {
  static const char *const kinds[] = {"user", "order", "customer"};
  size_t used = 0;
  buf[0] = '\0';
  pthread_mutex_lock(&l->mu);
  for (int i = 0; i < l->opts.http_clients; i++)
    for (int s = 0; s < l->clients[i].n_slots; s++) {
      const slot_t *sl = &l->clients[i].slots[s];
      if (sl->last_ack_ms >= since_ms || used + 1 >= cap) continue;
      int w = snprintf(buf + used, cap - used, "client %d %s %s v%lld (last ack sent %lld ms before)%s; ", i,
                       kinds[sl->kind], sl->id[0] ? sl->id : "(new)", (long long)sl->version,
                       (long long)(since_ms - sl->last_ack_ms), sl->pending ? " answer lost, retrying" : "");
      if (w > 0) used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
    }
  pthread_mutex_unlock(&l->mu);
}
