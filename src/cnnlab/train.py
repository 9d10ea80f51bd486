"""`cnnlab-train`: the Hydra app. Builds data → model → Lightning module → callbacks → loggers from the
composed config, trains, tests the best checkpoint, and ends with a short summary of where things went."""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import time
import typing
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnnlab import hydra_setup
from cnnlab.config import to_plain
from cnnlab.distributed import DDPJob
from cnnlab.errors import CnnlabError, whole_number
from cnnlab.noise import quiet_known_noise
from cnnlab.paths import CONF_DIR
from cnnlab.summary import fail, print_error, print_summary

log = logging.getLogger("cnnlab")

# cnnlab-train's resolvers and experiments, registered before Hydra composes anything. Here, at import, because
# the launchers' workers (joblib, submitit) and DDP ranks import this module to run `main` and compose there too.
hydra_setup.register()


def run_identity(cfg: DictConfig) -> tuple[Path, str, str | None, bool]:
    """(run dir, run name from the overrides, sweep group, is multirun) as Hydra set them up."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    name = hc.job.override_dirname or f"{cfg.model.name}-{cfg.data.name}"
    output_dir = Path(hc.runtime.output_dir)  # in a sweep: <sweep dir>/<job number>
    group = "sweep-" + "_".join(output_dir.parent.parts[-2:]) if multirun else None
    return output_dir, name, group, multirun


_SIMPLE = (bool, int, float, str, type(None))


def check_types(values: dict[str, Any], hints: dict[str, Any], group: str) -> None:
    """Catch `trainer.max_epochs=abc` here, not as a TypeError deep inside Lightning."""
    for key, value in values.items():
        allowed = typing.get_args(hints.get(key)) or (hints.get(key),)
        if not all(t in _SIMPLE for t in allowed):
            continue  # lists, callables, objects: leave them to Lightning
        ok = isinstance(value, allowed) or (float in allowed and isinstance(value, int))
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise CnnlabError(f"{group}.{key}={value!r} has the wrong type: expected {names}.")


def make_trainer(trainer_cfg: dict[str, Any], **kwargs: Any):
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    valid = set(inspect.signature(L.Trainer).parameters) - set(kwargs)
    unknown = sorted(set(trainer_cfg) - valid)
    if unknown:
        raise CnnlabError(f"Unknown trainer setting(s) {', '.join('trainer.' + k for k in unknown)}. Valid "
                          f"trainer settings are Lightning Trainer arguments: {', '.join(sorted(valid))}.")
    check_types(trainer_cfg, typing.get_type_hints(L.Trainer.__init__), "trainer")
    try:
        return L.Trainer(**trainer_cfg, **kwargs)
    except (MisconfigurationException, ValueError, TypeError, ImportError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CnnlabError(f"The trainer settings {trainer_cfg} are not valid here: {first} "
                          "(trainer=cpu always works; trainer=gpu/ddp need GPUs).") from None


def check_run_keys(cfg: DictConfig) -> None:
    """The top-level keys of train.yaml, checked before anything is built."""
    whole_number("seed", cfg.seed, least=0, meaning="e.g. seed=42")
    for key in ("train", "test", "channels_last"):
        if not isinstance(cfg[key], bool):
            raise CnnlabError(f"{key}={cfg[key]!r} is not valid. Valid: {key}=true or {key}=false.")
    smoothing = cfg.label_smoothing
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
        raise CnnlabError(f"label_smoothing={smoothing!r} is not valid. Valid: a number in [0, 1), e.g. 0.1 "
                          "(0: plain cross-entropy).")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train and test one run; returns its results (also written to <run dir>/results.json). With `resume` set,
    a run dir that already holds this run goes on from its newest checkpoint, or is left as is if finished."""
    import lightning as L
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from cnnlab.callbacks import build_callbacks
    from cnnlab.checkpoints import load_checked
    from cnnlab.data import datamodule_from_config
    from cnnlab.loggers import (
        build_loggers,
        finish_loggers,
        record_failure,
        record_hparams,
        record_summary,
        resume_from,
        view_hints,
    )
    from cnnlab.module import ImageClassifier
    from cnnlab.requeue import requeued
    from cnnlab.resume import ResumePoint, check_same_data, resume_point

    check_run_keys(cfg)
    if not cfg.train and not cfg.ckpt_path:
        raise CnnlabError("train=false only tests a trained model, and ckpt_path is not set. Valid: "
                          "train=false ckpt_path=<run dir>/checkpoints/last.ckpt (or a best-*.ckpt), or train=true.")
    started = time.time()
    output_dir, name, group, _ = run_identity(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = to_plain(cfg)
    resuming = bool(cfg.resume) or requeued()  # a SLURM job requeued after a SIGTERM goes on where it stopped
    point = resume_point(output_dir, resolved) if resuming else ResumePoint(None, None, None)
    if point.results is not None:  # finished before: nothing to redo
        print(f"cnnlab: {output_dir} finished before; not run again (resume=false starts a new run).", flush=True)
        print_summary(point.results, [])
        return point.results
    (output_dir / "error.txt").unlink(missing_ok=True)  # an earlier failure of this run, tried again now
    if point.dataset is not None:  # keep the images it started on recorded until this start has checked them
        resolved["dataset"] = point.dataset
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = datamodule_from_config(resolved)
    resolved["dataset"] = datamodule.record()  # its label, and an image folder's source, content key and cache
    if point.checkpoint:
        check_same_data(output_dir, point.dataset, resolved["dataset"])
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))
    module = ImageClassifier.from_config(resolved, datamodule)
    start_from = point.checkpoint or cfg.ckpt_path
    if start_from:
        load_checked(start_from, dict(module.hparams), module)
        if point.checkpoint:
            print(f"cnnlab: resuming {output_dir} from {point.checkpoint.name}", flush=True)

    logs_exist = resuming and any((output_dir / d).exists() for d in ("csv", "tensorboard", "wandb"))
    loggers = build_loggers(resolved["logger"], output_dir, name, group, resume_id=point.wandb_id,
                            resume=resume_from(point.step, point.rows, logs_exist))
    failed = False
    with DDPJob() as job:  # trainer=ddp/ddp_cpu: each job starts and ends its own ranks
        try:
            callbacks = build_callbacks(resolved["callbacks"], output_dir, has_logger=bool(loggers))
            trainer = job.trainer = make_trainer(resolved["trainer"], logger=loggers or False,
                                                 callbacks=callbacks, default_root_dir=str(output_dir))
            for logger in loggers:
                logger.log_hyperparams(resolved)  # the whole resolved config, in run.config even offline
            try:
                if cfg.train:
                    trainer.fit(module, datamodule=datamodule, ckpt_path=str(start_from) if start_from else None)
                best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
                if cfg.test:
                    # Test the best checkpoint of this fit; without one, the weights in memory.
                    trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            except BaseException as err:
                failed = True
                # SIGTERM stops the run at the next step, after saving its checkpoint; whatever broke on the way
                # (W&B's service, signalled with the whole SLURM job, has gone) is part of the same stop
                if isinstance(err, SIGTERMException) or (isinstance(err, Exception) and trainer.received_sigterm):
                    err = RunStopped(f"Stopped by SIGTERM at step {trainer.global_step}; the run's checkpoints "
                                     f"are in {output_dir / 'checkpoints'}. Valid next step: the same command with "
                                     "resume=true (or resume=<this run dir>) goes on from there.",
                                     trainer.global_step)
                    record_failure(loggers, err, trainer.global_step)
                    raise err from None
                record_failure(loggers, err, trainer.global_step)
                raise
            results = collect_results(trainer, module, output_dir, best, time.time() - started)
            if trainer.is_global_zero:
                (output_dir / "results.json").write_text(json.dumps(results, indent=2))
                record_summary(loggers, {k: v for k, v in results.items() if k != "confusion_matrix"})
                record_hparams(loggers, resolved, {**probe_summary(output_dir), **hparams_metrics(results)},
                               trainer.global_step)
            hints = view_hints(loggers)
        finally:
            finish_loggers(loggers, failed=failed)
    if trainer.is_global_zero:
        print_summary(results, hints)  # last, after W&B's own closing lines
    return results


class RunStopped(CnnlabError):
    """SIGTERM (a scheduler's notice) stopped the run after saving a checkpoint."""

    exit_code = 143  # 128 + SIGTERM, what schedulers expect of a job they stopped

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def requeue_or_fail(err: RunStopped, output_dir: Path) -> int:
    """A SIGTERM-stopped SLURM batch job that a scheduler (not a cancel) stopped goes back in the queue and exits
    without a result, so submitit and the sweep wait for its next start, which resumes (cnnlab.requeue); any
    other stopped run ends with its paragraph and error.txt."""
    from cnnlab.requeue import after_sigterm

    outcome = after_sigterm()
    if not outcome.requeued:
        return fail(err, output_dir)
    line = (f"cnnlab: stopped by SIGTERM at step {err.step} and {outcome.line}: its next start goes on from "
            f"{output_dir / 'checkpoints'} in the same run dir and W&B run.")
    log.warning(line)
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(err.exit_code)  # not an Exception: submitit writes no result for this start


def jobs_run_in_this_process() -> bool:
    """Whether this sweep runs its jobs one after another in this process (Hydra's basic launcher), not each in a
    process of its own (parallel, local, slurm)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        target = str(HydraConfig.get().launcher.get("_target_", ""))
    except ValueError:  # no Hydra run: train() called from Python
        return False
    return target.endswith("BasicLauncher")


def hparams_metrics(results: dict[str, Any]) -> dict[str, Any]:
    """The final numbers the HParams tab shows: test/* and val/*, without the per-class accuracies."""
    return {k: v for k, v in results.items() if k.startswith(("test/", "val/")) and "/acc_class/" not in k}


def probe_summary(output_dir: Path) -> dict[str, Any]:
    """The latest of every probe number of the run (probes/summary.json), or nothing without probes."""
    path = output_dir / "probes" / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def collect_results(trainer, module, output_dir: Path, best: str, seconds: float) -> dict[str, Any]:
    from cnnlab.callbacks.cadence import CadenceCallback
    from cnnlab.callbacks.throughput import Throughput

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("test/", "val/"))}
    speed = next((cb.epochs[-1] for cb in trainer.callbacks if isinstance(cb, Throughput) and cb.epochs), None)
    looks = [cb.seconds for cb in trainer.callbacks if isinstance(cb, CadenceCallback)]
    hp = module.hparams
    score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    return {
        **metrics,
        **({"val/best": float(score)} if score is not None else {}),
        **({"perf/step_ms": speed["step_ms"], "perf/images_per_s": speed["images_per_s"]} if speed else {}),
        # the pictures' and probes' own time in this process (this start of the run, rank 0)
        **({"perf/pictures_probes_s": round(sum(looks), 2)} if looks else {}),
        "model": hp.model["name"],
        "dataset": trainer.datamodule.label if trainer.datamodule is not None else None,
        "params": sum(p.numel() for p in module.net.parameters()),
        "epochs": trainer.current_epoch,
        "wall_time_s": round(seconds, 1),
        "run_dir": str(output_dir),
        "best_ckpt": best or None,
        "confusion_matrix": module.confusion_matrix,
    }


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Entry point of `cnnlab-train`; returns test accuracy (the value `hparams_search=optuna` maximises)."""
    quiet_known_noise()
    try:
        return train(cfg).get("test/acc")
    except RunStopped as err:
        output_dir, _, _, multirun = run_identity(cfg)
        code = requeue_or_fail(err, output_dir)
        if not multirun or jobs_run_in_this_process():
            # the signal was meant for this process: a sweep run job after job in it stops here too (the jobs
            # after this one would only start to be stopped); resume=true goes on from this job
            sys.exit(code)
    except CnnlabError as err:
        output_dir, _, _, multirun = run_identity(cfg)
        code = fail(err, output_dir)
        if not multirun:
            sys.exit(code)
    except Exception as err:  # noqa: BLE001 — a crash (a bug, a library failing): keep its error with the run
        output_dir, _, _, multirun = run_identity(cfg)
        log.exception("cnnlab: the run crashed")  # the whole traceback, into <run dir>/train.log
        first = (str(err).strip().splitlines() or [""])[0][:300]
        crash = CnnlabError(f"The run crashed: {type(err).__name__}: {first} (traceback in "
                            f"{output_dir / 'train.log'}).")
        print_error(crash, output_dir)
        if not multirun:
            raise
    # In a sweep the other jobs go on; SweepSummary lists this one's error.txt and fails the sweep. To an
    # Optuna search the job scores 0.0, the worst accuracy, so its sampler learns to stay away (None would
    # mark the trial failed: ignored by the sampler, and a search whose every trial fails ends in a traceback).
    return 0.0


def user_error(err: BaseException) -> CnnlabError | None:
    """The CnnlabError behind `err`, if any: Hydra and OmegaConf wrap one raised while they resolve the config."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, CnnlabError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def cli() -> None:
    """`cnnlab-train`. An error raised while Hydra sets a run up (the run dir's resolver: a bad resume=, an
    unwritable log dir) would reach the user as Hydra's traceback; here it is one paragraph. Hydra's own
    config errors print as Hydra prints them; a crash keeps its full traceback."""
    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException

    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors out of Hydra's own reporting, to here
    try:
        main()
    except Exception as err:  # noqa: BLE001 — sorted below; anything else is re-raised
        found = user_error(err)
        if found is not None:
            sys.exit(fail(found))
        if isinstance(err, CompactHydraException):
            cause = f"{err.__cause__}\n" if isinstance(err.__cause__, OmegaConfBaseException) else ""
            sys.stderr.write(f"{err}\n{cause}")
            sys.exit(1)
        raise


if __name__ == "__main__":  # `python -m cnnlab.train`: how DDP ranks 1.. are started (cnnlab/distributed.py)
    cli()
