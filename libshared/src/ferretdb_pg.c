/* The PostgreSQL behind FerretDB (see cqrs/ferretdb_pg.h). */
#include "cqrs/ferretdb_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGconn *cqrs_ferretdb_pg_connect(const char *uri, const char *app, int timeout_ms, int statement_timeout_ms,
                                 cqrs_error_t *err) {
  char secs[16], options[64] = "";
  snprintf(secs, sizeof secs, "%d", timeout_ms < 1000 ? 1 : timeout_ms / 1000);
  if (statement_timeout_ms > 0) snprintf(options, sizeof options, "-c statement_timeout=%d", statement_timeout_ms);
  /* after the URI: a later keyword wins over the URI's own */
  const char *keys[] = {"dbname", "connect_timeout", "application_name", options[0] ? "options" : NULL, NULL};
  const char *vals[] = {uri, secs, app, options, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c && PQstatus(c) == CONNECTION_OK) return c;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "cannot connect to PostgreSQL: %s",
                 c ? PQerrorMessage(c) : "out of memory");
  PQfinish(c);
  return NULL;
}

bool cqrs_ferretdb_pg_table(PGconn *c, const char *db, const char *collection, char **table, cqrs_error_t *err) {
  *table = NULL;
  char *schema = PQescapeIdentifier(c, db, strlen(db));
  if (!schema) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL: %s", PQerrorMessage(c));
    return false;
  }
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT _jsonb->>'table' FROM %s._ferretdb_database_metadata WHERE _jsonb->>'_id' = $1",
           schema);
  PQfreemem(schema);
  const char *params[] = {collection};
  PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok)
    *table = strdup(PQgetvalue(r, 0, 0));
  else if (PQresultStatus(r) != PGRES_TUPLES_OK)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI", "PostgreSQL, reading FerretDB's metadata: %s",
                   PQerrorMessage(c));
  else
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, "FERRETDB_PG_URI",
                   "FerretDB has no table for %s.%s in this PostgreSQL (is FERRETDB_PG_URI the one behind MONGO_URI?)",
                   db, collection);
  PQclear(r);
  return ok;
}
