#!/usr/bin/env python3
"""Summarise diloco runs like the DiLoCo paper's Table 2: perplexity, bytes across islands and
the reduction against data parallel; writes summary.json and a plot of validation perplexity
against steps and against bytes communicated.

usage: summarize_runs.py --out DIR NAME:MODE:ISLANDS:STEPS[:H] ...
Each NAME has its metrics in DIR/NAME.jsonl (the JSON lines of `diloco train --log`).
"""
import argparse
import json
import math
import os
import sys


def read_log(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"summarize_runs.py: {path}: {e}")


def row_of(spec, out):
    parts = spec.split(":")
    if len(parts) not in (4, 5):
        sys.exit(f"summarize_runs.py: '{spec}' is not NAME:MODE:ISLANDS:STEPS[:H]")
    name, mode, islands, steps = parts[0], parts[1], int(parts[2]), int(parts[3])
    records = read_log(os.path.join(out, name + ".jsonl"))
    evals = [r for r in records if "val_loss" in r]
    if not evals:
        sys.exit(f"summarize_runs.py: {name}.jsonl has no validation records")
    last = evals[-1]
    rounds = [r["utilisation"] for r in records if "utilisation" in r]
    wall = last.get("wall_s", 0.0)
    return {
        "name": name,
        "mode": mode,
        "islands": islands,
        "inner_steps": int(parts[4]) if len(parts) == 5 else 1,
        "steps": steps,
        "val_loss": last["val_loss"],
        "val_ppl": last["val_ppl"],
        "bytes_across": last.get("bytes_sent", 0.0),
        "bytes_ddp_equivalent": last.get("bytes_ddp_equivalent", 0.0),
        "outer_codec": last.get("outer_codec", "fp32"),
        "error_feedback": last.get("error_feedback", False),
        "fragments": last.get("fragments", 1),
        "overlap": last.get("overlap", 0),
        "wan_gbps": last.get("wan_gbps", 0.0),
        "wall_s": wall,
        "wait_s": last.get("wait_s", 0.0),
        "wait_fraction": last.get("wait_s", 0.0) / wall if wall > 0 else 0.0,
        "utilisation": sum(rounds) / len(rounds) if rounds else None,
        "curve": [(r["step"], r["val_ppl"], r.get("bytes_sent", 0.0), r.get("wall_s", 0.0))
                  for r in evals],
    }


def print_table(rows):
    ddp_bytes = max((r["bytes_across"] for r in rows if r["mode"] == "ddp"), default=0.0)
    print(f"{'setup':<30}{'islands':>8}{'H':>5}{'steps':>6}{'val loss':>10}{'val ppl':>9}"
          f"{'bytes across':>15}{'vs ddp':>8}{'wait':>7}{'util':>7}")
    for r in rows:
        factor = (f"{ddp_bytes / r['bytes_across']:.1f}x" if r["bytes_across"] > 0 and ddp_bytes
                  else "-")
        util = f"{r['utilisation']:.1%}" if r["utilisation"] is not None else "-"
        print(f"{r['name']:<30}{r['islands']:>8}{r['inner_steps']:>5}{r['steps']:>6}"
              f"{r['val_loss']:>10.4f}{r['val_ppl']:>9.3f}{r['bytes_across'] / 1e6:>12.2f} MB"
              f"{factor:>8}{r['wait_fraction']:>7.1%}{util:>7}")
    print("\nwait: share of training wall time spent waiting for syncs across islands; "
          "util: compute time over wall time per round of H steps (mean).")


# Up to 16 runs stay apart: ten colours, and four line styles whose pairs repeat only after 20.
LINE_STYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "v", "D", "x", "+", "*"]


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (by_step, by_bytes, by_time) = plt.subplots(1, 3, figsize=(15, 4.4))
    for i, r in enumerate(rows):
        steps, ppl, sent, wall = zip(*r["curve"])
        style = dict(color=f"C{i % 10}", linestyle=LINE_STYLES[i % 4],
                     marker=MARKERS[i % len(MARKERS)], markersize=4, label=r["name"])
        by_step.plot(steps, ppl, **style)
        if r["bytes_across"] > 0:
            by_bytes.plot([b / 1e6 for b in sent], ppl, **style)
        by_time.plot(wall, ppl, **style)
    by_step.set(xlabel="inner steps", title="perplexity against steps")
    by_bytes.set(xlabel="MB sent across islands", xscale="log",
                 title="perplexity against communication")
    by_time.set(xlabel="training wall time, s", title="perplexity against wall time")
    for ax in (by_step, by_bytes, by_time):
        ax.set_ylabel("validation perplexity")
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.grid(True, alpha=0.3)
    # One legend for the three panels, outside them, so that no curve hides behind it.
    handles, labels = by_step.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110, bbox_inches="tight")
    os.replace(path + ".tmp.png", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    rows = [row_of(spec, args.out) for spec in args.runs]
    print_table(rows)
    summary = [{k: v for k, v in r.items() if k != "curve"} for r in rows]
    tmp = os.path.join(args.out, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(tmp, os.path.join(args.out, "summary.json"))
    plot(rows, os.path.join(args.out, "perplexity.png"))
    print(f"\nwrote {args.out}/summary.json and {args.out}/perplexity.png")


if __name__ == "__main__":
    main()
