/* truth.c — see vec.h */
#include "vector/vec.h"
