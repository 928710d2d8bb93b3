#!/usr/bin/env python3
# PyTorch's speed on our training shape, for bench/gpu_check.sh to print beside bench_train:
# torch_peer.py's GPT-2 (SDPA causal attention, tied embedding, here over the padded vocabulary)
# with bf16 autocast, torch.compile, fused AdamW and global norm clipping, on random tokens.
#
#   bench/torch_gpt2.py [--batch 16,64] [--seq 1024] [--steps 10] [--device cuda|cpu] ...
# Prints one line per batch size: torch_gpt2 B=.. T=.. ms_per_step=.. tokens_per_s=.. loss=A->B
import argparse
import os
import sys
import time

import torch

from torch_peer import Gpt  # bench_cpu's PyTorch GPT-2, beside this file


def parse_args():
    p = argparse.ArgumentParser(description="Trains our GPT-2 shape in PyTorch; prints tokens/s.")
    p.add_argument("--batch", default="16", help="comma-separated batch sizes, one run each")
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--channels", type=int, default=768)
    p.add_argument("--vocab", type=int, default=50304, help="padded, as our gpt2-124m's 50,257")
    p.add_argument("--steps", type=int, default=10, help="timed steps per batch size")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--no-compile", action="store_true", help="eager mode")
    p.add_argument("--go-file", help="compile and warm up every batch size, then wait for this "
                   "file to exist before the timed steps (so a build can run meanwhile)")
    a = p.parse_args()
    try:
        a.batches = [int(b) for b in a.batch.split(",")]
    except ValueError:
        p.error(f"--batch {a.batch!r}: expected comma-separated integers")
    if min(a.batches) <= 0 or a.seq <= 0 or a.steps <= 0 or a.warmup < 0:
        p.error("batch, seq and steps must be positive, warmup not negative")
    if a.channels % a.heads:
        p.error(f"--heads {a.heads} does not divide --channels {a.channels}")
    return a


class Run:
    """One batch size: its model step (compiled for this shape) and a few batches of tokens."""

    def __init__(self, args, model, loss, optimizer, batch):
        self.args, self.model, self.loss, self.optimizer, self.batch = args, model, loss, optimizer, batch
        g = torch.Generator(device=args.device).manual_seed(batch)
        shape = (4, batch, args.seq + 1)
        windows = torch.randint(0, args.vocab, shape, device=args.device, generator=g)
        self.inputs, self.targets = windows[..., :-1].contiguous(), windows[..., 1:].contiguous()
        self.index = 0

    def step(self):
        i = self.index % len(self.inputs)
        self.index += 1
        with torch.autocast(device_type=torch.device(self.args.device).type, dtype=torch.bfloat16):
            loss = self.loss(self.inputs[i], self.targets[i])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def wait_for(path):
    deadline = time.monotonic() + 600
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"torch_gpt2: {path} did not appear within 600 s")
        time.sleep(0.2)


def main():
    a = parse_args()
    if torch.device(a.device).type == "cuda":
        if not torch.cuda.is_available():
            print("SKIPPED: torch sees no CUDA device")
            return 77
    torch.manual_seed(1337)
    model = Gpt(a.layers, a.heads, a.channels, a.vocab, a.seq).to(a.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95),
                                  weight_decay=0.1, fused=True)
    # One compiled module; dynamic=False specialises it to each batch size (no dynamic shapes).
    loss = model if a.no_compile else torch.compile(model, dynamic=False)
    runs = [Run(a, model, loss, optimizer, b) for b in a.batches]
    first_loss = {}
    for run in runs:
        for _ in range(a.warmup):
            first_loss.setdefault(run.batch, run.step().item())
    if a.go_file:
        print(f"torch_gpt2: warmed up, waiting for {a.go_file}", flush=True)
        wait_for(a.go_file)
    for run in runs:
        synchronize(a.device)
        start = time.perf_counter()
        for _ in range(a.steps):
            loss = run.step()
        last = loss.item()  # waits for the last step
        seconds = (time.perf_counter() - start) / a.steps
        tokens = run.batch * a.seq / seconds
        print(f"torch_gpt2 device={a.device} compile={'off' if a.no_compile else 'on'} "
              f"B={run.batch} T={a.seq} ms_per_step={seconds * 1e3:.2f} "
              f"tokens_per_s={tokens:.0f} loss={first_loss.get(run.batch, last):.4f}->{last:.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
