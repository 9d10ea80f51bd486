"""Write a report of runs: report.md (reads on GitHub), report.html (opens in a browser), the plots as PNGs
under figures/, and runs.csv with every number of every run. When the runs vary a seed (`seed`, or any config
key ending in `seed`), a table per setting comes first: each number's mean ± 95 % interval over the seeds."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from cnnlab.pictures.render import figure
from cnnlab.reports.panel import DEFAULT_PANEL, panel_figures
from cnnlab.reports.questions import QUESTIONS, Column, Finding
from cnnlab.reports.questions.base import key
from cnnlab.reports.questions.overview import overview
from cnnlab.reports.runs import Run, by_setting, seed_keys, varying
from cnnlab.reports.stats import LEVEL
from cnnlab.summary import first_sentence, short_path


@dataclass
class Report:
    title: str
    question: str
    finding: Finding
    header: list[str]
    rows: list[list[str]]
    shared: list[str]
    failures: list[tuple[str, str]]
    seeds: list[str] = field(default_factory=list)           # the seed axes the per-setting table folds
    summary_header: list[str] = field(default_factory=list)  # one row per setting: mean ± interval over seeds
    summary_rows: list[list[str]] = field(default_factory=list)


def question_of(runs: Sequence[Run]) -> str:
    """The runs' shared question if it has a plot of its own, else 'overview' (accuracy per run)."""
    asked = {run.config.get("question") for run in runs if run.config.get("question")}
    return asked.pop() if len(asked) == 1 and next(iter(asked)) in QUESTIONS else "overview"


def build(runs: Sequence[Run], title: str | None = None) -> Report:
    keys, shared = varying(runs)
    question = question_of(runs)
    finding = QUESTIONS.get(question)(runs, keys) if any(r.ok for r in runs) else None
    columns = {"test acc.": Column(key("test/acc")), "best val acc.": Column(key("val/best")),
               **(finding.columns if finding else {}), "time (s)": Column(key("wall_time_s"), "s")}
    header = ["run", *(k.lstrip("+~") for k in keys), "result", *columns]
    rows = []
    for run in runs:
        status = "ok" if run.ok else "failed"
        rows.append([run.name, *(run.setting(k.lstrip("+~")) or "" for k in keys), status,
                     *(column.cell(run) for column in columns.values())])
    failures = [(run.name, first_sentence(run.error or "")) for run in runs if not run.ok]
    if finding is None:
        finding = Finding("No run finished, so there is nothing to answer yet.", figure(), "")
    report = Report(title or f"cnnlab report: {question}", question, finding, header, rows, shared, failures)
    report.seeds = seed_keys(keys)
    if report.seeds:
        settings = [k.lstrip("+~") for k in keys if k.lstrip("+~") not in report.seeds]
        report.summary_header = [*settings, "seeds", *columns]
        for group in by_setting(runs, keys).values():
            report.summary_rows.append([*(group[0].setting(k) or "" for k in settings), str(len(group)),
                                        *(column.summary(group) for column in columns.values())])
    return report


def summary_title(report: Report) -> str:
    return (f"Per setting: mean ± {100 * LEVEL:.0f} % interval over the seeds ({', '.join(report.seeds)}; Student t, "
            "finished runs only)")


def write(report: Report, runs: Sequence[Run], out: Path, panel: Sequence[str] = DEFAULT_PANEL,
          console: Console | None = None) -> dict[str, Path]:
    """Write everything under `out`, with a picture panel per spec in `panel`; returns the paths written, by kind."""
    (out / "figures").mkdir(parents=True, exist_ok=True)
    report.finding.figure.savefig(out / "figures" / f"{report.question}.png", dpi=110)
    figures = [(f"figures/{report.question}.png", report.finding.caption)]
    if report.question != "overview" and any(r.ok for r in runs):
        overview(runs, varying(runs)[0]).figure.savefig(out / "figures" / "test_accuracy.png", dpi=110)
        figures.append(("figures/test_accuracy.png",
                        "Test accuracy per setting: mean over its seeds, error bars the 95 % interval."))
    if panel and any(r.ok for r in runs):
        figures += panel_figures(runs, varying(runs)[0], panel, out, console)
    paths = {"md": out / "report.md", "html": out / "report.html", "csv": out / "runs.csv"}
    if report.finding.papers:  # read back into experiments/README.md's table of all papers (papers.py)
        paths["papers"] = out / PAPERS_FILE
        paths["papers"].write_text(json.dumps([asdict(p) for p in report.finding.papers], indent=1,
                                              ensure_ascii=False))
    paths["md"].write_text(markdown(report, figures))
    paths["html"].write_text(to_html(report, figures))
    write_csv(runs, paths["csv"])
    return paths


def markdown(report: Report, figures: Sequence[tuple[str, str]]) -> str:
    lines = [f"# {report.title}", "", f"**Answer:** {report.finding.sentence}", ""]
    for path, caption in figures:
        lines += [f"![{Path(path).stem}]({path})", "", f"*{caption}*", ""]
    if report.shared:
        lines += ["Every run: `" + " ".join(report.shared) + "`", ""]
    if report.finding.papers:
        lines += ["## Beside the published numbers", "", *md_table(PAPER_HEADER, paper_rows(report)), ""]
    if report.summary_rows:
        lines += [f"## {summary_title(report)}", "", *md_table(report.summary_header, report.summary_rows), "",
                  "## Every run", ""]
    lines += md_table(report.header, report.rows)
    if report.failures:
        lines += ["", "## Failed runs", ""] + [f"- run {name}: {error}" for name, error in report.failures]
    lines += ["", "Every number of every run: [runs.csv](runs.csv).", ""]
    return "\n".join(lines)


PAPERS_FILE = "papers.json"
PAPER_HEADER = ["source", "what is measured", "published", "ours", "reproduce ours"]


def paper_rows(report: Report) -> list[list[str]]:
    return [[p.source, p.measured, p.published, p.ours, f"`{p.command}`"] for p in report.finding.papers]


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)]


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
         "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
         ".answer{font-size:1.1em;background:#eef6ee;padding:.6em 1em;border-left:4px solid #4a4}"
         ".failed{color:#b00}")


def to_html(report: Report, figures: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{e(report.title)}</title><style>{STYLE}</style>",
             f"<h1>{e(report.title)}</h1>", f"<p class='answer'><b>Answer:</b> {e(report.finding.sentence)}</p>"]
    for path, caption in figures:
        parts.append(f"<figure><img src='{e(path)}' alt='{e(caption)}'><figcaption>{e(caption)}</figcaption></figure>")
    if report.shared:
        parts.append(f"<p>Every run: <code>{e(' '.join(report.shared))}</code></p>")
    if report.finding.papers:
        header = "".join(f"<th>{e(h)}</th>" for h in PAPER_HEADER)
        rows = "".join("<tr>" + "".join(f"<td>{e(c.strip('`'))}</td>" for c in row) + "</tr>"
                       for row in paper_rows(report))
        parts.append(f"<h2>Beside the published numbers</h2><table><tr>{header}</tr>{rows}</table>")
    if report.summary_rows:
        parts.append(f"<h2>{e(summary_title(report))}</h2><table class='summary'><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in report.summary_header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in report.summary_rows]
        parts.append("</table><h2>Every run</h2>")
    parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in report.header) + "</tr>")
    result_column = report.header.index("result")
    for row in report.rows:
        css = " class='failed'" if row[result_column] == "failed" else ""
        parts.append(f"<tr{css}>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>")
    parts.append("</table>")
    if report.failures:
        parts.append("<h2>Failed runs</h2><ul>" + "".join(
            f"<li class='failed'>run {e(name)}: {e(error)}</li>" for name, error in report.failures) + "</ul>")
    parts.append("<p>Every number of every run: <a href='runs.csv'>runs.csv</a>.</p>")
    return "\n".join(parts) + "\n"


def write_csv(runs: Sequence[Run], path: Path) -> None:
    keys, _ = varying(runs)
    numbers: list[str] = []
    for run in runs:
        for name in [*(run.results or {}), *run.probes]:
            if name not in numbers and run.number(name) is not None:
                numbers.append(name)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "dir", *(k.lstrip("+~") for k in keys), "error", *numbers])
        for run in runs:
            writer.writerow([run.name, short_path(run.dir), *(run.setting(k.lstrip("+~")) or "" for k in keys),
                             first_sentence(run.error) if run.error else "",
                             *("" if run.number(n) is None else run.number(n) for n in numbers)])
