"""The private Lightning, torchmetrics and torch API cnnlab relies on is still where cnnlab/lightning_compat.py
reaches for it, and nothing else in cnnlab reaches for it. When an upgrade moves an attribute, the failing test
says which library version moved what, and which function of lightning_compat.py to update. Fast: two tiny fits
of a toy module on CPU, no training subprocess."""

from __future__ import annotations

import ast
import inspect
import re
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torchmetrics
from lightning.pytorch.callbacks import Callback
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from cnnlab import lightning_compat as compat

SRC = Path(compat.__file__).parent
LIGHTNING = f"Lightning {L.__version__}"
TORCH = f"torch {torch.__version__}"
TORCHMETRICS = f"torchmetrics {torchmetrics.__version__}"


def moved(lib: str, attr: str, fn: Any) -> str:
    return f"{lib} moved {attr}: update cnnlab/lightning_compat.py:{fn.__name__}"


def need(obj: Any, attrs: str, lib: str, fn: Any) -> Any:
    """obj.a.b.c, failing loudly at the first missing attribute of the chain `attrs` ("a.b.c")."""
    owner = type(obj).__name__ if not inspect.ismodule(obj) else obj.__name__
    for attr in attrs.split("."):
        assert hasattr(obj, attr), moved(lib, f"{owner}.{attrs}", fn)
        obj = getattr(obj, attr)
    return obj


# ---------------------------------------------------------------- a toy fit, saved mid-epoch and resumed


class _Loader:
    """A stateful loader of 4 batches: batch i is filled with i; its state is where its iterator got to."""

    def __init__(self) -> None:
        self.pos, self.start, self.loaded = 0, 0, []

    def __len__(self) -> int:
        return 4

    def __iter__(self):
        start, self.start = self.start, 0
        for i in range(start, 4):
            self.pos = i + 1
            yield torch.full((2, 2), float(i)), torch.zeros(2, dtype=torch.long)

    def state_dict(self) -> dict[str, int]:
        return {"pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.loaded.append(dict(state))
        self.start = state["pos"]


class _Toy(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.loader = _Loader()
        self.seen: list[int] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen.append(int(x[0, 0]))
        return nn.functional.cross_entropy(self.layer(x), y)

    def configure_optimizers(self):
        # as cnnlab's schedules do: with max_epochs set, this builds the train loader before a checkpoint's loop
        # state is restored, so Lightning never hands the loader its saved state itself
        assert self.trainer.estimated_stepping_batches > 0
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return self.loader


class _Record(Callback):
    """What the compat functions see inside a real fit. Never raises: the tests below report what is missing."""

    def __init__(self, save_to: Path | None = None) -> None:
        self.save_to = save_to
        self.fit_loop: dict[str, bool] = {}
        self.progress: dict[str, bool] = {}
        self.dump_params: list[str] = []
        self.batches_done: list[int | BaseException] = []
        self.checkpoint: dict[str, Any] | BaseException | None = None
        self.restore_error: BaseException | None = None

    def on_train_start(self, trainer, pl_module):
        loop = trainer.fit_loop
        self.fit_loop = {name: hasattr(loop, name) for name in (
            "_combined_loader_states_to_load", "_combined_loader", "_load_combined_loader_states",
            "_data_fetcher", "restarting")}
        try:
            compat.restore_loader_state(trainer)
        except BaseException as err:  # noqa: BLE001 - reported by the test
            self.restore_error = err

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        progress = getattr(getattr(getattr(trainer.fit_loop, "epoch_loop", None), "batch_progress", None),
                           "current", None)
        self.progress = {name: hasattr(progress, name) for name in ("ready", "started", "processed", "completed")}
        try:
            self.batches_done.append(compat.batches_done_this_epoch(trainer))
        except BaseException as err:  # noqa: BLE001
            self.batches_done.append(err)
        connector = getattr(trainer, "_checkpoint_connector", None)
        self.dump_params = list(inspect.signature(connector.dump_checkpoint).parameters) if connector else []
        if self.save_to is not None and batch_idx == 1:
            try:
                self.checkpoint = compat.dump_full_checkpoint(trainer)
                trainer.strategy.save_checkpoint(self.checkpoint, self.save_to)
            except BaseException as err:  # noqa: BLE001
                self.checkpoint = err


def _trainer(root: Path, max_steps: int, callback: Callback) -> L.Trainer:
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, max_epochs=1, max_steps=max_steps, accelerator="cpu", devices=1,
                     default_root_dir=root, callbacks=[callback])


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """First fit: 2 steps, a checkpoint saved after batch 1 with dump_full_checkpoint. Second: resumed from it."""
    root = tmp_path_factory.mktemp("compat")
    ckpt = root / "mid.ckpt"
    first, first_module = _Record(save_to=ckpt), _Toy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(root, 2, first).fit(first_module)
        resumed, resumed_module = _Record(), _Toy()
        if ckpt.exists():
            _trainer(root, 4, resumed).fit(resumed_module, ckpt_path=ckpt)
    return first, first_module, resumed, resumed_module


def test_the_fit_loop_keeps_the_private_attributes_restore_loader_state_uses(fits):
    first, _, resumed, _ = fits
    for name, present in first.fit_loop.items():
        assert present, moved(LIGHTNING, f"trainer.fit_loop.{name}", compat.restore_loader_state)
    assert first.restore_error is None, (
        f"{moved(LIGHTNING, 'the fit loop restore', compat.restore_loader_state)}: {first.restore_error!r}")
    assert resumed.restore_error is None, (
        f"{moved(LIGHTNING, 'the fit loop restore', compat.restore_loader_state)}: {resumed.restore_error!r}")


def test_restore_loader_state_hands_a_resumed_loader_its_saved_position(fits):
    first, first_module, resumed, resumed_module = fits
    assert isinstance(first.checkpoint, dict), first.checkpoint
    saved = first_module.loader.pos
    assert resumed_module.loader.loaded == [{"pos": saved}], moved(
        LIGHTNING, "the loader states of the fit loop (never handed back)", compat.restore_loader_state)
    assert resumed_module.seen[0] == saved, moved(
        LIGHTNING, "the fit loop's data fetcher (not restarted from the loaded position)", compat.restore_loader_state)


def test_dump_full_checkpoint_is_the_connector_s_barrier_free_dump(fits):
    first, *_ = fits
    assert "weights_only" in first.dump_params, moved(
        LIGHTNING, "trainer._checkpoint_connector.dump_checkpoint(weights_only=)", compat.dump_full_checkpoint)
    assert not isinstance(first.checkpoint, BaseException), (
        f"{moved(LIGHTNING, 'trainer._checkpoint_connector', compat.dump_full_checkpoint)}: {first.checkpoint!r}")
    assert {"state_dict", "optimizer_states", "loops", "global_step"} <= set(first.checkpoint), moved(
        LIGHTNING, "the checkpoint dict's keys", compat.dump_full_checkpoint)


def test_batches_done_this_epoch_reads_the_epoch_loop_s_batch_progress(fits):
    first, *_ = fits
    for name, present in first.progress.items():
        assert present, moved(LIGHTNING, f"trainer.fit_loop.epoch_loop.batch_progress.current.{name}",
                              compat.batches_done_this_epoch)
    errors = [b for b in first.batches_done if isinstance(b, BaseException)]
    assert not errors, f"{moved(LIGHTNING, 'the batch progress', compat.batches_done_this_epoch)}: {errors[0]!r}"
    # In on_train_batch_end the batch's optimizer step has run: it counts.
    assert first.batches_done == [1, 2], moved(LIGHTNING, "batch_progress.current's counting",
                                               compat.batches_done_this_epoch)


# ---------------------------------------------------------------- one touchpoint each, without a fit


def test_wandb_logger_keeps_its_run_handle_and_init_arguments(tmp_path):
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(offline=True, save_dir=tmp_path)
    assert "_experiment" in vars(logger), moved(LIGHTNING, "WandbLogger._experiment", compat.wandb_run_started)
    assert logger._experiment is None, moved(LIGHTNING, "WandbLogger._experiment (set before .experiment is read)",
                                             compat.wandb_run_started)
    assert not compat.wandb_run_started(logger)
    assert "_experiment" in inspect.unwrap(WandbLogger.experiment.fget).__code__.co_names, moved(
        LIGHTNING, "WandbLogger._experiment (no longer what .experiment starts)", compat.wandb_run_started)

    init = need(logger, "_wandb_init", LIGHTNING, compat.drop_wandb_init_arg)
    assert isinstance(init, dict), moved(LIGHTNING, "WandbLogger._wandb_init (not a dict)", compat.drop_wandb_init_arg)
    init["anonymous"] = None
    compat.drop_wandb_init_arg(logger, "anonymous")
    assert "anonymous" not in logger._wandb_init


def test_the_csv_writer_still_deletes_through_the_check_the_keeping_logger_replaces(tmp_path):
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    called = {name for cls in ExperimentWriter.__mro__ if hasattr(vars(cls).get("__init__"), "__code__")
              for name in vars(cls)["__init__"].__code__.co_names}
    assert "_check_log_dir_exists" in called, moved(LIGHTNING, "the CSV writer's _check_log_dir_exists",
                                                    compat.csv_logger_keeping_history)
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "metrics.csv").write_text("a,step\n1,0\n2,1\n3,2\n")
    logger = compat.csv_logger_keeping_history(2, save_dir=str(tmp_path), name="csv", version="")
    logger.log_metrics({"a": 9}, step=5)
    logger.save()
    assert (folder / "metrics.csv").read_text().splitlines() == ["a,step", "1,0", "2,1", "9,5"]
    fresh = compat.csv_logger_keeping_history(None, save_dir=str(tmp_path), name="csv", version="")
    fresh.log_metrics({"a": 7}, step=0)
    fresh.save()  # a fresh run in a used folder: Lightning's own behaviour, the old rows go
    assert (folder / "metrics.csv").read_text().splitlines() == ["a,step", "7,0"]


def test_submitit_still_builds_its_sacct_poll_in_make_command():
    import submitit
    from submitit.slurm.slurm import SlurmInfoWatcher

    watcher = SlurmInfoWatcher()
    need(watcher, "_make_command", f"submitit {submitit.__version__}", compat.silence_sacct_stderr)
    watcher.register_job("12")
    compat.silence_sacct_stderr()
    compat.silence_sacct_stderr()  # idempotent
    command = watcher._make_command()
    assert command[:4] == ["sh", "-c", 'exec "$@" 2>/dev/null', "sacct"] and command[4] == "sacct"
    assert command[-2:] == ["-j", "12"]


def test_the_ddp_launcher_still_looks_up_its_replaceable_rank_command(monkeypatch):
    from lightning.pytorch.strategies.launchers import subprocess_script

    original = need(subprocess_script, "_hydra_subprocess_cmd", LIGHTNING, compat.replace_ddp_rank_command)
    assert callable(original), moved(LIGHTNING, "subprocess_script._hydra_subprocess_cmd (not callable)",
                                     compat.replace_ddp_rank_command)
    assert list(inspect.signature(original).parameters) == ["local_rank"], moved(
        LIGHTNING, "subprocess_script._hydra_subprocess_cmd's signature", compat.replace_ddp_rank_command)
    launcher = need(subprocess_script, "_SubprocessScriptLauncher", LIGHTNING, compat.replace_ddp_rank_command)
    # A module global looked up when the ranks start: replacing it takes effect.
    assert "_hydra_subprocess_cmd" in launcher._call_children_scripts.__code__.co_names, moved(
        LIGHTNING, "the launcher's call of _hydra_subprocess_cmd", compat.replace_ddp_rank_command)

    def fake(local_rank: int) -> tuple[list[str], str]:
        return [], ""

    monkeypatch.setattr(subprocess_script, "_hydra_subprocess_cmd", original)  # put back after the test
    compat.replace_ddp_rank_command(fake)
    assert subprocess_script._hydra_subprocess_cmd is fake


def test_launched_ranks_is_the_launcher_s_live_list():
    trainer = L.Trainer(strategy="ddp", accelerator="cpu", devices=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False)
    launcher = need(trainer, "strategy.launcher", LIGHTNING, compat.launched_ranks)
    procs = need(launcher, "procs", LIGHTNING, compat.launched_ranks)
    assert isinstance(procs, list), moved(LIGHTNING, "launcher.procs (not a list)", compat.launched_ranks)
    sentinel = object()
    procs.append(sentinel)
    try:
        assert compat.launched_ranks(trainer) is launcher.procs, moved(LIGHTNING, "launcher.procs",
                                                                       compat.launched_ranks)
    finally:
        procs.remove(sentinel)
    assert compat.launched_ranks(None) == []


def test_mark_metric_updated_lets_restored_states_compute():
    preds, target = torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2])
    source = MulticlassAccuracy(num_classes=3)
    source.update(preds, target)
    restored = MulticlassAccuracy(num_classes=3)
    need(restored, "_update_count", TORCHMETRICS, compat.mark_metric_updated)
    for name, value in source.metric_state.items():
        setattr(restored, name, value.clone())
    compat.mark_metric_updated(restored)
    assert restored.update_called, moved(TORCHMETRICS, "Metric._update_count (update_called ignores it)",
                                         compat.mark_metric_updated)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compute() before update() warns
        assert restored.compute() == source.compute()


def test_tree_leaves_flattens_in_torch_s_order():
    from torch.utils import _pytree

    need(_pytree, "tree_flatten", TORCH, compat.tree_leaves)
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    leaves = compat.tree_leaves(((a, [b]), {"k": c, "n": None}))
    assert [x is y for x, y in zip(leaves, (a, b, c))] == [True] * 3, moved(TORCH, "_pytree.tree_flatten's order",
                                                                          compat.tree_leaves)


def test_norm_base_class_is_the_base_of_every_batch_and_instance_norm():
    need(nn.modules.batchnorm, "_NormBase", TORCH, compat.norm_base_class)
    base = compat.norm_base_class()
    for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LazyBatchNorm2d,
                nn.InstanceNorm2d):
        assert issubclass(cls, base), moved(TORCH, f"nn.modules.batchnorm._NormBase (not a base of {cls.__name__})",
                                            compat.norm_base_class)


# ---------------------------------------------------------------- the door stays single

PRIVATE = ("_checkpoint_connector", "_combined_loader", "_combined_loader_states_to_load", "_check_log_dir_exists",
           "_load_combined_loader_states", "_data_fetcher", "_experiment", "_wandb_init", "_hydra_subprocess_cmd",
           "_update_count", "_pytree", "_NormBase", "_make_command",
           "fit_loop", "epoch_loop", "batch_progress", ".launcher.procs", "strategy.launcher")


def test_no_other_cnnlab_module_names_private_library_api():
    pattern = re.compile("|".join(rf"(?<![A-Za-z0-9_]){re.escape(name)}\b" for name in PRIVATE))
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "lightning_compat.py" and path.parent == SRC:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if match := pattern.search(line):
                found.append(f"{path.relative_to(SRC.parent)}:{number}: {match.group(0)}")
    assert not found, ("private library API outside cnnlab/lightning_compat.py; give it a function there:\n"
                       + "\n".join(found))


def test_lightning_compat_is_a_leaf():
    tree = ast.parse((SRC / "lightning_compat.py").read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "cnnlab"], imported
