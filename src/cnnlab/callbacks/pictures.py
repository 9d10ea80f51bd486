"""Picture callbacks: each draws one kind of picture of the model on the fixed probe batch, at the cadence
of `CadenceCallback`, and sends it to the run's loggers and to PNGs under <run dir>/pictures/ (listed in
pictures/index.jsonl), so the pictures survive with any logger or none.

They take gradients w.r.t. inputs only and use a private random generator: training is left exactly as
it was."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from cnnlab.callbacks.cadence import CadenceCallback
from cnnlab.errors import CnnlabError
from cnnlab.loggers.images import log_pictures
from cnnlab.pictures import Picture
from cnnlab.pictures.store import save_pictures


def publish(pictures: Sequence[Picture], trainer: L.Trainer, output_dir: Path, tag: str) -> None:
    """Each picture as <run dir>/pictures/<key>-<tag>.png, one line in pictures/index.jsonl, and to the loggers."""
    save_pictures(pictures, output_dir, tag, trainer.current_epoch, trainer.global_step)
    log_pictures(trainer.loggers, pictures, step=trainer.global_step)


class PictureCallback(CadenceCallback):
    """Subclasses implement `draw`; the cadence comes from `CadenceCallback`, the destinations from `publish`."""

    config_name = "pictures"

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[Picture]:
        raise NotImplementedError

    def look(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        pictures = self.draw(trainer, pl_module)
        if pictures:
            publish(pictures, trainer, self.output_dir, tag)

    def labels(self, pl_module: L.LightningModule, y: torch.Tensor) -> list[str]:
        return [pl_module.class_names[int(i)] for i in y]


class FilterPictures(PictureCallback):
    config_name = "filter_pictures"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 1, max_filters: int = 64,
                 max_layers: int = 8) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.max_filters, self.max_layers = self.whole("max_filters", max_filters), self.whole("max_layers", max_layers)

    def draw(self, trainer, pl_module):
        from cnnlab.pictures.filters import filter_pictures

        return filter_pictures(pl_module.net, self.max_filters, self.max_layers)


class ActivationPictures(PictureCallback):
    config_name = "activation_pictures"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 1, max_channels: int = 16,
                 by_stage_channels: int = 8) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.max_channels = self.whole("max_channels", max_channels)
        self.by_stage_channels = self.whole("by_stage_channels", by_stage_channels, least=0,
                                            meaning="0: no Harley view")

    def draw(self, trainer, pl_module):
        from cnnlab.pictures.activations import activation_pictures, harley_picture, stage_outputs

        x, y = self.probe(trainer, pl_module)
        labels = self.labels(pl_module, y)
        outputs = stage_outputs(pl_module.net, x)
        pictures = activation_pictures(outputs, labels, self.max_channels)
        if self.by_stage_channels:
            pictures.append(harley_picture(x[0], outputs, labels[0], self.by_stage_channels))
        return pictures


class ExamplePictures(PictureCallback):
    """Dataset examples (Zeiler & Fergus 2014): for the most active channels of every stage, the validation
    patches that drive each hardest, cropped to the unit's receptive field; one grid per stage."""

    config_name = "example_pictures"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 1, images: int = 1000,
                 channels: int = 6, k: int = 8) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.count, self.channels, self.k = (self.whole("images", images), self.whole("channels", channels),
                                             self.whole("k", k))

    def draw(self, trainer, pl_module):
        from cnnlab.pictures.dataset_examples import dataset_examples

        x, y = self.images(trainer, self.count)
        net = self.forward_net(pl_module, x)
        pictures, _ = dataset_examples(net, x, y, pl_module.class_names, self.channels, self.k)
        return pictures


class AttributionPictures(PictureCallback):
    config_name = "attribution_pictures"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 1, patch: int = 7,
                 stride: int = 2) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.patch, self.stride = self.whole("patch", patch), self.whole("stride", stride)

    def draw(self, trainer, pl_module):
        from cnnlab.pictures.attribution import attribution_picture

        x, y = self.probe(trainer, pl_module)
        patch = min(self.patch, x.shape[-1])
        picture, _ = attribution_picture(pl_module.net, x, y, self.labels(pl_module, y), patch, self.stride,
                                         forward_net=self.forward_net(pl_module, x))
        return [picture]


class MaximisationPictures(PictureCallback):
    config_name = "maximisation_pictures"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, channels: int = 4,
                 steps: int = 96, parameterisation: str = "auto") -> None:
        from cnnlab.pictures.maximisation import PARAMETERISATIONS

        super().__init__(output_dir, every_n_epochs)
        self.channels, self.steps = self.whole("channels", channels), self.whole("steps", steps)
        if parameterisation not in ("auto", *PARAMETERISATIONS):
            raise CnnlabError(f"callbacks.maximisation_pictures.parameterisation={parameterisation!r} is not valid. "
                              f"Valid: auto (fourier on RGB input, pixel otherwise), {', '.join(PARAMETERISATIONS)}.")
        self.parameterisation = parameterisation

    def draw(self, trainer, pl_module):
        from cnnlab.pictures.maximisation import maximisation_picture

        x, _ = self.probe(trainer, pl_module)
        picture, _ = maximisation_picture(pl_module.net, x, self.channels, self.steps, self.parameterisation)
        return [picture]


class MistakePictures(PictureCallback):
    """The validation images the model gets wrong (the most confident mistakes first) and the ones it is surest
    of per class: a W&B Table to filter and group, and a gallery of the worst mistakes for every logger."""

    config_name = "mistake_pictures"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, images: int = 2000, worst: int = 32,
                 per_class: int = 2) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.count, self.worst = self.whole("images", images), self.whole("worst", worst)
        self.per_class = self.whole("per_class", per_class, least=0)

    def draw(self, trainer, pl_module):
        from cnnlab.loggers.tables import log_image_table
        from cnnlab.pictures.mistakes import gallery_picture, probabilities, verdicts
        from cnnlab.pictures.render import colourise, image_cell

        x, y = self.images(trainer, self.count)
        p = probabilities(self.forward_net(pl_module, x), x)
        rows = verdicts(y, p, pl_module.class_names, self.worst, self.per_class)
        images = [colourise(image_cell(x[r.index].numpy())) for r in rows]
        log_image_table(trainer.loggers, "mistakes/table", images, [r.row() for r in rows], trainer.global_step)
        picture = gallery_picture(x, rows, len(x))
        return [picture] if picture else []


class ReportPictures(PictureCallback):
    """Training curves (per-step train loss, per-epoch metrics) and, after `test`, the confusion matrix.

    The curves come from what the run logs, recorded here too, so they need no logger; the per-step
    losses stay on the device until the epoch ends (no host sync per step)."""

    config_name = "report_pictures"
    METRICS = ("train/acc", "val/loss", "val/acc")

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.history: dict[str, list[tuple[float, float]]] = {}
        self._losses: list[torch.Tensor] = []
        self._steps_in_epoch = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._losses.append(loss.detach())
        self._steps_in_epoch = batch_idx + 1

    def _flush(self, trainer) -> None:
        if self._losses:
            per_epoch = max(trainer.num_training_batches if isinstance(trainer.num_training_batches, int) else 0,
                            self._steps_in_epoch, 1)
            values = torch.stack(self._losses).float().cpu().tolist()
            first = trainer.current_epoch
            start = self._steps_in_epoch - len(values)
            self.history.setdefault("train/loss", []).extend(
                (first + (start + i + 1) / per_epoch, v) for i, v in enumerate(values))
            self._losses.clear()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._flush(trainer)
        for name in self.METRICS:
            value = trainer.callback_metrics.get(name)
            if value is not None:
                self.history.setdefault(name, []).append((trainer.current_epoch + 1.0, float(value)))
        super().on_train_epoch_end(trainer, pl_module)

    def draw(self, trainer, pl_module):
        from cnnlab.pictures.report import curves_picture

        self._flush(trainer)
        return [curves_picture(self.history)] if self.history else []

    def on_test_end(self, trainer, pl_module) -> None:
        matrix = getattr(pl_module, "confusion_matrix", None)
        if matrix is None or not trainer.is_global_zero:
            return
        from cnnlab.pictures.report import confusion_picture

        started = time.perf_counter()
        publish([confusion_picture(matrix, pl_module.class_names)], trainer, self.output_dir, "test")
        self.seconds += time.perf_counter() - started

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.history = {k: [tuple(p) for p in v] for k, v in state_dict.get("history", {}).items()}
