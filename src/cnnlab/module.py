"""The LightningModule: any registered model, the loss `loss=` picks (cnnlab.losses: cross-entropy, or capsule
networks' margin loss), optimizer and schedule from config, torchmetrics accuracy (train/val/test), per-class accuracy
and a confusion matrix at test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from cnnlab.errors import CnnlabError, NonFiniteLossError
from cnnlab.lightning_compat import mark_metric_updated, restore_loader_state
from cnnlab.losses import Objective
from cnnlab.models import create_model
from cnnlab.models.registry import NATIVE
from cnnlab.optim import build_optimizer, build_scheduler


def random_states() -> dict[str, Any]:
    """Every random generator a training step may draw from (Lightning's checkpoints keep none of them)."""
    import random

    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    # numpy's own array as a tensor: checkpoints load with weights_only=True, which refuses numpy arrays
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_random_states(states: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


#: test-time augmentation: `none`, or `flip` (the logits of each evaluation image and its mirror image, averaged)
TTA = ("none", "flip")


def metric_key(class_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", class_name).strip("_")


class ImageClassifier(L.LightningModule):
    """Takes plain values only (dicts, numbers, strings), so `load_from_checkpoint(path)` rebuilds the model."""

    def __init__(
        self,
        model: dict[str, Any],
        num_classes: int,
        in_channels: int,
        pooling: dict[str, Any] | str = NATIVE,  # the model's own, as conf/pooling/native.yaml
        activation: dict[str, Any] | str = NATIVE,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        class_names: list[str] | None = None,
        tta: str = "none",
        channels_last: bool = False,
        loss: str | None = None,  # null: the model's own (margin for capsnet, cross_entropy for the rest)
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        options = dict(model)
        self.net = create_model(options.pop("name"), num_classes=num_classes, in_channels=in_channels,
                                pooling=pooling, activation=activation, **options)
        if tta not in TTA:
            raise CnnlabError(f"tta={tta!r} is not valid. Valid: {', '.join(TTA)} (flip: each evaluation image's "
                              "logits averaged with its mirror image's).")
        self.tta, self.channels_last = tta, channels_last
        if channels_last:  # NHWC: what oneDNN (CPU) and tensor cores run convs fastest on
            self.net = self.net.to(memory_format=torch.channels_last)
        # the loss of the outputs plus the model's own auxiliary loss (capsnet's reconstruction), if it has one
        self.criterion = Objective(loss, self.net.output_kind, label_smoothing)
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        # validate_args=False: checking every training step's targets is costly
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_class_acc = MulticlassAccuracy(num_classes, average=None)
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        #: the last test's confusion matrix (rows: true class), kept for the run's results file
        self.confusion_matrix: list[list[int]] | None = None
        self._loss_sum: torch.Tensor | None = None  # train loss summed on its device since the last log
        self._loss_steps = 0
        # The first global step whose loss was nan/inf (-1: none), kept on the loss's device: checking it
        # every step would make the host wait for the GPU each step. `check_finite()` reads it.
        self._first_bad_step: torch.Tensor | None = None

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
            tta=cfg.get("tta", "none"),
            channels_last=cfg.get("channels_last", False),
            loss=cfg.get("loss"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """The logits validation and test score: with tta=flip, the mean of the image's and its mirror's."""
        logits = self(x)
        if self.tta == "flip":
            logits = (logits + self(x.flip(-1))) / 2
        return logits

    def setup(self, stage: str) -> None:
        # A model with a data-dependent start (fast_cnn's whitening layer) sees the training images first; a
        # checkpoint being resumed from is loaded after this, so its weights win.
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        wanted = getattr(self.net, "init_images", 0)
        if stage == "fit" and wanted and datamodule is not None:
            self.net.init_from_data(datamodule.train_images(wanted))

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], evaluate: bool = False,
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.evaluate(x) if evaluate else self(x)
        return self.criterion(self.net, x, logits, y), logits.argmax(dim=1), y

    def training_step(self, batch, batch_idx):
        # Each self.log costs ~0.5 ms of Lightning bookkeeping, a third of a small model's step on a CPU, and
        # reading a value for the progress bar waits for the GPU. So the loss is summed where it lives and
        # logged as the mean of the steps since the last log, only on the steps the logger writes.
        loss, preds, y = self._shared_step(batch)
        self.train_acc.update(preds, y)
        detached = loss.detach()
        self._loss_sum = detached if self._loss_sum is None else self._loss_sum + detached
        self._loss_steps += 1
        step = self.trainer.global_step if self._trainer is not None else 0
        if self._first_bad_step is None:
            self._first_bad_step = torch.full((), -1, dtype=torch.long, device=detached.device)
        self._first_bad_step = torch.where((self._first_bad_step < 0) & ~torch.isfinite(detached),
                                           torch.full_like(self._first_bad_step, step), self._first_bad_step)
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        if every and (step + 1) % every == 0:
            self.check_finite()  # the host reads the loss now anyway
            self.log("train/loss", self._loss_sum / self._loss_steps, prog_bar=True)
            self._loss_sum, self._loss_steps = None, 0
        return loss

    def check_finite(self) -> None:
        """Stop the run if any training loss so far was nan or inf, naming the first such step. Called before
        anything is saved (validation, checkpoints), so every checkpoint on disk holds finite weights."""
        if self._first_bad_step is not None and (step := int(self._first_bad_step)) >= 0:
            batches = self.trainer.num_training_batches if self._trainer is not None else 0
            where = (f" (epoch {step // batches}, batch {step % batches})"
                     if isinstance(batches, int) and batches > 0 else "")
            saved = f" in {Path(self.trainer.default_root_dir) / 'checkpoints'}" if self._trainer is not None else ""
            raise NonFiniteLossError(
                f"The training loss became nan/inf at step {step}{where}, so the run stopped. Any checkpoints it "
                f"saved{saved} hold finite weights from before that step. Valid runs keep the loss finite: lower "
                "optimizer.lr (or scheduler.max_lr), clip gradients (trainer.gradient_clip_val=1.0), or check the "
                "data for nan pixels.")

    def on_train_start(self) -> None:
        # configure_optimizers asks for estimated_stepping_batches, which makes Lightning build the train loader
        # (and its first iterator) before it restores a checkpoint's loop state, so the loader's position is
        # never handed back. Hand it back now, and start the epoch's iterator again from there.
        restore_loader_state(self.trainer)

    def on_validation_start(self) -> None:
        self.check_finite()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What Lightning does not save, for a resumed run to go on exactly as an uninterrupted one: the random
        # states (dropout, augmentation draws outside the data path) and this epoch's running train metrics.
        checkpoint["cnnlab"] = {
            "rng": random_states(),
            "train_acc": {name: value.detach().cpu() for name, value in self.train_acc.metric_state.items()},
            "loss_window": (None if self._loss_sum is None else self._loss_sum.detach().cpu(), self._loss_steps),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("cnnlab")
        if not saved or self._trainer is None or self.trainer.state.fn != "fit":
            return
        set_random_states(saved["rng"])
        for name, value in saved["train_acc"].items():
            setattr(self.train_acc, name, value.to(self.device))
        mark_metric_updated(self.train_acc)  # states restored: compute() has something to compute
        loss_sum, self._loss_steps = saved["loss_window"]
        self._loss_sum = None if loss_sum is None else loss_sum.to(self.device)

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_steps = None, 0

    def on_train_epoch_end(self) -> None:
        self.check_finite()
        self.log("train/acc", self.train_acc.compute())
        self.train_acc.reset()

    def validation_step(self, batch, batch_idx):
        loss, preds, y = self._shared_step(batch, evaluate=True)
        self.val_acc(preds, y)
        self.log("val/loss", loss, sync_dist=True)  # reduced once per epoch, not per step
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch, batch_idx):
        loss, preds, y = self._shared_step(batch, evaluate=True)
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
        opt = build_optimizer(self.hparams.optimizer or {"name": "adam", "lr": 1e-3}, self)
        scheduler = build_scheduler(self.hparams.scheduler, opt, self.trainer.max_epochs or 1,
                                    int(self.trainer.estimated_stepping_batches))
        return opt if scheduler is None else {"optimizer": opt, "lr_scheduler": scheduler}
