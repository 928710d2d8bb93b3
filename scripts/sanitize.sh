#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer, built with clang
# (whose UBSan also checks float-to-int conversions) in build-sanitize/; any report fails a test.
#
#   scripts/sanitize.sh [-R REGEX] [-j N]     (arguments go to ctest)
# Needs clang and libclang-rt-14-dev (Debian); the tests take about as long as the plain suite's.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-sanitize
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DDILOCO_SANITIZE=ON -DDILOCO_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$(nproc)"
# Open MPI keeps its own allocations until exit: leaks inside it are not ours to report. Its
# plugins are unloaded by then and have no frame pointers, so only a full unwind at each malloc
# reaches the libopen-pal frames that the suppressions name.
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
# A request no allocator can meet returns null, as malloc does: the tests check that it is an
# error, where ASan would abort by default.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:fast_unwind_on_malloc=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir "$build" --output-on-failure --timeout 1200 -j2 "$@"
