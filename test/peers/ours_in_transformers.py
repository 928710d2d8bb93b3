# A checkpoint of ours in transformers: GPT2LMHeadModel.from_pretrained and AutoTokenizer on its
# directory; prints one JSON object of what they give next to our dump of the same windows.
#   ours_in_transformers.py CHECKPOINT_DIR DUMP.safetensors TEXT_FILE
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, GPT2LMHeadModel


def compare_logits(model, dump):
    inputs, targets = dump["inputs"].long(), dump["targets"].long()
    with torch.no_grad():
        theirs = model(inputs).logits
    ours = dump["logits"]
    their_losses = torch.nn.functional.cross_entropy(
        theirs.reshape(-1, theirs.shape[-1]), targets.reshape(-1), reduction="none")
    return {
        "logits_shape": list(theirs.shape),
        "max_abs_logits_difference": (ours - theirs).abs().max().item(),
        "max_abs_logit": theirs.abs().max().item(),
        "max_abs_loss_difference": (dump["losses"] - their_losses.reshape(ours.shape[:2])).abs().max().item(),
        "our_loss": dump["losses"].double().mean().item(),
        "their_loss": their_losses.double().mean().item(),
    }


def main(checkpoint, dump_path, text_path):
    model, info = GPT2LMHeadModel.from_pretrained(checkpoint, dtype=torch.float32,
                                                  output_loading_info=True)
    model.eval()
    config = model.config
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    report = {
        "missing_keys": sorted(info["missing_keys"]),
        "unexpected_keys": sorted(info["unexpected_keys"]),
        "mismatched_keys": [str(k) for k in info["mismatched_keys"]],
        "vocab_size": config.vocab_size,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "dropouts": [config.resid_pdrop, config.embd_pdrop, config.attn_pdrop],
        "tokenizer_size": len(tokenizer),
        "tokenizer_ids": tokenizer.encode(text),
    }
    report.update(compare_logits(model, load_file(dump_path)))
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
