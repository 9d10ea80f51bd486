"""Probe callbacks: each measures one claim about CNNs with numbers (and a plot), at the cadence of
`CadenceCallback` (by default once, when training ends), on held-out validation images.

The numbers go to every logger (as metrics at the current step), to the W&B run summary, and to the run
dir: one JSON line per measurement in probes/<probe>.jsonl and the latest of every number in
probes/summary.json. Each probe also records its own cost as `probe_seconds/<probe>`. Plots go where
pictures go (PNGs under pictures/, W&B, TensorBoard). Random draws use a private generator, gradients
are taken w.r.t. inputs only: training is left exactly as it was."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch

from cnnlab.callbacks.cadence import CadenceCallback
from cnnlab.callbacks.pictures import publish
from cnnlab.checkpoints import load_trained_net, resolve_checkpoint
from cnnlab.errors import CnnlabError
from cnnlab.loggers import record_summary
from cnnlab.models.base import evaluating
from cnnlab.pictures import Picture

Measured = tuple[dict[str, float], list[Picture]]


def record(numbers: dict[str, float], trainer: L.Trainer, output_dir: Path, probe: str, tag: str) -> None:
    """The numbers into probes/<probe>.jsonl and probes/summary.json, the loggers and the W&B summary."""
    root = output_dir / "probes"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{probe}.jsonl", "a") as lines:
        lines.write(json.dumps({"epoch": trainer.current_epoch, "step": trainer.global_step, "tag": tag,
                                "numbers": numbers}) + "\n")
    summary_path = root / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.update(numbers)
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True))
    for logger in trainer.loggers:
        logger.log_metrics(numbers, step=trainer.global_step)
    record_summary(trainer.loggers, numbers)


class ProbeCallback(CadenceCallback):
    """Subclasses implement `measure`; this class times it and sends the results on."""

    config_name = "probe"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0) -> None:
        super().__init__(output_dir, every_n_epochs)

    def measure(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Measured:
        raise NotImplementedError

    def look(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        started = time.perf_counter()
        numbers, pictures = self.measure(trainer, pl_module)
        numbers = {**numbers, f"probe_seconds/{self.config_name}": time.perf_counter() - started}
        record(numbers, trainer, self.output_dir, self.config_name, tag)
        if pictures:
            publish(pictures, trainer, self.output_dir, tag)

    def split(self, trainer: L.Trainer, train: int, test: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """(train, test) image sets from the validation split: the first `train` images and the next `test`
        (fewer of each, in the same proportion, when the split is smaller)."""
        x, y = self.images(trainer, train + test)
        cut = round(len(x) * train / (train + test))
        if cut < 1 or cut >= len(x):
            raise CnnlabError(f"callbacks.{self.config_name} needs at least 2 validation images to fit on some "
                              f"and test on others, and has {len(x)} (raise data.val_size).")
        return (x[:cut], y[:cut]), (x[cut:], y[cut:])


class LinearProbe(ProbeCallback):
    """Linear-probe accuracy of every stage's frozen features (and of the raw pixels)."""

    config_name = "linear_probe"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, train_images: int = 2000,
                 test_images: int = 1000, grid: int = 1) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.train_images = self.whole("train_images", train_images)
        self.test_images = self.whole("test_images", test_images)
        self.grid = self.whole("grid", grid)

    def measure(self, trainer, pl_module):
        from cnnlab.probes.features import stage_features
        from cnnlab.probes.linear_probe import linear_probe, linear_probe_picture
        from cnnlab.probes.translation import predict

        (x_train, y_train), (x_test, y_test) = self.split(trainer, self.train_images, self.test_images)
        x, y = torch.cat([x_train, x_test]), torch.cat([y_train, y_test])
        net = self.forward_net(pl_module, x)
        features = {"input": x.flatten(1), **stage_features(net, x, self.grid)}
        accuracy = linear_probe(features, y, len(x_train), len(pl_module.class_names))
        network = float((predict(net, x_test) == y_test).double().mean())
        numbers = {f"linear_probe/{name}": acc for name, acc in accuracy.items()}
        numbers["linear_probe/network"] = network
        return numbers, [linear_probe_picture(accuracy, network)]


class CKAProbe(ProbeCallback):
    """Stage × stage CKA within the model, and against another trained run's stages (`compare_with`)."""

    config_name = "cka"
    KINDS = ("linear", "rbf")

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, images: int = 500,
                 kinds: tuple[str, ...] | list[str] = KINDS, compare_with: str | None = None,
                 save_grams: bool = False) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.count = self.whole("images", images, least=2)
        self.save_grams = bool(save_grams)
        self.kinds = list(kinds)
        bad = [k for k in self.kinds if k not in self.KINDS]
        if bad or not self.kinds:
            raise CnnlabError(f"callbacks.cka.kinds must be a list drawn from {list(self.KINDS)}, got {kinds!r}.")
        self.compare_with = resolve_checkpoint(compare_with, "callbacks.cka.compare_with") if compare_with else None

    def measure(self, trainer, pl_module):
        from cnnlab.probes.cka import GRAMS_FILE, cka_matrix, cka_numbers, cka_picture, save_grams
        from cnnlab.probes.features import stage_features

        x, _ = self.images(trainer, self.count)
        own = stage_features(self.forward_net(pl_module, x), x)
        if self.save_grams:  # for CKA across runs later (reports: layer correspondence between seeds)
            save_grams(own, self.output_dir / "probes" / GRAMS_FILE)
        other = None
        if self.compare_with is not None:
            other_net = load_trained_net(self.compare_with, tuple(x.shape[1:]), "callbacks.cka.compare_with")
            other_net = other_net.to(pl_module.device)
            other = (other_net.model_name, stage_features(other_net, x))
        numbers, pictures = {}, []
        for kind in self.kinds:
            names, _, matrix = cka_matrix(own, own, kind)
            numbers.update(cka_numbers(names, names, matrix, kind))
            pictures.append(cka_picture(names, names, matrix, kind, key=f"cka/{kind}_heatmap"))
            if other is not None:
                names_a, names_b, cross = cka_matrix(own, other[1], kind)
                numbers.update(cka_numbers(names_a, names_b, cross, kind, prefix=f"cka_vs_{other[0]}"))
                pictures.append(cka_picture(names_a, names_b, cross, kind, key=f"cka_vs_{other[0]}/{kind}_heatmap",
                                            title_a=pl_module.net.model_name, title_b=other[0]))
        return numbers, pictures


class ReceptiveFieldProbe(ProbeCallback):
    """Theoretical receptive field per stage, and the effective one (Luo et al. 2016) with its Gaussian σ."""

    config_name = "receptive_field"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, images: int = 64,
                 at_init: bool = False) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.count = self.whole("images", images)
        self.at_init = bool(at_init)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """With at_init: the same numbers before the first step, as receptive_field/init/... (Luo et al. 2016
        compare the effective RF at initialisation with the trained one). Not again when a run resumes."""
        if not self.at_init or trainer.global_step != 0 or not trainer.is_global_zero:
            return
        with evaluating(pl_module):
            numbers, _ = self.measure(trainer, pl_module)
        prefix = f"{self.config_name}/"
        record({f"{prefix}init/{k.removeprefix(prefix)}": v for k, v in numbers.items()}, trainer,
               self.output_dir, self.config_name, "init")

    def measure(self, trainer, pl_module):
        from cnnlab.probes.receptive_field import effective_rf, erf_picture, rf_numbers, theoretical_rf

        x, _ = self.images(trainer, self.count)
        rfs = theoretical_rf(pl_module.net)
        with torch.enable_grad():
            erfs = effective_rf(pl_module.net, x.to(pl_module.device))
        return rf_numbers(rfs, erfs), ([erf_picture(erfs, rfs)] if erfs else [])


class TranslationProbe(ProbeCallback):
    """Accuracy and prediction consistency (Zhang 2019) against the size of a random circular shift."""

    config_name = "translation"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, images: int = 1000,
                 max_shift: int = 4, seed: int = 0) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.count, self.max_shift = self.whole("images", images), self.whole("max_shift", max_shift)
        self.seed = self.whole("seed", seed, least=0)

    def measure(self, trainer, pl_module):
        from cnnlab.probes.translation import shift_robustness, translation_numbers, translation_picture

        x, y = self.images(trainer, self.count)
        generator = torch.Generator().manual_seed(self.seed)
        result = shift_robustness(self.forward_net(pl_module, x), x, y, self.max_shift, generator)
        return translation_numbers(result), [translation_picture(result)]


class RotationProbe(ProbeCallback):
    """Accuracy against rotation angle, and how far first-layer filters are rotated copies of each other."""

    config_name = "rotation"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, images: int = 500,
                 step_degrees: int = 30, seed: int = 0) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.count, self.step = self.whole("images", images), self.whole("step_degrees", step_degrees)
        self.seed = self.whole("seed", seed, least=0)

    def measure(self, trainer, pl_module):
        from cnnlab.probes.rotation import (
            filter_rotation_similarity,
            first_conv_filters,
            rotation_accuracy,
            rotation_numbers,
            rotation_picture,
        )

        x, y = self.images(trainer, self.count)
        angles = sorted({*range(0, 181, self.step), *range(0, -181, -self.step), 180, -180})
        accuracy = rotation_accuracy(self.forward_net(pl_module, x), x, y, angles)
        filters = first_conv_filters(pl_module.net)
        similarity = None if filters is None else filter_rotation_similarity(
            filters, torch.Generator().manual_seed(self.seed))
        return rotation_numbers(accuracy, similarity), [rotation_picture(accuracy, similarity)]


class LinearityProbe(ProbeCallback):
    """How far the network is from one affine map (it is one with activation=identity and linear pooling),
    next to a plain linear classifier on the pixels."""

    config_name = "linearity"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 0, train_images: int = 2000,
                 test_images: int = 1000) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.train_images = self.whole("train_images", train_images)
        self.test_images = self.whole("test_images", test_images)

    def measure(self, trainer, pl_module):
        from cnnlab.probes.linear_probe import linear_accuracy
        from cnnlab.probes.linearity import linearity, linearity_numbers, linearity_picture

        train, (x_test, y_test) = self.split(trainer, self.train_images, self.test_images)
        result = linearity(self.forward_net(pl_module, x_test), x_test, y_test)
        plain = linear_accuracy(train, (x_test, y_test), len(pl_module.class_names))
        picture = linearity_picture(result, tuple(x_test.shape[1:]), plain, pl_module.class_names)
        return linearity_numbers(result, plain), [picture]


class WeightSharingProbe(ProbeCallback):
    """Parameters as built and without weight sharing, validation accuracy, accuracy per parameter."""

    config_name = "weight_sharing"

    def measure(self, trainer, pl_module):
        from cnnlab.probes.weight_sharing import weight_sharing_numbers, weight_sharing_picture

        acc = trainer.callback_metrics.get("val/acc")
        numbers = weight_sharing_numbers(pl_module.net, pl_module.net.input_shape,
                                         None if acc is None else float(acc))
        return numbers, [weight_sharing_picture(numbers, pl_module.net.model_name)]


class LayerHealthProbe(ProbeCallback):
    """Per stage: histograms of the weights and of the gradient of the epoch's last training step (W&B,
    TensorBoard), and as numbers the gradient norm, the weight norm and the share of ReLU-family channels that
    never fire on the first `images` validation images."""

    config_name = "layer_health"

    def __init__(self, output_dir: str | Path, every_n_epochs: int | None = 1, images: int = 500) -> None:
        super().__init__(output_dir, every_n_epochs)
        self.count = self.whole("images", images)
        self._grads: dict[str, torch.Tensor] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Keep the gradients of an epoch's last step (or the run's last, under max_steps): Lightning clears
        them before validation, before any look."""
        last_of_epoch = batch_idx + 1 >= trainer.num_training_batches
        last_of_run = 0 < trainer.max_steps <= trainer.global_step
        if last_of_epoch or last_of_run:
            from cnnlab.probes.health import stage_gradients

            self._grads = stage_gradients(pl_module.net)

    def measure(self, trainer, pl_module):
        from cnnlab.loggers.histograms import log_histograms
        from cnnlab.probes.health import health_numbers

        x, _ = self.images(trainer, self.count)
        numbers, histograms = health_numbers(pl_module.net, x, self._grads)
        log_histograms(trainer.loggers, histograms, trainer.global_step)
        return numbers, []


PROBES: tuple[type[ProbeCallback], ...] = (LinearProbe, CKAProbe, ReceptiveFieldProbe, TranslationProbe,
                                            RotationProbe, LinearityProbe, WeightSharingProbe, LayerHealthProbe)
