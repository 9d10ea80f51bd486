"""Bad input, one row each: `cnnlab-train` (its console entry point, in this process) answers with one
paragraph that names the bad value and what would be valid, never a traceback, and an earlier run's results
stay exactly as they were."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from cnnlab import REPO_ROOT
from cnnlab.train import cli

QUICK = ["debug=limit", "trainer.accelerator=cpu", "logger=none", "callbacks=base",
         "++callbacks.rich_progress_bar=null", "++callbacks.model_summary=null"]


def run(args: list[str]) -> int:
    """`cnnlab-train ARGS` through its entry point; its exit code."""
    GlobalHydra.instance().clear()
    saved_argv = sys.argv
    sys.argv = ["cnnlab-train", *args]
    try:
        cli()
        code = 0
    except SystemExit as done:
        code = done.code
    finally:
        sys.argv = saved_argv
        GlobalHydra.instance().clear()
    return code


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """An earlier finished run, and the damaged files the rows point at."""
    root = tmp_path_factory.mktemp("bad_input")
    earlier = root / "earlier"
    assert run([*QUICK, f"hydra.run.dir={earlier}"]) == 0
    (best,) = (earlier / "checkpoints").glob("best-*.ckpt")
    (root / "junk.ckpt").write_bytes(b"\x00not a checkpoint" * 100)
    (root / "cut.ckpt").write_bytes(best.read_bytes()[:1500])
    torch.save({"weights": torch.zeros(3)}, root / "plain.pt")
    raw = root / "damaged_data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (REPO_ROOT / "data" / "MNIST" / "raw").glob("*.gz"):
        data = gz.read_bytes()
        (raw / gz.name).write_bytes(data[:5000] if gz.name.startswith("train-images") else data)
    (root / "empty_data").mkdir()
    (root / "a_file").write_text("not a folder")
    yield {"root": root, "earlier": earlier, "best": best}
    GlobalHydra.instance().clear()


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# (id, overrides ({root}, {earlier}, {best} are filled in), the texts the answer must hold: the bad value
# and what would be valid). Exit code 2 for cnnlab's own errors, 1 for Hydra's config-composition errors.
ROWS = [
    # unknown names
    ("unknown model option", ["model=lenet"], 1, ["Could not find 'model/lenet'", "lenet5"]),
    ("unknown model name", ["model.name=lenet"], 2, ["Unknown model 'lenet'", "Did you mean 'lenet5'"]),
    ("unknown pooling", ["pooling.name=mx"], 2, ["Unknown pooling 'mx'", "avg, blur, lp, max"]),
    ("unknown activation", ["activation.name=relu6"], 2, ["Unknown activation 'relu6'", "gelu"]),
    ("unknown dataset", ["data.name=cifar"], 2, ["Unknown dataset 'cifar'", "Did you mean 'cifar10'"]),
    ("unknown optimizer", ["optimizer.name=adamx"], 2, ["Unknown optimizer 'adamx'", "adam, adamw, sgd"]),
    ("unknown scheduler", ["scheduler.name=warmup"], 2, ["Unknown scheduler 'warmup'", "cosine, onecycle"]),
    ("unknown logger", ["+logger.mlflow={{}}"], 2, ["Unknown logger 'mlflow'", "csv, tensorboard, wandb"]),
    ("unknown callback", ["+callbacks.foo={{}}"], 2, ["Unknown callback 'foo'", "model_checkpoint"]),
    ("unknown trainer key", ["+trainer.max_epoch=3"], 2, ["trainer.max_epoch", "max_epochs"]),
    ("unknown callback key", ["callbacks.model_checkpoint.foo=1"], 1,
     ["callbacks.model_checkpoint.foo", "+callbacks.model_checkpoint.foo=1"]),
    ("unknown accelerator", ["trainer.accelerator=tpu"], 2, ["'accelerator': 'tpu'", "trainer=cpu always works"]),
    # wrong types
    ("epochs not a number", ["trainer.max_epochs=abc"], 2, ["trainer.max_epochs='abc'", "expected int"]),
    ("batch not a number", ["data.batch_size=abc"], 2, ["data.batch_size", "positive integer", "'abc'"]),
    ("depth not a number", ["model=simple_cnn", "model.depth=abc"], 2, ["model.depth", "'abc'", "default is 3"]),
    ("lr not a number", ["optimizer.lr=abc"], 2, ["'lr': 'abc'", "Its options: lr"]),
    ("seed not a number", ["seed=abc"], 2, ["seed='abc'", "whole number >= 0"]),
    ("resident not a choice", ["data.resident=maybe"], 2, ["'maybe'", "true", "auto"]),
    ("train not a bool", ["train=maybe"], 2, ["train='maybe'", "train=true or train=false"]),
    ("degrees not a number", ["transforms=affine", "transforms.affine.degrees=abc"], 2, ["abc", "degrees"]),
    # negative or zero sizes
    ("zero batch", ["data.batch_size=0"], 2, ["data.batch_size", "got 0"]),
    ("negative batch", ["data.batch_size=-5"], 2, ["data.batch_size", "got -5"]),
    ("zero depth", ["model=simple_cnn", "model.depth=0"], 2, ["model.depth", "positive integer, got 0"]),
    ("zero width", ["model=simple_cnn", "model.width=0"], 2, ["model.width", "positive integer, got 0"]),
    ("negative lr", ["optimizer.lr=-1"], 2, ["Invalid learning rate: -1", "Its options: lr"]),
    ("negative val size", ["data.val_size=-3"], 2, ["data.val_size", "between 1 and 59999", "got -3"]),
    ("negative workers", ["data.num_workers=-1"], 2, ["data.num_workers", ">= 0", "got -1"]),
    ("zero checkpoint steps", ["callbacks.resume_checkpoint.every_n_steps=0"], 2, ["every_n_steps=0", ">= 1"]),
    ("smoothing above 1", ["label_smoothing=2"], 2, ["label_smoothing=2", "[0, 1)"]),
    ("zero devices", ["trainer.devices=0"], 2, ["devices=0", "trainer=cpu always works"]),
    # image too small for the depth
    ("too deep for 28 px", ["model=simple_cnn", "model.depth=6"], 2, ["shrinks the feature map below 1×1",
                                                                       "at most 4 such stage(s)"]),
    ("image too small", ["model.image_size=8"], 2, ["input 8×8", "a larger model.image_size"]),
    # missing or corrupt dataset files
    ("dataset missing", ["data=kmnist", "data.download=false", "paths.data_dir={root}/empty_data"], 2,
     ["Dataset 'kmnist' is not in", "data.download=false", "data=mnist, which ships with cnnlab"]),
    ("dataset damaged", ["paths.data_dir={root}/damaged_data"], 2,
     ["train-images-idx3-ubyte.gz is damaged", "EOFError", "copy or download them again"]),
    # checkpoints: missing, corrupt, truncated, not a checkpoint, another model's
    ("checkpoint missing", ["ckpt_path={root}/missing.ckpt"], 2, ["missing.ckpt does not exist", ".ckpt file"]),
    ("checkpoint corrupt", ["ckpt_path={root}/junk.ckpt"], 2, ["junk.ckpt is not a readable checkpoint",
                                                              "Valid: a .ckpt file"]),
    ("checkpoint truncated", ["ckpt_path={root}/cut.ckpt"], 2, ["cut.ckpt is not a readable checkpoint"]),
    ("not a checkpoint", ["ckpt_path={root}/plain.pt"], 2, ["plain.pt is a torch file but not a cnnlab"]),
    ("checkpoint of another model", ["model=simple_cnn", "ckpt_path={best}"], 2,
     ["was trained with a different network", "model.name='lenet5' (this run: 'simple_cnn')"]),
    ("checkpoint of another pooling", ["pooling=avg", "ckpt_path={best}"], 2,
     ["pooling.name='native' (this run: 'avg')"]),
    ("test without checkpoint", ["train=false"], 2, ["train=false only tests a trained model", "ckpt_path="]),
    # output and resume
    ("unwritable output dir", ["paths.log_dir={root}/a_file/logs"], 2,
     ["Cannot write runs under", "a_file is not a directory", "paths.log_dir=logs"]),
    ("resume a missing dir", ["resume={root}/nowhere"], 2, ["resume=", "nowhere is not a cnnlab run dir",
                                                            "resume=true"]),
    ("resume another command", ["model=simple_cnn", "resume={earlier}"], 2,
     ["was started by another command", "model=simple_cnn", "resume=false"]),
]


@pytest.mark.parametrize(("overrides", "code", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_gets_one_clear_paragraph_and_earlier_results_stay(place, tmp_path, capsys, overrides, code,
                                                                    expected):
    before = fingerprint(place["earlier"])
    args = [o.format(root=place["root"], earlier=place["earlier"], best=place["best"]) for o in overrides]
    capsys.readouterr()
    got = run([*QUICK, f"paths.log_dir={tmp_path / 'logs'}", *args])
    out = capsys.readouterr()
    printed = out.err + out.out
    assert got == code, printed[-3000:]
    assert "Traceback" not in printed
    text = " ".join(printed.split())
    for piece in expected:
        assert piece.format(root=place["root"]) in text, (piece, printed[-2000:])
    if code == 2:  # cnnlab's own: one paragraph, on one line
        (line,) = [line for line in printed.splitlines() if line.startswith("cnnlab: error:")]
        assert all(piece.format(root=place["root"]) in line for piece in expected)
    assert fingerprint(place["earlier"]) == before


def test_the_table_has_at_least_30_rows():
    assert len(ROWS) >= 30 and len({row[0] for row in ROWS}) == len(ROWS)
