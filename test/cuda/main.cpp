// Catch2 entry point for the CUDA tests: one ctest test that exits 77 (skipped) when the machine
// has no CUDA device, so CI without a GPU builds everything and reports the skip.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "kernels/cuda/cuda_backend.h"
#include "test/cuda/oracle.h"

int main(int argc, char** argv) {
    if (diloco::cuda_device_count() == 0) {
        std::printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    const int failed = Catch::Session().run(argc, argv);
    diloco::test::release_gpu_backends();
    return failed;
}
