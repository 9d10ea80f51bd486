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
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_class_acc = MulticlassAccuracy(num_classes, average=None)
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        #: the last test's confusion matrix (rows: true class), kept for the run's results file
        self.confusion_matrix: list[list[int]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        return self.criterion(logits, y), logits.argmax(dim=1), y

    def training_step(self, batch, batch_idx):
        loss, preds, y = self._shared_step(batch)
        self.train_acc(preds, y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

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
