"""`make bench` (python -m benchmarks): every ratio measured side by side in one run, printed as a table and
written to benchmarks/results/<machine>.json and .md (the README quotes the .md); the cifar10_fast frontier's
table and plot also go into benchmarks/README.md."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import cifar, data_path, explore_redraw, logging_cost, overhead, sweep
from benchmarks.common import DEVICE, PAIRS, Ratio, machine, scratch

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"
TARGET_SECONDS, TARGET_ACC = 60.0, 0.99
ALL = ("overhead", "data", "logging", "sweep", "cifar_overhead", "cifar_data", "decode", "cifar_pictures",
       "cifar_pictures_untimed", "cifar10_fast", "explore")
#: the table's row order: ALL's, with the rows a measure adds beside its own
ROWS = ("overhead", "data", "logging", "pictures+probes", *ALL[3:8], "cifar_pictures_in_run", *ALL[8:])
EXPLORE_TARGET_MS = 100.0
#: the epoch budgets of the cifar10_fast frontier, and the seeds each is run with
BUDGETS, SEEDS = (4, 8, 12, 16), (0, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--pairs", type=int, default=PAIRS, help=f"A/B pairs per ratio (default {PAIRS}; "
                        "fewer is a quick look, not a measurement to quote)")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)), help="cifar10_fast epoch budgets")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="cifar10_fast seeds per budget")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"--only {','.join(unknown)}: not a benchmark; valid: {','.join(ALL)}")
    console = Console(width=max(Console().width, 150))
    say = lambda text: console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")  # noqa: E731
    say(f"cnnlab bench on {machine()}, {args.pairs} pairs per ratio after a warm-up pair")
    ratios: list[Ratio] = []
    extra: dict = {}
    started = time.perf_counter()
    pairs = {"pairs": args.pairs, "progress": say}
    if "overhead" in chosen:
        say("overhead: cnnlab-train (logger=none callbacks=base) vs a plain PyTorch loop, LeNet-5 on MNIST")
        # a LeNet-5 epoch is ~100 steps, ~3 s: each sample is short and noisy, so it takes three times the pairs
        ratios.append(overhead.measure(overhead.FRAMEWORK, pairs=3 * args.pairs, progress=say))
    if "data" in chosen:
        say("data: tensor-resident vs DataLoader batches, MNIST")
        ratios.append(data_path.measure([], **pairs))
    if "logging" in chosen:
        result = logging_cost.measure([], args.pairs, progress=say)
        ratios += [result.logging, result.pictures_probes]
        runs = result.default_runs
        extra["lenet5"] = {"wall_s": [round(r.seconds, 1) for r in runs], "test_acc": [r.test_acc for r in runs],
                           "met": all(r.seconds <= TARGET_SECONDS and r.test_acc >= TARGET_ACC for r in runs)}
    if "sweep" in chosen:
        say("sweep: 4 one-epoch default runs, parallel launcher vs one by one")
        ratios.append(sweep.measure(["trainer.max_epochs=1"], **pairs))
    if "cifar_overhead" in chosen:
        say("cifar_overhead: the cifar10_fast net, batch and precision; cnnlab-train vs a plain PyTorch loop")
        ratios.append(overhead.measure([*cifar.CIFAR, *overhead.FRAMEWORK], steps=40, name="cifar_overhead", **pairs))
    if "cifar_data" in chosen:
        say("cifar_data: resident cached tensor vs torchvision ImageFolder DataLoader (JPEG decoded per image)")
        ratios.append(data_path.measure(["data=cifar10_jpeg", "transforms=crop_flip"], batches=20,
                                        name="cifar_data", target="≥ 5", **pairs))
    if "decode" in chosen:
        say("decode: a first run's data setup (unpack + decode) vs a cached start")
        ratios.append(cifar.measure_decode(**pairs))
    if "cifar_pictures" in chosen:
        say("cifar_pictures: a 5-epoch CIFAR-10 simple_cnn run with every picture and probe vs callbacks=base")
        ratios.extend(logging_cost.measure_cifar_pictures(**pairs))
    if "cifar_pictures_untimed" in chosen:
        say("cifar_pictures_untimed: what cifar_pictures_in_run cannot see (imports, setup, teardown), in 2-step runs")
        ratios.append(logging_cost.measure_untimed(**pairs))
    if "cifar10_fast" in chosen:
        budgets = [int(b) for b in args.budgets.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
        extra["cifar10_fast"] = [row.as_dict() for row in cifar.measure_frontier(budgets, seeds, progress=say)]
        extra["cifar10_fast_seeds"] = seeds
    if "explore" in chosen:
        say("explore: cnnlab-explore's redraw of every stage after an input change, timed in Chromium")
        extra["explore"] = explore_redraw.measure(explore_redraw.tiny_runs(scratch("explore")), progress=say)
        extra["explore_date"] = time.strftime("%Y-%m-%d")
    extra["bench_seconds"] = round(time.perf_counter() - started)
    console.print(table(ratios, extra))
    write(ratios, extra, chosen)
    return 0


COLUMNS = ("measure", "A / B", "A (median)", "B (median)", "ratio: median (min–max of pairs)", "pairs", "target")


def rows(ratios: list[Ratio], extra: dict) -> list[tuple[str, ...]]:
    """One row per measure, for the terminal table and the README's markdown alike."""
    def mark(met: bool | None) -> str:
        return "" if met is None else (" ✓" if met else " ✗")

    out = []
    for r in ratios:
        low, high = r.spread
        target = " and ".join(t for t in (r.target, f"B {r.b_target} {r.unit}" if r.b_target else "") if t)
        a, b = statistics.median(r.a), statistics.median(r.b)
        out.append((r.name, r.meaning, f"{a:.4g} {r.unit}", f"{b:.4g} {r.unit}",
                    f"{r.value:.3f} ({low:.3f}–{high:.3f})", str(len(r.a)), f"{target}{mark(r.met())}"))
    if "lenet5" in extra:
        lenet = extra["lenet5"]
        out.append(("LeNet-5", "default `cnnlab-train`, whole command", f"{statistics.median(lenet['wall_s']):.1f} s",
                    f"{100 * min(lenet['test_acc']):.2f} % test (lowest)", "", str(len(lenet["wall_s"])),
                    f"≥ 99.0 % in ≤ 60 s{mark(lenet['met'])}"))
    for label, t in extra.get("explore", {}).items():
        out.append((f"explore {label}", "input change → every stage drawn, in Chromium", f"{t['median_ms']:.0f} ms",
                    "", f"min–max {t['min_ms']:.0f}–{t['max_ms']:.0f} ms", str(t["redraws"]),
                    f"≤ {EXPLORE_TARGET_MS:.0f} ms{mark(t['median_ms'] <= EXPLORE_TARGET_MS)}"))
    return out


def table(ratios: list[Ratio], extra: dict) -> Table:
    t = Table(title=f"cnnlab bench: {machine()}")
    for column in COLUMNS:
        t.add_column(column)
    for row in rows(ratios, extra):
        t.add_row(*row)
    return t


#: what a results file keeps besides the ratios; each is kept from an earlier run when this one did not measure it
EXTRAS = {"logging": ("lenet5",), "cifar10_fast": ("cifar10_fast", "cifar10_fast_seeds", "cifar10_fast_date"),
          "explore": ("explore", "explore_date")}


def merge(ratios: list[Ratio], extra: dict, chosen: list[str], saved_file: Path) -> tuple[list[Ratio], dict]:
    """This run's measures, plus those an earlier run on this machine measured and this one did not (a run with
    `--only` updates its rows and keeps the others, each with the date it was measured on), in ALL's order."""
    if not saved_file.is_file():
        return ratios, extra
    saved = json.loads(saved_file.read_text())
    names = {r.name for r in ratios}
    kept = [Ratio.from_dict(d, saved.get("date", "")) for d in saved.get("ratios", []) if d["name"] not in names]
    order = {name: i for i, name in enumerate(ROWS)}
    merged = sorted([*ratios, *kept], key=lambda r: order.get(r.name, len(order)))
    for measure, keys in EXTRAS.items():
        if measure not in chosen:
            extra.update({k: saved[k] for k in keys if k in saved})
    return merged, extra


def write(ratios: list[Ratio], extra: dict, chosen: list[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{DEVICE}-{machine()}".lower()).strip("-")[:60]
    date = time.strftime("%Y-%m-%d")
    if "cifar10_fast" in chosen:
        extra["cifar10_fast_date"] = date
    ratios, extra = merge(ratios, extra, chosen, RESULTS / f"{slug}.json")
    record = {"machine": machine(), "device": DEVICE, "date": date, "measured": chosen,
              "ratios": [r.as_dict() for r in ratios], **extra}
    (RESULTS / f"{slug}.json").write_text(json.dumps(record, indent=2))
    dates = sorted({r.date for r in ratios} | {extra[k] for k in ("cifar10_fast_date", "explore_date") if k in extra})
    lines = [f"Measured by `make bench` on {machine()}, {', '.join(dates)} (the last run took "
             f"{extra['bench_seconds']} s and measured {', '.join(chosen)}):", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(ratios, extra)]
    if "cifar10_fast" in extra:
        frontier = [cifar.Budget(r["epochs"], r["minutes"], r["test_acc"]) for r in extra["cifar10_fast"]]
        measured = extra.get("cifar10_fast_date", date)
        plot = cifar.frontier_plot(frontier, RESULTS / f"{slug}-cifar10_fast.png", machine(), measured)
        seeds = ", ".join(str(seed) for seed in extra["cifar10_fast_seeds"])
        section = [f"`experiment=cifar10_fast` on CIFAR-10 (JPEG copy), {machine()}, {measured}: test accuracy "
                   "against wall-clock minutes of the whole `cnnlab-train` command, each budget run with seeds "
                   f"{seeds} (median, min–max; ✓ = median ≥ 85 % in ≤ 10 min).", "", *cifar.frontier_table(frontier)]
        lines += ["", *section, "", f"![cifar10_fast frontier]({plot.name})"]
        replace_section(README, "cifar10_fast", [*section, "", f"![cifar10_fast frontier](results/{plot.name})"])
    (RESULTS / f"{slug}.md").write_text("\n".join(lines) + "\n")


def replace_section(path: Path, name: str, lines: list[str]) -> None:
    """Rewrite what lies between `<!-- name:start -->` and `<!-- name:end -->` in `path`."""
    text = path.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        path.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    raise SystemExit(main())
