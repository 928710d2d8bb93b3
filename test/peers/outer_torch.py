# The outer optimizers as torch.optim runs them: reads the start parameters, the islands' mean
# parameters and the outer gradients of each step, writes the parameters after each step.
#   outer_torch.py IN.safetensors OUT.safetensors
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def make_optimizer(name, config, param):
    if name == "adam":
        return torch.optim.Adam([param], lr=config["lr"], betas=(config["momentum"], config["beta2"]),
                                eps=config["eps"])
    return torch.optim.SGD([param], lr=config["lr"], momentum=config["momentum"],
                           nesterov=(name == "nesterov"))


def trajectory(name, config, start, gradient_of):
    param = torch.nn.Parameter(start.clone())
    optimizer = make_optimizer(name, config, param)
    after = []
    for step in range(config["steps"]):
        param.grad = gradient_of(param.detach(), step)
        optimizer.step()
        after.append(param.detach().clone())
    return torch.stack(after)


def main(in_path, out_path):
    with safe_open(in_path, "pt") as f:
        configs = json.loads(f.metadata()["optimizers"])
        start, means, deltas = f.get_tensor("start"), f.get_tensor("means"), f.get_tensor("deltas")
    out = {}
    for name, config in configs.items():
        # DiLoCo's outer gradient: global minus the islands' mean, in fp32.
        out[name + ".to_mean"] = trajectory(name, config, start, lambda p, s: p - means[s])
        out[name + ".by_delta"] = trajectory(name, config, start, lambda p, s: deltas[s].clone())
    save_file(out, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
