/* vec.h — what every vector-search driver shares: datasets (synthetic, or read from
 * TEXMEX .fvecs/.ivecs/.bvecs, ann-benchmarks .hdf5 and NumPy .npy files), the three
 * metrics, exact k-NN ground truth by brute force (blocked, multi-threaded, cached
 * under the dataset's hash) and recall@k against it.
 *
 * Distances are kept in one comparable form, smaller = nearer, whatever the metric:
 * L2 the squared Euclidean distance, IP the negated inner product, cosine the
 * negated inner product of vectors normalised to length 1 (a dataset with metric
 * cosine holds its vectors normalised). Ids are row numbers of the base set. */
#ifndef SONDE_VECTOR_VEC_H
#define SONDE_VECTOR_VEC_H

#include "core/driver.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vec_metric { VEC_L2, VEC_IP, VEC_COSINE };

extern const char *const vec_metric_names[]; /* "l2", "ip", "cosine", NULL */
/* 0, or -EINVAL for a name that is none of vec_metric_names. */
int vec_metric_parse(const char *name, enum vec_metric *out);

/* n rows of dim float32, row-major. Either owned (data from malloc) or a view into
 * a memory map (map/map_len, unmapped by vec_mat_free). */
struct vec_mat {
    size_t n, dim;
    float *data;
    void *map;
    size_t map_len;
};
void vec_mat_free(struct vec_mat *m);

/* nq rows of k neighbours: ids (-1: none) and their distances (comparable form),
 * nearest first. */
struct vec_nbrs {
    size_t nq, k;
    int64_t *ids;
    float *dist;
};
void vec_nbrs_free(struct vec_nbrs *t);

/* ---- files (files.c) --------------------------------------------------------------- */

/* A vector file: .fvecs (float32), .bvecs (uint8, converted to float) or .npy (2-D,
 * little-endian float32 C order; memory-mapped). max_rows > 0 reads only the first
 * max_rows rows. A malformed or truncated file: -EINVAL (-errno when it cannot be
 * read) and a message naming the file and what is wrong ("x.fvecs: row 12 says
 * dimension 0"). */
int vec_file_read(const char *path, size_t max_rows, struct vec_mat *out, char *err, size_t errlen);
/* Neighbour ids from an .ivecs file (rows of int32) or a 2-D int32/int64 .npy:
 * out->dist is NULL. */
int vec_ids_read(const char *path, size_t max_rows, struct vec_nbrs *out, char *err, size_t errlen);
/* An ann-benchmarks .hdf5 file: its "train" and "test" datasets (float32, 2-D,
 * the same dimension), and "neighbors" (int) with "distances" (float) into *truth
 * when the file has them (else truth zeroed). Its "distance" attribute
 * ("euclidean", "angular", "dot") into *metric when metric is not NULL and the
 * attribute is there (*has_metric says whether). */
int vec_hdf5_read(const char *path, struct vec_mat *train, struct vec_mat *test,
                  struct vec_nbrs *truth, enum vec_metric *metric, bool *has_metric, char *err,
                  size_t errlen);
/* Writes m as .fvecs / nbrs' ids as .ivecs (the file replaced atomically). */
int vec_fvecs_write(const char *path, const struct vec_mat *m, char *err, size_t errlen);
int vec_ivecs_write(const char *path, const struct vec_nbrs *t, char *err, size_t errlen);

/* ---- datasets (dataset.c) ------------------------------------------------------------ */

enum vec_synth_kind { VEC_SYNTH_CLUSTERED, VEC_SYNTH_UNIFORM };

/* A synthetic set: base and query vectors drawn from the same distribution with
 * independent streams of one seed. Clustered: a mixture of `clusters` Gaussians,
 * centres uniform in [-1,1]^dim, each coordinate N(0, spread^2) around its centre,
 * cluster chosen uniformly. Uniform: coordinates uniform in [-1, 1]. */
struct vec_synth {
    enum vec_synth_kind kind;
    size_t n, nq, dim, clusters;
    double spread;
    uint64_t seed;
};

struct vec_dataset {
    char *desc; /* "clustered n=50000 dim=128 clusters=100 spread=0.1 seed=1", or the file(s) */
    enum vec_metric metric;
    struct vec_mat base, queries;
    struct vec_nbrs file_truth; /* neighbours the files carried (nq == 0 when none) */
    /* Optional labels for filtered search: base_label[i] in [0, labels) for every
     * base row, query_label[q] the label query q filters on (NULL: unfiltered). */
    unsigned labels;
    int32_t *base_label, *query_label;
    unsigned char hash[32]; /* SHA-256 of metric, shapes, base and queries */
};

/* Generates s into ds (metric m; cosine normalises the rows). */
int vec_synth_make(const struct vec_synth *s, enum vec_metric m, struct vec_dataset *ds, char *err,
                   size_t errlen);
/* Gives every base row and every query a label in [0, labels) drawn from seed
 * (labels == 0: removes them). Part of the hash. */
void vec_dataset_label(struct vec_dataset *ds, unsigned labels, uint64_t seed);
/* Normalises the rows of ds for metric cosine (copying a memory-mapped matrix) and
 * computes ds->hash; readers of files call it last. */
int vec_dataset_finish(struct vec_dataset *ds, char *err, size_t errlen);
void vec_dataset_free(struct vec_dataset *ds);

/* The dataset an option map describes (a driver's `dataset:` block):
 *   synthetic: clustered|uniform, vectors, queries, dim, clusters, spread, seed
 *   file: X.hdf5                        (ann-benchmarks: train, test, neighbors)
 *   base: X.fvecs|.bvecs|.npy, query_file: Y, neighbors: Z.ivecs|.npy
 *   max_vectors, max_queries            (first rows only)
 * metric: the driver's. A message naming the key on error. */
int vec_dataset_load(const struct sv *opts, enum vec_metric metric, struct vec_dataset *ds,
                     char *err, size_t errlen);
/* The option fields of such a block (struct opt_def[], for driver option tables). */
extern const struct opt_def vec_dataset_fields[];

/* ---- ground truth and recall (truth.c) ----------------------------------------------- */

/* The comparable distance between a and b of dim floats. */
float vec_distance(enum vec_metric m, const float *a, const float *b, size_t dim);

/* Exact k nearest base rows of every query, by brute force on `threads` threads
 * (0: the CPUs online); with labels, only base rows sharing the query's label.
 * Fewer than k candidates leave ids -1 at the end of a row. Ties at equal
 * distance are broken by the smaller id. stop (NULL: none), once set, ends the
 * computation within one block of base rows: -ECANCELED. */
int vec_truth_compute(const struct vec_dataset *ds, size_t k, unsigned threads,
                      const atomic_bool *stop, struct vec_nbrs *out, char *err, size_t errlen);
/* vec_truth_compute, or the copy cached under cache_dir (NULL: no cache) keyed by
 * the dataset's hash and k; a file's own neighbours are checked against exact
 * search on `check` queries first and used when they agree (-EINVAL with the first
 * disagreement otherwise; the file's order within a row does not matter, a repeated id
 * is refused). *source says where it came from: "computed", "cache",
 * "file". */
int vec_truth_get(const struct vec_dataset *ds, size_t k, unsigned threads, const atomic_bool *stop,
                  const char *cache_dir, size_t check, struct vec_nbrs *out, const char **source,
                  char *err, size_t errlen);

/* recall@kk of one query's results ids[0..nres) (the first kk taken, kk <= truth.k):
 * the share of the true kk nearest found, where a result counts when it is a base
 * row (of the query's label when filtered), is not a repeat of an earlier result,
 * and its distance to the query is no more than the kk-th true distance (so any of
 * several rows tied at that distance counts). When fewer than kk rows qualify at
 * all, the denominator is their number (1.0 when none qualifies). */
double vec_recall(const struct vec_dataset *ds, const struct vec_nbrs *truth, size_t q,
                  const int64_t *ids, size_t nres, size_t kk);

/* The distribution of per-query recall: mean, min, 5th and 50th percentile, and the
 * share of queries with recall 1. */
struct vec_recall_sum {
    double mean, min, p5, p50, perfect;
    size_t n;
};
void vec_recall_summary(const double *per_query, size_t n, struct vec_recall_sum *out);

#endif
