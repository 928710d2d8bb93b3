#!/usr/bin/env python3
# PyTorch's speed on our training shape, for bench/gpu_check.sh to print beside bench_train: a GPT-2
# written in plain torch (bf16 autocast, SDPA causal attention, torch.compile, fused AdamW, global
# norm clipping, tied embedding over the padded vocabulary), trained on random tokens.
#
#   bench/torch_gpt2.py [--batch 16,64] [--seq 1024] [--steps 10] [--device cuda|cpu] ...
# Prints one line per batch size: torch_gpt2 B=.. T=.. ms_per_step=.. tokens_per_s=.. loss=A->B
import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, channels, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.attn_proj = nn.Linear(channels, channels)
        self.ln2 = nn.LayerNorm(channels)
        self.fc = nn.Linear(channels, 4 * channels)
        self.fc_proj = nn.Linear(4 * channels, channels)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, layers, heads, channels, vocab, max_seq):
        super().__init__()
        self.wte = nn.Embedding(vocab, channels)
        self.wpe = nn.Embedding(max_seq, channels)
        self.blocks = nn.ModuleList(Block(channels, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(channels)
        # GPT-2's initialisation, as ours: N(0, 0.02), residual projections by 1/sqrt(2 layers).
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, tokens, targets):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.wte(tokens) + self.wpe(positions)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


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
        self.windows = torch.randint(0, args.vocab, shape, device=args.device, generator=g)
        self.index = 0

    def step(self):
        w = self.windows[self.index % len(self.windows)]
        self.index += 1
        with torch.autocast(device_type=torch.device(self.args.device).type, dtype=torch.bfloat16):
            loss = self.loss(w[:, :-1], w[:, 1:])
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
