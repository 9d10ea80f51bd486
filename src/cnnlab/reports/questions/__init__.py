"""The questions: one module per question, each registering the function that answers it from its runs
(`@register_question("<name>")` in src/cnnlab/reports/questions/<name>.py, found the way models are: every
module of this package is imported here). A run names its question in its config (`question: pooling`, set by
experiments/<name>/config.yaml); runs without one, or of several, get `overview`.

Adding a question is one folder experiments/<name>/ (config.yaml, README.md) plus one module here."""

import importlib
import pkgutil

from cnnlab.reports.questions.base import QUESTIONS, Column, Finding, Paper, register_question

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["QUESTIONS", "Column", "Finding", "Paper", "register_question"]
