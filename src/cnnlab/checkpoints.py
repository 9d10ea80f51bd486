"""Check a user-given `ckpt_path` before Lightning touches it, so a corrupt or mismatched file gets one
clear paragraph instead of a long traceback from deep inside torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cnnlab.config_diff import differences
from cnnlab.errors import CnnlabError

# The hyperparameters that decide the network's shape: a checkpoint must agree on all of them.
ARCHITECTURE_KEYS = ("model", "num_classes", "in_channels", "pooling", "activation")


def load_checked(path: str | Path, hparams: dict[str, Any], module: torch.nn.Module) -> dict[str, Any]:
    """Load and validate a checkpoint against the configured model; return it (for Lightning to resume)."""
    path = Path(path)
    example = "e.g. logs/runs/<date>/<time>/checkpoints/last.ckpt"
    if not path.is_file():
        raise CnnlabError(f"ckpt_path={path} does not exist (or is not a file). Valid: a .ckpt file written by "
                          f"cnnlab-train, {example}.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — torch raises many types for a damaged file
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise CnnlabError(f"ckpt_path={path} is not a readable checkpoint (corrupt or truncated?): {first}. "
                          f"Valid: a .ckpt file written by cnnlab-train, {example}.") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CnnlabError(f"ckpt_path={path} is a torch file but not a cnnlab/Lightning checkpoint (it has no "
                          f"state_dict and hyper_parameters). Valid: a .ckpt file written by cnnlab-train, {example}.")
    saved = ckpt["hyper_parameters"]
    diffs = differences(saved, hparams, only=ARCHITECTURE_KEYS, now="this run:")
    if diffs:
        raise CnnlabError(f"ckpt_path={path} was trained with a different network: {'; '.join(diffs)}. "
                          "Run with the checkpoint's settings (they are in its run dir's config.yaml) or "
                          "pass a checkpoint of the configured model.")
    try:
        module.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        raise CnnlabError(f"ckpt_path={path} does not fit the configured model: "
                          f"{str(err).splitlines()[0][:300]}. Pass a checkpoint of the same model.") from None
    return ckpt


def resolve_checkpoint(value: str | Path, option: str) -> Path:
    """A checkpoint file, or a run dir (its best-*.ckpt, else last.ckpt): what a user names to compare runs."""
    path = Path(value).expanduser()
    if path.is_dir():
        found = sorted((path / "checkpoints").glob("best-*.ckpt")) or sorted((path / "checkpoints").glob("last.ckpt"))
        if found:
            return found[-1]
    elif path.is_file():
        return path
    raise CnnlabError(f"{option}={value} is neither a checkpoint file nor a run dir with checkpoints/best-*.ckpt "
                      f"or last.ckpt. Valid: e.g. logs/runs/<date>/<time> or its checkpoints/last.ckpt.")


def load_trained_module(path: Path, option: str):
    """The trained ImageClassifier of a checkpoint (network, class names, hyperparameters), in eval mode on the
    CPU; a file that is not one, or one of a model cnnlab no longer has, gets one paragraph."""
    from cnnlab.models import list_models
    from cnnlab.module import ImageClassifier

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
        name = (saved.get("model") or {}).get("name")
    except Exception:  # noqa: BLE001 — the load below names what is wrong with the file
        name = None
    if name is not None and name not in list_models():
        raise CnnlabError(f"{option}={path} was trained with model '{name}', which this cnnlab no longer has. "
                          f"Valid: a checkpoint of a registered model ({', '.join(list_models())}), or the "
                          f"cnnlab version that trained it.")
    try:
        return ImageClassifier.load_from_checkpoint(path, map_location="cpu").eval()
    except Exception as err:  # noqa: BLE001 — torch and Lightning raise many types for a bad file
        raise CnnlabError(f"{option}={path} is not a readable cnnlab checkpoint: {str(err).splitlines()[0][:200]}. "
                          f"Valid: a .ckpt file written by cnnlab-train.") from None


def load_trained_net(path: Path, input_shape: tuple[int, ...] | None, option: str) -> torch.nn.Module:
    """The trained network of a checkpoint, in eval mode on the CPU, refused unless it takes `input_shape`
    (None: any)."""
    net = load_trained_module(path, option).net
    if input_shape is not None and tuple(net.input_shape) != tuple(input_shape):
        raise CnnlabError(f"{option}={path} takes {tuple(net.input_shape)} images and the images here are "
                          f"{tuple(input_shape)}. Valid: a run on the same data at the same image size.")
    return net
