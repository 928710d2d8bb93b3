#!/usr/bin/env python3
# Sorts the hazards of a compute-sanitizer racecheck log by whose kernel raced: ours (the
# __global__ functions of kernels/cuda/*.cu, or anything in namespace diloco) or a library's
# (cuDNN's generated sdpa kernels, cuBLAS, CUB). Prints both lists, with counts.
#
#   bench/racecheck_triage.py LOG      (python3's standard library only)
# Exit 0: no hazard in our kernels; 1: some; 2: a log it cannot fully account for (no summary, a
# report without a kernel name, reports left undisplayed by --print-limit).
import collections
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The first line of a report: analysis mode ("Error: Race reported between Write access at
# ..."), hazard mode ("ERROR: Potential WAW hazard detected at __shared__ ..."), and the
# cluster entry/exit races ("Potential invalid __shared__ read of size 4 bytes").
REPORT = re.compile(r"Race reported between|Potential \w+ hazard detected|Potential invalid __shared__")
SUMMARY = re.compile(r"RACECHECK SUMMARY: (\d+) hazards? displayed \((\d+) errors?, (\d+) warnings?\)")
# Where an access happened: "at FUNCTION+0xOFFSET [in FILE:LINE]" (newer sanitizers), or
# "at 0xOFFSET in [FILE:LINE:]FUNCTION" (older ones, and code without line information).
AT_FUNCTION = re.compile(r"\bat ((?:(?! at ).)+?)\+0x[0-9a-fA-F]+\b")
AT_OFFSET = re.compile(r"\bat 0x[0-9a-fA-F]+ in (.+?)(?= and \w+ access at | \[\d+ hazards?\]|"
                       r" \w+ Thread \(|$)")
GLOBAL = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")


def our_kernels():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "kernels", "cuda", "*.cu")):
        with open(path, errors="replace") as f:
            names.update(GLOBAL.findall(f.read()))
    return names


def reports(lines):
    """Each report's text, its lines joined, without the sanitizer's '=====' prefix."""
    out, current = [], None
    for raw in lines:
        text = re.sub(r"^=+ ?", "", raw.rstrip("\n")).strip()
        if REPORT.search(text):
            current = [text]
            out.append(current)
        elif not text or SUMMARY.search(text):
            current = None
        elif current is not None:
            current.append(text)
    return [" ".join(r) for r in out]


def kernel_of(report):
    """The function of the report's first access, without argument list; None if absent."""
    m = AT_FUNCTION.search(report)
    name = m.group(1) if m else None
    if name is None:
        m = AT_OFFSET.search(report)
        # "./race.cu:4:test(int*, int*)": the function follows the file and line.
        name = re.sub(r"^.*?:\d+:", "", m.group(1)) if m else None
    return name.strip() if name else None


def is_ours(name, ours):
    if "diloco::" in name or "6diloco" in name:  # demangled or mangled namespace
        return True
    # A kernel name as a whole word; a mangled name puts its length (digits) right before it.
    return any(re.search(r"(?<![A-Za-z_])" + re.escape(k) + r"(?![A-Za-z0-9_])", name) for k in ours)


def short(name):
    """The name cut at 160 characters: templated signatures run long."""
    return name[:160] + ("..." if len(name) > 160 else "")


def print_list(title, counts):
    total = sum(counts.values())
    print(f"{title}: {total} report{'s' * (total != 1)}" +
          (f" in {len(counts)} kernel{'s' * (len(counts) != 1)}" if counts else ""))
    for name, n in counts.most_common():
        print(f"  {n:6d}  {short(name)}")


def main():
    if len(sys.argv) != 2:
        print("usage: racecheck_triage.py LOG (compute-sanitizer --tool racecheck output)",
              file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        print(f"racecheck_triage: cannot read {sys.argv[1]}: {e.strerror}", file=sys.stderr)
        return 2
    ours_names = our_kernels()
    if not ours_names:
        print(f"racecheck_triage: no __global__ kernels found in {ROOT}/kernels/cuda/*.cu",
              file=sys.stderr)
        return 2
    ours, library, unattributed = (collections.Counter() for _ in range(3))
    for report in reports(lines):
        name = kernel_of(report)
        if name is None:
            unattributed[report[:160]] += 1
        else:
            (ours if is_ours(name, ours_names) else library)[name] += 1
    summaries = [SUMMARY.search(line) for line in lines]
    summaries = [m for m in summaries if m]
    displayed = sum(int(m.group(1)) for m in summaries)
    found = sum(int(m.group(2)) + int(m.group(3)) for m in summaries)
    read = sum(ours.values()) + sum(library.values()) + sum(unattributed.values())

    print_list("ours (kernels/cuda)", ours)
    print_list("library (cuDNN, cuBLAS, CUB)", library)
    if unattributed:
        print_list("no kernel name found", unattributed)
    problems = []
    if not summaries:
        problems.append("no RACECHECK SUMMARY line: the run did not finish")
    elif displayed != read:
        problems.append(f"the summary says {displayed} reports were displayed, {read} were read")
    if found > displayed:
        problems.append(f"{found - displayed} reports were not displayed (run with --print-limit 0)")
    if unattributed:
        problems.append(f"reports that name no kernel: {sum(unattributed.values())}")
    for problem in problems:
        print(f"racecheck_triage: {problem}", file=sys.stderr)
    print(f"racecheck_triage ours={sum(ours.values())} library={sum(library.values())} "
          f"unattributed={sum(unattributed.values()) + max(found - displayed, 0)}")
    if ours:
        return 1
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
