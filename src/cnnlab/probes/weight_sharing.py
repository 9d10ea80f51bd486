"""Weight sharing: what a conv's one filter bank per layer saves over a filter bank per position (a
locally connected layer) or a dense layer, and what accuracy each parameter buys."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.pictures.render import Picture, figure, figure_to_array


@torch.no_grad()
def unshared_parameters(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """The parameters `net` would have without weight sharing: every conv with a separate filter bank (and bias)
    for each output position (the locally connected equivalent), every recurrent layer (a GRU or LSTM reading
    rows) with separate weights for each step it takes; everything else counts as it is."""
    uses: dict[nn.Module, int] = {}

    def positions(module: nn.Module, _, out: torch.Tensor) -> None:
        uses[module] = out.shape[-2] * out.shape[-1]

    def steps(module: nn.RNNBase, inputs: tuple, _) -> None:
        sequence = inputs[0]
        uses[module] = uses.get(module, 0) + sequence.shape[1 if module.batch_first else 0]  # summed over calls

    hooks = [m.register_forward_hook(positions) for m in net.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(steps) for m in net.modules() if isinstance(m, nn.RNNBase)]
    was_training = net.training
    try:
        net.eval()
        device = next(net.parameters()).device
        net(torch.zeros(1, *input_shape, device=device))
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()
    return sum(sum(p.numel() for p in module.parameters(recurse=False)) * uses.get(module, 1)
               for module in net.modules())


def weight_sharing_numbers(net: nn.Module, input_shape: tuple[int, ...], accuracy: float | None) -> dict[str, float]:
    params = sum(p.numel() for p in net.parameters())
    unshared = unshared_parameters(net, input_shape)
    numbers = {"weight_sharing/params": float(params), "weight_sharing/params_without_sharing": float(unshared),
               "weight_sharing/sharing_factor": unshared / params}
    if accuracy is not None:
        numbers["weight_sharing/val_acc"] = accuracy
        numbers["weight_sharing/acc_per_mparam"] = accuracy / (params / 1e6)
    return numbers


def weight_sharing_picture(numbers: dict[str, float], model: str) -> Picture:
    params, unshared = numbers["weight_sharing/params"], numbers["weight_sharing/params_without_sharing"]
    fig = figure()
    fig.set_size_inches(4.5, 3.0)
    ax = fig.subplots()
    ax.bar(["as built", "without sharing"], [params, unshared], color=["tab:blue", "tab:grey"])
    ax.set_yscale("log")
    ax.set_ylabel("parameters")
    for i, v in enumerate((params, unshared)):
        ax.annotate(f"{v:,.0f}", (i, v), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    acc = numbers.get("weight_sharing/val_acc")
    caption = (f"{model}: {params:,.0f} parameters; without weight sharing (a filter bank per position, weights "
               f"per row) it would need {unshared:,.0f} "
               f"({numbers['weight_sharing/sharing_factor']:.1f}×)."
               + (f" Validation accuracy {100 * acc:.2f} %: {numbers['weight_sharing/acc_per_mparam']:.3g} "
                  f"accuracy per million parameters." if acc is not None else ""))
    return Picture("weight_sharing/parameters_plot", figure_to_array(fig), caption)
