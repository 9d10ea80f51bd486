"""Bad input, one row each: `cnnlab-train` (its console entry point, in this process) answers with one
paragraph that names the bad value and what would be valid, never a traceback, and an earlier run's results
stay exactly as they were."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from cnnlab import REPO_ROOT
from cnnlab.data.folder import open_folder
from cnnlab.train import cli
from helpers import cifar_sample

QUICK = ["debug=test", "logger=none", "callbacks=base"]


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


def image_folders(root: Path, archive: Path) -> None:
    """Small ImageFolder layouts of real CIFAR-10 JPEGs under root/folders/, each with one thing wrong."""
    from PIL import Image

    def sample(name: str, splits=("train", "test")) -> Path:
        return cifar_sample(archive, root / "folders" / name, per_class=2, splits=splits, classes=["cat", "dog"])

    sample("no_train", splits=("test",))
    for image in (sample("empty_class") / "train" / "cat").iterdir():
        image.unlink()
    shutil.rmtree(sample("missing_class") / "test" / "dog")
    (sample("text_file") / "train" / "cat" / "notes.txt").write_text("not an image")
    (sample("fake_jpeg") / "train" / "dog" / "fake.jpg").write_text("text, whatever the name says")
    cut = sample("truncated") / "train" / "cat" / "0000.jpg"
    cut.write_bytes(cut.read_bytes()[:300])
    odd = sample("mixed_sizes") / "test" / "dog" / "0001.jpg"
    with Image.open(odd) as image:
        image.resize((40, 40)).save(odd, format="JPEG")
    for wide in sample("non_square").rglob("*.jpg"):
        with Image.open(wide) as image:
            image.resize((40, 30)).save(wide, format="JPEG")
    (root / "folders" / "photos.tar.gz").write_text("a text file with an archive's name")
    sample("good")
    shutil.copytree(root / "folders" / "good", root / "folders" / "changed")
    (root / "folders" / "changed" / "test" / "cat" / "0000.jpg").unlink()
    open_folder(root / "folders" / "good", root / "data", cache=root / "folders" / "my_cache.pt")


@pytest.fixture(scope="module")
def place(tmp_path_factory, cifar10_jpeg):
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
    image_folders(root, cifar10_jpeg)
    readonly, undo = read_only_folder(root / "readonly")
    yield {"root": root, "earlier": earlier, "best": best, "readonly": readonly}
    undo()
    GlobalHydra.instance().clear()


def read_only_folder(path: Path):
    """A folder no run can be written into, and how to undo it: mode 555, or for root (whom modes do not stop) a
    read-only tmpfs mounted there; where root may not mount, sysfs's /sys/kernel stands in."""
    path.mkdir()
    path.chmod(0o555)
    if not os.access(path, os.W_OK):
        return path, lambda: path.chmod(0o755)
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)]
    if subprocess.run(mount, capture_output=True).returncode == 0:
        return path, lambda: subprocess.run(["umount", str(path)], check=True)
    return Path("/sys/kernel"), lambda: None


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
    ("batch not a number", ["data.batch_size=abc"], 2, ["data.batch_size must be a whole number ≥ 1", "'abc'"]),
    ("depth not a number", ["model=simple_cnn", "model.depth=abc"], 2,
     ["model.depth", "'abc'", "uses 3 when model.depth=null"]),
    ("lr not a number", ["optimizer.lr=abc"], 2, ["'lr': 'abc'", "Its options: lr"]),
    ("seed not a number", ["seed=abc"], 2, ["seed must be a whole number ≥ 0", "'abc'"]),
    ("resident not a choice", ["data.resident=maybe"], 2, ["'maybe'", "true", "auto"]),
    ("train not a bool", ["train=maybe"], 2, ["train='maybe'", "train=true or train=false"]),
    ("degrees not a number", ["transforms=affine", "transforms.affine.degrees=abc"], 2, ["abc", "degrees"]),
    # negative or zero sizes
    ("zero batch", ["data.batch_size=0"], 2, ["data.batch_size", "got 0"]),
    ("negative batch", ["data.batch_size=-5"], 2, ["data.batch_size", "got -5"]),
    ("zero depth", ["model=simple_cnn", "model.depth=0"], 2, ["model.depth must be a whole number ≥ 1, got 0"]),
    ("zero width", ["model=simple_cnn", "model.width=0"], 2, ["model.width must be a whole number ≥ 1, got 0"]),
    ("negative lr", ["optimizer.lr=-1"], 2, ["Invalid learning rate: -1", "Its options: lr"]),
    ("negative val size", ["data.val_size=-3"], 2, ["data.val_size", "between 1 and 59999", "got -3"]),
    ("negative workers", ["data.num_workers=-1"], 2, ["data.num_workers must be a whole number ≥ 0", "got -1"]),
    ("zero checkpoint steps", ["callbacks.resume_checkpoint.every_n_steps=0"], 2,
     ["resume_checkpoint.every_n_steps must be a whole number ≥ 1", "got 0"]),
    ("smoothing above 1", ["label_smoothing=2"], 2, ["label_smoothing=2", "[0, 1)"]),
    ("zero devices", ["trainer.devices=0"], 2, ["devices=0", "trainer=cpu always works"]),
    # the loss, and what capsules and rows refuse
    ("unknown loss", ["loss=hinge"], 2, ["loss='hinge' is not valid", "loss=cross_entropy or loss=margin"]),
    ("smoothing with the margin loss", ["model=capsnet", "label_smoothing=0.1"], 2,
     ["label_smoothing=0.1", "the margin loss (loss=null, the model's own)", "loss=cross_entropy"]),
    ("pooling a capsnet", ["model=capsnet", "pooling=max"], 2, ["model 'capsnet' has no pooling: its capsules "
                                                                "replace it", "pooling=max does not apply"]),
    ("activation of an rnn", ["model=rnn", "activation=relu"], 2, ["model 'rnn' has no activation to choose",
                                                                   "activation=relu does not apply"]),
    ("unknown rnn cell", ["model=rnn", "model.cell=rnn"], 2, ["model.cell='rnn' is not valid", "Valid: gru, lstm"]),
    # image too small for the depth
    ("too deep for 28 px", ["model=simple_cnn", "model.depth=6"], 2, ["shrinks the feature map below 1×1",
                                                                       "at most 4 such stage(s)"]),
    ("image too small", ["model.image_size=8"], 2, ["input 8×8", "a larger model.image_size"]),
    # missing or corrupt dataset files
    ("dataset missing", ["data=kmnist", "data.download=false", "paths.data_dir={root}/empty_data"], 2,
     ["Dataset 'kmnist' is not in", "data.download=false", "data=mnist, which ships with cnnlab"]),
    ("dataset damaged", ["paths.data_dir={root}/damaged_data"], 2,
     ["train-images-idx3-ubyte.gz is damaged", "EOFError", "copy or download them again"]),
    # image folders (data=folder): layout, files, sizes, archives, caches
    ("folder without root", ["data=folder"], 2, ["data=folder needs data.root=<folder or archive>", "train/<class>"]),
    ("folder missing", ["data=folder", "data.root={root}/nowhere"], 2, ["nowhere does not exist", ".tar.gz"]),
    ("folder without train/", ["data=folder", "data.root={root}/folders/no_train", "paths.data_dir={root}/data"], 2,
     ["no_train has no train/ folder", "it holds: test/", "Valid: <root>/train/<class>/<image>"]),
    ("empty class folder", ["data=folder", "data.root={root}/folders/empty_class", "paths.data_dir={root}/data"], 2,
     ["empty_class/train/cat is empty", "at least one image"]),
    ("class missing from test/", ["data=folder", "data.root={root}/folders/missing_class",
                                  "paths.data_dir={root}/data"], 2,
     ["class folder(s) dog of train/ missing from test/", "every split has the same class folders"]),
    ("not an image file", ["data=folder", "data.root={root}/folders/text_file", "paths.data_dir={root}/data"], 2,
     ["train/cat/notes.txt is not an image file", "only images in class folders", ".jpg"]),
    ("not an image inside", ["data=folder", "data.root={root}/folders/fake_jpeg", "paths.data_dir={root}/data"], 2,
     ["train/dog/fake.jpg is not an image", "neither torchvision nor PIL", "delete or replace it"]),
    ("truncated jpeg", ["data=folder", "data.root={root}/folders/truncated", "paths.data_dir={root}/data"], 2,
     ["truncated/train/cat/0000.jpg is a truncated or corrupt image", "Valid: whole image files"]),
    ("mixed image sizes", ["data=folder", "data.root={root}/folders/mixed_sizes", "paths.data_dir={root}/data"], 2,
     ["the images of test/ differ in size: 32×32 (3 images)", "40×40 (1, e.g.", "0001.jpg", "data.resize=N"]),
    ("non-square images", ["data=folder", "data.root={root}/folders/non_square", "paths.data_dir={root}/data"], 2,
     ["the images are 30×40 (height × width)", "take square images", "data.resize=30"]),
    ("archive that is not one", ["data=folder", "data.root={root}/folders/photos.tar.gz",
                                 "paths.data_dir={root}/data"], 2,
     ["photos.tar.gz is not an archive", "neither tar nor zip", "or the unpacked folder"]),
    ("cache of an older source", ["data=folder", "data.root={root}/folders/changed", "paths.data_dir={root}/data",
                                  "data.cache={root}/folders/my_cache.pt"], 2,
     ["data.cache={root}/folders/my_cache.pt was decoded from an older version of the source, or another source",
      "Valid: delete", "data.cache=auto"]),
    ("resize not a size", ["data=folder", "data.root={root}/folders/good", "data.resize=-4"], 2,
     ["data.resize must be a whole number ≥ 1", "got -4", "Or null"]),
    ("root on a torchvision dataset", ["+data.root={root}/folders/good"], 2,
     ["folders/good applies to image folders only", "not to data.name=mnist", "data=folder"]),
    ("crop padding not a size", ["transforms=crop_flip", "transforms.crop.padding=-2"], 2,
     ["transforms.crop=", "whole pixels >= 0", "padding_mode"]),
    ("unknown transforms key", ["+transforms.colour=0.5"], 2,
     ["Unknown transforms key 'colour'", "transforms.colour", "affine, crop, flip, normalize"]),
    ("flip not a probability", ["transforms=flip", "transforms.flip=2"], 2, ["transforms.flip=2", "[0, 1]"]),
    ("tta not a choice", ["tta=mirror"], 2, ["tta='mirror' is not valid", "none, flip"]),
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
    ("output dir under /proc", ["paths.log_dir=/proc/cnnlab/logs"], 2,
     ["Cannot write runs under /proc/cnnlab/logs", "no folder or file can be made in /proc", "paths.log_dir=logs"]),
    ("output dir in read-only sysfs", ["paths.log_dir=/sys/cnnlab/logs"], 2,
     ["Cannot write runs under /sys/cnnlab/logs", "no folder or file can be made in /sys", "paths.log_dir=logs"]),
    ("output dir under a read-only folder", ["paths.log_dir={readonly}/logs"], 2,
     ["Cannot write runs under {readonly}/logs", "no folder or file can be made in {readonly}"]),
    ("sweep into an unwritable dir", ["-m", "seed=1,2", "paths.log_dir=/proc/cnnlab/logs"], 2,
     ["Cannot write runs under /proc/cnnlab/logs/multiruns", "no folder or file can be made in /proc"]),
    ("experiment into an unwritable dir", ["experiment=pooling", "paths.log_dir={root}/a_file/logs"], 2,
     ["Cannot write runs under {root}/a_file/logs/experiments/pooling", "a_file is not a directory"]),
    ("resume into an unwritable dir", ["resume=true", "paths.log_dir=/sys/cnnlab/logs"], 2,
     ["Cannot write runs under /sys/cnnlab/logs/runs", "no folder or file can be made in /sys"]),
    ("resume a missing dir", ["resume={root}/nowhere"], 2, ["resume=", "nowhere is not a cnnlab run dir",
                                                            "resume=true"]),
    ("resume another command", ["model=simple_cnn", "resume={earlier}"], 2,
     ["was started by another command", "model=simple_cnn", "resume=false"]),
]


@pytest.mark.parametrize(("overrides", "code", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_gets_one_clear_paragraph_and_earlier_results_stay(place, tmp_path, capsys, overrides, code,
                                                                    expected):
    before = fingerprint(place["earlier"])
    args = [o.format(**place) for o in overrides]
    capsys.readouterr()
    flags = [a for a in args if a.startswith("-")]  # -m goes before the overrides, as a user types it
    got = run([*flags, *QUICK, f"paths.log_dir={tmp_path / 'logs'}", *(a for a in args if a not in flags)])
    out = capsys.readouterr()
    printed = out.err + out.out
    assert got == code, printed[-3000:]
    assert "Traceback" not in printed
    text = " ".join(printed.split())
    for piece in expected:
        assert piece.format(**place) in text, (piece, printed[-2000:])
    if code == 2:  # cnnlab's own: one paragraph, on one line
        (line,) = [line for line in printed.splitlines() if line.startswith("cnnlab: error:")]
        assert all(piece.format(**place) in line for piece in expected)
    assert fingerprint(place["earlier"]) == before


def test_the_table_has_at_least_60_rows():
    assert len(ROWS) >= 60 and len({row[0] for row in ROWS}) == len(ROWS)
