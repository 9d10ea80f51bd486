"""Where a run keeps its pictures: PNGs under <run dir>/pictures/, one JSON line each in pictures/index.jsonl
(key, file, caption, size, epoch, step, tag), so they survive with any logger or none and reports can find them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from cnnlab.pictures.render import Picture, save_png


def save_pictures(pictures: Sequence[Picture], run_dir: Path, tag: str, epoch: int, step: int) -> None:
    """Each picture as pictures/<key>-<tag>.png, listed in pictures/index.jsonl."""
    root = run_dir / "pictures"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "index.jsonl", "a") as index:
        for p in pictures:
            path = save_png(p.image, root / f"{p.key}-{tag}.png")
            width, height = p.size
            index.write(json.dumps({"key": p.key, "path": str(path.relative_to(root)), "caption": p.caption,
                                    "width": width, "height": height, "epoch": epoch, "step": step,
                                    "tag": tag}) + "\n")


def read_index(run_dir: Path) -> list[dict]:
    """The run's pictures in the order drawn (empty when it drew none)."""
    path = run_dir / "pictures" / "index.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def latest(entries: Sequence[dict], key: str) -> dict | None:
    """The last-drawn picture under `key`, or None."""
    return next((e for e in reversed(entries) if e["key"] == key), None)
