/* grafana.h — Grafana dashboards for sonde's metrics, and the provisioning
 * files that let a site's Grafana load them as they are.
 *
 * One dashboard per family of components (inference, storage, vector, node).
 * The panels query what Prometheus scrapes while sessions run: sonde's own
 * exporter (core/exporter.h: sonde_*, labelled session, trial, component), the
 * node exporter (node_*), vLLM (vllm:*) and Triton (nv_inference_*). The
 * dashboards are built with jansson from one table of panels per family
 * (grafana.c); docs/monitoring.md says where the files go. */
#ifndef SONDE_GRAFANA_H
#define SONDE_GRAFANA_H

#include <jansson.h>
#include <stddef.h>

enum grafana_family {
    GRAFANA_INFERENCE,
    GRAFANA_STORAGE,
    GRAFANA_VECTOR,
    GRAFANA_NODE,
    GRAFANA_NFAMILIES
};

/* A set of families: bit (1u << family). */
#define GRAFANA_ALL ((1u << GRAFANA_NFAMILIES) - 1)

#define GRAFANA_DEFAULT_URL "http://localhost:9090"
#define GRAFANA_DEFAULT_UID "sonde-prometheus"

/* "inference", "storage", "vector", "node". */
const char *grafana_family_name(enum grafana_family f);

/* Adds the family named s ("all": every one) to *set. 0, or -EINVAL for an
 * unknown name (*set untouched). */
int grafana_family_parse(const char *s, unsigned *set);

/* The family whose dashboard shows components of driver d, or -1 for a
 * driver no dashboard is about (http, exec, generic services...). */
int grafana_family_of_driver(const char *driver);

/* Checks the export options: a datasource uid of 1-40 characters of
 * A-Z a-z 0-9 - _ (Grafana's rule), and an http:// or https:// URL without
 * spaces, quotes, backslashes or control characters. NULL, or why not. */
const char *grafana_check_uid(const char *uid);
const char *grafana_check_url(const char *url);

/* The dashboard of family f; its panels' queries use the datasource variable
 * whose default is datasource_uid. Caller owns the reference. */
json_t *grafana_dashboard(enum grafana_family f, const char *datasource_uid);

/* Writes, each file atomically, dir/dashboards/sonde-FAMILY.json for every
 * family in set, dir/provisioning/datasources/sonde.yaml (a Prometheus
 * datasource of that uid and url) and dir/provisioning/dashboards/sonde.yaml
 * (a file provider reading the absolute dir/dashboards). Creates the
 * directories. *written (when not NULL) gets the paths written, a strv the
 * caller frees, also after a failure. 0, or -errno with err set. */
int grafana_export(const char *dir, unsigned set, const char *url, const char *datasource_uid,
                   char ***written, char *err, size_t errlen);

#endif
