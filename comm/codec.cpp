// Outer-gradient codecs: bit-level fp32 -> bf16/fp16 rounding, per-block int8/int4/E3M0
// quantisation, their error bounds, error feedback and magnitude pruning.
#include "comm/codec.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/parallel.h"

namespace diloco {

static_assert(std::endian::native == std::endian::little, "the wire formats are little-endian");

namespace {

constexpr uint32_t kAbsMask = 0x7FFFFFFFu;
constexpr uint32_t kInfBits = 0x7F800000u;  // |x| bits at or above this: Inf or NaN
constexpr size_t kTile = 16 * kCodecBlock;  // values per tile of the element codecs

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }
float float_of(uint32_t b) { return std::bit_cast<float>(b); }

size_t blocks_of(size_t n) { return (n + kCodecBlock - 1) / kCodecBlock; }

// Runs body(begin, end) over [0, n) in tiles and returns the largest value it returned (the
// encoders return the largest |x| bits they saw, so one comparison finds a non-finite input).
// Tiles are independent: the output is the same for any number of threads.
template <class Body>
uint32_t max_over_tiles(size_t n, size_t tile, Body body) {
    const size_t tiles = (n + tile - 1) / tile;
    uint32_t worst = 0;
#pragma omp parallel for schedule(static) reduction(max : worst) if (n >= kParallelMin)
    for (size_t t = 0; t < tiles; t++)
        worst = std::max(worst, body(t * tile, std::min(n, (t + 1) * tile)));
    return worst;
}

template <class Body>
void for_tiles(size_t n, size_t tile, Body body) {
    const size_t tiles = (n + tile - 1) / tile;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (size_t t = 0; t < tiles; t++) body(t * tile, std::min(n, (t + 1) * tile));
}

// c ? a : b with bit masks: GCC does not if-convert a choice between values computed in
// floating point (-ftrapping-math), so the loops using it would not vectorise.
uint32_t select_bits(bool c, uint32_t a, uint32_t b) {
    const uint32_t mask = 0u - uint32_t(c);
    return (a & mask) | (b & ~mask);
}

// For finite floats the order of the magnitude bits is the order of the magnitudes.
uint32_t absmax_bits(const float* x, size_t n) {
    uint32_t m = 0;
#pragma omp simd reduction(max : m)
    for (size_t i = 0; i < n; i++) m = std::max(m, bits_of(x[i]) & kAbsMask);
    return m;
}

// ---- bf16 and fp16: round to nearest even on the bits ----

uint16_t bf16_of(float x) {
    const uint32_t b = bits_of(x), sign = (b >> 16) & 0x8000u;
    // Clamping to the largest bf16 first saturates instead of rounding up to Inf.
    const uint32_t a = std::min(b & kAbsMask, 0x7F7F0000u);
    return uint16_t(sign | ((a + 0x7FFFu + ((a >> 16) & 1u)) >> 16));
}

float float_of_bf16(uint16_t h) { return float_of(uint32_t(h) << 16); }

uint16_t fp16_of(float x) {
    const uint32_t b = bits_of(x), sign = (b >> 16) & 0x8000u;
    const uint32_t a = std::min(b & kAbsMask, 0x477FE000u);  // saturate at 65504
    // Rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
    const uint32_t normal = (a - 0x38000000u + 0x0FFFu + ((a >> 13) & 1u)) >> 13;
    // Below 2^-14 the half is subnormal with a step of 2^-24, which is the ulp of 0.5f:
    // adding 0.5f makes the FPU round |x| to that step, nearest even, for us.
    const uint32_t subnormal = bits_of(float_of(a) + 0.5f) - 0x3F000000u;
    return uint16_t(sign | select_bits(a < 0x38800000u, subnormal, normal));
}

float float_of_fp16(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16, exponent = h & 0x7C00u;
    // Exponent 31 (Inf, NaN) is never written by encode, but decodes faithfully.
    const uint32_t normal = ((uint32_t(h & 0x7FFFu) << 13) + 0x38000000u) |
                            select_bits(exponent == 0x7C00u, kInfBits, 0u);
    const float subnormal = float(h & 0x3FFu) * 0x1p-24f;
    return float_of(sign | select_bits(exponent == 0, bits_of(subnormal), normal));
}

template <uint16_t (*to_half)(float)>
uint32_t encode_half(const float* x, size_t n, uint8_t* out) {
    uint16_t h[kTile];
#pragma omp simd
    for (size_t i = 0; i < n; i++) h[i] = to_half(x[i]);
    std::memcpy(out, h, 2 * n);
    return absmax_bits(x, n);
}

template <float (*from_half)(uint16_t)>
void decode_half(const uint8_t* in, size_t n, float* x) {
    uint16_t h[kTile];
    std::memcpy(h, in, 2 * n);
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = from_half(h[i]);
}

// ---- block codecs: one fp32 scale per kCodecBlock values ----

// A block whose largest magnitude is below 2^-100 is multiplied by 2^100 before its reciprocal
// is taken, so that the reciprocal stays finite for subnormal inputs; a power of two is exact.
float lift_for(float m) { return m < 0x1p-100f ? 0x1p100f : 1.0f; }

// The step m/levels, rounded down if it rounded up, so that no decoded value exceeds m:
// FLT_MAX / 127 rounds up, and 127 times it would be Inf.
float int_scale(float m, float levels) {
    const float scale = m / levels;
    return scale * levels > m ? std::nextafter(scale, 0.0f) : scale;
}

// Symmetric quantisation of a block with largest magnitude m to q in [-levels, levels].
void quantize_int(const float* x, size_t n, float m, float levels, int8_t* q) {
    const float lift = lift_for(m), inv = m > 0 ? levels / (m * lift) : 0.0f;
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        q[i] = int8_t(std::clamp(std::nearbyint(x[i] * lift * inv), -levels, levels));
}

// E3M0 code of each value: sign in bit 3, exponent code k in bits 0-2, value 2^(k-7) * m.
void quantize_e3m0(const float* x, size_t n, float m, uint8_t* code) {
    const float lift = lift_for(m), inv = m > 0 ? 1.0f / (m * lift) : 0.0f;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const uint32_t b = bits_of(x[i]);
        const float y = float_of(b & kAbsMask) * lift * inv;  // in [0, 1]
        // Adding half the mantissa range carries into the exponent exactly when y >= 1.5 * 2^j,
        // that is when 2^(j+1) is nearer than 2^j: e is the biased exponent of y's nearest power
        // of two, and k = e - 120 its code, kept within the codes 1..7 of 2^-6 .. 2^0.
        const uint32_t e = (bits_of(y) + 0x00400000u) >> 23;
        const uint32_t k_nonzero = std::min(std::max(e, 121u), 127u) - 120u;
        // Between 0 and the smallest step 2^-6 the midpoint is 2^-7.
        const uint32_t k = y >= 0x1p-7f ? k_nonzero : 0u;
        code[i] = uint8_t(((b >> 28) & 8u) | k);
    }
}

float e3m0_value(uint32_t code, float scale) {
    const uint32_t k = code & 7u;
    const float magnitude = float_of((k + 120u) << 23) * scale;  // 2^(k-7) * scale
    return float_of(select_bits(k != 0, bits_of(magnitude), 0u) | ((code & 8u) << 28));
}

// Two values per byte, the even index in the low nibble; a short block pads with a zero nibble.
void pack_nibbles(const uint8_t* code, size_t n, uint8_t* out) {
#pragma omp simd
    for (size_t j = 0; j < n / 2; j++)
        out[j] = uint8_t((code[2 * j] & 0x0Fu) | (code[2 * j + 1] << 4));
    if (n % 2) out[n / 2] = code[n - 1] & 0x0Fu;
}

void unpack_nibbles(const uint8_t* in, size_t n, uint8_t* code) {
#pragma omp simd
    for (size_t j = 0; j < n / 2; j++) {
        code[2 * j] = in[j] & 0x0Fu;
        code[2 * j + 1] = in[j] >> 4;
    }
    if (n % 2) code[n - 1] = in[n / 2] & 0x0Fu;
}

// Encodes the block x[begin, end) into its scale and its codes; returns its largest |x| bits.
uint32_t encode_block(Codec codec, const float* x, size_t begin, size_t end, size_t blocks,
                      uint8_t* out) {
    const size_t n = end - begin;
    const uint32_t m_bits = absmax_bits(x + begin, n);
    // NaN or Inf: encode refuses the vector, and quantising it would convert NaN to an integer.
    if (m_bits >= kInfBits) return m_bits;
    const float m = float_of(m_bits);
    uint8_t* payload = out + 4 * blocks;
    float scale = m;
    if (codec == Codec::int8) {
        scale = int_scale(m, 127.0f);
        quantize_int(x + begin, n, m, 127.0f, reinterpret_cast<int8_t*>(payload + begin));
    } else {
        alignas(64) uint8_t code[kCodecBlock];
        if (codec == Codec::int4) {
            scale = int_scale(m, 7.0f);
            quantize_int(x + begin, n, m, 7.0f, reinterpret_cast<int8_t*>(code));
        } else {
            quantize_e3m0(x + begin, n, m, code);
        }
        pack_nibbles(code, n, payload + begin / 2);
    }
    std::memcpy(out + 4 * (begin / kCodecBlock), &scale, 4);
    return m_bits;
}

void decode_block(Codec codec, const uint8_t* in, size_t begin, size_t end, size_t blocks,
                  float* x) {
    const size_t n = end - begin;
    const uint8_t* payload = in + 4 * blocks;
    float scale;
    std::memcpy(&scale, in + 4 * (begin / kCodecBlock), 4);
    float* y = x + begin;
    if (codec == Codec::int8) {
        const int8_t* q = reinterpret_cast<const int8_t*>(payload + begin);
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = float(q[i]) * scale;
        return;
    }
    alignas(64) uint8_t code[kCodecBlock];
    unpack_nibbles(payload + begin / 2, n, code);
    if (codec == Codec::int4) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = float(int8_t(code[i] << 4) >> 4) * scale;
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = e3m0_value(code[i], scale);
    }
}

// The largest |x| bits seen, for the non-finite check.
uint32_t encode_values(Codec codec, const float* x, size_t n, uint8_t* out) {
    switch (codec) {
    case Codec::fp32:
        return max_over_tiles(n, kTile, [&](size_t b, size_t e) {
            std::memcpy(out + 4 * b, x + b, 4 * (e - b));
            return absmax_bits(x + b, e - b);
        });
    case Codec::bf16:
        return max_over_tiles(n, kTile, [&](size_t b, size_t e) {
            return encode_half<bf16_of>(x + b, e - b, out + 2 * b);
        });
    case Codec::fp16:
        return max_over_tiles(n, kTile, [&](size_t b, size_t e) {
            return encode_half<fp16_of>(x + b, e - b, out + 2 * b);
        });
    default:
        return max_over_tiles(n, kCodecBlock, [&](size_t b, size_t e) {
            return encode_block(codec, x, b, e, blocks_of(n), out);
        });
    }
}

}  // namespace

const char* codec_name(Codec codec) {
    switch (codec) {
    case Codec::fp32: return "fp32";
    case Codec::bf16: return "bf16";
    case Codec::fp16: return "fp16";
    case Codec::int8: return "int8";
    case Codec::e3m0: return "e3m0";
    case Codec::int4: return "int4";
    }
    return "?";
}

size_t encoded_bytes(Codec codec, size_t n) {
    switch (codec) {
    case Codec::fp32: return 4 * n;
    case Codec::bf16:
    case Codec::fp16: return 2 * n;
    case Codec::int8: return 4 * blocks_of(n) + n;
    case Codec::e3m0:
    case Codec::int4: return 4 * blocks_of(n) + (n + 1) / 2;
    }
    return 0;
}

size_t check_finite(const float* x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((bits_of(x[i]) & kAbsMask) >= kInfBits) return i;
    return n;
}

void encode(Codec codec, const float* x, size_t n, uint8_t* out) {
    if (encode_values(codec, x, n, out) < kInfBits) return;
    const size_t i = check_finite(x, n);
    throw Error("non-finite value " + std::to_string(x[i]) + " at index " + std::to_string(i) +
                " of the outer gradient");
}

void decode(Codec codec, const uint8_t* in, size_t n, float* x) {
    switch (codec) {
    case Codec::fp32:
        for_tiles(n, kTile, [&](size_t b, size_t e) {
            std::memcpy(x + b, in + 4 * b, 4 * (e - b));
        });
        return;
    case Codec::bf16:
        for_tiles(n, kTile, [&](size_t b, size_t e) {
            decode_half<float_of_bf16>(in + 2 * b, e - b, x + b);
        });
        return;
    case Codec::fp16:
        for_tiles(n, kTile, [&](size_t b, size_t e) {
            decode_half<float_of_fp16>(in + 2 * b, e - b, x + b);
        });
        return;
    default:
        for_tiles(n, kCodecBlock, [&](size_t b, size_t e) {
            decode_block(codec, in, b, e, blocks_of(n), x);
        });
    }
}

double error_bound(Codec codec, const float* x, size_t n, size_t i) {
    require(i < n, "error_bound: index " + std::to_string(i) + " past " + std::to_string(n));
    const size_t begin = i - i % kCodecBlock;
    const double a = std::fabs(double(x[i]));
    const double m = float_of(absmax_bits(x + begin, std::min(n, begin + kCodecBlock) - begin));
    const double slack = 1 + 0x1p-12, tiny = 0x1p-140;
    switch (codec) {
    case Codec::fp32: return 0;
    case Codec::bf16: return std::max(a * 0x1p-8, 0x1p-134);
    case Codec::fp16: return a > 65504 ? a - 65504 : std::max(a * 0x1p-11, 0x1p-25);
    case Codec::int8: return m / 254 * slack + tiny;
    case Codec::int4: return m / 14 * slack + tiny;
    case Codec::e3m0: return std::max(a / 3, m / 128) * slack + tiny;
    }
    return 0;
}

void encode_with_feedback(Codec codec, const float* x, float* residual, size_t n, uint8_t* out) {
    std::vector<float> sent(n);
    for_tiles(n, kTile, [&](size_t b, size_t e) {
#pragma omp simd
        for (size_t i = b; i < e; i++) sent[i] = x[i] + residual[i];
    });
    encode(codec, sent.data(), n, out);
    decode(codec, out, n, residual);
    for_tiles(n, kTile, [&](size_t b, size_t e) {
#pragma omp simd
        for (size_t i = b; i < e; i++) residual[i] = sent[i] - residual[i];
    });
}

void prune_by_magnitude(float* x, size_t n, double fraction) {
    require(fraction >= 0 && fraction <= 1,
            "outer prune fraction " + std::to_string(fraction) + " is outside [0, 1]");
    const size_t k = size_t(std::round(fraction * double(n)));
    if (k == 0) return;
    std::vector<uint32_t> magnitude(n);
    for (size_t i = 0; i < n; i++) magnitude[i] = bits_of(x[i]) & kAbsMask;
    std::nth_element(magnitude.begin(), magnitude.begin() + (k - 1), magnitude.end());
    // The k-th smallest magnitude t: every smaller one goes, and of those equal to t, as many
    // as are still needed, lowest index first. Everything below t sits left of position k - 1.
    const uint32_t t = magnitude[k - 1];
    size_t ties = k - size_t(std::count_if(magnitude.begin(), magnitude.begin() + (k - 1),
                                           [t](uint32_t a) { return a < t; }));
    for (size_t i = 0; i < n; i++) {
        const uint32_t a = bits_of(x[i]) & kAbsMask;
        if (a < t || (a == t && ties > 0 && ties--)) x[i] = 0.0f;
    }
}

}  // namespace diloco
