# transformers' checkpoints for us to load: `make` builds a randomly initialised GPT2LMHeadModel
# from a config (nothing from a hub) and saves it with save_pretrained in 16-bit floats; `loss`
# computes transformers' loss on the windows of our `diloco eval --dump`.
#   theirs_for_ours.py make DIR DTYPE MAX_SHARD_SIZE SEED
#   theirs_for_ours.py loss DIR DUMP.safetensors
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel


def make(directory, dtype, max_shard_size, seed):
    torch.manual_seed(int(seed))
    config = GPT2Config(vocab_size=256, n_positions=128, n_embd=128, n_layer=4, n_head=4,
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # biases and LayerNorms away from their zeros and ones
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.to(getattr(torch, dtype)).save_pretrained(directory, max_shard_size=max_shard_size)


def loss(directory, dump_path):
    model = GPT2LMHeadModel.from_pretrained(directory, dtype=torch.float32).eval()
    dump = load_file(dump_path)
    with torch.no_grad():
        logits = model(dump["inputs"].long()).logits
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               dump["targets"].long().reshape(-1), reduction="none")
    print(json.dumps({
        "their_loss": losses.double().mean().item(),
        "max_abs_logits_difference": (dump["logits"] - logits).abs().max().item(),
        "max_abs_logit": logits.abs().max().item(),
    }))


if __name__ == "__main__":
    {"make": make, "loss": loss}[sys.argv[1]](*sys.argv[2:])
