/* files.c — see vec.h */
#include "vector/vec.h"
