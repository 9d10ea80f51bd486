"""The one door to private Lightning, torchmetrics and torch API.

cnnlab needs a few things the public API of these libraries does not give: exact resume after a kill, a resume
checkpoint written without a barrier, one W&B run per job, DDP ranks under Hydra sweeps. Every private attribute
it touches is touched here, in one small function each, and nowhere else (tests/test_lightning_compat.py checks
both that the attributes still exist and that no other cnnlab file names them). When an upgrade moves one, that
test names the function here to update. This module is a leaf: it imports only third-party libraries, never
other cnnlab modules. Lightning is imported lazily, so modules that need only torch stay light to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.utils import _pytree


def restore_loader_state(trainer: Any) -> None:
    """Hand a resumed fit loop its saved train-loader position, and restart the epoch's iterator from there.

    configure_optimizers asks for estimated_stepping_batches, which makes Lightning build the train loader (and
    its first iterator) before it restores a checkpoint's loop state, so the loader's position is never handed
    back; Lightning has no public way to re-apply the saved loader states, so this calls the fit loop's own.
    Call it from on_train_start; it does nothing unless the loop is restarting with loader states to load."""
    loop = trainer.fit_loop
    if loop._combined_loader_states_to_load and loop._combined_loader is not None and loop.restarting:
        loop._load_combined_loader_states()
        iter(loop._data_fetcher)


def dump_full_checkpoint(trainer: Any) -> dict[str, Any]:
    """The whole checkpoint dict (weights, optimizers, loops, callbacks) Lightning would save now.

    The public trainer.save_checkpoint ends in a barrier, which under DDP waits forever for ranks that failed;
    the checkpoint connector's dump_checkpoint builds the same dict without one, for strategy.save_checkpoint."""
    return trainer._checkpoint_connector.dump_checkpoint(weights_only=False)


def batches_done_this_epoch(trainer: Any) -> int:
    """Batches of the current epoch that a checkpoint saved now counts as trained: one whose optimizer step ran
    counts even before its on_train_batch_end hooks end (Lightning completes it on restore); one cut short
    (Ctrl-C mid-step) does not, and is trained again.

    Lightning exposes only batch_idx inside hooks, not how far its progress tracking (which restore uses) got,
    so this reads the epoch loop's batch progress counters."""
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    return progress.processed if progress.processed == progress.started else progress.completed


def wandb_run_started(logger: Any) -> bool:
    """Whether this WandbLogger has started (or attached to) its W&B run.

    WandbLogger.experiment starts a run when read, and there is no public way to ask whether one exists, so
    finishing runs and printing view hints reads the logger's private handle instead."""
    return logger._experiment is not None


def drop_wandb_init_arg(logger: Any, name: str) -> None:
    """Remove `name` from the arguments this WandbLogger will pass to wandb.init.

    WandbLogger always passes some arguments (anonymous=None, which makes wandb warn on every run) and has no
    public way to leave one out, so this edits its private wandb.init keyword dict before the run starts."""
    logger._wandb_init.pop(name, None)


def replace_ddp_rank_command(fn: Callable[[int], tuple[list[str], str]]) -> None:
    """Make Lightning's subprocess DDP launcher start rank `local_rank` with `fn(local_rank)` -> (command, cwd)
    whenever Hydra is running.

    Lightning's launcher re-runs the whole Hydra command line (-m and all, and under submitit or joblib the wrong
    program) and has no public hook for the command; it looks up the module-level _hydra_subprocess_cmd each
    time it starts ranks, so replacing that function is the only way in."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = fn


def launched_ranks(trainer: Any) -> list[Any]:
    """The Popen objects of the DDP ranks this process started: the launcher's own live list (its watcher thread
    shares it, so clearing it stops the watcher), or a new empty list without a trainer or a subprocess launcher.

    Lightning never ends or waits for the ranks it starts itself (it leaves them to the process exit), and the
    launcher exposes them only through this attribute of its private class."""
    return getattr(trainer and trainer.strategy.launcher, "procs", None) or []


def mark_metric_updated(metric: Any) -> None:
    """Tell a torchmetrics Metric whose states were set directly (from a checkpoint) that it has been updated,
    so compute() computes them instead of warning and returning its defaults.

    torchmetrics counts update() calls in a private counter and offers no public way to restore states other
    than load_state_dict of persistent states, which the running train accuracy is not."""
    metric._update_count = 1


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of a nested structure of tuples, lists and dicts (a call's args and kwargs, a module's output),
    in torch's own flattening order.

    torch has no public pytree module: the utilities torch itself uses to walk such structures (and that know
    its own containers) live in the private torch.utils._pytree."""
    return _pytree.tree_flatten(tree)[0]


def norm_base_class() -> type[nn.Module]:
    """The common base class of torch's BatchNorm*, SyncBatchNorm and InstanceNorm* layers.

    torch exports no public base for them, and cnnlab must recognise every one of them (lazy, sync, 1d/2d/3d)
    to give normalisation parameters their own learning rate."""
    return nn.modules.batchnorm._NormBase


__all__ = ["batches_done_this_epoch", "drop_wandb_init_arg", "dump_full_checkpoint", "launched_ranks",
           "mark_metric_updated", "norm_base_class", "replace_ddp_rank_command", "restore_loader_state",
           "tree_leaves", "wandb_run_started"]


def csv_logger_keeping_history(keep_rows: int | None, **options: Any) -> Any:
    """A CSVLogger that keeps a resumed run's history: the first `keep_rows` data rows of its metrics.csv (what was
    written when the checkpoint it goes on from counted) stay, the rest (logged after it, and logged again now)
    go. None: a fresh run, Lightning's own behaviour.

    Lightning's CSV experiment writer deletes metrics.csv whenever its folder is not empty
    (_check_log_dir_exists), so a resumed run would lose everything logged before the kill; the writer has no
    public switch, so this logger builds one whose check truncates instead of deleting."""
    import csv
    import os

    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    class KeepingWriter(ExperimentWriter):
        def _check_log_dir_exists(self) -> None:
            if keep_rows is None or not os.path.isfile(self.metrics_file_path):
                super()._check_log_dir_exists()
                return
            with open(self.metrics_file_path, newline="") as file:
                reader = csv.DictReader(file)
                keys = list(reader.fieldnames or [])
                rows = [row for _, row in zip(range(keep_rows), reader)]
            with open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=keys)
                writer.writeheader()
                writer.writerows(rows)
            self.metrics_keys = keys

    class KeepingCSVLogger(CSVLogger):
        @property
        @rank_zero_experiment
        def experiment(self) -> ExperimentWriter:
            if self._experiment is None:
                self._fs.makedirs(self.root_dir, exist_ok=True)
                self._experiment = KeepingWriter(log_dir=self.log_dir)
            return self._experiment

    return KeepingCSVLogger(**options)


def silence_sacct_stderr() -> None:
    """Keep sacct's own error ('Slurm accounting storage is disabled') off the terminal while submitit polls job
    states on a cluster without accounting (submitit then reads the states from the jobs' files).

    submitit runs sacct with the terminal's stderr and has no option for it; its SLURM info watcher builds the
    command in _make_command, so this wraps that command in `sh -c 'exec "$@" 2>/dev/null'`. Idempotent."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    make = SlurmInfoWatcher._make_command
    if getattr(make, "cnnlab_quiet", False):
        return

    def quiet(self: Any) -> list[str] | None:
        command = make(self)
        return None if command is None else ["sh", "-c", 'exec "$@" 2>/dev/null', "sacct", *command]

    quiet.cnnlab_quiet = True  # type: ignore[attr-defined]
    SlurmInfoWatcher._make_command = quiet
