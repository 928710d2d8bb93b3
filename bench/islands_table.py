#!/usr/bin/env python3
# The islands table of bench/gpu_check.sh, from the rows bench/gpu_islands.sh ran: per row its
# validation loss, tokens/s per island, the outer step's time split, bytes sent, checksum equality.
#
#   bench/islands_table.py DIR    (DIR holds rows.txt and NAME.jsonl; python3's standard library)
# Exit status 1 when a row failed or timed out or its ranks' checksums differed.
import json
import os
import sys

ORDER = ["local-1", "ddp-4", "diloco-4", "diloco-4-int4", "streaming-4-f4", "cpu+gpu"]
PARTS = ["download", "codec", "exchange", "optimizer", "upload"]


def events(path):
    """The log's records by event; a line cut short by a killed run is left out."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            out.setdefault(record.get("event"), []).append(record)
    return out


def checksums(outers, ranks):
    """'matched (N)' when every outer step's checksums agree on all ranks, else where not."""
    if not outers:
        return "- (no outer step)", True
    for r in outers:
        sums = r.get("param_checksums", [])
        if len(sums) != ranks or len(set(sums)) != 1:
            return f"MISMATCH at outer step {r.get('outer_step', '?')}", False
    return f"matched ({len(outers)})", True


def mean(values):
    return sum(values) / len(values) if values else None


def summary(log, result):
    """One row's figures from its log (None where the log lacks them)."""
    ev = events(log)
    config = ev.get("run", [{}])[0].get("config", {})
    islands = config.get("islands", 1)
    islands = islands if isinstance(islands, int) else len(config.get("island_sizes", [1]))
    ranks = config.get("ranks", islands)
    evals, steps, outers = ev.get("eval", []), ev.get("step", []), ev.get("outer", [])
    row = {"result": result, "val_loss": evals[-1]["val_loss"] if evals else None,
           "tokens_per_s": None, "outer_steps": len(outers), "bytes_sent": None,
           "bytes_formula": None, "split": {}}
    wall = evals[-1].get("wall_s") if evals else None
    if steps and wall:
        row["tokens_per_s"] = steps[-1]["tokens"] / islands / wall
    elif steps and "tokens_per_s" in steps[-1]:  # cut off before its end: its last step's rate
        row["tokens_per_s"] = steps[-1]["tokens_per_s"] / islands
        row["result"] += f" at step {steps[-1]['step']}/{config.get('steps', '?')}"
    for field in ("bytes_sent", "bytes_formula"):
        row[field] = mean([r[field] for r in outers if field in r])
    timed = [r["sync_ms"] for r in outers if isinstance(r.get("sync_ms"), dict)]
    if timed and wall:
        for part in PARTS + ["total"]:
            spent = [t[part] for t in timed if part in t]
            if spent:  # mean ms per outer step, and the share of the training wall time
                row["split"][part] = (mean(spent), sum(spent) / (wall * 1e3))
    row["checksums"], row["matched"] = checksums(outers, ranks)
    return row


def megabytes(value):
    return f"{value / 1e6:.2f} MB" if value is not None else "n/a"


def shape(directory, names):
    """The shape the rows share, from the first DiLoCo row's log (cpu+gpu has its own: tiny)."""
    configs = [events(os.path.join(directory, n + ".jsonl")).get("run", [{}])[0].get("config")
               for n in names]
    config = next((c for c in configs if c and c.get("mode") == "diloco"), None)
    if config:
        c = config.get
        print(f"  preset {c('preset')}, {c('batch')} x {c('seq')} tokens per rank and step, "
              f"{c('steps')} steps, H = {c('inner_steps')}, device {c('device')}")
    print("  formula: bytes sent per outer step by comm/outer_sync.h's island_bytes_sent")


def print_table(directory):
    """Prints the islands table; returns False when a row failed or its checksums differed."""
    path = os.path.join(directory, "rows.txt")
    print("\nislands (bench/gpu_islands.sh: the same tokens per island in every row)")
    if not os.path.exists(path):
        print(f"  no rows ({path} is absent: the stage did not run)")
        return False
    rows = {}
    with open(path) as f:
        for line in f:
            name, result, seconds = line.rstrip("\n").split("|")
            rows[name] = (result, seconds)
    names = sorted(rows, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    shape(directory, [n for n in names if n != "cpu+gpu"])
    figures = {n: summary(os.path.join(directory, n + ".jsonl"), rows[n][0]) for n in names}
    print(f"  {'row':<15} {'result':<34} {'s':>4} {'val loss':>8} {'tok/s/island':>12} "
          f"{'outer':>5} {'sent/outer':>11} {'formula':>11}  checksums")
    good = True
    for n in names:
        r = figures[n]
        loss = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else "-"
        rate = f"{r['tokens_per_s']:.0f}" if r["tokens_per_s"] is not None else "-"
        sent = megabytes(r["bytes_sent"]) if r["outer_steps"] else "-"
        formula = megabytes(r["bytes_formula"]) if r["outer_steps"] else "-"
        print(f"  {n:<15} {r['result'][:34]:<34} {rows[n][1]:>4} {loss:>8} {rate:>12} "
              f"{r['outer_steps']:>5} {sent:>11} {formula:>11}  {r['checksums']}")
        failed = not (r["result"] == "ok" or r["result"].startswith("option missing"))
        good = good and r["matched"] and not failed
    split_rows = [n for n in names if figures[n]["outer_steps"]]
    if split_rows:
        print("  outer step, mean ms per outer step (share of the training wall time):")
        print(f"  {'row':<15} " + " ".join(f"{p:>16}" for p in PARTS + ["total"]))
    for n in split_rows:
        split = figures[n]["split"]
        cells = [f"{split[p][0]:.1f} ({100 * split[p][1]:.1f}%)" if p in split else "n/a"
                 for p in PARTS + ["total"]]
        print(f"  {n:<15} " + " ".join(f"{c:>16}" for c in cells))
    return good


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: islands_table.py DIR (the output of bench/gpu_islands.sh, with rows.txt)")
    sys.exit(0 if print_table(sys.argv[1]) else 1)


if __name__ == "__main__":
    main()
