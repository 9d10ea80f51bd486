"""Finished runs as cnnlab-report and the sweep summary see them: read back from their run dirs (config.yaml,
results.json, probes/*.jsonl, error.txt, .hydra/overrides.yaml), so any launcher and any machine will do."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnlab.config_diff import flatten
from cnnlab.errors import CnnlabError
from cnnlab.summary import short_path

# What marks a directory as one run's (a job that failed before writing results still has .hydra/).
RUN_MARKERS = ("results.json", "config.yaml", "error.txt", ".hydra")


@dataclass
class Run:
    dir: Path
    name: str                                   # the job number in a sweep, else the dir's name
    overrides: list[str]
    config: dict[str, Any]
    results: dict[str, Any] | None
    error: str | None
    probes: dict[str, float] = field(default_factory=dict)  # latest probe numbers, in measured order

    @property
    def ok(self) -> bool:
        return self.results is not None

    def number(self, key: str) -> float | None:
        """A result (`test/acc`, `wall_time_s`, `params`) or a probe number (`translation/acc/shift2`)."""
        value = (self.results or {}).get(key, self.probes.get(key))
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def matching(self, prefix: str) -> dict[str, float]:
        """Probe numbers under `prefix` (e.g. 'linear_probe/'), in measured order, prefix removed."""
        return {k[len(prefix):]: v for k, v in self.probes.items() if k.startswith(prefix)}

    @property
    def dataset(self) -> str:
        """How the run names its data: the label it recorded ("CIFAR-10 (JPEG copy)"), else data.name."""
        return (self.config.get("dataset") or {}).get("label") or self.config.get("data", {}).get("name", "?")

    def setting(self, key: str) -> str | None:
        """The value of `key` in this run's overrides (`pooling=max` → 'max'), else None."""
        for item in self.overrides:
            name, _, value = item.partition("=")
            if name.lstrip("+~") == key:
                return value
        return None

    def value(self, key: str) -> Any:
        """`setting(key)`, else the run's config value of `key` (a config group's chosen name, e.g. model=lenet5),
        for runs whose own command line did not set it."""
        value = self.setting(key)
        if value is None:
            value = self.config.get(key)
            value = value.get("name") if isinstance(value, dict) else value
        return value


def read_run(run_dir: Path, name: str | None = None) -> Run:
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    config_file = run_dir / "config.yaml"
    results_file = run_dir / "results.json"
    error_file = run_dir / "error.txt"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    if results is not None:
        error = None
    elif error_file.exists():
        error = error_file.read_text().strip()
    else:
        error = f"no results: the job stopped early (see {run_dir / 'train.log'})"
    probes: dict[str, float] = {}
    for lines in sorted((run_dir / "probes").glob("*.jsonl")):
        for line in lines.read_text().strip().splitlines():  # in measured order: the latest of each number wins
            probes.update(json.loads(line)["numbers"])
    return Run(
        dir=run_dir,
        name=name or run_dir.name,
        overrides=[o for o in (yaml.safe_load(overrides_file.read_text()) or []) if not o.startswith("resume=")]
        if overrides_file.exists() else [],  # how it was run, not what it is
        config=(yaml.safe_load(config_file.read_text()) or {}) if config_file.exists() else {},
        results=results,
        error=error,
        probes=probes,
    )


def is_run_dir(path: Path) -> bool:
    return any((path / marker).exists() for marker in RUN_MARKERS)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """A Hydra sweep dir's job dirs (0, 1, 2, ...) in job order."""
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def read_sweep(sweep_dir: Path) -> list[Run]:
    return [read_run(job_dir) for job_dir in job_dirs(sweep_dir)]


def find_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run under the given paths: a path is a run dir or a sweep dir (its jobs, in order)."""
    paths = list(paths)
    runs: list[Run] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise CnnlabError(f"'{raw}' is not a directory. cnnlab-report takes run dirs (logs/runs/<date>/<time>) "
                              "or sweep dirs (logs/multiruns/<date>/<time>, logs/experiments/<name>/<time>).")
        if is_run_dir(path):  # named by its last two folders: <date>/<time>, or <sweep time>/<job>
            runs.append(read_run(path, name="/".join(path.resolve().parts[-2:])))
        elif job_dirs(path):
            runs += [read_run(d, name=d.name if len(paths) == 1 else f"{path.name}/{d.name}")
                     for d in job_dirs(path)]
        else:
            raise CnnlabError(f"'{raw}' holds no cnnlab run: a run dir has results.json, config.yaml or .hydra/, "
                              "a sweep dir has job dirs named 0, 1, 2, ...")
    if not runs:
        raise CnnlabError("cnnlab-report needs at least one run dir or sweep dir.")
    return runs


#: config keys that differ between two runs of one setting without changing what was measured
RUN_SPECIFIC = ("paths", "resume", "ckpt_path", "dataset")


def setting_of(run: Run) -> frozenset[str]:
    """The run's overrides without its seeds: what it measures, whichever seed it drew."""
    return frozenset(o for o in run.overrides if not is_seed(o.partition("=")[0]))


def measured_config(run: Run) -> dict[str, Any]:
    """The run's config without its seeds and its own folders: equal for every seed of one setting."""
    seeds = {o.partition("=")[0].lstrip("+~") for o in run.overrides if is_seed(o.partition("=")[0])}
    return {k: v for k, v in flatten(run.config).items()
            if k.split(".")[0] not in RUN_SPECIFIC and k not in seeds}


def merge_sweeps(sweeps: Sequence[Path]) -> tuple[list[Run], list[str]]:
    """The runs of several sweeps of one experiment (oldest first), as one: a later sweep's run replaces an earlier
    run of the same setting and seed, and extra seeds of a setting join it (a top-up sweep, e.g. seed=4,5). An
    earlier run whose config differs from its setting's newest run (the budget changed since) is left out, and
    said so: the second list."""
    runs: dict[tuple[frozenset[str], tuple[str, ...]], Run] = {}
    newest: dict[frozenset[str], Run] = {}
    for sweep in sweeps:
        for run in read_sweep(sweep):
            seeds = tuple(sorted(o for o in run.overrides if is_seed(o.partition("=")[0])))
            runs[(setting_of(run), seeds)] = run
            newest[setting_of(run)] = run
    kept, left_out = [], []
    for run in runs.values():
        reference = newest[setting_of(run)]
        theirs, ours = measured_config(reference), measured_config(run)
        if run is reference or not run.config or not reference.config or theirs == ours:
            kept.append(run)
            continue
        changed = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        left_out.append(f"{short_path(run.dir)}: its config differs from the newest run of its setting in "
                        f"{', '.join(changed[:4])}{' ...' if len(changed) > 4 else ''}")
    for run in kept:  # named by sweep and job, so the table tells the sweeps apart
        run.name = f"{run.dir.parent.name}/{run.dir.name}" if len(sweeps) > 1 else run.dir.name
    return kept, left_out


def varying(runs: Sequence[Run]) -> tuple[list[str], list[str]]:
    """(override keys whose values differ between runs, overrides every run shares)."""
    keys: list[str] = []
    for run in runs:
        keys += [o.partition("=")[0] for o in run.overrides if o.partition("=")[0] not in keys]
    differ = [k for k in keys if len({run.setting(k.lstrip("+~")) for run in runs}) > 1]
    shared = [o for o in (runs[0].overrides if runs else []) if o.partition("=")[0] not in differ]
    return differ, shared


def label(run: Run, keys: Sequence[str], drop: Sequence[str] = ()) -> str:
    """`pooling=max activation=tanh`: the run's values of the varying keys, minus `drop` (e.g. seed)."""
    parts = [f"{k.lstrip('+~')}={run.value(k.lstrip('+~'))}" for k in keys if k.lstrip("+~") not in drop]
    return " ".join(parts) or run.name


def is_seed(key: str) -> bool:
    """A seed axis, recognised by its config key: `seed` (Lightning's), `data.split_seed`, any `...seed`."""
    return key.lstrip("+~").rsplit(".", 1)[-1].endswith("seed")


def seed_keys(keys: Sequence[str]) -> list[str]:
    return [k.lstrip("+~") for k in keys if is_seed(k)]


def by_setting(runs: Sequence[Run], keys: Sequence[str], drop: Sequence[str] | None = None) -> dict[str, list[Run]]:
    """Finished runs grouped by everything that varies except `drop` (default: the seed axes), so the seeds
    of one setting come together."""
    drop = seed_keys(keys) if drop is None else drop
    groups: dict[str, list[Run]] = {}
    for run in runs:
        if run.ok:
            groups.setdefault(label(run, keys, drop), []).append(run)
    return groups
