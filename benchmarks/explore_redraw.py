"""The explorer's redraw time, measured in the browser: cnnlab-explore on one run, Debian's Chromium driven by
Playwright moves the input one pixel at a time, and the page times each change to the moment every stage and the
class probabilities are drawn (`explore.timings`). Also what tests/test_explore.py starts the server and the
browser with."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# ../shared/BROWSER.md: headless, as root, nothing reaching for the network (Playwright gives it a fresh profile)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPLORE = str(Path(sys.executable).parent / "cnnlab-explore")
WARM_UP, REDRAWS = 5, 40


@contextmanager
def serving(run_dirs: Sequence[str | Path], images: int = 500, env: dict | None = None) -> Iterator[str]:
    """`cnnlab-explore RUN_DIRS --port 0` in its own process; yields the address it printed."""
    server = subprocess.Popen([EXPLORE, *map(str, run_dirs), "--port", "0", "--images", str(images)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not match:
            server.kill()
            raise RuntimeError(f"cnnlab-explore did not start: {line}{server.stderr.read()}")
        yield match.group(0)
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def page(url: str, errors: list[str], width: int = 1300, height: int = 1000):
    """A Chromium page on `url`, ready (every stage drawn once); console errors and page errors go to `errors`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(url)
            tab.wait_for_function("window.explore && explore.ready && explore.idle", timeout=120_000)
            yield tab
        finally:
            browser.close()


def move_input(tab, dx: int, redraws: int = 0) -> None:
    """Set the page's shift slider to `dx` as a user would, and wait until at least `redraws` redraws are done."""
    tab.evaluate("(v) => { const s = document.getElementById('dx'); s.value = v;"
                 " s.dispatchEvent(new Event('input')); }", dx)
    tab.wait_for_function(f"explore.idle && explore.timings.length >= {redraws}", timeout=60_000)


def redraw_times(tab, count: int = REDRAWS, warm_up: int = WARM_UP) -> list[float]:
    """Milliseconds from an input change (the shift slider moved one pixel) to every stage drawn, `count` times
    after `warm_up` changes that are not kept."""
    kept_from = tab.evaluate("explore.timings.length") + warm_up
    for i in range(warm_up + count):
        move_input(tab, (i % 5) - 2, kept_from - warm_up + i + 1)
    return tab.evaluate("explore.timings")[kept_from:]


def show_a_unit(tab, stage: int = 1) -> None:
    """Click the centre unit of the strongest channel of a stage (the second by default), for a screenshot."""
    move_input(tab, 0)
    x, y = tab.evaluate("""(k) => {
        const run = explore.layout[0] ? 0 : +Object.keys(explore.layout)[0], name = Object.keys(explore.layout[run])[k];
        const [C, h, w] = explore.layoutShape(run, name), values = explore.shown[run][name];
        let best = 0, value = -Infinity;
        for (let c = 0; c < Math.min(C, 64); c++) {
          const v = values[(c * h + (h >> 1)) * w + (w >> 1)];
          if (v > value) { value = v; best = c; }
        }
        return explore.unitCentre(run, name, best, h >> 1, w >> 1);
    }""", stage)
    tab.mouse.click(x, y)
    tab.wait_for_function("explore.unit && explore.idle", timeout=60_000)
    tab.wait_for_timeout(300)


def measure(runs: dict[str, Path], shots: Path | None = None,
            progress: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """{label: median, min and max redraw ms} for each run shown alone; `shots`: save a screenshot of each."""
    result = {}
    for label, run_dir in runs.items():
        errors: list[str] = []
        with serving([run_dir]) as url, page(url, errors) as tab:
            times = redraw_times(tab)
            if shots is not None:
                show_a_unit(tab)
                tab.screenshot(path=str(shots / f"explore_{label}.png"), full_page=True)
        if errors:
            raise RuntimeError(f"the explorer page logged errors on {label}: {errors}")
        result[label] = {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
                         "max_ms": round(max(times), 1), "redraws": len(times)}
        progress(f"explore {label}: redraw {result[label]['median_ms']} ms median "
                 f"({result[label]['min_ms']}–{result[label]['max_ms']}) over {len(times)}")
    return result


def tiny_runs(root: Path) -> dict[str, Path]:
    """The runs the bench explores: LeNet-5 on MNIST and simple_cnn on CIFAR-10 (JPEG copy), each trained for
    20 batches (a redraw costs the same whatever the weights)."""
    from benchmarks.common import run_in_process

    runs = {"lenet5_mnist": (["model=lenet5"], root / "lenet5"),
            "simple_cnn_cifar10": (["model=simple_cnn", "data=cifar10_jpeg"], root / "simple_cnn")}
    for overrides, run_dir in runs.values():
        run_in_process([*overrides, "debug=limit", "logger=none", "callbacks=base",
                        "callbacks.rich_progress_bar=null"], run_dir)
    return {label: run_dir for label, (_, run_dir) in runs.items()}
