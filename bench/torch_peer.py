# The peer of bench_cpu: the same GPT-2 shape trained by PyTorch on the CPU (fp32, AdamW with
# decay on matrices only, clipping at 1.0, random tokens), timed over a few steps after a warm-up.
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, channels, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.c_attn = nn.Linear(channels, 3 * channels)
        self.attn_proj = nn.Linear(channels, channels)
        self.c_fc = nn.Linear(channels, 4 * channels)
        self.mlp_proj = nn.Linear(4 * channels, channels)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    # padded_vocab: rows of the token embedding, vocab or more (ours pads it for faster
    # matmuls); the loss is over the first vocab logits, as ours.
    def __init__(self, layers, heads, channels, vocab, seq, padded_vocab=None):
        super().__init__()
        self.vocab = vocab
        self.wte = nn.Embedding(padded_vocab or vocab, channels)
        self.wpe = nn.Embedding(seq, channels)
        self.blocks = nn.ModuleList(Block(channels, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(channels)

    def forward(self, ids, targets):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        logits = (self.ln_f(x) @ self.wte.weight.T)[..., :self.vocab]  # tied, as GPT-2 and ours
        return F.cross_entropy(logits.reshape(-1, self.vocab), targets.view(-1))


def main():
    if len(sys.argv) != 9:
        sys.exit("usage: torch_peer.py LAYERS HEADS CHANNELS VOCAB SEQ BATCH THREADS STEPS")
    layers, heads, channels, vocab, seq, batch, threads, steps = map(int, sys.argv[1:])
    torch.set_num_threads(threads)
    torch.manual_seed(1337)
    model = Gpt(layers, heads, channels, vocab, seq)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    tokens = torch.randint(0, vocab, (batch, seq + 1))
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    step()  # warm-up: allocations, thread pool start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    print(f"{torch.__version__} {batch * seq * steps / seconds:.1f}")


if __name__ == "__main__":
    main()
