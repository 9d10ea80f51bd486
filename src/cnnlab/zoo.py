"""`cnnlab-models [NAME ...] [--channels C] [--image-size N] [--pooling P]`: each model's parameters and its
named stages with their output shapes (what pictures and probes look at), at its default knobs."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models
from cnnlab.summary import fail


def stage_table(name: str, channels: int, image_size: int, pooling: str = "native",
                activation: str = "native") -> Table:
    net = create_model(name, num_classes=10, in_channels=channels, image_size=image_size, pooling=pooling,
                       activation=activation)
    params = sum(p.numel() for p in net.parameters())
    title = f"{name}: {params:,} parameters, input {channels}×{image_size}×{image_size}"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("stage")
    table.add_column("output shape")
    table.add_column("parameters", justify="right")
    for stage, module in net.named_stages():
        shape = "×".join(map(str, net.stage_shapes()[stage]))
        table.add_row(stage, shape, f"{sum(p.numel() for p in module.parameters()):,}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnnlab-models", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"models (default: all): {', '.join(list_models())}")
    parser.add_argument("--channels", type=int, default=1, help="input channels (default 1, MNIST)")
    parser.add_argument("--image-size", type=int, default=32, help="input size in pixels (default 32)")
    parser.add_argument("--pooling", default="native", help="pooling name (default: each model's own)")
    parser.add_argument("--activation", default="native", help="activation name (default: each model's own)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        for name in args.names or list_models():
            console.print(stage_table(name, args.channels, args.image_size, args.pooling, args.activation))
    except CnnlabError as err:
        return fail(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
