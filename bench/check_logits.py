#!/usr/bin/env python3
# Our forward logits against transformers' GPT2LMHeadModel for one fixed checkpoint: a random-init
# GPT-2 made here from a config (no downloads), its logits from `diloco eval --dump` and from
# transformers in fp32 on the same device, compared normwise; bench/gpu_check.sh runs it on a GPU.
#
#   bench/check_logits.py --diloco build/diloco --dir DIR [--device cuda|cpu] [--precision bf16|fp32]
# Prints one line, check_logits ... rel_error=.. tolerance=.. result=ok|FAIL; exits 1 on FAIL.
import argparse
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as transformers_logging

# Normwise relative error allowed against fp32 transformers. bf16: a GPT-2 124M held wholly in
# bf16 in PyTorch measured 1.2e-2 on the CPU at T = 1,024 (autocast: 0.8e-2); 3e-2 admits 2.5x
# that, while a wrong op (a shifted position, another GELU) errs by order 1. fp32: sums reordered.
TOLERANCE = {"bf16": 3e-2, "fp32": 1e-4}
# llm.c's token shard of GPT-2 tokens: a 256 x int32 header, then uint16 tokens.
SHARD_MAGIC, SHARD_VERSION, VOCAB = 20240520, 1, 50257


def parse_args():
    p = argparse.ArgumentParser(description="Our logits against transformers' GPT2LMHeadModel.")
    p.add_argument("--diloco", required=True, help="the diloco binary")
    p.add_argument("--dir", required=True, help="work directory (checkpoint, tokens, dump)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", help="our storage type: bf16 (default on cuda) or fp32")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--channels", type=int, default=768)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--windows", type=int, default=2, help="sequences compared")
    a = p.parse_args()
    a.precision = a.precision or ("bf16" if a.device == "cuda" else "fp32")
    if a.precision not in TOLERANCE:
        p.error(f"--precision {a.precision!r}: expected bf16 or fp32")
    return a


def make_checkpoint(a, path):
    """A GPT-2 with transformers' own random initialisation, saved as its base model (the names
    of OpenAI's GPT-2 files) with our config fields."""
    torch.manual_seed(1234)
    config = GPT2Config(n_layer=a.layers, n_head=a.heads, n_embd=a.channels, vocab_size=VOCAB,
                        n_positions=a.seq, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    model = GPT2LMHeadModel(config).eval()
    model.transformer.save_pretrained(path)
    return model


def write_tokens(a, path):
    """Random tokens, half of them the validation tail that `diloco eval` reads."""
    count = 2 * a.windows * (a.seq + 1)
    tokens = np.random.default_rng(99).integers(0, VOCAB, count, dtype=np.uint16)
    header = np.zeros(256, dtype=np.int32)
    header[:3] = SHARD_MAGIC, SHARD_VERSION, count
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.tobytes())


def our_dump(a, checkpoint, tokens, dump):
    command = [a.diloco, "eval", "--checkpoint", checkpoint, "--data", tokens,
               "--val-fraction", "0.5", "--seq", str(a.seq), "--batch", str(a.windows),
               "--val-batches", "1", "--device", a.device, "--precision", a.precision,
               "--dump", dump]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"check_logits: {' '.join(command)} failed ({done.returncode}): "
                 f"{done.stderr.strip()}")
    return load_file(dump)


def relative_error(ours, reference):
    return ((ours.double() - reference.double()).norm() / reference.double().norm()).item()


def main():
    a = parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("SKIPPED: torch sees no CUDA device")
        return 77
    transformers_logging.disable_progress_bar()
    os.makedirs(a.dir, exist_ok=True)
    checkpoint, tokens = os.path.join(a.dir, "checkpoint"), os.path.join(a.dir, "tokens.bin")
    model = make_checkpoint(a, checkpoint)
    write_tokens(a, tokens)
    dump = our_dump(a, checkpoint, tokens, os.path.join(a.dir, "dump.safetensors"))
    model = model.to(a.device)
    inputs = dump["inputs"].long().to(a.device)
    targets = dump["targets"].long().to(a.device)
    ours = dump["logits"].to(a.device)
    with torch.no_grad():
        theirs = model(inputs).logits.float()
        with torch.autocast(device_type=torch.device(a.device).type, dtype=torch.bfloat16):
            autocast = model(inputs).logits.float()
    their_losses = torch.nn.functional.cross_entropy(
        theirs.reshape(-1, VOCAB), targets.reshape(-1), reduction="none")
    rel = relative_error(ours, theirs)
    tolerance = TOLERANCE[a.precision]
    ok = rel <= tolerance and tuple(ours.shape) == tuple(theirs.shape)
    print(f"check_logits device={a.device} precision={a.precision} windows={a.windows} T={a.seq} "
          f"rel_error={rel:.3g} "
          f"max_abs_diff={(ours - theirs).abs().max().item():.3g} "
          f"logit_std={theirs.std().item():.3g} "
          f"torch_autocast_rel_error={relative_error(autocast, theirs):.3g} "
          f"loss_ours={dump['losses'].double().mean().item():.6f} "
          f"loss_theirs={their_losses.double().mean().item():.6f} "
          f"tolerance={tolerance:g} result={'ok' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
