// faiss_direct.cpp — FAISS called directly, the reference for bench/faiss-overhead.sh:
//
//   faiss_direct BASE.fvecs QUERY.fvecs FACTORY K THREADS ROUNDS PARAM=V[,V...] [GT.ivecs]
//
// Reads both .fvecs files, builds the index (faiss::index_factory, METRIC_L2; trained
// on the whole base set when it needs training), adds the base set — or, with FACTORY
// written @INDEX, reads an index FAISS wrote (the one sonde built); then for each
// value V sets PARAM through faiss::ParameterSpace and times ROUNDS searches of all
// queries in one batch (K neighbours, THREADS OpenMP threads), and prints
// "param=V qps=X", X = queries / the median round's time (the lower middle one for
// an even ROUNDS, as sonde's faiss client takes it). No warm-up round, as sonde.
// With GT.ivecs (the queries' true neighbours, nearest first) the line also has
// "recall=R", the mean recall@K of the last round: the share of each query's K true
// neighbours among the K returned.
// Built by the bench script:
//   g++ -O2 -std=c++17 bench/faiss_direct.cpp -lfaiss -lopenblas -lgomp -fopenmp
#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{

template <class T> struct Rows {
    size_t n = 0, dim = 0;
    std::vector<T> data;
};

// A TEXMEX .fvecs / .ivecs file: rows of (int32 dim, dim float32 / int32), every row
// the same dim.
template <class T> Rows<T> read_vecs(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        throw std::runtime_error(std::string(path) + ": " + strerror(errno));
    std::unique_ptr<FILE, int (*)(FILE *)> closer(f, fclose);
    Rows<T> r;
    int32_t d;
    while (fread(&d, sizeof(d), 1, f) == 1) {
        if (d <= 0 || d > (1 << 20))
            throw std::runtime_error(std::string(path) + ": row " + std::to_string(r.n) +
                                     " says dimension " + std::to_string(d));
        if (r.n == 0)
            r.dim = static_cast<size_t>(d);
        else if (static_cast<size_t>(d) != r.dim)
            throw std::runtime_error(std::string(path) + ": row " + std::to_string(r.n) +
                                     " has dimension " + std::to_string(d) + ", row 0 " +
                                     std::to_string(r.dim));
        r.data.resize((r.n + 1) * r.dim);
        if (fread(r.data.data() + r.n * r.dim, sizeof(T), r.dim, f) != r.dim)
            throw std::runtime_error(std::string(path) + ": row " + std::to_string(r.n) +
                                     " is truncated");
        r.n++;
    }
    if (ferror(f))
        throw std::runtime_error(std::string(path) + ": read error");
    if (r.n == 0)
        throw std::runtime_error(std::string(path) + ": no vectors");
    return r;
}

long positive(const char *what, const char *s)
{
    char *end = nullptr;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v <= 0 || v > 1000000)
        throw std::runtime_error(std::string(what) + " must be a positive integer, got '" + s +
                                 "'");
    return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double recall(const Rows<int32_t> &gt, const std::vector<faiss::Index::idx_t> &labels, size_t nq,
              size_t k)
{
    size_t hits = 0;
    for (size_t q = 0; q < nq; q++) {
        const int32_t *truth = gt.data.data() + q * gt.dim;
        for (size_t i = 0; i < k; i++)
            hits += std::find(truth, truth + k, labels[q * k + i]) != truth + k;
    }
    return static_cast<double>(hits) / static_cast<double>(nq * k);
}

int run(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: faiss_direct BASE.fvecs QUERY.fvecs FACTORY K THREADS ROUNDS "
                        "PARAM=V[,V...] [GT.ivecs]\n");
        return 2;
    }
    const char *factory = argv[3];
    size_t k = static_cast<size_t>(positive("K", argv[4]));
    int threads = static_cast<int>(positive("THREADS", argv[5]));
    size_t rounds = static_cast<size_t>(positive("ROUNDS", argv[6]));
    std::string spec = argv[7];
    size_t eq = spec.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == spec.size())
        throw std::runtime_error("expected PARAM=V[,V...], got '" + spec + "'");
    std::string param = spec.substr(0, eq);
    std::vector<std::string> values;
    for (size_t p = eq + 1; p <= spec.size();) {
        size_t c = spec.find(',', p);
        if (c == std::string::npos)
            c = spec.size();
        std::string v = spec.substr(p, c - p);
        char *end = nullptr;
        strtod(v.c_str(), &end);
        if (v.empty() || *end)
            throw std::runtime_error("not a number: '" + v + "' in " + spec);
        values.push_back(v);
        p = c + 1;
    }

    Rows<float> base = read_vecs<float>(argv[1]);
    Rows<float> query = read_vecs<float>(argv[2]);
    if (query.dim != base.dim)
        throw std::runtime_error("queries have dimension " + std::to_string(query.dim) +
                                 ", the base set " + std::to_string(base.dim));
    Rows<int32_t> gt;
    if (argc == 9) {
        gt = read_vecs<int32_t>(argv[8]);
        if (gt.n < query.n || gt.dim < k)
            throw std::runtime_error(std::string(argv[8]) + ": " + std::to_string(gt.n) + " x " +
                                     std::to_string(gt.dim) + " neighbours, need " +
                                     std::to_string(query.n) + " x " + std::to_string(k));
    }

    omp_set_num_threads(threads);
    auto t0 = std::chrono::steady_clock::now();
    bool saved = factory[0] == '@';
    std::unique_ptr<faiss::Index> index(
        saved ? faiss::read_index(factory + 1)
              : faiss::index_factory(static_cast<int>(base.dim), factory, faiss::METRIC_L2));
    if (saved && (index->d != static_cast<faiss::Index::idx_t>(base.dim) ||
                  index->ntotal != static_cast<faiss::Index::idx_t>(base.n)))
        throw std::runtime_error(std::string(factory + 1) + " is not an index of the base set");
    faiss::ParameterSpace ps; // a bad name fails here, before the build
    ps.set_index_parameter(index.get(), param, strtod(values[0].c_str(), nullptr));
    if (!saved) {
        if (!index->is_trained)
            index->train(static_cast<faiss::Index::idx_t>(base.n), base.data.data());
        index->add(static_cast<faiss::Index::idx_t>(base.n), base.data.data());
    }
    fprintf(stderr, "faiss_direct: FAISS %d.%d.%d, %s over %zu x %zu %s in %.2f s, %zu queries\n",
            FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR, FAISS_VERSION_PATCH, factory, base.n,
            base.dim, saved ? "read" : "built", seconds_since(t0), query.n);

    std::vector<float> dist(query.n * k);
    std::vector<faiss::Index::idx_t> labels(query.n * k);
    for (const std::string &v : values) {
        ps.set_index_parameter(index.get(), param, strtod(v.c_str(), nullptr));
        std::vector<double> secs;
        for (size_t r = 0; r < rounds; r++) {
            auto s0 = std::chrono::steady_clock::now();
            index->search(static_cast<faiss::Index::idx_t>(query.n), query.data.data(),
                          static_cast<faiss::Index::idx_t>(k), dist.data(), labels.data());
            secs.push_back(seconds_since(s0));
        }
        std::sort(secs.begin(), secs.end());
        double med = secs[(rounds - 1) / 2];
        printf("param=%s qps=%.1f", v.c_str(), static_cast<double>(query.n) / med);
        if (!gt.data.empty())
            printf(" recall=%.4f", recall(gt, labels, query.n, k));
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        fprintf(stderr, "faiss_direct: %s\n", e.what());
        return 1;
    }
}
