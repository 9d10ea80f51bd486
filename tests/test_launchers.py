"""Sweeps beyond one process: submitit (local, SLURM), Optuna, a W&B sweep's agent command, and DDP ranks
(trainer=ddp_cpu) in a single run and inside -m. Real runs through the CLI, tiny ones (debug=test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cnnlab import CONF_DIR
from cnnlab.loggers.wandb_offline import find_runs, read_run
from helpers import run_cli, user_env

QUICK = ["debug=test", "callbacks=base"]


def hydra_config(*overrides: str):
    """The `hydra` node as cnnlab-train composes it with these overrides."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return compose("train", overrides=list(overrides), return_hydra_config=True).hydra
    finally:
        GlobalHydra.instance().clear()


def one_dir(pattern: str, root: Path) -> Path:
    (found,) = list(root.glob(pattern))
    return found


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_slurm_launcher_config_composes_into_the_sbatch_script_it_means(tmp_path, monkeypatch):
    launcher = hydra_config("hydra/launcher=slurm").launcher
    assert launcher._target_ == "hydra_plugins.cnnlab_slurm.CheckedSlurmLauncher"  # submitit's, checked first
    assert (launcher.timeout_min, launcher.cpus_per_task, launcher.gpus_per_node, launcher.tasks_per_node,
            launcher.mem_gb, launcher.partition) == (60, 8, 1, 1, 32, None)
    assert hydra_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu").launcher.partition == "gpu"

    # The sbatch script submitit writes from these values, mapped as the Hydra plugin maps them (no cluster
    # here: a stand-in `srun` on PATH is all submitit checks for).
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    params = OmegaConf.to_container(launcher)
    del params["_target_"], params["submitit_folder"], params["max_num_timeout"]
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    params = {key if key in base else f"slurm_{key}": value for key, value in params.items()}
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "%j")
    executor.update_parameters(**{**params, "name": "train"})
    script = executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "uid")
    for line in ["--time=60", "--cpus-per-task=8", "--gpus-per-node=1", "--ntasks-per-node=1", "--mem=32GB",
                 "--nodes=1", "--job-name=train"]:
        assert f"#SBATCH {line}\n" in script
    assert "--partition" not in script  # null: the cluster's default


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_real_sweep(tmp_path):
    done = run_cli("-m", "hydra/launcher=local", "debug=test", "logger=csv", "callbacks=base", "seed=1,2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = one_dir("logs/multiruns/*/*", tmp_path)
    assert [p.name for p in job_dirs(sweep_dir)] == ["0", "1"]
    assert (sweep_dir / ".submitit").is_dir()  # the jobs went through submitit
    for job, seed in (("0", 1), ("1", 2)):
        results = json.loads((sweep_dir / job / "results.json").read_text())
        assert 0 <= results["test/acc"] <= 1
        assert yaml.safe_load((sweep_dir / job / "config.yaml").read_text())["seed"] == seed
        acc = f"{100 * results['test/acc']:.2f} %"
        assert any(f"seed={seed}" in line and acc in line and " ok " in line for line in done.stdout.splitlines())
    assert "cnnlab sweep finished" in done.stdout


def test_optuna_search_config_composes():
    hydra = hydra_config("hparams_search=optuna")
    sweeper = hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "maximize" and sweeper.n_trials == 8 and sweeper.n_jobs == 1
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 42
    assert dict(sweeper.params) == {"scheduler.max_lr": "tag(log, interval(1e-4, 1e-2))",
                                    "data.batch_size": "choice(64, 128, 256)"}
    assert hydra.launcher._target_.endswith("BasicLauncher")  # one trial after another unless asked otherwise


@pytest.mark.slow
def test_optuna_search_runs_real_trials_and_writes_the_best(tmp_path):
    done = run_cli("-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "debug=test", "logger=csv",
                   "callbacks=base", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = one_dir("logs/multiruns/*/*", tmp_path)
    trials = []
    for job in job_dirs(sweep_dir):
        config = yaml.safe_load((job / "config.yaml").read_text())
        results = json.loads((job / "results.json").read_text())
        trials.append((results["test/acc"], config["scheduler"]["max_lr"], config["data"]["batch_size"]))
    assert len(trials) == 2 and len({t[1:] for t in trials}) == 2  # two different points
    for _, max_lr, batch_size in trials:
        assert 1e-4 <= max_lr <= 1e-2 and batch_size in (64, 128, 256)
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    acc, max_lr, batch_size = max(trials)
    assert best["best_value"] == pytest.approx(acc)  # the job's return value is its test accuracy
    assert best["best_params"] == {"scheduler.max_lr": pytest.approx(max_lr), "data.batch_size": batch_size}
    assert "setup plugin" not in done.stdout  # alembic's log lines are quiet


@pytest.mark.slow
def test_wandb_sweep_agent_command_is_a_working_cnnlab_train_call(tmp_path):
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    config = sweep_utils.load_sweep_config(str(CONF_DIR / "wandb_sweep.yaml"))
    assert config["command"] == ["${env}", "cnnlab-train", "${args_no_hyphens}", "logger.wandb.offline=false"]
    assert config["metric"] == {"name": "test/acc", "goal": "maximize"}
    assert set(config["parameters"]) == {"pooling", "activation", "scheduler.max_lr"}

    # What `wandb agent` runs for one point (wandb_agent.Agent._command_run), with W&B's own helpers.
    point = {name: {"value": spec["values"][-1] if "values" in spec else spec["max"]}
             for name, spec in config["parameters"].items()}
    macros = {**sweep_utils.create_sweep_command_args({"args": point}), "env": ["/usr/bin/env"]}
    command = []
    for part in map(str, sweep_utils.create_sweep_command(config["command"])):
        command += macros[part[2:-1]] if part.startswith("${") else [part]
    assert command == ["/usr/bin/env", "cnnlab-train", "pooling=blur", "activation=tanh", "scheduler.max_lr=0.01",
                       "logger.wandb.offline=false"]

    env = user_env()
    env.update(WANDB_MODE="offline", PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    done = subprocess.run([*command, *QUICK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = one_dir("logs/runs/*/*", tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    (run,) = [read_run(r) for r in find_runs(run_dir)]
    assert run["summary"]["test/acc"] == pytest.approx(results["test/acc"])  # the metric the sweep maximises
    assert (run["config"]["pooling"]["name"], run["config"]["activation"]["name"]) == ("blur", "tanh")
    assert run["config"]["scheduler"]["max_lr"] == 0.01


def check_ddp_run(run_dir: Path, seed: int) -> float:
    """One DDP job dir: rank 0's results, one W&B run holding the same numbers, rank 1's log beside them."""
    results = json.loads((run_dir / "results.json").read_text())
    # The test metrics cover both ranks' batches: 2 ranks × 2 test batches × 1000 images.
    matrix = results["confusion_matrix"]
    assert sum(map(sum, matrix)) == 4000
    assert results["test/acc"] == pytest.approx(sum(matrix[i][i] for i in range(10)) / 4000)
    (run,) = [read_run(r) for r in find_runs(run_dir)]
    assert run["state"] == "finished" and run["config"]["seed"] == seed
    assert run["summary"]["test/acc"] == pytest.approx(results["test/acc"])
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (run_dir / "train_ddp_process_1.log").read_text()
    return results["test/acc"]


@pytest.mark.slow
def test_ddp_cpu_single_run_is_one_run_dir_and_one_wandb_run(tmp_path):
    done = run_cli("trainer=ddp_cpu", "seed=3", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["runs"]
    run_dir = one_dir("logs/runs/*/*", tmp_path)  # rank 1 ran in rank 0's run dir
    check_ddp_run(run_dir, seed=3)
    assert done.stdout.count("cnnlab run finished") == 1  # rank 0 only


@pytest.mark.slow
def test_ddp_cpu_inside_a_sweep_gives_one_job_dir_and_one_wandb_run_per_job(tmp_path):
    done = run_cli("-m", "trainer=ddp_cpu", "seed=1,2", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep_dir,) = [p for p in (tmp_path / "logs").glob("*/*/*")]  # no second sweep started by rank 1
    assert sweep_dir.parent.parent.name == "multiruns"
    assert [p.name for p in job_dirs(sweep_dir)] == ["0", "1"]
    assert len(find_runs(tmp_path / "logs")) == 2
    for job, seed in (("0", 1), ("1", 2)):
        check_ddp_run(sweep_dir / job, seed)
    assert done.stderr.count("MEMBER: 2/2") == 2  # each job started a rank 1 of its own
    assert done.stdout.count("cnnlab run finished") == 2 and done.stdout.count(" ok ") == 2


FAIL_ON_RANK_0 = """
from cnnlab import module, train
from cnnlab.errors import CnnlabError

step = module.ImageClassifier.training_step


def failing_step(self, batch, batch_idx):  # only in this process: rank 0; the ranks it starts run cnnlab.train
    if self.global_rank == 0 and batch_idx == 5 and self.hparams.optimizer["lr"] == 0.002:
        raise CnnlabError("injected failure on rank 0 mid-fit.")
    return step(self, batch, batch_idx)


module.ImageClassifier.training_step = failing_step
train.main()
"""


@pytest.mark.slow
def test_a_ddp_job_failing_on_rank_0_mid_fit_neither_hangs_nor_stops_the_sweep(tmp_path):
    # Rank 1 waits in a collective that rank 0 never joins: the job must end its ranks itself, the resume
    # checkpoint must not wait for them (Trainer.save_checkpoint's barrier would, forever), and the next job
    # must start ranks of its own.
    (tmp_path / "fail_on_rank_0.py").write_text(FAIL_ON_RANK_0)
    done = subprocess.run([sys.executable, "fail_on_rank_0.py", "-m", "trainer=ddp_cpu", "scheduler=none",
                           "optimizer.lr=0.002,0.001", *QUICK, "logger=csv"],
                          cwd=tmp_path, env=user_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stderr[-3000:]
    sweep_dir = one_dir("logs/multiruns/*/*", tmp_path)
    assert (sweep_dir / "0" / "error.txt").read_text() == "injected failure on rank 0 mid-fit.\n"
    assert (sweep_dir / "0" / "checkpoints" / "resume.ckpt").exists()
    assert 0 <= json.loads((sweep_dir / "1" / "results.json").read_text())["test/acc"] <= 1
    assert done.stderr.count("MEMBER: 2/2") == 2
    assert "1 of 2 job(s) failed: 0" in done.stderr and "Traceback" not in done.stderr
