// Codecs for the outer gradient on the wire: fp32, bf16, fp16, int8 and two 4-bit formats
// (int4, E3M0), each with its exact byte count and its stated per-element error bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace diloco {

// Wire formats (`--outer-codec NAME`, NAME being the enumerator's name). All are little-endian;
// B = kCodecBlock values share one scale.
//
//   fp32   4n bytes, the values as they are.
//   bf16   2n bytes, round to nearest even; magnitudes past the largest bf16 saturate to it.
//   fp16   2n bytes, round to nearest even, subnormals kept; magnitudes past 65504 saturate.
//   int8   4*ceil(n/B) + n bytes: one fp32 scale s = m/127 per block, then one int8 code q per
//          value in [-127, 127], value = q*s; m is the block's largest |x|, and s is rounded
//          down where m/127 rounds up, so that no decoded value exceeds m (nor overflows).
//   int4   4*ceil(n/B) + ceil(n/2) bytes: scale s = m/7 (rounded down likewise), then
//          two's-complement nibbles q in [-7, 7], value = q*s; value i sits in byte i/2, in the
//          low nibble when i is even.
//   e3m0   4*ceil(n/B) + ceil(n/2) bytes: scale s = m, then one nibble per value, sign in bit 3
//          and a 3-bit exponent code k: value = 0 when k = 0, else +-2^(k-7) * s, so the block's
//          largest magnitude is the top code (2^0 s) and the smallest nonzero is s/64. Rounding is
//          to the nearest representable value in linear space (ties away from zero), not in log
//          space: it has the smaller worst case relative to x (1/3 against sqrt(2) - 1) and the
//          least absolute error, which is what a sum of outer gradients feels.
//
// Block codecs put all ceil(n/B) scales first, then the codes; the last block may be short.
enum class Codec { fp32, bf16, fp16, int8, e3m0, int4 };
inline constexpr Codec kCodecs[] = {Codec::fp32, Codec::bf16, Codec::fp16,
                                    Codec::int8, Codec::e3m0, Codec::int4};

// Values per scale in the block codecs. 1024 costs 4/1024 bytes per value: int4 and e3m0 send
// 0.504 bytes per value, 7.94x fewer than fp32 (blocks of 128 would cost 7.53x). The step grows
// with the block's largest value, which for 1024 roughly normal values is only about 1.25 times
// that of 128; in the miniature both land within a fraction of a percent of fp32's perplexity.
inline constexpr size_t kCodecBlock = 1024;

// The `--outer-codec` name of a codec.
const char* codec_name(Codec codec);

// Exact wire size of n values (the formulas above); encode writes exactly this many bytes.
size_t encoded_bytes(Codec codec, size_t n);

// Index of the first NaN or +-Inf in x[0, n), or n when every value is finite.
size_t check_finite(const float* x, size_t n);

// Writes encoded_bytes(codec, n) bytes to out. A NaN or Inf anywhere in x is an Error
// "non-finite value <v> at index <i>" (the first such i), after which out holds unspecified
// bytes. Deterministic: the bytes do not depend on the number of OpenMP threads.
void encode(Codec codec, const float* x, size_t n, uint8_t* out);
// Reads encoded_bytes(codec, n) bytes from `in` and writes the n decoded values to x.
void decode(Codec codec, const uint8_t* in, size_t n, float* x);

// Bound on |x[i] - decode(encode(x))[i]| for the given input; every decode meets it. With
// m = max |x| over i's block (blocks of kCodecBlock from index 0) and a = |x[i]|:
//
//   fp32   0
//   bf16   max(a * 2^-8,  2^-134)               half an ulp of 8 significant bits
//   fp16   max(a * 2^-11, 2^-25)    a <= 65504  half an ulp of 11 bits, or of the subnormals;
//          a - 65504                a >  65504  saturated
//   int8   m/254 * (1 + 2^-12) + 2^-140         half a step of m/127
//   int4   m/14  * (1 + 2^-12) + 2^-140         half a step of m/7
//   e3m0   max(a/3, m/128) * (1 + 2^-12) + 2^-140
//
// The (1 + 2^-12) and 2^-140 terms cover fp32 rounding in the scale arithmetic and blocks whose
// scale is subnormal; they are far below the steps themselves.
double error_bound(Codec codec, const float* x, size_t n, size_t i);

// Error feedback: encodes x + residual into out, then sets residual to what the codec lost,
// (x + residual) - decode(out), to be added to the next round's x. Over many rounds the sum of
// what was decoded tracks the sum of the x to within the last residual. On an Error (non-finite
// x + residual) the residual is left unchanged.
void encode_with_feedback(Codec codec, const float* x, float* residual, size_t n, uint8_t* out);

// Sets to zero the round(fraction * n) values of smallest magnitude (halves round up); among
// equal magnitudes the lower indices go first, so the result is deterministic. A fraction
// outside [0, 1] is an Error.
void prune_by_magnitude(float* x, size_t n, double fraction);

}  // namespace diloco
