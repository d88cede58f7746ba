/* grafana.c — placeholder, being written. */
#include "report/grafana.h"

int grafana_placeholder(void);
int grafana_placeholder(void)
{
    return 0;
}
