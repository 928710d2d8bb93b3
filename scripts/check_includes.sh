#!/usr/bin/env bash
# Missing standard includes, caught before a newer compiler finds them: GCC 12's libstdc++ pulls in
# headers that GCC 13-15's no longer do, so code that builds here can fail there.
#
#   scripts/check_includes.sh [-v] [FILE...]   every CPU-side source and header, or the FILEs
#   scripts/check_includes.sh --self-test      it catches the defects planted in test/includes/
#
# 1. Every source, and every header alone (it must include what it uses), is compiled (syntax
#    only, -Wall -Wextra -Werror) by the newest clang found against libc++ with its transitive
#    includes removed (libc++ >= 15; 14 removes none and catches less): stricter than libstdc++.
# 2. libc++ still pulls <cstdint> and <cstdio> into <string>, libstdc++ 13+ does not: a file that
#    uses uint64_t, printf, FILE, ... must reach <cstdint> / <cstdio> through its own includes or
#    the project headers it includes.
# One line per failure (-v: the compiler's whole report), exit 1 if any; exit 77 (skipped) without
# clang++, libc++ and an LLVM omp.h (Debian 12: clang-19 libc++-19-dev libc++abi-19-dev libomp-dev;
# libomp-dev is clang 14's, which any clang's -fopenmp parses). The CUDA side (kernels/cuda, *.cu,
# test/cuda) is compiled by nvcc with g++, not here.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The self-test: each test/includes/missing_*.h must fail, by name, and complete.h must pass;
# missing_*.strict.h only where libc++ removes its transitive includes.
if [[ ${1:-} == --self-test ]]; then
  status=0
  out=$("$0" test/includes/*.h) || status=$?
  echo "$out"
  [[ $status == 77 ]] && exit 77
  planted=$(ls test/includes/missing_*.h)
  grep -q 'transitive includes removed' <<<"$out" || planted=$(grep -v '\.strict\.h$' <<<"$planted")
  for file in $planted; do
    grep -q "^$file: " <<<"$out" || { echo "self-test: $file was not caught"; exit 1; }
  done
  if grep -q '^test/includes/complete.h: ' <<<"$out" || [[ $status != 1 ]]; then
    echo "self-test: complete.h failed, or the planted defects passed (exit $status)"
    exit 1
  fi
  echo "self-test: all $(wc -w <<<"$planted") planted defects caught"
  exit 0
fi
verbose=0
if [[ ${1:-} == -v ]]; then
  verbose=1
  shift
fi

cxx=
for candidate in ${CHECK_INCLUDES_CXX:-} clang++-{30..14} clang++; do
  command -v "$candidate" >/dev/null || continue
  if echo '#include <vector>' |
     "$candidate" -std=c++20 -stdlib=libc++ -x c++ -fsyntax-only - 2>/dev/null; then
    cxx=$candidate
    break
  fi
done
if [[ -z $cxx ]]; then
  echo "check_includes: no clang++ with libc++ (apt install clang-19 libc++-19-dev" \
       "libc++abi-19-dev libomp-dev): skipped"
  exit 77
fi
libcxx=$(echo '#include <version>
_LIBCPP_VERSION' | "$cxx" -std=c++20 -stdlib=libc++ -x c++ -E - | tail -1)
libcxx=$((libcxx >= 100000 ? libcxx / 10000 : libcxx / 1000))  # 15000 was 15, 190107 is 19
if ((libcxx >= 15)); then
  strictness="libc++ $libcxx, transitive includes removed"
else
  strictness="libc++ $libcxx, which keeps its transitive includes: clang 15+ checks more"
fi
start=$SECONDS

shopt -s nullglob
project=(util/*.cpp data/*.cpp model/*.cpp optim/*.cpp checkpoint/*.cpp comm/*.cpp kernels/*.cpp
         kernels/cpu/*.cpp tools/*.cpp test/*.cpp test/peers/*.cpp bench/*.cpp fuzz/*.cpp
         util/*.h data/*.h model/*.h optim/*.h checkpoint/*.h comm/*.h kernels/*.h kernels/cpu/*.h
         tools/*.h test/*.h test/peers/*.h bench/*.h fuzz/*.h)
if [[ $# -gt 0 ]]; then
  units=("$@")
else
  units=("${project[@]}")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# tools/train_report.cpp includes the header that the build writes; write one the same way.
cmake -DSOURCE_DIR="$root" -DOUT="$work/build_info.h" -DVERSION=0 -P cmake/build_info.cmake

# One pass over the project's files: each unit's project includes, followed to the end, give
#  - the headers it includes that many units include (CLI11, nlohmann-json, Catch2, the common
#    standard ones), which are then read from one precompiled header per combination: the unit
#    sees them anyway, through its own includes, so nothing is hidden;
#  - whether it reaches <cstdint> / <cstdio> where its own code (comments and strings left out)
#    uses what they declare;
#  - the DILOCO_ macros that CMake defines (paths the tests run), to define here.
# Output lines: "pch UNIT KEY" (KEY: the headers to precompile joined by +, or -), "miss UNIT
# HEADER" and "define NAME".
read -r -d '' closure_awk <<'AWK' || true
function mark(f, u,   i) {
    if ((u, f) in seen) return
    seen[u, f] = 1
    for (i = 1; i <= nangle[f]; i++) reach[u, angle[f, i]] = 1
    for (i = 1; i <= nquote[f]; i++) if (quote[f, i] in isfile) mark(quote[f, i], u)
}
FNR == 1 { isfile[FILENAME] = 1; in_block = 0 }
/^[ \t]*#[ \t]*include[ \t]*"/ { split($0, p, "\""); quote[FILENAME, ++nquote[FILENAME]] = p[2] }
/^[ \t]*#[ \t]*include[ \t]*</ {
    h = $0; sub(/^[^<]*</, "", h); sub(/>.*/, "", h); angle[FILENAME, ++nangle[FILENAME]] = h
}
/^[ \t]*#[ \t]*define[ \t]+(CATCH_|CLI11_|JSON_|NLOHMANN_)/ { configures[FILENAME] = 1 }
/^[ \t]*#[ \t]*define[ \t]+DILOCO_/ { d = $0; sub(/^[^D]*define[ \t]+/, "", d); sub(/[^A-Z0-9_].*/, "", d); defined[d] = 1 }
{
    line = $0
    while (match(line, /DILOCO_[A-Z0-9_]+/)) {
        name = substr(line, RSTART, RLENGTH)
        if (name !~ /^DILOCO_HAVE_/) referenced[name] = 1
        line = substr(line, RSTART + RLENGTH)
    }
}
{
    code = $0
    if (in_block) { if (!sub(/^([^*]|\*+[^*\/])*\*+\//, "", code)) next; in_block = 0 }
    if (code ~ /^[ \t]*#/) next
    gsub(/R"\(([^)]|\)[^"])*\)"/, "\"\"", code)
    gsub(/"([^"\\]|\\.)*"/, "\"\"", code)
    gsub(/'([^'\\]|\\.)*'/, "0", code)
    gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, " ", code)
    sub(/\/\/.*/, "", code)
    if (sub(/\/\*.*/, "", code)) in_block = 1
    if (code ~ /(^|[^A-Za-z0-9_])(u?int(8|16|32|64)_t|u?int(ptr|max)_t|U?INT(8|16|32|64)_(MAX|MIN)|SIZE_MAX)([^A-Za-z0-9_]|$)/)
        uses[FILENAME, "cstdint"] = 1
    if (code ~ /(^|[^A-Za-z0-9_.>])(s?n?printf|vs?n?printf|fprintf|sscanf|fopen|fclose|fflush|fputs|fputc|fgets|fwrite|fread|fseek|ftell|fileno|popen|pclose|perror|puts|putchar|setvbuf)[ \t]*\(/ ||
        code ~ /(^|[^A-Za-z0-9_])(FILE|stderr|stdout|stdin|EOF)([^A-Za-z0-9_]|$)/)
        uses[FILENAME, "cstdio"] = 1
}
END {
    for (name in referenced) if (!(name in defined)) print "define", name
    n = split(units, list, "\n")
    # A unit takes every heavy header it includes; one that includes none, the largest tier of
    # the standard headers most units include that it includes all of (the heavy headers
    # include those already).
    nheavy = split("catch2/catch.hpp CLI/CLI.hpp nlohmann/json.hpp", heavy, " ")
    ntiers = split("cstddef cstdint string vector|memory stdexcept string_view utility", tiers, "|")
    alt["cstdint"] = "stdint.h"; alt["cstdio"] = "stdio.h"
    for (k = 1; k <= n; k++) {
        u = list[k]
        mark(u, u)
        key = ""
        if (!(u in configures)) {
            for (i = 1; i <= nheavy; i++) if ((u, heavy[i]) in reach) key = key (key ? "+" : "") heavy[i]
            for (t = 1; t <= ntiers && key !~ /hpp/; t++) {
                m = split(tiers[t], tier, " ")
                for (i = 1; i <= m; i++) if (!((u, tier[i]) in reach)) break
                if (i <= m) break
                key = key (key ? " " : "") tiers[t]
            }
        }
        gsub(/ /, "+", key)
        print "pch", u, (key ? key : "-")
        for (h in alt)
            if ((u, h) in uses && !((u, h) in reach) && !((u, alt[h]) in reach)) print "miss", u, h
    }
}
AWK
mapfile -t files < <(printf '%s\n' "${project[@]}" "${units[@]}" | sort -u)
awk -v units="$(printf '%s\n' "${units[@]}")" "$closure_awk" "${files[@]}" "$work/build_info.h" \
  >"$work/closure"

# The build's include paths and definitions: the features of a CPU build with MPI and a BLAS,
# CMake's paths as placeholders. Third-party headers are system headers, as in the build (cblas.h
# is in Debian's default path).
flags=(-std=c++20 -stdlib=libc++ -D_LIBCPP_REMOVE_TRANSITIVE_INCLUDES -fopenmp
       -Wall -Wextra -Werror -ferror-limit=0 -I"$root" -I"$work"
       -DDILOCO_HAVE_BLAS=1 -DDILOCO_HAVE_MPI=1)
for dir in $(mpicxx --showme:incdirs 2>/dev/null ||
             echo "/usr/lib/$(g++ -print-multiarch)/openmpi/include"); do
  flags+=(-isystem "$dir")
done
while read -r _ name; do
  flags+=("-D$name=\"check_includes\"")
done < <(grep '^define ' "$work/closure")
# clang finds omp.h only where its own libomp-dev is installed; another LLVM's declares the same
# (GCC's does not parse with clang). Debian's libomp-19-dev would replace clang 14's.
if ! echo '#include <omp.h>' | "$cxx" -fopenmp -x c++ -fsyntax-only - 2>/dev/null; then
  omp_h=$(printf '%s\n' /usr/lib/llvm-*/lib/clang/*/include/omp.h | sort -V | tail -1)
  if [[ -z $omp_h ]]; then
    echo "check_includes: $cxx finds no omp.h (apt install libomp-dev): skipped"
    exit 77
  fi
  mkdir "$work/omp"
  ln -s "$omp_h" "$work/omp/omp.h"
  flags+=(-isystem "$work/omp")
fi
printf '%s\n' "${flags[@]}" >"$work/flags"
# libc++'s floating-point from_chars (LLVM 20), atomic<double>::fetch_add (18) and ranges
# algorithms (15) are missing from older releases: those errors alone do not fail a unit.
libcxx_gaps="call to deleted function .from_chars.|no member named .fetch_(add|sub). in \
.std::atomic<(float|double|long double)>.|no member named .[a-z_]+. in namespace .std::ranges."

# Part 2's findings first (they cost nothing), then part 1's.
failed=0
while read -r _ unit header; do
  echo "$unit: uses what <$header> declares but includes no <$header> (GCC 13+ does not" \
       "bring it in)"
  failed=1
done < <(grep '^miss ' "$work/closure")

pch_for() { echo "$work/pch/$(echo "$1" | tr '/+.' '___').pch"; }
mkdir "$work/pch"
build_pch() {
  local key=$1 out=$2 header
  local -a flags
  mapfile -t flags <"$work/flags"
  for header in ${key//+/ }; do echo "#include <$header>"; done >"$out.h"
  "$cxx" "${flags[@]}" -fpch-instantiate-templates -x c++-header "$out.h" -o "$out" \
    >"$out.log" 2>&1 || { echo "check_includes: precompiling $key failed:"; cat "$out.log"; }
}
export -f build_pch
export cxx work
grep '^pch ' "$work/closure" | awk '$3 != "-" {print $3}' | sort -u |
  while read -r key; do echo "$key $(pch_for "$key")"; done |
  xargs -r -P"$(nproc)" -L1 bash -c 'build_pch "$@"' _

# A source as it is; a header as the only line of a file of its own (so that it must include
# what it uses, and `#pragma once` is not in the main file).
check_one() {
  local unit=$1 pch=$2 log
  log=$work/$(echo "$unit" | tr / _).log
  local -a flags
  mapfile -t flags <"$work/flags"
  [[ $pch != - && -f $pch ]] && flags+=(-include-pch "$pch")
  if [[ $unit == *.h ]]; then
    echo "#include \"$unit\"" | "$cxx" "${flags[@]}" -fsyntax-only -x c++ - >"$log" 2>&1
  else
    "$cxx" "${flags[@]}" -fsyntax-only "$unit" >"$log" 2>&1
  fi && return 0
  local errors
  errors=$(grep -E 'error:' "$log" | grep -vE "$libcxx_gaps") || true
  [[ -z $errors ]] && grep -qE "$libcxx_gaps" "$log" && return 0
  echo "$unit: $(head -1 <<<"${errors:-$(head -1 "$log")}")"
  [[ $verbose == 1 ]] && cat "$log"
  return 1
}
export -f check_one
export libcxx_gaps verbose
grep '^pch ' "$work/closure" |
  while read -r _ unit key; do
    if [[ $key == - ]]; then echo "$unit -"; else echo "$unit $(pch_for "$key")"; fi
  done >"$work/jobs"
xargs -r -P"$(nproc)" -L1 bash -c 'check_one "$@"' _ <"$work/jobs" || failed=1

summary="$(wc -l <"$work/jobs") units, $cxx ($strictness), $((SECONDS - start)) s"
if [[ $failed == 0 ]]; then
  echo "check_includes: clean: $summary"
else
  echo "check_includes: FAILED (above): $summary"
  exit 1
fi
