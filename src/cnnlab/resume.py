"""Nothing lost when a run or a sweep is killed: `resume=true` (or `resume=<run or sweep dir>`) runs the same
command again in the same directory, where each run picks up from its newest checkpoint and W&B run id, and
finished runs are not run again.

Two halves. Before Hydra makes a directory, the `${cnnlab_dir:...}` resolver (conf/hydra/default.yaml and
each experiment's sweep dir) picks the earlier directory to reuse. Then, inside the run, `resume_point()` finds
what that directory already holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnnlab.config_diff import differences
from cnnlab.errors import CnnlabError

#: what marks a finished sweep: SweepSummary writes it when every job has ended
SWEEP_SUMMARY = "sweep.yaml"
#: the checkpoint written every few steps and when a run is stopped (SIGTERM, Ctrl-C, a crash)
RESUME_CKPT = "resume.ckpt"
#: the checkpoint Lightning writes at each epoch's end
LAST_CKPT = "last.ckpt"
#: per resume checkpoint: its step and the rows of each logger's history written when it counted (callbacks/resume.py)
LOGGED = "logged.json"
#: keys of a run's config.yaml that may differ between its first start and a resumed one
VOLATILE_KEYS = ("resume", "ckpt_path", "paths", "dataset")  # dataset: checked apart, by check_same_data


def _is_off(resume: Any) -> bool:
    return resume in (None, False) or str(resume).lower() in ("false", "none", "null", "")


def _same(overrides: Sequence[str]) -> list[str]:
    """The overrides that make two commands the same: all but resume=..."""
    return sorted(o for o in overrides if o.partition("=")[0].lstrip("+~") != "resume")


def _read_overrides(directory: Path, kind: str) -> list[str] | None:
    try:
        if kind == "run":
            return list(yaml.safe_load((directory / ".hydra" / "overrides.yaml").read_text()) or [])
        saved = yaml.safe_load((directory / "multirun.yaml").read_text()) or {}
        return list(saved["hydra"]["overrides"]["task"] or [])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def is_finished(directory: Path, kind: str) -> bool:
    """A run with results.json; a sweep whose summary says every job ended well."""
    if kind == "run":
        return (directory / "results.json").exists()
    try:
        summary = yaml.safe_load((directory / SWEEP_SUMMARY).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return not summary.get("failed")


def _check_writable(base: Path) -> None:
    """Make `base` (Hydra would, later, with a traceback) and write a file in it, or say why that is impossible:
    a file in the way, a read-only or virtual filesystem (/proc, /sys), a folder without write permission."""
    import tempfile

    try:
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=base):
            return
    except OSError as err:
        probe = base
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        why = (f"{probe} is not a directory" if not probe.is_dir() else
               f"no folder or file can be made in {probe} ({err.strerror or type(err).__name__})")
    raise CnnlabError(f"Cannot write runs under {base}: {why}. Valid: a writable folder, e.g. paths.log_dir=logs "
                      "(or CNNLAB_LOG_DIR=<dir>).")


def choose_dir(kind: str, base: str, stamp: str, resume: Any, overrides: Sequence[str]) -> str:
    """The directory of a new run or sweep: `base/stamp`, unless `resume` names one to reuse.

    resume=true reuses the newest unfinished run (or sweep) under `base` made by the same command (same
    overrides), and starts a new one when there is none: a scheduler can requeue the same line every time. A run
    that SLURM requeued (cnnlab.requeue) does that without resume=true."""
    from cnnlab.requeue import requeued

    base_path = Path(base)
    _check_writable(base_path)
    fresh = str(base_path / stamp)
    if _is_off(resume) and kind == "run" and requeued():
        resume = "true"  # an sbatch'd run that SLURM requeued: find its own earlier start (a sweep's dir is fixed)
    if _is_off(resume):
        return fresh
    wanted = _same(overrides)
    if str(resume).lower() != "true":
        chosen = Path(str(resume)).expanduser()
        what = "run dir (with .hydra/overrides.yaml)" if kind == "run" else "sweep dir (with multirun.yaml)"
        saved = _read_overrides(chosen, kind)
        if saved is None:
            other = "sweep" if kind == "run" else "run"
            hint = f" It looks like a {other} dir: {'add' if kind == 'run' else 'drop'} -m." \
                if _read_overrides(chosen, other) is not None else ""
            raise CnnlabError(f"resume={resume} is not a cnnlab {what}.{hint} Valid: resume=true (the newest "
                              f"unfinished one of this command) or resume=<a {kind} dir under {base}>.")
        if _same(saved) != wanted:
            raise CnnlabError(f"resume={resume} was started by another command: its overrides are "
                              f"[{' '.join(_same(saved))}], this command's are [{' '.join(wanted)}]. Valid: run "
                              f"it with its own overrides (and resume={resume}), or resume=false for a new one.")
        return str(chosen)
    depth = len(Path(stamp).parts)
    candidates = sorted(base_path.glob("/".join(["*"] * depth))) if base_path.is_dir() else []
    for directory in reversed(candidates):  # newest first: the stamps sort by time
        if (saved := _read_overrides(directory, kind)) is not None and _same(saved) == wanted:
            if not is_finished(directory, kind):
                print(f"cnnlab: resuming {directory}", flush=True)
                return str(directory)
            break  # the newest of this command has finished: start a new one
    return fresh


def sweep_dir(log_dir: str, question: Any, data: str, date: str, time: str, resume: Any,
              overrides: Sequence[str]) -> str:
    """A sweep's directory: an experiment's (`question` set) under
    <log_dir>/experiments/<question>/<data>/<date>_<time> (`data`: the data option chosen, e.g. cifar10_jpeg), any
    other under <log_dir>/multiruns/<date>/<time>; an earlier one with `resume` (choose_dir)."""
    if question in (None, "", "None", "null"):
        return choose_dir("sweep", f"{log_dir}/multiruns", f"{date}/{time}", resume, overrides)
    return choose_dir("sweep", f"{log_dir}/experiments/{question}/{data}", f"{date}_{time}", resume, overrides)


@dataclass
class ResumePoint:
    """What an earlier start of this run left in its run dir."""

    results: dict[str, Any] | None  # results.json when it finished
    checkpoint: Path | None         # the newest readable checkpoint to go on from
    wandb_id: str | None            # the W&B run to append to
    step: int | None = None         # the global step `checkpoint` was saved at
    rows: dict[str, int] | None = None  # the rows of each logger's history it stands on (None: keep them all)
    dataset: dict[str, Any] | None = None  # the images it started on (config.yaml's `dataset`), read before the
    #                                        new start rewrites that file


def check_same_data(run_dir: Path, saved: dict[str, Any] | None, record: dict[str, Any]) -> None:
    """Refuse to go on with images other than those the run started with (an image folder that changed since).
    `saved`: the `dataset` record its first start wrote (ResumePoint.dataset); None when that start stopped before
    writing it, and then there is nothing to compare."""
    if saved is None:
        return
    if saved.get("cache_key") != record.get("cache_key"):
        raise CnnlabError(f"resume: {run_dir} started on other images: data.root={saved.get('source')} had content "
                          f"key {str(saved.get('content_key'))[:12]}, and {record.get('source')} now has "
                          f"{str(record.get('content_key'))[:12]} (or data.resize changed). Valid: resume with the "
                          "source it started on, or "
                          "resume=false for a new run on the images as they are now.")


def _step_of(path: Path) -> int | None:
    """The global step a checkpoint was saved at; None when it cannot be read (a kill mid-write)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(ckpt["global_step"])
    except Exception:  # noqa: BLE001 — any damage means: not this one
        return None


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the W&B run an earlier start wrote (wandb/offline-run-<time>-<id>, or run-... online)."""
    folders = sorted((run_dir / "wandb").glob("*run-*-*"), key=lambda p: p.name.split("-")[-2])
    folders = [p for p in folders if p.is_dir() and p.name.split("-")[0] in ("run", "offline")]
    return folders[-1].name.rsplit("-", 1)[-1] if folders else None


def resume_point(run_dir: Path, config: dict[str, Any]) -> ResumePoint:
    """Refuse a run dir that holds another config's run; else what there is to go on from."""
    import json

    saved_file = run_dir / "config.yaml"
    if not saved_file.exists():
        return ResumePoint(None, None, None)  # nothing ran here yet
    saved = yaml.safe_load(saved_file.read_text()) or {}
    diffs = differences(saved, config, ignore=VOLATILE_KEYS)
    if diffs:
        raise CnnlabError(f"resume: {run_dir} holds a run of a different config: {'; '.join(diffs[:6])}"
                          f"{' ...' if len(diffs) > 6 else ''}. Valid: the command that started it (its config "
                          f"is {saved_file}), or resume=false for a new run.")
    results_file = run_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    found = [(step, path) for path in (run_dir / "checkpoints").glob("*.ckpt")
             if path.name in (RESUME_CKPT, LAST_CKPT) and (step := _step_of(path)) is not None]
    marks = _logged(run_dir)
    if marks is not None:  # only a checkpoint whose history was written when it counted
        found = [(step, path) for step, path in found if (marks.get(path.name) or {}).get("step") == step]
    step, checkpoint = max(found, key=lambda sp: (sp[0], sp[1].name == LAST_CKPT)) if found else (None, None)
    rows = (marks or {}).get(checkpoint.name, {}).get("rows") if checkpoint else None
    dataset = saved.get("dataset") if isinstance(saved.get("dataset"), dict) else None
    return ResumePoint(results, checkpoint, wandb_run_id(run_dir), step, rows, dataset)


def _logged(run_dir: Path) -> dict[str, Any] | None:
    """checkpoints/logged.json, or None for a run that predates it (every checkpoint counts, all rows kept)."""
    import json

    try:
        return json.loads((run_dir / "checkpoints" / LOGGED).read_text())
    except (OSError, ValueError):
        return None
