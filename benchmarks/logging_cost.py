"""logging = wall time of the default run, with W&B offline and the pictures and probes at their default
cadence / the same run with `logger=none`; each timed as the whole `cnnlab-train` command. The same
default runs give the time for LeNet-5 to reach its test accuracy (the whole command, start to exit), and a
third run with `logger=none callbacks=base` (no pictures, no probes) shows what those cost on their own."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.common import PAIRS, Ratio, Timed, paired, timed_run


@dataclass
class LoggingResult:
    logging: Ratio
    pictures_probes: Ratio
    default_runs: list[Timed] = field(default_factory=list)


def measure(overrides: list[str], pairs: int = PAIRS, progress=print) -> LoggingResult:
    """Triples (default run, logger=none, logger=none callbacks=base) after one warm-up triple thrown away."""
    result = LoggingResult(
        Ratio("logging", "default run (W&B offline, pictures, probes) / logger=none", "s", target="≤ 1.10"),
        Ratio("pictures+probes", "logger=none / logger=none callbacks=base (no pictures, no probes)", "s"))
    for i in range(-1, pairs):
        progress(f"logging: {'warm-up' if i < 0 else f'pair {i + 1}/{pairs}'}: default run, logger=none, "
                 "logger=none callbacks=base")
        full = timed_run(overrides)
        quiet = timed_run([*overrides, "logger=none"])
        bare = timed_run([*overrides, "logger=none", "callbacks=base"])
        if i < 0:
            continue
        result.default_runs.append(full)
        result.logging.a.append(full.seconds)
        result.logging.b.append(quiet.seconds)
        result.pictures_probes.a.append(quiet.seconds)
        result.pictures_probes.b.append(bare.seconds)
    return result


#: a 5-epoch CIFAR-10 simple_cnn run, as the pictures' budget is stated for natural images
CIFAR_RUN = ["data=cifar10_jpeg", "model=simple_cnn", "trainer.max_epochs=5", "logger=none"]


def measure_cifar_pictures(pairs: int = PAIRS, progress=print) -> list[Ratio]:
    """cifar_pictures = a 5-epoch CIFAR-10 simple_cnn run with every picture and probe at its default cadence /
    the same run with `callbacks=base`; both `logger=none`, each timed as the whole command.

    cifar_pictures_in_run = the same runs with pictures and probes, each / itself less the seconds its pictures
    and probes took (results.json's perf/pictures_probes_s, timed inside the run): the cost without the other
    run's speed in it. On this VM two identical runs can differ by a quarter (the speed drifts over minutes), which
    the paired ratio carries in full; the in-run ratio does not."""
    paired_ratio = Ratio("cifar_pictures", "5-epoch CIFAR-10 simple_cnn, pictures + probes / callbacks=base", "s",
                         target="≤ 1.10")
    in_run = Ratio("cifar_pictures_in_run", "the same runs with pictures + probes / each less its pictures' and "
                   "probes' own time (perf/pictures_probes_s)", "s", target="≤ 1.10")
    full: list[Timed] = []

    def with_pictures() -> float:
        full.append(timed_run(CIFAR_RUN))
        return full[-1].seconds

    paired(paired_ratio, with_pictures, lambda: timed_run([*CIFAR_RUN, "callbacks=base"]).seconds, pairs,
           progress=progress)
    for run in full[-pairs:]:  # the warm-up pair's run is thrown away, as in the paired ratio
        in_run.a.append(run.seconds)
        in_run.b.append(run.seconds - float(run.results.get("perf/pictures_probes_s", 0.0)))
    return [paired_ratio, in_run]


#: the CIFAR run cut to two steps of training, validation and test: little but the fixed costs are left
SHORT_CIFAR_RUN = [*(o for o in CIFAR_RUN if not o.startswith("trainer.max_epochs")), "trainer.max_epochs=1",
                   "trainer.limit_train_batches=2", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]


def measure_untimed(pairs: int = PAIRS, progress=print) -> Ratio:
    """cifar_pictures_untimed = a 2-step CIFAR-10 run with every picture and probe, less their own time
    (perf/pictures_probes_s) / the same run with `callbacks=base`. cifar_pictures_in_run counts only the time
    inside the pictures' and probes' hooks; this ratio measures what else they cost (imports, building them,
    writing at the end) where a run has little else, so that ratio's honesty is measured, not assumed."""
    ratio = Ratio("cifar_pictures_untimed", "2-step CIFAR-10 run with pictures + probes, less their own time / "
                  "callbacks=base", "s", target="≤ 1.05")
    full: list[Timed] = []

    def untimed() -> float:
        full.append(timed_run(SHORT_CIFAR_RUN))
        return full[-1].seconds - float(full[-1].results.get("perf/pictures_probes_s", 0.0))

    return paired(ratio, untimed, lambda: timed_run([*SHORT_CIFAR_RUN, "callbacks=base"]).seconds, pairs,
                  progress=progress)
