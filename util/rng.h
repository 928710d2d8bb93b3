// Counter-based random numbers: splitmix64 over (seed, stream, counter), so any draw can be
// recomputed from plain integers; this is what makes resumed runs bitwise identical.
#pragma once

#include <cmath>
#include <cstdint>

namespace diloco {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

class Rng {
public:
    Rng(uint64_t seed, uint64_t stream) : state_(splitmix64(seed) ^ splitmix64(~stream)) {}
    uint64_t next_u64() { return splitmix64(state_++); }
    // Uniform in [0, 1) with 24 bits, exactly representable in float.
    float uniform() { return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f; }
    // Uniform integer in [0, n): multiply-shift, no modulo bias worth measuring for n < 2^32.
    uint64_t below(uint64_t n) { return ((next_u64() >> 32) * n) >> 32; }
    // Standard normal by Box-Muller in double, so the values do not depend on libm float paths.
    double normal() {
        double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * 0x1.0p-53;
        double u2 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    uint64_t state() const { return state_; }

private:
    uint64_t state_;
};

}  // namespace diloco
