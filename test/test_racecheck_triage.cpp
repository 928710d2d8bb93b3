// bench/racecheck_triage.py on racecheck logs written here, in the formats compute-sanitizer
// prints: hazards in cuDNN's and cuBLAS's kernels are listed and pass, one in ours fails; a log it
// cannot account for fails too; and gpu_check's table shows the stage with both counts.
#include <catch2/catch.hpp>
#include <string>

#include "test/helpers.h"

using namespace diloco::test;

namespace {

const std::string kSource = DILOCO_SOURCE_DIR;

CliResult triage(const std::string& log) {
    return run_command("python3 " + kSource + "/bench/racecheck_triage.py " + log);
}

// Three reports in library kernels: cuDNN's generated sdpa kernel (twice, one report split over
// lines as newer sanitizers print it) and cuBLAS's, which has no line information.
const std::string kLibraryReports =
    "========= COMPUTE-SANITIZER\n"
    "========= Error: Race reported between Write access at "
    "cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x64_4x1x1_kernel0_0+0x1a30\n"
    "=========     and Read access at "
    "cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x64_4x1x1_kernel0_0+0x1b20 [256 hazards]\n"
    "=========\n"
    "========= Error: Race reported between Write access at\n"
    "=========     cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x64_4x1x1_kernel0_0+0x2200\n"
    "=========     and Read access at\n"
    "=========     cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x64_4x1x1_kernel0_0+0x2310\n"
    "=========     [64 hazards]\n"
    "=========\n"
    "========= Warning: Race reported between Write access at 0x68 in "
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_cublas\n"
    "=========     and Read access at 0x78 in "
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_cublas [8 hazards]\n"
    "=========\n";

// A report in our flash kernel, as full demangling prints it (file and line from -lineinfo).
const std::string kOurReport =
    "========= Error: Race reported between Write access at void diloco::cuda::(anonymous "
    "namespace)::flash_backward_kv_kernel<__nv_bfloat16, 64>(__nv_bfloat16 *, const "
    "__nv_bfloat16 *, const __nv_bfloat16 *, const float *, const float *, int, int, int, "
    "int)+0x5f0 in attention.cu:201\n"
    "=========     and Read access at void diloco::cuda::(anonymous "
    "namespace)::flash_backward_kv_kernel<__nv_bfloat16, 64>(__nv_bfloat16 *, const "
    "__nv_bfloat16 *, const __nv_bfloat16 *, const float *, const float *, int, int, int, "
    "int)+0x640 in attention.cu:205 [32 hazards]\n"
    "=========\n";

std::string summary(int displayed, int errors, int warnings) {
    return "========= RACECHECK SUMMARY: " + std::to_string(displayed) + " hazards displayed (" +
           std::to_string(errors) + " errors, " + std::to_string(warnings) + " warnings)\n";
}

}  // namespace

TEST_CASE("racecheck_triage.py lists the libraries' hazards and passes them", "[gpu_check]") {
    TempDir dir;
    write_text(dir.file("racecheck.log"), kLibraryReports + summary(3, 2, 1));
    const CliResult r = triage(dir.file("racecheck.log"));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("ours (kernels/cuda): 0 reports\n") != std::string::npos);
    CHECK(r.out.find("library (cuDNN, cuBLAS, CUB): 3 reports in 2 kernels\n") !=
          std::string::npos);
    CHECK(r.out.find("       2  cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x64_4x1x1_"
                     "kernel0_0\n") != std::string::npos);
    CHECK(r.out.find("       1  sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_"
                     "cublas\n") != std::string::npos);
    CHECK(r.out.find("racecheck_triage ours=0 library=3 unattributed=0\n") != std::string::npos);
}

TEST_CASE("racecheck_triage.py fails on a hazard in one of our kernels", "[gpu_check]") {
    TempDir dir;
    write_text(dir.file("racecheck.log"), kLibraryReports + kOurReport + summary(4, 4, 0));
    CliResult r = triage(dir.file("racecheck.log"));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("ours (kernels/cuda): 1 report in 1 kernel\n") != std::string::npos);
    CHECK(r.out.find("       1  void diloco::cuda::(anonymous namespace)::flash_backward_kv_"
                     "kernel<__nv_bfloat16, 64>(") != std::string::npos);
    CHECK(r.out.find("racecheck_triage ours=1 library=3 unattributed=0\n") != std::string::npos);

    // Older sanitizers: "at 0xOFFSET in FILE:LINE:FUNCTION", no namespace: the kernel's name
    // from kernels/cuda/*.cu tells it is ours.
    write_text(dir.file("old.log"),
               "========= WARN: Race reported between Read access at 0x00000170 in "
               "attention.cu:170:attention_delta_kernel(float*, int)\n"
               "=========     and Write access at 0x00000148 in "
               "attention.cu:168:attention_delta_kernel(float*, int) [4 hazards]\n"
               "=========\n" +
                   summary(1, 0, 1));
    r = triage(dir.file("old.log"));
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("       1  attention_delta_kernel(float*, int)\n") != std::string::npos);
}

TEST_CASE("racecheck_triage.py fails on a log it cannot account for", "[gpu_check]") {
    TempDir dir;
    struct Case {
        const char* what;
        std::string log, error;
    };
    const Case cases[] = {
        {"no summary: the run died", kLibraryReports, "no RACECHECK SUMMARY line"},
        {"more reports than displayed", kLibraryReports + summary(3, 40, 0),
         "37 reports were not displayed (run with --print-limit 0)"},
        {"a report the summary does not count", kLibraryReports + summary(2, 2, 0),
         "the summary says 2 reports were displayed, 3 were read"},
        {"a report with no kernel name",
         "========= Error: Race reported between Write access at an unknown place\n"
         "=========\n" +
             summary(1, 1, 0),
         "reports that name no kernel: 1"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        write_text(dir.file("racecheck.log"), c.log);
        const CliResult r = triage(dir.file("racecheck.log"));
        INFO(r.out << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("racecheck_triage: " + c.error) != std::string::npos);
    }
    const CliResult missing = triage(dir.file("absent.log"));
    CHECK(missing.exit_code == 2);
    CHECK(missing.err.find("cannot read " + dir.file("absent.log")) != std::string::npos);
    CHECK(missing.out.empty());
}

TEST_CASE("gpu_check's table shows the racecheck stage with ours and the libraries' counts",
          "[gpu_check]") {
    TempDir logs;
    write_text(logs.file("stages.txt"), "racecheck|ok|61\nmemcheck|ok|80\n");
    write_text(logs.file("racecheck.log"),
               "All tests passed\nours (kernels/cuda): 0 reports\n"
               "racecheck_triage ours=0 library=42 unattributed=0\n");
    const CliResult r = run_command("python3 " + kSource + "/bench/gpu_check_table.py " +
                                    logs.path());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("racecheck      ok (ours 0; library 42 listed)") != std::string::npos);
    CHECK(r.out.find("memcheck       ok ") != std::string::npos);
}
