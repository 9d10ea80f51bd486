"""The LightningModule: any registered model, cross-entropy, optimizer and schedule from config,
torchmetrics accuracy (train/val/test), per-class accuracy and a confusion matrix at test."""

from __future__ import annotations

import re
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from cnnlab.models import create_model
from cnnlab.optim import build_optimizer, build_scheduler


def metric_key(class_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", class_name).strip("_")


class ImageClassifier(L.LightningModule):
    """Takes plain values only (dicts, numbers, strings), so `load_from_checkpoint(path)` rebuilds the model."""

    def __init__(
        self,
        model: dict[str, Any],
        num_classes: int,
        in_channels: int,
        pooling: dict[str, Any] | str = "max",
        activation: dict[str, Any] | str = "relu",
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        options = dict(model)
        self.net = create_model(options.pop("name"), num_classes=num_classes, in_channels=in_channels,
                                pooling=pooling, activation=activation, **options)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)  # checked per step: costly
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_class_acc = MulticlassAccuracy(num_classes, average=None)
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        #: the last test's confusion matrix (rows: true class), kept for the run's results file
        self.confusion_matrix: list[list[int]] | None = None
        self._loss_sum: torch.Tensor | None = None  # train loss summed on its device since the last log
        self._loss_steps = 0

    @classmethod
    def from_config(cls, cfg: dict[str, Any], datamodule) -> ImageClassifier:
        """The module a resolved run config describes, sized to the datamodule's images and classes."""
        return cls(
            model={**cfg["model"], "image_size": datamodule.image_size},
            num_classes=datamodule.num_classes,
            in_channels=datamodule.in_channels,
            pooling=cfg["pooling"],
            activation=cfg["activation"],
            optimizer=cfg["optimizer"],
            scheduler=cfg["scheduler"],
            label_smoothing=cfg["label_smoothing"],
            class_names=datamodule.class_names,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        return self.criterion(logits, y), logits.argmax(dim=1), y

    def training_step(self, batch, batch_idx):
        # Each self.log costs ~0.5 ms of Lightning bookkeeping, a third of a small model's step on a CPU, and
        # reading a value for the progress bar waits for the GPU. So the loss is summed where it lives and
        # logged as the mean of the steps since the last log, only on the steps the logger writes.
        loss, preds, y = self._shared_step(batch)
        self.train_acc.update(preds, y)
        detached = loss.detach()
        self._loss_sum = detached if self._loss_sum is None else self._loss_sum + detached
        self._loss_steps += 1
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        if every and (self.trainer.global_step + 1) % every == 0:
            self.log("train/loss", self._loss_sum / self._loss_steps, prog_bar=True)
            self._loss_sum, self._loss_steps = None, 0
        return loss

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_steps = None, 0

    def on_train_epoch_end(self) -> None:
        self.log("train/acc", self.train_acc.compute())
        self.train_acc.reset()

    def validation_step(self, batch, batch_idx):
        loss, preds, y = self._shared_step(batch)
        self.val_acc(preds, y)
        self.log("val/loss", loss, sync_dist=True)  # reduced once per epoch, not per step
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch, batch_idx):
        loss, preds, y = self._shared_step(batch)
        self.test_acc(preds, y)
        self.test_class_acc.update(preds, y)
        self.test_confusion.update(preds, y)
        self.log("test/loss", loss, sync_dist=True)
        self.log("test/acc", self.test_acc)

    def on_test_epoch_end(self) -> None:
        per_class = self.test_class_acc.compute()
        for name, acc in zip(self.class_names, per_class):
            self.log(f"test/acc_class/{metric_key(name)}", acc, sync_dist=True)
        self.confusion_matrix = self.test_confusion.compute().tolist()
        self.test_class_acc.reset()
        self.test_confusion.reset()

    def configure_optimizers(self):
        opt = build_optimizer(self.hparams.optimizer or {"name": "adam", "lr": 1e-3}, self.parameters())
        scheduler = build_scheduler(self.hparams.scheduler, opt, self.trainer.max_epochs or 1,
                                    int(self.trainer.estimated_stepping_batches))
        return opt if scheduler is None else {"optimizer": opt, "lr_scheduler": scheduler}
