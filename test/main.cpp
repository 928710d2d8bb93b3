// Catch2 entry point for the diloco test binary.
// Every test case runs in its own process under ctest (catch_discover_tests).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
