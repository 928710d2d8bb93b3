// Bench of the outer-gradient codecs on 16M floats: encode and decode GB/s (of fp32 input)
// beside a copy of the same bytes, bytes per value, and relative RMS error on two data sets.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bench/median.h"
#include "comm/codec.h"
#include "util/rng.h"

using namespace diloco;

namespace {

constexpr size_t kValues = size_t(1) << 24;
constexpr int kReps = 7;

// sqrt(sum (x - y)^2 / sum x^2) after one round trip.
double relative_rms(Codec codec, const std::vector<float>& x) {
    std::vector<uint8_t> wire(encoded_bytes(codec, x.size()));
    std::vector<float> y(x.size());
    encode(codec, x.data(), x.size(), wire.data());
    decode(codec, wire.data(), x.size(), y.data());
    double err = 0, norm = 0;
    for (size_t i = 0; i < x.size(); i++) {
        err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        norm += double(x[i]) * x[i];
    }
    return std::sqrt(err / norm);
}

}  // namespace

int main() {
    Rng rng(1, 1);
    std::vector<float> normal(kValues), heavy(kValues);
    for (float& v : normal) v = float(rng.normal());
    // A normal times a log-normal scale: magnitudes over decades, as outer gradients mix tensors.
    for (float& v : heavy) v = float(rng.normal() * std::exp(rng.normal()));

    const double gb = 4.0 * kValues / 1e9;
    std::vector<float> copy(kValues);
    // The ceiling: the same threads copying the same bytes, in the codecs' tiles.
    const double copy_s = bench::median_seconds(kReps, [&] {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < kValues; i += 2048)
            std::memcpy(copy.data() + i, normal.data() + i, 4 * 2048);
    });
    std::printf("codec bench: %zu floats, %d threads, median of %d; GB/s counts fp32 bytes\n",
                kValues, omp_get_max_threads(), kReps);
    std::printf("ceiling: parallel memcpy %.1f GB/s\n\n", gb / copy_s);
    std::printf("%-6s %11s %8s %11s %11s %14s %13s\n", "codec", "bytes/value", "vs fp32",
                "encode GB/s", "decode GB/s", "rel RMS normal", "rel RMS heavy");
    for (Codec codec : {Codec::fp32, Codec::bf16, Codec::fp16, Codec::int8, Codec::e3m0,
                        Codec::int4}) {
        std::vector<uint8_t> wire(encoded_bytes(codec, kValues));
        const double enc = bench::median_seconds(
            kReps, [&] { encode(codec, normal.data(), kValues, wire.data()); });
        const double dec = bench::median_seconds(
            kReps, [&] { decode(codec, wire.data(), kValues, copy.data()); });
        const double per_value = double(wire.size()) / kValues;
        std::printf("%-6s %11.4f %7.2fx %11.1f %11.1f %14.3e %13.3e\n", codec_name(codec),
                    per_value, 4.0 / per_value, gb / enc, gb / dec, relative_rms(codec, normal),
                    relative_rms(codec, heavy));
    }
    return 0;
}
