/* promtext.c — placeholder, being written. */
#include "util/promtext.h"

int promtext_placeholder(void);
int promtext_placeholder(void)
{
    return 0;
}
