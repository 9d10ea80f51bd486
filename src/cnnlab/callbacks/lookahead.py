"""Lookahead over an exponential moving average of the weights (Zhang et al. 2019, "Lookahead optimizer"; the
EMA of the CIFAR-10 speed runs): every `every_n_steps` optimizer steps the average moves toward the weights and
the weights are set back to the average; at each epoch's end the weights are set to the average. The average's
decay warms up as decay^every_n_steps · (step / total steps)^power: early on the weights move freely, at the end
they are averaged strongly. Every floating-point entry of the model's state (batch-norm statistics too) takes
part; the average is kept in checkpoints, so a resumed run goes on with it."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from cnnlab.errors import CnnlabError, whole_number


class Lookahead(Callback):
    def __init__(self, every_n_steps: int = 5, decay: float = 0.95, power: float = 3.0, start_epoch: int = 0) -> None:
        whole_number("callbacks.lookahead.every_n_steps", every_n_steps,
                     meaning="optimizer steps between updates of the average, e.g. 5")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise CnnlabError(f"callbacks.lookahead.decay={decay!r} is not valid. Valid: the per-step decay of the "
                              "average, a number in [0, 1) (e.g. 0.95).")
        self.every_n_steps, self.decay, self.power, self.start_epoch = every_n_steps, float(decay), power, start_epoch
        self.average: dict[str, torch.Tensor] | None = None

    def _entries(self, pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        return {k: v for k, v in pl_module.state_dict(keep_vars=True).items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def _pull(self, pl_module: L.LightningModule, rho: float) -> None:
        """average ← rho·average + (1 − rho)·weights; weights ← average."""
        entries = self._entries(pl_module)
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in entries.items()}
            return
        for key, value in entries.items():
            average = self.average[key]
            if average.device != value.device:  # restored from a checkpoint onto the CPU
                average = self.average[key] = average.to(value.device)
            average.lerp_(value.detach(), 1 - rho)
            value.data.copy_(average)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if trainer.current_epoch < self.start_epoch or step == 0:
            return
        if step % self.every_n_steps == 0:
            total = max(1, int(trainer.estimated_stepping_batches))
            self._pull(pl_module, self.decay ** self.every_n_steps * min(1.0, step / total) ** self.power)
        if batch_idx + 1 == trainer.num_training_batches and self.average is not None:
            self._pull(pl_module, 1.0)  # the epoch ends on the average: what validation and checkpoints see

    def state_dict(self) -> dict[str, Any]:
        return {"average": None if self.average is None else {k: v.cpu() for k, v in self.average.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("average")
        self.average = None if saved is None else dict(saved)
