/* Keyset lists read from FerretDB's PostgreSQL (see pg_lists.h). */
#include "pg_lists.h"

#include "projection.h"

#include "cqrs/alloc.h"
#include "cqrs/ferretdb_pg.h"
#include "cqrs/map.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_MS 1000 /* after PostgreSQL failed, the next try; reads fail at once meanwhile */
#define IDLE_MAX 8        /* connections kept between reads (one per HTTP loop is what is used) */
#define TABLES_MAX 4096   /* tables remembered; past that the memory starts over */

struct cqrs_pg_lists {
  const char *uri;
  int timeout_ms;
  const cqrs_log_t *log;
  pthread_mutex_t lock; /* guards everything below */
  PGconn *idle[IDLE_MAX];
  size_t n_idle;
  cqrs_map_t *tables; /* "<db>\n<collection>" -> its table's name (char *) */
  int64_t retry_at;
  bool down; /* logged as down: log the way back once */
};

cqrs_pg_lists_t *cqrs_pg_lists_new(const char *pg_uri, int timeout_ms, const cqrs_log_t *log) {
  cqrs_pg_lists_t *l = cqrs_xcalloc(1, sizeof *l);
  l->uri = pg_uri;
  l->timeout_ms = timeout_ms;
  l->log = log;
  pthread_mutex_init(&l->lock, NULL);
  l->tables = cqrs_map_new(free);
  return l;
}

void cqrs_pg_lists_destroy(cqrs_pg_lists_t *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n_idle; i++) PQfinish(l->idle[i]);
  cqrs_map_destroy(l->tables);
  pthread_mutex_destroy(&l->lock);
  free(l);
}

bool cqrs_pg_lists_match(const cqrs_pg_lists_t *l, const char *read_model, const bson_t *filter,
                         const char *sort_field, cqrs_keyset_query_t *q) {
  const cqrs_projection_t *proj = l ? cqrs_projection_find(read_model) : NULL;
  return proj && cqrs_projection_keyset_match(proj, filter, sort_field, q);
}

void cqrs_pg_page_cleanup(cqrs_pg_page_t *p) {
  for (size_t i = 0; i < p->n; i++) {
    free(p->ids[i]);
    free(p->values[i]);
  }
  free(p->ids);
  free(p->values);
  memset(p, 0, sizeof *p);
}

/* PostgreSQL failed (lock held): forget what it told us, try again later. */
static void went_down(cqrs_pg_lists_t *l, const char *error) {
  cqrs_map_clear(l->tables);
  l->retry_at = cqrs_time_monotonic_ms() + RECONNECT_MS;
  if (!l->down)
    cqrs_log_warn(l->log, "the keyset lists' PostgreSQL did not answer; those lists answer 503 meanwhile", "error",
                  error, NULL);
  l->down = true;
}

/* A connection of the caller's own: an idle one, or a new one. NULL with err. */
static PGconn *take(cqrs_pg_lists_t *l, cqrs_error_t *err) {
  PGconn *c = NULL;
  pthread_mutex_lock(&l->lock);
  bool wait = l->n_idle == 0 && cqrs_time_monotonic_ms() < l->retry_at;
  if (l->n_idle) c = l->idle[--l->n_idle];
  pthread_mutex_unlock(&l->lock);
  if (c) return c;
  if (wait) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL did not answer a moment ago");
    return NULL;
  }
  c = cqrs_ferretdb_pg_connect(l->uri, "query-svc", l->timeout_ms, l->timeout_ms, err);
  if (c) {
    PGresult *r = PQexec(c, CQRS_KEYSET_SESSION_SQL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, setting up a session: %s",
                     PQerrorMessage(c));
      PQfinish(c);
      c = NULL;
    }
    PQclear(r);
  }
  pthread_mutex_lock(&l->lock);
  if (!c) {
    went_down(l, err ? err->message : "");
  } else if (l->down) {
    cqrs_log_info(l->log, "the keyset lists' PostgreSQL answers again", NULL);
    l->down = false;
  }
  pthread_mutex_unlock(&l->lock);
  return c;
}

/* Gives c back: kept when it still works, closed otherwise. */
static void give(cqrs_pg_lists_t *l, PGconn *c) {
  pthread_mutex_lock(&l->lock);
  if (PQstatus(c) != CONNECTION_OK) {
    went_down(l, PQerrorMessage(c));
    PQfinish(c);
  } else if (l->n_idle < IDLE_MAX) {
    l->idle[l->n_idle++] = c;
  } else {
    PQfinish(c);
  }
  pthread_mutex_unlock(&l->lock);
}

/* The name of db.collection's table (a copy to free), from memory or from
 * FerretDB's metadata; NULL with err when there is none (yet) or PostgreSQL
 * failed (then c is broken). */
static char *table_of(cqrs_pg_lists_t *l, PGconn *c, const char *key, const char *db, const char *collection,
                      cqrs_error_t *err) {
  pthread_mutex_lock(&l->lock);
  const char *known = cqrs_map_get(l->tables, key);
  char *table = known ? cqrs_xstrdup(known) : NULL;
  pthread_mutex_unlock(&l->lock);
  if (table || !cqrs_ferretdb_pg_table(c, db, collection, &table, err)) return table;
  pthread_mutex_lock(&l->lock);
  if (cqrs_map_size(l->tables) >= TABLES_MAX) cqrs_map_clear(l->tables);
  cqrs_map_put(l->tables, key, cqrs_xstrdup(table));
  pthread_mutex_unlock(&l->lock);
  return table;
}

static void forget(cqrs_pg_lists_t *l, const char *key) {
  pthread_mutex_lock(&l->lock);
  cqrs_map_delete(l->tables, key);
  pthread_mutex_unlock(&l->lock);
}

static void copy_rows(PGresult *r, cqrs_pg_page_t *out) {
  size_t n = (size_t)PQntuples(r);
  out->ids = cqrs_xcalloc(n ? n : 1, sizeof *out->ids);
  out->values = cqrs_xcalloc(n ? n : 1, sizeof *out->values);
  for (size_t i = 0; i < n; i++) {
    out->ids[i] = cqrs_xstrdup(PQgetvalue(r, (int)i, 0));
    out->values[i] = cqrs_xstrdup(PQgetvalue(r, (int)i, 1));
  }
  out->n = n;
}

cqrs_pg_list_result_t cqrs_pg_lists_read(cqrs_pg_lists_t *l, const char *db, const char *collection,
                                         const cqrs_keyset_query_t *q, cqrs_pg_page_t *out, cqrs_error_t *err) {
  memset(out, 0, sizeof *out);
  PGconn *c = take(l, err);
  if (!c) return CQRS_PG_LIST_FAILED;
  char key[512];
  snprintf(key, sizeof key, "%s\n%s", db, collection);
  cqrs_pg_list_result_t result = CQRS_PG_LIST_FAILED;
  /* a second try when the table it remembered is gone (a dropped
   * collection, a rebuild's swap): look it up again */
  for (int attempt = 0; attempt < 2; attempt++) {
    char *table = table_of(l, c, key, db, collection, err);
    if (!table) {
      if (PQstatus(c) == CONNECTION_OK) result = CQRS_PG_LIST_NO_TABLE;
      break;
    }
    const char *params[CQRS_KEYSET_KEYS_MAX + 4];
    int n_params;
    char *sql = cqrs_keyset_select_sql(db, table, q, params, &n_params);
    PGresult *r = PQexecParams(c, sql, n_params, NULL, params, NULL, NULL, 0);
    free(sql);
    free(table);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool gone = state && strcmp(state, "42P01") == 0; /* undefined_table */
    if (ok)
      copy_rows(r, out);
    else
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, reading a page of %s: %s", collection,
                     PQresultErrorMessage(r));
    PQclear(r);
    if (ok) result = CQRS_PG_LIST_DONE;
    if (!gone) break;
    forget(l, key);
  }
  give(l, c);
  return result;
}
