"""The picture panel of a report: the same picture for each setting of a sweep, side by side, titled by the
overrides that vary (first-layer filters under max / avg / blur pooling, under relu / tanh / identity, ...).

A run that lacks a picture (a sweep run with `callbacks=base`) gets it drawn from its own checkpoint and
validation images, once: it is saved in the run's pictures/ with the tag 'report', where later reports find it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image
from rich.console import Console

from cnnlab.errors import CnnlabError
from cnnlab.pictures import Picture
from cnnlab.pictures.render import figure
from cnnlab.pictures.store import latest, read_index, save_pictures
from cnnlab.reports.runs import Run, by_setting, label, seed_keys
from cnnlab.summary import first_sentence

# a panel names a picture key; filters/first is the first layer's filters, whatever the layer is called
DEFAULT_PANEL = ("filters/first", "examples/block3", "attribution/methods")
COLUMNS = 4  # settings per row of a panel


def resolve(entries: Sequence[dict], spec: str) -> dict | None:
    """The run's latest picture for a panel spec, or None."""
    if spec == "filters/first":
        first = next((e["key"] for e in entries if e["key"].startswith("filters/")), None)
        return latest(entries, first) if first else None
    return latest(entries, spec)


def draw_from_checkpoint(run: Run, specs: Sequence[str]) -> None:
    """Draw what the run lacks of `specs` (filters, dataset examples, attribution) with its best checkpoint, on
    its own validation split, and save it in its pictures/; a run without a checkpoint is left as it is."""
    from cnnlab.checkpoints import load_trained_module, resolve_checkpoint
    from cnnlab.data import datamodule_from_config
    from cnnlab.data.probe import probe_batch, probe_images

    try:
        module = load_trained_module(resolve_checkpoint(run.dir, "run"), "run")
    except CnnlabError:
        return
    datamodule = datamodule_from_config(run.config)
    datamodule.setup("fit")
    names = module.class_names
    drawers: dict[str, Callable[[], list[Picture]]] = {}
    for spec in specs:
        family = spec.split("/")[0]
        if family == "filters":
            from cnnlab.pictures.filters import filter_pictures

            drawers[family] = lambda: filter_pictures(module.net)
        elif family == "examples":
            from cnnlab.pictures.dataset_examples import dataset_examples

            def examples() -> list[Picture]:
                x, y = probe_images(datamodule.val_set, 1000)
                return dataset_examples(module.net, x, y, names)[0]

            drawers[family] = examples
        elif family == "attribution":
            from cnnlab.pictures.attribution import attribution_picture

            def attribution() -> list[Picture]:
                x, y = probe_batch(datamodule.val_set, len(names))
                return [attribution_picture(module.net, x, y, [names[int(i)] for i in y])[0]]

            drawers[family] = attribution
    pictures = [p for draw in drawers.values() for p in draw()]
    save_pictures(pictures, run.dir, "report", run.config.get("trainer", {}).get("max_epochs") or 0, -1)


def panel_figures(runs: Sequence[Run], keys: Sequence[str], specs: Sequence[str], out: Path,
                  console: Console | None = None) -> list[tuple[str, str]]:
    """One figure per spec under out/figures/: the picture of each setting's first seed; returns (path, caption)
    for each spec that at least one setting has."""
    firsts = [group[0] for group in by_setting(runs, keys).values()]
    drawable = {"filters", "examples", "attribution"}
    indexes = []  # each first run's pictures, read once (again only after drawing into it)
    for i, run in enumerate(firsts):
        entries = read_index(run.dir)
        missing = [s for s in specs if s.split("/")[0] in drawable and resolve(entries, s) is None]
        if missing:
            if console:
                console.print(f"  drawing {', '.join(missing)} for run {run.name} from its checkpoint "
                              f"({i + 1}/{len(firsts)})", highlight=False)
            draw_from_checkpoint(run, missing)
            entries = read_index(run.dir)
        indexes.append(entries)
    seeds = seed_keys(keys)
    figures = []
    for spec in specs:
        found = [(label(run, keys, seeds), run, resolve(entries, spec)) for run, entries in zip(firsts, indexes)]
        found = [(title, run, entry) for title, run, entry in found if entry]
        if not found:
            continue
        path = out / "figures" / f"panel_{spec.replace('/', '_')}.png"
        panel(found).savefig(path, dpi=110)
        seed = f" (seed {found[0][1].setting(seeds[0])} of each)" if seeds else ""
        caption = (f"{spec}{seed}, one per setting, titled by the overrides that vary. How to read it, from the "
                   f"first: {first_sentence(found[0][2]['caption'])} (each run's whole caption is in its "
                   f"pictures/index.jsonl)")
        figures.append((f"figures/{path.name}", caption))
    return figures


def panel(found: Sequence[tuple[str, Run, dict]]):
    """The pictures in a grid of up to COLUMNS per row, each at its own pixel size, titled."""
    images = [Image.open(run.dir / "pictures" / entry["path"]).convert("RGB") for _, run, entry in found]
    columns = min(COLUMNS, len(images))
    rows = math.ceil(len(images) / columns)
    width = max(im.width for im in images) / 100
    height = max(im.height for im in images) / 100
    fig = figure()
    fig.set_size_inches(columns * width + 0.2, rows * (height + 0.35))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, image, (title, _, _) in zip(axes, images, found):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    return fig
