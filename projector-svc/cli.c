/* projector-svc's command line (cli.h). */
#include "cli.h"
#include "projection.h"
#include "rebuild.h"

#include "cqrs/log.h"
#include "cqrs/tenant.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void cqrs_projector_default_store_timeout(cqrs_config_t *cfg) {
  if (cfg->mongo_timeout_ms == 0) cfg->mongo_timeout_ms = CQRS_PROJECTOR_MONGO_TIMEOUT_MS;
}

/* The next name of the comma-separated list at *p (its length in *len),
 * moving *p past it; NULL at the end. */
static const char *next_name(const char **p, size_t *len) {
  if (!*p || !**p) return NULL;
  const char *name = *p, *comma = strchr(name, ',');
  *len = comma ? (size_t)(comma - name) : strlen(name);
  *p = comma ? comma + 1 : NULL;
  return name;
}

static bool listed(const char *list, const char *name) {
  size_t len;
  for (const char *p = list, *t; (t = next_name(&p, &len));)
    if (len == strlen(name) && strncmp(t, name, len) == 0) return true;
  return false;
}

bool cqrs_projector_selected(const cqrs_config_t *cfg, const cqrs_projection_t **out, size_t *n, cqrs_error_t *err) {
  *n = 0;
  size_t len;
  for (const char *p = cfg->projections, *t; (t = next_name(&p, &len));) { /* every name must be one */
    bool known = false;
    for (size_t i = 0; cqrs_projections[i]; i++)
      known |= strlen(cqrs_projections[i]->name) == len && strncmp(cqrs_projections[i]->name, t, len) == 0;
    if (!known) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "PROJECTIONS", "PROJECTIONS names no projection \"%.*s\"", (int)len, t);
      return false;
    }
  }
  for (size_t i = 0; cqrs_projections[i]; i++)
    if (!cfg->projections || listed(cfg->projections, cqrs_projections[i]->name)) out[(*n)++] = cqrs_projections[i];
  return true;
}

static void help(FILE *out) {
  fprintf(out,
          "usage: projector-svc\n"
          "       projector-svc --rebuild <projection> [--from-beginning]\n"
          "                     [--tenant <tenantId>]\n"
          "       projector-svc --help\n"
          "\n"
          "Without arguments: runs every projection (or those PROJECTIONS names, comma-separated),\n"
          "each tenant's documents in its own database\n"
          "<MONGO_DB>_<tenant>; a tenant deleted in the control plane has its database dropped and\n"
          "its events skipped from then on.\n"
          "\n"
          "--rebuild replays the event log into a fresh collection and swaps the read model to it\n"
          "once caught up (queries read the old one until then), then exits; it always replays\n"
          "the whole log (--from-beginning, the default). To replay from a point in time, use the\n"
          "control plane: cqrsctl replay start <projection> --from <time> --apply re-derives the\n"
          "documents of every aggregate with an event since then from its whole history, in place.\n"
          "--tenant rebuilds only that tenant's read model, in its database: the whole log is read,\n"
          "only its events applied, and no other tenant's documents are touched. Without --tenant\n"
          "every tenant met in the log is rebuilt, each in its own database. A deleted tenant is\n"
          "never rebuilt.\n"
          "\n"
          "projections:");
  for (size_t i = 0; cqrs_projections[i]; i++) fprintf(out, " %s", cqrs_projections[i]->name);
  fputc('\n', out);
}

static int usage(void) {
  help(stderr);
  return 2;
}

static int rebuild_main(int argc, char **argv, char **envp) {
  const cqrs_projection_t *proj = argc >= 3 ? cqrs_projection_find(argv[2]) : NULL;
  const char *tenant = NULL;
  bool from_given = false;
  if (!proj) return usage();
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--from-beginning") == 0 && !from_given) {
      from_given = true;
    } else if (strcmp(argv[i], "--from-time") == 0) {
      /* It once rebuilt from the events since then into a fresh collection:
       * every document not touched since then was gone after the swap. */
      fprintf(stderr, "projector-svc: --from-time is not a rebuild (a fresh collection from that time on would\n"
                      "lack every document not touched since then). Replay from a time with the control plane:\n"
                      "  cqrsctl replay start %s --from <time> --apply   (or POST /v1/admin/replays)\n"
                      "which re-derives the documents touched since then from their whole history, in place.\n",
              proj->name);
      return 2;
    } else if (strcmp(argv[i], "--tenant") == 0 && !tenant && i + 1 < argc) {
      cqrs_error_t err;
      if (!cqrs_tenant_valid(argv[++i], &err)) {
        fprintf(stderr, "projector-svc: --tenant: %s\n", err.message);
        return 2;
      }
      tenant = argv[i];
    } else {
      return usage();
    }
  }
  cqrs_config_t cfg;
  cqrs_error_t err;
  cqrs_log_t log = {"projector-svc", CQRS_LOG_INFO};
  if (!cqrs_config_load(&cfg, envp, 8082, &err)) {
    cqrs_log_error(&log, "bad configuration", "error", err.message, NULL);
    return 2;
  }
  log.level = cfg.log_level;
  cqrs_projector_default_store_timeout(&cfg);
  int rc = cqrs_rebuild_run(&cfg, &log, proj, tenant);
  cqrs_config_cleanup(&cfg);
  return rc;
}

int cqrs_projector_cli(int argc, char **argv, char **envp) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    help(stdout);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "--rebuild") == 0) return rebuild_main(argc, argv, envp);
  return usage();
}
