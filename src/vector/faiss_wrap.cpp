// faiss_wrap.cpp — the FAISS calls of faiss_wrap.h behind extern "C". No exception
// leaves this file: each function turns one into -EINVAL (-ENOMEM for std::bad_alloc)
// and FAISS's message, without its "Error in FUNCTION at FILE:LINE: " prefix.
#include "vector/faiss_wrap.h"

#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/impl/io.h>

#include <omp.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

static_assert(std::is_same<faiss::Index::idx_t, int64_t>::value,
              "fw_search hands FAISS's labels straight to the caller's int64_t array");

struct fw_index {
    std::unique_ptr<faiss::Index> index;
    int threads; // OpenMP threads for this index's calls (0: the caller's setting)
};

namespace
{

#define FW_STR2(x) #x
#define FW_STR(x)  FW_STR2(x)
const char fw_version_string[] =
    FW_STR(FAISS_VERSION_MAJOR) "." FW_STR(FAISS_VERSION_MINOR) "." FW_STR(FAISS_VERSION_PATCH);

// omp_set_num_threads changes only the calling thread's setting, so every call that
// runs FAISS's parallel code applies the index's count again in its own thread.
void apply_threads(const fw_index *ix)
{
    if (ix->threads > 0)
        omp_set_num_threads(ix->threads);
}

void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

// FAISS's messages read "Error in FUNCTION at FILE:LINE: MESSAGE": MESSAGE alone.
const char *faiss_message(const char *what)
{
    if (strncmp(what, "Error in ", 9) != 0)
        return what;
    const char *at = strstr(what, " at ");
    if (!at)
        return what;
    for (const char *p = at + 4; *p; p++) {
        if (p[0] != ':' || !isdigit(static_cast<unsigned char>(p[1])))
            continue;
        const char *q = p + 1;
        while (isdigit(static_cast<unsigned char>(*q)))
            q++;
        if (q[0] == ':' && q[1] == ' ' && q[2])
            return q + 2;
    }
    return what;
}

// Runs f (returning 0 or a negative errno), turning any exception into an error.
template <class F> int guarded(char *err, size_t errlen, F &&f)
{
    try {
        return f();
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    } catch (const std::exception &e) {
        set_err(err, errlen, faiss_message(e.what()));
        return -EINVAL;
    } catch (...) {
        set_err(err, errlen, "unknown exception from FAISS");
        return -EINVAL;
    }
}

int fail(char *err, size_t errlen, int rc, const char *msg)
{
    set_err(err, errlen, msg);
    return rc;
}

// n rows (or n*k values) as FAISS's idx_t, which is signed.
bool fits_idx(size_t n)
{
    return n <= static_cast<size_t>(std::numeric_limits<faiss::Index::idx_t>::max());
}

} // namespace

extern "C" {

const char *fw_version(void)
{
    return fw_version_string;
}

void fw_set_threads(struct fw_index *ix, int n)
{
    if (ix)
        ix->threads = n > 0 ? n : omp_get_num_procs();
}

int fw_create(const char *factory, size_t dim, int inner_product, struct fw_index **out, char *err,
              size_t errlen)
{
    if (!out)
        return fail(err, errlen, -EINVAL, "no place for the index");
    *out = nullptr;
    if (!factory || !*factory)
        return fail(err, errlen, -EINVAL, "empty index factory string");
    if (dim == 0 || dim > static_cast<size_t>(std::numeric_limits<int>::max()))
        return fail(err, errlen, -EINVAL, "dimension must be between 1 and 2^31-1");
    return guarded(err, errlen, [&] {
        faiss::MetricType metric = inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
        std::unique_ptr<faiss::Index> index(
            faiss::index_factory(static_cast<int>(dim), factory, metric));
        std::unique_ptr<fw_index> ix(new fw_index);
        ix->index = std::move(index);
        ix->threads = 0;
        *out = ix.release();
        return 0;
    });
}

int fw_needs_training(const struct fw_index *ix)
{
    return ix && ix->index && !ix->index->is_trained;
}

int fw_train(struct fw_index *ix, size_t n, const float *x, char *err, size_t errlen)
{
    if (!ix || !ix->index)
        return fail(err, errlen, -EINVAL, "no index");
    if (n == 0 || !x)
        return fail(err, errlen, -EINVAL, "no training vectors");
    if (!fits_idx(n))
        return fail(err, errlen, -EINVAL, "too many training vectors");
    return guarded(err, errlen, [&] {
        apply_threads(ix);
        ix->index->train(static_cast<faiss::Index::idx_t>(n), x);
        return 0;
    });
}

int fw_add(struct fw_index *ix, size_t n, const float *x, char *err, size_t errlen)
{
    if (!ix || !ix->index)
        return fail(err, errlen, -EINVAL, "no index");
    if (n == 0)
        return 0;
    if (!x)
        return fail(err, errlen, -EINVAL, "no vectors to add");
    if (!fits_idx(n) || !fits_idx(n + static_cast<size_t>(ix->index->ntotal)))
        return fail(err, errlen, -EINVAL, "too many vectors");
    if (!ix->index->is_trained)
        return fail(err, errlen, -EINVAL,
                    "the index is not trained: it must be trained before vectors are added");
    return guarded(err, errlen, [&] {
        apply_threads(ix);
        ix->index->add(static_cast<faiss::Index::idx_t>(n), x);
        return 0;
    });
}

size_t fw_ntotal(const struct fw_index *ix)
{
    return ix && ix->index ? static_cast<size_t>(ix->index->ntotal) : 0;
}

int fw_set_param(struct fw_index *ix, const char *name, double value, char *err, size_t errlen)
{
    if (!ix || !ix->index)
        return fail(err, errlen, -EINVAL, "no index");
    if (!name || !*name)
        return fail(err, errlen, -EINVAL, "empty parameter name");
    if (!std::isfinite(value))
        return fail(err, errlen, -EINVAL, "parameter value must be a finite number");
    return guarded(err, errlen, [&] {
        faiss::ParameterSpace ps;
        ps.set_index_parameter(ix->index.get(), name, value);
        return 0;
    });
}

int fw_search(struct fw_index *ix, size_t n, const float *x, size_t k, float *dist, int64_t *labels,
              char *err, size_t errlen)
{
    if (!ix || !ix->index)
        return fail(err, errlen, -EINVAL, "no index");
    if (n == 0)
        return 0;
    if (k == 0)
        return fail(err, errlen, -EINVAL, "k must be at least 1");
    if (!x || !dist || !labels)
        return fail(err, errlen, -EINVAL, "no queries or no room for the results");
    if (!fits_idx(n) || !fits_idx(k) || n > std::numeric_limits<size_t>::max() / k)
        return fail(err, errlen, -EINVAL, "too many queries or neighbours");
    if (!ix->index->is_trained)
        return fail(err, errlen, -EINVAL, "the index is not trained");
    return guarded(err, errlen, [&] {
        apply_threads(ix);
        ix->index->search(static_cast<faiss::Index::idx_t>(n), x,
                          static_cast<faiss::Index::idx_t>(k), dist, labels);
        return 0;
    });
}

int fw_size(const struct fw_index *ix, size_t *bytes, char *err, size_t errlen)
{
    if (!ix || !ix->index || !bytes)
        return fail(err, errlen, -EINVAL, "no index");
    *bytes = 0;
    return guarded(err, errlen, [&] {
        faiss::VectorIOWriter w;
        faiss::write_index(ix->index.get(), &w);
        *bytes = w.data.size();
        return 0;
    });
}

// Written to PATH.tmp.PID first and renamed over path: an interrupted write never
// leaves a truncated index where a later fw_read would find it.
int fw_write(const struct fw_index *ix, const char *path, char *err, size_t errlen)
{
    if (!ix || !ix->index)
        return fail(err, errlen, -EINVAL, "no index");
    if (!path || !*path)
        return fail(err, errlen, -EINVAL, "no path");
    std::string tmp;
    FILE *f = nullptr;
    bool faiss_error = true; // else the message names the file already
    int rc = guarded(err, errlen, [&] {
        tmp = std::string(path) + ".tmp." + std::to_string(static_cast<long>(getpid()));
        auto sys_fail = [&](const std::string &name) {
            int e = errno ? errno : EIO;
            set_err(err, errlen, (name + ": " + strerror(e)).c_str());
            faiss_error = false;
            return -e;
        };
        f = fopen(tmp.c_str(), "wb");
        if (!f)
            return sys_fail(tmp);
        faiss::write_index(ix->index.get(), f);
        FILE *g = f;
        f = nullptr;
        if (fflush(g) != 0 || fsync(fileno(g)) != 0) {
            int r = sys_fail(tmp);
            fclose(g);
            return r;
        }
        errno = 0;
        if (fclose(g) != 0 || rename(tmp.c_str(), path) != 0)
            return sys_fail(path);
        tmp.clear();
        return 0;
    });
    if (f)
        fclose(f);
    if (rc != 0 && !tmp.empty())
        unlink(tmp.c_str());
    if (rc != 0 && faiss_error && err && errlen > 0) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", err);
        snprintf(err, errlen, "%s: %s", path, msg);
    }
    return rc;
}

int fw_read(const char *path, struct fw_index **out, char *err, size_t errlen)
{
    if (!out)
        return fail(err, errlen, -EINVAL, "no place for the index");
    *out = nullptr;
    if (!path || !*path)
        return fail(err, errlen, -EINVAL, "no path");
    // Opened here so that a missing file is -ENOENT (not FAISS's -EINVAL). FAISS
    // 1.7.3 leaks the index it was filling when the file ends too soon.
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (err && errlen > 0)
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    int rc = guarded(err, errlen, [&] {
        std::unique_ptr<faiss::Index> index(faiss::read_index(f));
        std::unique_ptr<fw_index> ix(new fw_index);
        ix->index = std::move(index);
        ix->threads = 0;
        *out = ix.release();
        return 0;
    });
    fclose(f);
    if (rc < 0 && err && errlen > 0) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", err);
        snprintf(err, errlen, "%s: %s", path, msg);
    }
    return rc;
}

void fw_free(struct fw_index *ix)
{
    delete ix;
}

} // extern "C"
