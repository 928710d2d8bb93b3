// Run-time choice of vector width for the CPU ops' inner loops (GCC's function clones for
// AVX-512, AVX2 and the x86-64 baseline), and an exp that vectorises inside those loops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

// The loader picks the best clone the CPU has, so the binary still runs on any x86-64; other
// architectures (aarch64) build the one plain version with their own vector unit. OpenMP
// outlines a parallel loop's body into a function of its own, which no clone covers: the cloned
// functions are the loop bodies that the parallel loops call. Clang (14) cannot clone templates:
// its builds (the fuzz and sanitizer ones) take the baseline.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DILOCO_CPU_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DILOCO_CPU_CLONES
#endif

namespace diloco::cpu {

// e^x in fp32 to within 2 ulp for x in [-87, 88] (below, a tiny positive number; above, a huge
// one; never inf for any x, NaN only for NaN): x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor
// series to r^7, 2^n put into the exponent. No branches and no libm, so loops of it vectorise. A
// clone may contract a * b + c into an FMA: the bits are fixed per CPU, not across CPUs.
inline float exp_approx(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float n = (x * 1.44269504f + kRound) - kRound;
    const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // A NaN passes the clamp and would be converted to int (undefined); the select keeps the
    // conversion defined and leaves the NaN in p to come out.
    const int32_t bits = (static_cast<int32_t>(n == n ? n : 0.0f) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// The exp of the ops' templates: the fast one in fp32, libm's in the fp64 oracle.
inline float exp_fast(float x) { return exp_approx(x); }
inline double exp_fast(double x) { return std::exp(x); }

}  // namespace diloco::cpu
