#!/usr/bin/env python3
# The table of bench/gpu_check.sh, read from the logs of its run: stages, each GPU test, the kernel
# bench, gpt2-124m training beside PyTorch, logits against transformers, the targets, and
# the islands table (bench/islands_table.py).
#
#   bench/gpu_check_table.py LOG_DIR      (python3's standard library only)
import os
import re
import sys
import xml.etree.ElementTree as ElementTree

import islands_table  # bench/islands_table.py, beside this script

TARGET_MFU = 40.0            # % at B = 64, T = 1,024, bf16
TARGET_TORCH_RATIO = 1.0     # our tokens/s over PyTorch's, same shape and batch
TARGET_ATTENTION = 300.0     # TFLOP/s, cuDNN attention forward
TARGET_MEMORY = 70.0         # % of the copy bandwidth, every memory-bound kernel


def read(logs, name):
    path = os.path.join(logs, name)
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def records(text, prefix):
    """The key=value fields of each line that starts with prefix (and bare words as flags)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != prefix:
            continue
        fields = {}
        for word in words[1:]:
            key, _, value = word.partition("=")
            fields[key] = value
        out.append(fields)
    return out


def number(text):
    match = re.match(r"-?[0-9.]+", text or "")
    return float(match.group()) if match else None


def racecheck_counts(logs):
    """' (ours N; library M listed)' from bench/racecheck_triage.py's line, or ''."""
    rows = records(read(logs, "racecheck.log"), "racecheck_triage")
    if not rows:
        return ""
    r = rows[-1]
    unread = f"; {r['unattributed']} unattributed" if r.get("unattributed", "0") != "0" else ""
    return f" (ours {r.get('ours', '?')}; library {r.get('library', '?')} listed{unread})"


def stages(logs):
    rows = [line.split("|") for line in read(logs, "stages.txt").splitlines() if line]
    print(f"{'stage':<14} {'result':<28} {'seconds':>7}")
    for name, result, seconds in rows:
        if name == "racecheck":  # hazards in cuDNN's and cuBLAS's kernels are listed, not failed
            result += racecheck_counts(logs)
        print(f"{name:<14} {result:<28} {seconds:>7}")
    spills = sum(1 for line in read(logs, "ptxas.txt").splitlines()
                 if re.search(r"[1-9][0-9]* bytes spill (stores|loads)", line))
    print(f"{'ptxas':<14} {str(spills) + ' kernels spill registers':<28} {'-':>7}")
    return {name: result for name, result, _ in rows}


def tests(logs):
    path = os.path.join(logs, "tests.xml")
    print("\nGPU tests (diloco_cuda_tests, all attention paths and the CPU oracle)")
    try:
        suite = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as e:
        print(f"  no test report ({e}): the run crashed or timed out, see tests.log")
        return False
    failed = 0
    for case in suite.iter("testcase"):
        problems = case.findall("failure") + case.findall("error")
        failed += bool(problems)
        result = "FAIL" if problems else "ok"
        print(f"  {case.get('name')[:78]:<78} {result:<5} {float(case.get('time', 0)):7.2f} s")
        for problem in problems:
            for line in (problem.text or "").strip().splitlines()[:6]:
                print(f"      {line}")
    cases = sum(1 for _ in suite.iter("testcase"))
    print(f"  {cases - failed} of {cases} passed")
    return failed == 0 and cases > 0


def kernels(logs):
    """bench_kernels' lines as they are; returns memory-bound (name, %) and compute (name, TFLOP/s)."""
    text = read(logs, "bench_bf16.log")
    print("\nkernels (bench_kernels, bf16, median of 20 reps, each against the ceiling measured first)")
    memory, compute = [], []
    for line in text.splitlines():
        if line.startswith(("bench_kernels:", "ceilings:")) or "% of " in line:
            print("  " + line)
        m = re.match(r"(.*\S)\s+[0-9.]+ ms\s+[0-9.]+ GB/s\s+([0-9.]+)% of copy", line)
        if m:
            memory.append((m.group(1), float(m.group(2))))
        m = re.match(r"(.*\S)\s+[0-9.]+ ms\s+([0-9.]+) TFLOP/s", line)
        if m:
            compute.append((m.group(1), float(m.group(2))))
    if not memory and not compute:
        print("  no kernel figures (see bench_bf16.log)")
    return memory, compute


def training(logs):
    """Our bench_train rows and PyTorch's, with the ratio at equal batch; returns both."""
    ours = []
    for name in sorted(os.listdir(logs)):
        if name.startswith("train") and name.endswith(".log"):
            ours += records(read(logs, name), "bench_train")
    torch = {int(r["B"]): r for r in records(read(logs, "torch.log"), "torch_gpt2") if "B" in r}
    print("\ngpt2-124m training, T = 1,024, bf16 (bench_train through InnerTrainer::step; "
          "torch_gpt2.py: autocast, SDPA, torch.compile, fused AdamW)")
    print(f"  {'run':<26} {'B':>5} {'ms/step':>9} {'tokens/s':>10} {'MFU':>7} {'mem GiB':>8} "
          f"{'/ torch':>8}")
    for r in ours:
        batch = int(r.get("B", 0))
        name = "diloco " + r.get("attention", "?") + (" (largest B)" if "largest" in r else "")
        if "out_of_memory" in r:
            print(f"  {name:<26} {batch:>5} {'out of memory':>20}")
            continue
        peer = torch.get(batch)
        ratio = (f"{float(r['tokens_per_s']) / float(peer['tokens_per_s']):.2f}x"
                 if peer else "-")
        print(f"  {name:<26} {batch:>5} {r.get('ms_per_step', '?'):>9} "
              f"{r.get('tokens_per_s', '?'):>10} {r.get('mfu', '-'):>7} "
              f"{r.get('mem_gib', '?'):>8} {ratio:>8}")
    # Every row shares the model and T, so MFU is tokens/s times one constant: PyTorch's MFU
    # follows from any row of ours that has one.
    scale = next((number(r["mfu"]) / float(r["tokens_per_s"]) for r in ours
                  if number(r.get("mfu")) is not None and float(r.get("tokens_per_s", 0)) > 0),
                 None)
    for batch, r in sorted(torch.items()):
        mfu = f"{scale * float(r['tokens_per_s']):.1f}%" if scale else "-"
        print(f"  {'torch':<26} {batch:>5} {r.get('ms_per_step', '?'):>9} "
              f"{r.get('tokens_per_s', '?'):>10} {mfu:>7} {'-':>8} {'1.00x':>8}")
    if not ours and not torch:
        print("  no training figures (see train*.log, torch.log)")
    return ours, torch


def logits(logs):
    rows = records(read(logs, "logits.log"), "check_logits")
    print("\nlogits of a fixed checkpoint against transformers' GPT2LMHeadModel on the GPU")
    for r in rows:
        print("  " + " ".join(f"{k}={v}" if v else k for k, v in r.items()))
    if not rows:
        print("  no comparison (see logits.log)")
    return rows[-1] if rows else None


def verdict(value, goal, at_least=True):
    if value is None:
        return "not measured"
    return "met" if (value >= goal if at_least else value <= goal) else "NOT MET"


def targets(ours, torch, memory, compute, logit):
    print("\ntargets (issue 11)")
    rows = []
    at64 = [r for r in ours if r.get("B") == "64" and "out_of_memory" not in r]
    best = max(at64, key=lambda r: float(r["tokens_per_s"]), default=None)
    mfu = number(best.get("mfu")) if best else None
    where = f" ({best['attention']})" if best else ""
    rows.append((f"gpt2-124m B=64 T=1024 bf16 MFU{where}",
                 f"{mfu:.1f}%" if mfu is not None else "-", f">= {TARGET_MFU:.0f}%",
                 verdict(mfu, TARGET_MFU)))
    ratio = None
    if best and 64 in torch:
        ratio = float(best["tokens_per_s"]) / float(torch[64]["tokens_per_s"])
    rows.append((f"gpt2-124m B=64 tokens/s over PyTorch's{where}",
                 f"{ratio:.2f}x" if ratio is not None else "-",
                 f">= {TARGET_TORCH_RATIO:.2f}x", verdict(ratio, TARGET_TORCH_RATIO)))
    cudnn = [rate for name, rate in compute if name == "attention_forward (cudnn)"]
    rows.append(("cuDNN attention forward", f"{cudnn[0]:.0f} TFLOP/s" if cudnn else "-",
                 f">= {TARGET_ATTENTION:.0f} TFLOP/s",
                 verdict(cudnn[0] if cudnn else None, TARGET_ATTENTION)))
    worst = min(memory, key=lambda m: m[1], default=None)
    rows.append((f"memory-bound kernels, worst{' (' + worst[0] + ')' if worst else ''}",
                 f"{worst[1]:.1f}% of copy" if worst else "-", f">= {TARGET_MEMORY:.0f}%",
                 verdict(worst[1] if worst else None, TARGET_MEMORY)))
    what = "logits vs transformers fp32, normwise relative error"
    if logit:
        rows.append((what, logit.get("rel_error", "-"), f"<= {logit.get('tolerance', '?')}",
                     "met" if logit.get("result") == "ok" else "NOT MET"))
    else:
        rows.append((what, "-", "bf16 tolerance", "not measured"))
    for what, measured, goal, met in rows:
        print(f"  {what:<58} {measured:>16} {goal:>16}  {met}")
    below = [f"{name} {pct:.1f}%" for name, pct in memory if pct < TARGET_MEMORY]
    if below:
        print(f"  memory-bound kernels under {TARGET_MEMORY:.0f}% of copy: " + ", ".join(below))


def main():
    if len(sys.argv) != 2 or not os.path.isfile(os.path.join(sys.argv[1], "stages.txt")):
        sys.exit("usage: gpu_check_table.py LOG_DIR (the logs of bench/gpu_check.sh, with stages.txt)")
    logs = sys.argv[1]
    gpu = read(logs, "gpu.txt").strip() or "unknown"
    print(f"gpu: {gpu}")
    stages(logs)
    tests(logs)
    memory, compute = kernels(logs)
    ours, torch = training(logs)
    logit = logits(logs)
    targets(ours, torch, memory, compute, logit)
    islands_table.print_table(os.path.join(logs, "islands"))
    outer = read(logs, "outer.log").strip()
    if outer:
        print("\nthe outer step on the host (bench_outer, 2 islands):")
        print("\n".join("  " + line for line in outer.splitlines()))


if __name__ == "__main__":
    main()
