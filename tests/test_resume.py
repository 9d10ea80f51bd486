"""Nothing lost: a run killed at any point goes on with `resume=true` and ends exactly where an uninterrupted
one ends; a nan loss stops the run naming its step; a sweep's failed job neither stops the others nor is
forgotten, and a re-run redoes only what failed or is missing."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.data import DATASETS
from cnnlab.data.resident import ResidentLoader, ResidentSubset
from cnnlab.data.transforms import BatchTransform
from cnnlab.loggers.wandb_offline import find_runs, read_run
from helpers import CLI, QUIET, final_metrics, logged_history, run_cli, user_env
from helpers import RESUMABLE_RUN as RUN


def one_run_dir(cwd: Path) -> Path:
    (run_dir,) = list((cwd / "logs" / "runs").glob("*/*"))
    return run_dir


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def ckpt_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


@pytest.fixture(scope="module")
def uninterrupted_dir(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("uninterrupted")
    done = run_cli(*RUN, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return one_run_dir(cwd)


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_dir) -> dict:
    return results(uninterrupted_dir)


def start(cwd: Path, args: list[str] = RUN) -> subprocess.Popen:
    return subprocess.Popen([CLI, *args], cwd=cwd, env=user_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_training(cwd: Path, proc: subprocess.Popen) -> Path:
    """The run dir, once its first resume checkpoint is on disk (training is under way)."""
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list((cwd / "logs" / "runs").glob("*/*/checkpoints/resume.ckpt"))
        if found:
            return found[0].parent.parent
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    raise AssertionError("the run never wrote checkpoints/resume.ckpt")


@pytest.mark.slow
def test_kill_9_at_a_random_step_then_resume_ends_with_the_uninterrupted_metrics_and_history(
        tmp_path, uninterrupted, uninterrupted_dir):
    proc = start(tmp_path)
    run_dir = wait_for_training(tmp_path, proc)
    time.sleep(random.uniform(0.0, 1.5))  # somewhere in the 120 steps
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists(), "killed too late: the run had finished"
    killed_at = max(ckpt_step(p) for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert 0 < killed_at < 120

    done = run_cli(*RUN, "resume=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cnnlab: resuming" in done.stdout and "from resume.ckpt" in done.stdout or "from last.ckpt" in done.stdout
    assert one_run_dir(tmp_path) == run_dir  # the same run dir, no second one
    assert final_metrics(results(run_dir)) == final_metrics(uninterrupted), killed_at

    # One W&B run id, in two offline segments (offline-run-<time>-<id>; the first, killed -9, may be cut short);
    # the second starts with the first's rows before the resume step, so it holds the whole history by itself.
    first, second = find_runs(run_dir)
    assert first.name.rsplit("-", 1)[1] == second.name.rsplit("-", 1)[1]
    resumed_run = read_run(second)
    assert resumed_run["id"] == second.name.rsplit("-", 1)[1] and resumed_run["state"] == "finished"
    assert resumed_run["summary"]["test/acc"] == uninterrupted["test/acc"]
    # Every logger holds exactly the uninterrupted run's history, row by row: nothing lost, nothing twice.
    resumed, whole = logged_history(run_dir), logged_history(uninterrupted_dir)
    for kind in ("csv", "tensorboard", "wandb"):
        assert len(resumed[kind]) == len(whole[kind]) and resumed[kind] == whole[kind], (kind, killed_at)


@pytest.mark.slow
def test_a_run_with_lookahead_stopped_and_resumed_ends_with_the_uninterrupted_metrics(tmp_path):
    """The lookahead average is part of the run's state: it is saved with the checkpoint and goes on from there."""
    args = [a if a != "callbacks=base" else "callbacks=[base,lookahead]" for a in RUN]
    args += ["callbacks.lookahead.every_n_steps=2"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir()
    cut.mkdir()
    done = run_cli(*args, cwd=whole)
    assert done.returncode == 0, done.stderr[-3000:]
    proc = start(cut, args)
    run_dir = wait_for_training(cut, proc)
    time.sleep(random.uniform(0.2, 1.0))
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    stopped_at = ckpt_step(run_dir / "checkpoints" / "resume.ckpt")
    assert torch.load(run_dir / "checkpoints" / "resume.ckpt", map_location="cpu", weights_only=True)[
        "callbacks"]["Lookahead"]["average"] is not None or stopped_at < 2
    done = run_cli(*args, "resume=true", cwd=cut)
    assert done.returncode == 0, done.stderr[-3000:]
    assert final_metrics(results(run_dir)) == final_metrics(results(one_run_dir(whole))), stopped_at


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_ends_with_the_uninterrupted_metrics(tmp_path, uninterrupted,
                                                                                   uninterrupted_dir):
    proc = start(tmp_path)
    run_dir = wait_for_training(tmp_path, proc)
    time.sleep(random.uniform(0.0, 1.0))
    proc.send_signal(signal.SIGTERM)  # what a scheduler sends before it kills
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    said = " ".join((stdout + stderr).split())
    stopped = re.search(r"Stopped by SIGTERM at step (\d+)", said)
    assert stopped, said[-3000:]
    stopped_at = int(stopped.group(1))
    # resume.ckpt: saved at the stop, or, stopped inside validation (and saying so), the one from before it
    saved_at = ckpt_step(run_dir / "checkpoints" / "resume.ckpt")
    assert saved_at == stopped_at or (saved_at < stopped_at
                                      and f"stopped during validation at step {stopped_at}" in said), said[-3000:]
    assert "resume=true" in stderr and "Traceback" not in stderr
    assert (run_dir / "error.txt").exists()

    done = run_cli(*RUN, "resume=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (run_dir / "error.txt").exists()  # the stop is over
    assert final_metrics(results(run_dir)) == final_metrics(uninterrupted), stopped_at
    assert logged_history(run_dir) == logged_history(uninterrupted_dir), stopped_at
    # Once finished, resume=true starts a new run: the same line can be requeued for ever.
    again = run_cli(*RUN, "trainer.max_epochs=1", "resume=true", cwd=tmp_path)
    assert again.returncode == 0 and len(list((tmp_path / "logs" / "runs").glob("*/*"))) == 2


def stopping_cli(hook: str, when: str) -> str:
    """A script that runs cnnlab-train with one more callback: its `hook` sends the process SIGTERM once, the
    first time `when` (an expression of `trainer`) holds."""
    return f"""
import os, signal, sys
from lightning.pytorch.callbacks import Callback
import cnnlab.callbacks
class Stop(Callback):
    sent = False
    def {hook}(self, trainer, *args, **kwargs):
        if ({when}) and not Stop.sent:
            Stop.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
build = cnnlab.callbacks.build_callbacks
cnnlab.callbacks.build_callbacks = lambda *args, **kwargs: [*build(*args, **kwargs), Stop()]
from cnnlab.train import cli
sys.argv[0] = "cnnlab-train"
cli()
"""


#: SIGTERM in the middle of epoch 1's validation
STOP_IN_VALIDATION = stopping_cli("on_validation_batch_end",
                                  "not trainer.sanity_checking and trainer.current_epoch == 1")


@pytest.mark.slow
def test_sigterm_inside_validation_resumes_from_the_checkpoint_before_it_and_loses_no_val_row(
        tmp_path, uninterrupted, uninterrupted_dir):
    """A checkpoint taken inside validation would hold none of its metrics, and Lightning would resume past it:
    the stop leaves the checkpoint from before, and the resumed run validates that epoch again (CI, 2026-12-04)."""
    stopped = subprocess.run([sys.executable, "-c", STOP_IN_VALIDATION, *RUN], cwd=tmp_path, env=user_env(),
                             capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    said = " ".join((stopped.stdout + stopped.stderr).split())
    assert "Stopped by SIGTERM at step 80" in said and "stopped during validation at step 80" in said, said[-3000:]
    run_dir = one_run_dir(tmp_path)
    assert ckpt_step(run_dir / "checkpoints" / "resume.ckpt") < 80  # the periodic one from before validation
    done = run_cli(*RUN, "resume=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert final_metrics(results(run_dir)) == final_metrics(uninterrupted)
    assert logged_history(run_dir) == logged_history(uninterrupted_dir)


#: SIGTERM at the first sweep job's step 3 (every job runs in the same process)
STOP_FIRST_JOB = stopping_cli("on_train_batch_end", "trainer.global_step == 3")


@pytest.mark.slow
def test_sigterm_stops_a_sweep_whose_jobs_run_in_this_process_and_resume_goes_on_from_that_job(tmp_path):
    """With Hydra's basic launcher every job runs in the signalled process: the sweep stops at the stopped job
    (exit 143) rather than starting the next one (2026-12-04: a SIGTERM'd sweep went on to its next job), and
    resume=true finishes that job from its checkpoint and runs the rest."""
    args = ["-m", "seed=1,2", "debug=test", "trainer.max_epochs=1", "trainer.limit_train_batches=8",
            "callbacks=base", "callbacks.resume_checkpoint.every_n_steps=2", "logger=csv", *QUIET]
    stopped = subprocess.run([sys.executable, "-c", STOP_FIRST_JOB, *args], cwd=tmp_path, env=user_env(),
                             capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    said = " ".join((stopped.stdout + stopped.stderr).split())
    assert "Stopped by SIGTERM at step 3" in said and "Traceback" not in said, said[-3000:]
    (sweep,) = (tmp_path / "logs" / "multiruns").glob("*/*")
    assert (sweep / "0" / "checkpoints" / "resume.ckpt").exists() and not (sweep / "1").exists()
    done = run_cli(*args, "resume=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stdout + done.stderr
    assert all((sweep / job / "results.json").exists() for job in ("0", "1"))


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_naming_the_step_keeps_finite_checkpoints_and_tells_wandb(tmp_path):
    # The step schedule multiplies the rate by 1e10 after epoch 0: epoch 1's first steps blow up for real.
    done = run_cli("debug=test", "trainer.max_epochs=2", "callbacks=base",
                   "callbacks.resume_checkpoint.every_n_steps=5", "scheduler=step", "scheduler.step_size=1",
                   "scheduler.gamma=1e10", *QUIET, cwd=tmp_path)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "The training loss became nan/inf at step 2" in message and "(epoch 1, batch" in message
    assert "lower optimizer.lr" in message and "Traceback" not in done.stderr
    run_dir = one_run_dir(tmp_path)
    bad_step = int(message.split("nan/inf at step ")[1].split()[0])
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):  # last good: before the bad step, finite
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        assert state["global_step"] <= bad_step, ckpt.name
        assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    assert (run_dir / "checkpoints" / "resume.ckpt").exists()
    (wandb_run,) = [read_run(p) for p in find_runs(run_dir)]
    assert wandb_run["summary"]["failed"] is True and wandb_run["state"] == "failed"
    assert f"nan/inf at step {bad_step}" in wandb_run["summary"]["error"]
    assert wandb_run["summary"]["failed_at_step"] >= bad_step


SWEEP = ["-m", "optimizer.lr=0.002,1e9,0.001", "scheduler=none", "debug=test", "logger=none",
         "callbacks=base", *QUIET]


@pytest.mark.slow
def test_a_sweep_with_a_poisoned_job_finishes_the_others_reports_it_and_reruns_only_what_failed(tmp_path):
    done = run_cli(*SWEEP, cwd=tmp_path)
    assert done.returncode == 1
    (sweep_dir,) = list((tmp_path / "logs" / "multiruns").glob("*/*"))
    assert (sweep_dir / "0" / "results.json").exists() and (sweep_dir / "2" / "results.json").exists()
    assert "nan/inf at step" in (sweep_dir / "1" / "error.txt").read_text()
    out = " ".join(done.stdout.split())
    assert "cnnlab sweep finished" in out and "failed: The training loss became nan/inf at step" in out
    assert "1 of 3 job(s) failed: 1" in done.stderr and "resume=true" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout

    report = subprocess.run([str(Path(CLI).parent / "cnnlab-report"), str(sweep_dir)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "## Failed runs" in (sweep_dir / "report.md").read_text()
    assert "- run 1: The training loss became nan/inf at step" in (sweep_dir / "report.md").read_text()

    # Re-run: job 0 finished (kept as is), job 1 failed (run again), job 2 went missing (run again).
    kept = (sweep_dir / "0" / "results.json").stat().st_mtime_ns
    shutil.rmtree(sweep_dir / "2")
    again = run_cli(*SWEEP, "resume=true", cwd=tmp_path)
    assert list((tmp_path / "logs" / "multiruns").glob("*/*")) == [sweep_dir]  # the same sweep dir
    assert (sweep_dir / "0" / "results.json").stat().st_mtime_ns == kept
    assert "finished before; not run again" in again.stdout
    assert (sweep_dir / "2" / "results.json").exists()
    assert "nan/inf" in (sweep_dir / "1" / "error.txt").read_text()  # tried again, failed again
    assert again.returncode == 1 and "1 of 3 job(s) failed: 1" in again.stderr


def test_the_resident_loader_goes_on_from_its_saved_position(mnist_digits):
    images = (mnist_digits * 255).to(torch.uint8)
    subset = ResidentSubset(images, torch.arange(256) % 10, list(range(256)),
                            BatchTransform({"affine": {"degrees": 30}}, DATASETS.get("mnist"), 28, train=True))
    loader = ResidentLoader(subset, 32, shuffle=True, seed=7, trained=lambda: 3)  # the trainer: 3 trained
    loader.set_epoch(3)
    whole = list(loader)
    it = iter(loader)
    [next(it) for _ in range(4)]  # Lightning holds one batch ahead: 3 trained, 1 fetched
    state = loader.state_dict()
    assert state == {"epoch": 3, "consumed": 3}
    fresh = ResidentLoader(subset, 32, shuffle=True, seed=7)
    fresh.load_state_dict(state)  # before set_epoch, as Lightning does it
    rest = list(fresh)
    assert len(rest) == len(whole) - 3
    for (x, y), (x_whole, y_whole) in zip(rest, whole[3:]):
        assert torch.equal(y, y_whole) and torch.equal(x, x_whole)  # same images, same augmentation draws


def test_only_a_checkpoint_whose_logged_history_is_written_is_a_resume_point(tmp_path):
    """last.ckpt is saved before Lightning logs the epoch's training row: until callbacks/resume.py has written the
    loggers out and marked it in logged.json, resume=true goes on from the marked resume.ckpt instead, keeping
    exactly the rows its mark names."""
    from cnnlab.resume import resume_point

    (tmp_path / "config.yaml").write_text("model: lenet5\n")
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save({"global_step": 30}, checkpoints / "resume.ckpt")
    torch.save({"global_step": 40}, checkpoints / "last.ckpt")
    point = resume_point(tmp_path, {"model": "lenet5"})
    assert (point.checkpoint.name, point.step, point.rows) == ("last.ckpt", 40, None)  # a run from before the marks
    marks = {"resume.ckpt": {"step": 30, "rows": {"csv": 7, "wandb": 6}}}
    (checkpoints / "logged.json").write_text(json.dumps(marks))
    point = resume_point(tmp_path, {"model": "lenet5"})
    assert (point.checkpoint.name, point.step, point.rows) == ("resume.ckpt", 30, {"csv": 7, "wandb": 6})
    marks["last.ckpt"] = {"step": 40, "rows": {"csv": 9, "wandb": 8}}
    (checkpoints / "logged.json").write_text(json.dumps(marks))
    assert resume_point(tmp_path, {"model": "lenet5"}).rows == {"csv": 9, "wandb": 8}
    torch.save({"global_step": 33}, checkpoints / "resume.ckpt")  # written, killed before its mark
    marks.pop("last.ckpt")
    (checkpoints / "logged.json").write_text(json.dumps(marks))
    assert resume_point(tmp_path, {"model": "lenet5"}).checkpoint is None  # nothing whose history is whole
