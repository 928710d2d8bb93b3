// Fuzz target: the outer-gradient codecs on arbitrary buffers. The first byte picks the codec;
// the rest is read as floats to encode (with and without error feedback) and as wire bytes to
// decode. Decoded values must keep the stated error bound, and nothing may be undefined.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "comm/codec.h"
#include "fuzz/harness.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    if (size < 1) return 0;
    const Codec codec = static_cast<Codec>(data[0] % 6);
    data++, size--;
    const size_t n = size / sizeof(float);
    std::vector<float> x(n), y(n), residual(n);
    if (n > 0) std::memcpy(x.data(), data, n * sizeof(float));  // memcpy's pointers: never null
    std::vector<uint8_t> wire(encoded_bytes(codec, n));
    const bool finite = check_finite(x.data(), n) == n;
    try {
        encode(codec, x.data(), n, wire.data());
        if (!finite) __builtin_trap();  // a non-finite input must be refused
        decode(codec, wire.data(), n, y.data());
        // error_bound scans i's block: 64 indices spread over the vector keep an input fast.
        for (size_t k = 0; k < std::min<size_t>(n, 64); k++) {
            const size_t i = n <= 64 ? k : k * (n - 1) / 63;
            if (!(std::fabs(double(x[i]) - y[i]) <= error_bound(codec, x.data(), n, i)))
                __builtin_trap();
        }
    } catch (const Error&) {
        if (finite) __builtin_trap();
    }
    for (size_t i = 0; i < n; i++) residual[i] = x[n - 1 - i];
    try {
        encode_with_feedback(codec, x.data(), residual.data(), n, wire.data());
    } catch (const Error&) {
    }
    // The same bytes as a message off the wire: any bytes decode to some floats.
    const size_t m = size / 2;
    std::vector<float> z(m);
    if (encoded_bytes(codec, m) <= size) decode(codec, data, m, z.data());
    return 0;
}
