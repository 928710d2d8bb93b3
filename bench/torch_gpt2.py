#!/usr/bin/env python3
# PyTorch's speed on our training shape, for bench/gpu_check.sh to print beside bench_train:
# torch_peer.py's GPT-2 (SDPA causal attention, tied embedding padded as ours, the loss over the
# real vocabulary) initialised as ours, with bf16 autocast, torch.compile, fused AdamW (decay on
# matrices only) and global norm clipping, on uniform random tokens as bench_train's.
#
#   bench/torch_gpt2.py [--batch 16,64] [--seq 1024] [--steps 10] [--device cuda|cpu] ...
# Prints one line per batch size: torch_gpt2 B=.. T=.. ms_per_step=.. tokens_per_s=.. loss=A->B,
# A the loss of its first step from the initial model (ours: about ln(50257) + 0.15 = 10.98).
import argparse
import math
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
    p.add_argument("--vocab", type=int, default=50257,
                   help="GPT-2's; the embedding is padded as ours (to 50,304 here)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per batch size")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first (compilation); the first gives the initial loss")
    p.add_argument("--device", default="cuda")
    p.add_argument("--no-compile", action="store_true", help="eager mode")
    p.add_argument("--go-file", help="compile and warm up every batch size, then wait for this "
                   "file to exist before the timed steps (so a build can run meanwhile)")
    a = p.parse_args()
    try:
        a.batches = [int(b) for b in a.batch.split(",")]
    except ValueError:
        p.error(f"--batch {a.batch!r}: expected comma-separated integers")
    if min(a.batches) <= 0 or min(a.seq, a.steps, a.warmup, a.vocab) <= 0:
        p.error("batch, seq, steps, warmup and vocab must be positive")
    if a.channels % a.heads:
        p.error(f"--heads {a.heads} does not divide --channels {a.channels}")
    return a


def pad_vocab(vocab):
    """Rows of our token embedding (model/config.cpp's pad_vocab)."""
    multiple = 128 if vocab > 1024 else 64
    return (vocab + multiple - 1) // multiple * multiple


def init_like_ours(model, layers, vocab):
    """model/gpt.cpp's init_gpt2_params: matrices and embeddings normal(0, 0.02), the residual
    projections (attention's and the MLP's c_proj) normal(0, 0.02 / sqrt(2 * layers)), biases 0,
    LayerNorm weights 1, and the token embedding's padding rows 0 (tied: the head's too)."""
    residual_std = 0.02 / math.sqrt(2 * layers)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # a LayerNorm weight, or a bias
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                residual = name.endswith(("attn_proj.weight", "mlp_proj.weight"))
                p.normal_(0.0, residual_std if residual else 0.02)
        model.wte.weight[vocab:].zero_()


def new_optimizer(model):
    """AdamW as ours: weight decay on the matrices and embeddings, none on biases and LayerNorm."""
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), fused=True)


class Run:
    """One batch size: its model step (compiled for this shape) and a few batches of tokens."""

    def __init__(self, args, model, loss, batch):
        self.args, self.model, self.loss, self.batch = args, model, loss, batch
        self.optimizer = None
        g = torch.Generator(device=args.device).manual_seed(batch)
        shape = (4, batch, args.seq + 1)
        windows = torch.randint(0, args.vocab, shape, device=args.device, generator=g)
        self.inputs, self.targets = windows[..., :-1].contiguous(), windows[..., 1:].contiguous()
        self.index = 0

    def start(self):
        """Back to the initial model with a fresh optimizer, as bench_train's trainer per batch
        size; returns the loss of the first step. (The timed steps later go on from whatever
        state the other batch sizes' warm-ups left: their loss is no learning curve.)"""
        torch.manual_seed(1337)
        init_like_ours(self.model, self.args.layers, self.args.vocab)
        self.optimizer = new_optimizer(self.model)
        return self.step().item()

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
    model = Gpt(a.layers, a.heads, a.channels, a.vocab, a.seq, pad_vocab(a.vocab)).to(a.device)
    # One compiled module; dynamic=False specialises it to each batch size (no dynamic shapes).
    loss = model if a.no_compile else torch.compile(model, dynamic=False)
    runs = [Run(a, model, loss, b) for b in a.batches]
    first_loss = {}
    for run in runs:
        first_loss[run.batch] = run.start()
        for _ in range(a.warmup - 1):
            run.step()
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
              f"tokens_per_s={tokens:.0f} loss={first_loss[run.batch]:.4f}->{last:.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
