"""When pictures and probes look at the model: every `every_n_epochs` epochs (0: only once, when training
ends) and always at the end of training; after the epoch's validation, on global rank 0 only, with the
model in eval mode. Subclasses say what to do then (`look`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from cnnlab.data.probe import probe_batch, probe_images
from cnnlab.errors import whole_number
from cnnlab.models.base import evaluating


def validation_set(trainer: L.Trainer):
    """The images the model is never trained on: the datamodule's validation split."""
    dataset = getattr(trainer.datamodule, "val_set", None)
    if dataset is None:
        loaders = trainer.val_dataloaders or trainer.train_dataloader
        dataset = (loaders[0] if isinstance(loaders, (list, tuple)) else loaders).dataset
    return dataset


class CadenceCallback(Callback):
    config_name = "callback"  # the key under `callbacks:` that switches it on

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 1) -> None:
        self.output_dir = Path(output_dir)
        self.every_n_epochs = self.whole("every_n_epochs", every_n_epochs or 0, least=0,
                                         meaning="0: only when training ends")
        self._looked_at: int | None = None
        self.seconds = 0.0  # spent drawing or measuring in this process: results.json's perf/pictures_probes_s
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None

    def whole(self, option: str, value: Any, least: int = 1, meaning: str = "") -> int:
        """An option that must be a whole number ≥ `least`, refused by name otherwise."""
        return whole_number(f"callbacks.{self.config_name}.{option}", value, least, meaning)

    def look(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        raise NotImplementedError

    def probe(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[torch.Tensor, torch.Tensor]:
        """One validation image per class (the same batch every time), on the model's device."""
        if self._probe is None:
            self._probe = probe_batch(validation_set(trainer), len(pl_module.class_names))
        x, y = self._probe
        return x.to(pl_module.device), y.to(pl_module.device)

    def images(self, trainer: L.Trainer, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `count` validation images and labels, on the CPU (read once per run)."""
        return probe_images(validation_set(trainer), count)

    @staticmethod
    def forward_net(pl_module: L.LightningModule, x: torch.Tensor) -> torch.nn.Module:
        """The network for forward passes without gradients: its NHWC twin where that is faster and gives the
        same outputs (probes/features.py), one copy shared by every picture and probe until the weights change."""
        from cnnlab.probes.features import forward_twin

        return forward_twin(pl_module.net, x)

    def _emit(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        self._looked_at = trainer.global_step
        if not trainer.is_global_zero:
            return
        started = time.perf_counter()
        with evaluating(pl_module):
            self.look(trainer, pl_module, tag)
        self.seconds += time.perf_counter() - started

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._emit(trainer, pl_module, f"epoch{trainer.current_epoch:03d}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._looked_at != trainer.global_step:  # the final state, unless this epoch's is already done
            self._emit(trainer, pl_module, "final")

    def state_dict(self) -> dict[str, Any]:
        return {"drawn_at": self._looked_at}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._looked_at = state_dict.get("drawn_at")
