"""`cnnlab-cka RUN_A RUN_B [--images N] [--kind linear|rbf ...] [--out DIR]`: CKA between every stage of two
trained runs (run dirs or checkpoints), e.g. a CNN against an MLP, on RUN_A's validation images. Prints each
matrix and writes heatmaps + cka.json to DIR (default: RUN_A's run dir, probes/cka_vs_<model B>/)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from cnnlab.errors import CnnlabError
from cnnlab.summary import fail


def matrix_table(title: str, names_a: list[str], names_b: list[str], matrix) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for name in names_b:
        table.add_column(name, justify="right")
    for name, row in zip(names_a, matrix):
        table.add_row(name, *(f"{v:.2f}" for v in row))
    return table


def compare(run_a: str, run_b: str, images: int, kinds: list[str], out: str | None, console: Console) -> Path:
    from cnnlab.checkpoints import load_trained_net, resolve_checkpoint
    from cnnlab.data import datamodule_from_config
    from cnnlab.data.probe import probe_images
    from cnnlab.pictures.render import save_png
    from cnnlab.probes.cka import cka_matrix, cka_picture
    from cnnlab.probes.features import stage_features

    ckpt_a, ckpt_b = resolve_checkpoint(run_a, "RUN_A"), resolve_checkpoint(run_b, "RUN_B")
    run_dir = ckpt_a.parent.parent
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CnnlabError(f"RUN_A={run_a} has no config.yaml in {run_dir}, so its data is unknown. Valid: a run "
                          f"dir written by cnnlab-train (or a checkpoint inside its checkpoints/).")
    datamodule = datamodule_from_config(OmegaConf.to_container(OmegaConf.load(config_path)))
    datamodule.setup("fit")
    x, _ = probe_images(datamodule.val_set, images)
    net_a = load_trained_net(ckpt_a, tuple(x.shape[1:]), "RUN_A")
    net_b = load_trained_net(ckpt_b, tuple(x.shape[1:]), "RUN_B")
    label_a, label_b = f"A: {net_a.model_name}", f"B: {net_b.model_name}"
    features_a, features_b = stage_features(net_a, x), stage_features(net_b, x)
    out_dir = Path(out) if out else run_dir / "probes" / f"cka_vs_{net_b.model_name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"run_a": str(ckpt_a), "run_b": str(ckpt_b), "images": len(x), "matrices": {}}
    for kind in kinds:
        names_a, names_b, matrix = cka_matrix(features_a, features_b, kind)
        picture = cka_picture(names_a, names_b, matrix, kind, key=f"cka_{kind}", title_a=label_a, title_b=label_b)
        save_png(picture.image, out_dir / f"cka_{kind}.png")
        record["matrices"][kind] = {"rows": names_a, "columns": names_b, "values": matrix.tolist()}
        console.print(matrix_table(f"{kind} CKA, rows {label_a} ({ckpt_a.name}), columns {label_b} ({ckpt_b.name})",
                                   names_a, names_b, matrix))
        console.print(picture.caption, highlight=False)
    (out_dir / "cka.json").write_text(json.dumps(record, indent=2))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnnlab-cka", description=__doc__)
    parser.add_argument("run_a", metavar="RUN_A", help="run dir or .ckpt (its data and image size are used)")
    parser.add_argument("run_b", metavar="RUN_B", help="run dir or .ckpt of a run on the same data and image size")
    parser.add_argument("--images", type=int, default=500, help="validation images (default 500)")
    parser.add_argument("--kind", action="append", choices=["linear", "rbf"], help="repeatable; default both")
    parser.add_argument("--out", help="output dir (default: RUN_A/probes/cka_vs_<model B>)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.images < 2:
            raise CnnlabError(f"--images must be at least 2 (CKA compares images with each other), got {args.images}.")
        out_dir = compare(args.run_a, args.run_b, args.images, args.kind or ["linear", "rbf"], args.out, console)
    except CnnlabError as err:
        return fail(err)
    console.print(f"written to {out_dir}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
