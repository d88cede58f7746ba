/* promtext.h — placeholder, being written. */
#ifndef SONDE_PROMTEXT_H
#define SONDE_PROMTEXT_H
#endif
