"""The table of every published number beside ours, in experiments/README.md: rebuilt from the papers.json each
committed report wrote (experiments/<question>/<data>/papers.json), so the README never holds a hand-copied
number."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cnnlab.reports.render import PAPER_HEADER, PAPERS_FILE, md_table

START, END = "<!-- papers:start -->", "<!-- papers:end -->"


def papers_table(experiments_dir: Path) -> str:
    rows = []
    for path in sorted(experiments_dir.glob(f"*/*/{PAPERS_FILE}")):
        question, data = path.parent.parent.name, path.parent.name
        for paper in json.loads(path.read_text()):
            rows.append([f"[{question}]({question}/{data}/report.md) ({data})", paper["source"], paper["measured"],
                         paper["published"], paper["ours"], f"`{paper['command']}`"])
    if not rows:
        return "No committed report has a published number beside it yet."
    return "\n".join(md_table(["question", *PAPER_HEADER], rows))


def refresh(readme: Path) -> bool:
    """Rewrite the block between the markers of `readme` (experiments/README.md); False when it has none."""
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    block = f"{START}\n{papers_table(readme.parent)}\n{END}"
    readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))
    return True
