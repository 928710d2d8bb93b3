// Helpers for testing CUDA ops against the CPU oracle: shared backends, random inputs rounded to
// the GPU's storage type, NaN-poisoned outputs, the normwise relative error, and stderr captured.
#pragma once

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "util/rng.h"

namespace diloco::test {

// One backend per configuration for the whole run: creating cuBLAS handles is slow. main()
// releases them before the CUDA runtime unloads at exit.
inline std::unique_ptr<Backend> (&gpu_cache())[2][4] {
    static std::unique_ptr<Backend> cache[2][4];
    return cache;
}

inline void release_gpu_backends() {
    for (auto& row : gpu_cache())
        for (auto& slot : row) slot.reset();
}

inline Backend& gpu(bool bf16, AttentionPath attention = AttentionPath::automatic) {
    auto& slot = gpu_cache()[bf16][static_cast<int>(attention)];
    if (!slot) {
        CudaOptions options;
        options.bf16 = bf16;
        options.attention = attention;
        slot = make_cuda_backend(options);
    }
    return *slot;
}

// The attention paths a test runs in this storage type: cuDNN's only in bf16 and where the build
// has it.
inline std::vector<AttentionPath> attention_paths(bool bf16) {
    std::vector<AttentionPath> paths{AttentionPath::flash, AttentionPath::plain};
    if (bf16 && cuda_has_cudnn_attention()) paths.push_back(AttentionPath::cudnn);
    return paths;
}

inline const char* path_name(AttentionPath path) {
    static const char* names[] = {"automatic", "cudnn", "flash", "plain"};
    return names[static_cast<int>(path)];
}

inline Backend& cpu() {
    static std::unique_ptr<Backend> backend = make_cpu_backend();
    return *backend;
}

// DILOCO_CUDA_TEST_QUICK=1 (for compute-sanitizer runs) keeps only the first `quick` shapes.
template <typename T>
std::vector<T> shapes(std::initializer_list<T> all, size_t quick) {
    std::vector<T> v(all);
    const char* env = std::getenv("DILOCO_CUDA_TEST_QUICK");
    if (env && *env && std::string(env) != "0" && v.size() > quick) v.resize(quick);
    return v;
}

// Relative error bound of the brief: rounding of fp32, or of bf16 storage.
inline double tolerance(bool bf16) { return bf16 ? 1e-2 : 1e-5; }

inline std::vector<float> random_values(size_t n, uint64_t seed, float scale = 1.0f,
                                        float offset = 0.0f) {
    Rng rng(seed, 99);
    std::vector<float> x(n);
    for (float& v : x) v = offset + scale * static_cast<float>(rng.normal());
    return x;
}

inline std::vector<int32_t> random_ints(size_t n, int below, uint64_t seed) {
    Rng rng(seed, 98);
    std::vector<int32_t> x(n);
    for (int32_t& v : x) v = static_cast<int32_t>(rng.below(below));
    return x;
}

// Storage-typed buffer holding x (rounded to the backend's storage type).
inline DeviceBuffer put(Backend& b, const std::vector<float>& x) {
    DeviceBuffer buf(b, std::max<size_t>(x.size(), 1) * b.storage_bytes());
    b.upload(buf.get(), x.data(), x.size());
    return buf;
}

// Raw fp32 or int32 buffer (statistics, moments, tokens).
template <typename T>
DeviceBuffer put_raw(Backend& b, const std::vector<T>& x) {
    DeviceBuffer buf(b, std::max<size_t>(x.size(), 1) * sizeof(T));
    b.upload_bytes(buf.get(), x.data(), x.size() * sizeof(T));
    return buf;
}

inline std::vector<float> nans(size_t n) {
    return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

inline std::vector<float> get(Backend& b, const DeviceBuffer& buf, size_t n) {
    std::vector<float> x(n);
    b.download(x.data(), buf.get(), n);
    return x;
}

inline std::vector<float> get_raw(Backend& b, const DeviceBuffer& buf, size_t n) {
    std::vector<float> x(n);
    b.download_bytes(x.data(), buf.get(), n * sizeof(float));
    return x;
}

// The values the GPU actually stores for x: the oracle must see the same inputs.
inline std::vector<float> as_stored(Backend& b, const std::vector<float>& x) {
    return get(b, put(b, x), x.size());
}

// max |got - want| / max |want|; infinite when anything is not finite (an unwritten NaN).
inline double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
    if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
    double diff = 0.0, ref = 0.0;
    for (size_t i = 0; i < got.size(); i++) {
        if (!std::isfinite(got[i]) || !std::isfinite(want[i]))
            return std::numeric_limits<double>::infinity();
        diff = std::max(diff, std::fabs(double(got[i]) - double(want[i])));
        ref = std::max(ref, std::fabs(double(want[i])));
    }
    return ref == 0.0 ? diff : diff / ref;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

using Outputs = std::vector<std::vector<float>>;

// What `f` writes to stderr (file descriptor 2, where the backends' notes go).
template <typename F>
std::string stderr_of(F&& f) {
    std::FILE* file = std::tmpfile();
    REQUIRE(file != nullptr);
    std::fflush(stderr);
    const int saved = dup(2);
    REQUIRE(saved >= 0);
    REQUIRE(dup2(fileno(file), 2) >= 0);
    struct Restore {  // also when f throws
        int saved;
        ~Restore() {
            std::fflush(stderr);
            dup2(saved, 2);
            close(saved);
        }
    };
    {
        Restore restore{saved};
        f();
    }
    std::string text;
    std::rewind(file);
    for (int c; (c = std::fgetc(file)) != EOF;) text += static_cast<char>(c);
    std::fclose(file);
    return text;
}

// How often `needle` occurs in `text`.
inline int occurrences(const std::string& text, const std::string& needle) {
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
    return n;
}

// Runs `run(backend)` on the CPU oracle and twice on the GPU (its attention on `path`): every
// output must be within the tolerance of the oracle's, and the two GPU runs must agree bit for bit.
template <typename Run>
void compare_with_cpu(Run&& run, bool bf16, double tol = 0.0,
                      AttentionPath path = AttentionPath::automatic) {
    if (tol == 0.0) tol = tolerance(bf16);
    const Outputs want = run(cpu());
    const Outputs got = run(gpu(bf16, path));
    const Outputs again = run(gpu(bf16, path));
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < want.size(); k++) {
        INFO("output " << k << " (" << (bf16 ? "bf16" : "fp32") << ")");
        CHECK(rel_error(got[k], want[k]) < tol);
        CHECK(same_bits(got[k], again[k]));
    }
}

}  // namespace diloco::test
