/* grafana.h — placeholder, being written. */
#ifndef SONDE_GRAFANA_H
#define SONDE_GRAFANA_H
#endif
