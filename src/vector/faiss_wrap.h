/* faiss_wrap.h — the few FAISS calls sonde needs, behind a C interface
 * (faiss_wrap.cpp; Debian 12's FAISS has no compiled C API). Built only when
 * FAISS is found (config.h: SONDE_HAVE_FAISS); every function catches FAISS's
 * exceptions and returns -EINVAL (or -ENOMEM) with its message in err. */
#ifndef SONDE_VECTOR_FAISS_WRAP_H
#define SONDE_VECTOR_FAISS_WRAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fw_index;

/* FAISS's version ("1.7.3"). */
const char *fw_version(void);
/* OpenMP threads FAISS uses for this index's train, add and search, in whichever
 * thread calls them (0: every processor). Until set: the calling thread's setting. */
void fw_set_threads(struct fw_index *ix, int n);

/* An index from a factory string ("Flat", "IVF1024,Flat", "HNSW32", ...) over dim
 * dimensions; inner_product: METRIC_INNER_PRODUCT (else METRIC_L2). */
int fw_create(const char *factory, size_t dim, int inner_product, struct fw_index **out, char *err,
              size_t errlen);
/* Whether it must be trained before add (IVF, PQ), and trains it on n rows. */
int fw_needs_training(const struct fw_index *ix);
int fw_train(struct fw_index *ix, size_t n, const float *x, char *err, size_t errlen);
/* Adds n rows (ids n_total .. n_total + n - 1). */
int fw_add(struct fw_index *ix, size_t n, const float *x, char *err, size_t errlen);
size_t fw_ntotal(const struct fw_index *ix);
/* A search parameter by name through faiss::ParameterSpace ("nprobe", "efSearch",
 * "ht", ...); an unknown name fails with FAISS's message. */
int fw_set_param(struct fw_index *ix, const char *name, double value, char *err, size_t errlen);
/* k nearest of each of n queries: labels and distances n*k (as FAISS gives them:
 * squared L2, or the inner product for METRIC_INNER_PRODUCT). */
int fw_search(struct fw_index *ix, size_t n, const float *x, size_t k, float *dist, int64_t *labels,
              char *err, size_t errlen);
/* The index serialised (faiss::write_index): its size in bytes, the index's memory
 * as FAISS itself stores it. */
int fw_size(const struct fw_index *ix, size_t *bytes, char *err, size_t errlen);
/* Writes the index to path / reads one back. */
int fw_write(const struct fw_index *ix, const char *path, char *err, size_t errlen);
int fw_read(const char *path, struct fw_index **out, char *err, size_t errlen);
void fw_free(struct fw_index *ix);

#ifdef __cplusplus
}
#endif

#endif
