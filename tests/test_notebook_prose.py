"""Notebooks 3, 4 and 8 describe runs: their prose quotes no measured number by hand.

Every figure they give comes from a code cell (Markdown built from the run by
``loadtests.lessons`` / ``loadtests.story``), so it is the run's own and cannot drift when
the reference run is regenerated. A Markdown cell may still hold digits that are not
measurements: notebook, graph, section and step numbers, percentile names (p99), years
of citations, section headings' numbers, and anything in code or math. Any other digit
is a number someone typed, and this test fails on it.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
ABOUT_A_RUN = ("03_the_load_test.py", "04_why_the_line_grows.py", "08_protecting_the_erp.py")

#: Removed before looking for digits: code, math, link targets, heading numbers.
NOT_PROSE = (
    r"```.*?```",  # fenced code
    r"`[^`]*`",  # inline code
    r"\$\$.*?\$\$|\$[^$]*\$",  # LaTeX
    r"\]\([^)]*\)",  # link targets
    r"^#+\s*\d+\.",  # "## 3. Erlang C"
)
#: Digits that name things rather than measure them.
ALLOWED = (
    r"\bnotebooks? \d+(?: and \d+)?\b",
    r"\bgraphs? \d+(?: and \d+)?\b",
    r"\bsections? \d+(?: and \d+)?\b",
    r"\bsteps? \d+\b",
    r"\bp\d+\b",  # percentile names
    r"\(\d{4}\b|\b(?:18|19|20)\d\d\)|NSDI \d{4}",  # years of citations
    r"\bM/[MG]/c\b",
)


def typed_numbers(markdown: str) -> list[str]:
    """The numbers in ``markdown`` that are neither code, math, nor an allowed name."""
    text = markdown
    for pattern in NOT_PROSE:
        text = re.sub(pattern, " ", text, flags=re.S | re.M)
    for pattern in ALLOWED:
        text = re.sub(pattern, " ", text, flags=re.I)
    return re.findall(r"[^\s]*\d[^\s]*", text)


@pytest.mark.parametrize("name", ABOUT_A_RUN)
def test_prose_quotes_no_typed_number(name: str) -> None:
    notebook = jupytext.read(NOTEBOOKS / name)
    found = {
        i: typed_numbers(cell.source)
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "markdown" and typed_numbers(cell.source)
    }
    assert found == {}, f"{name}: numbers typed into prose (compute them in a cell): {found}"


def test_a_planted_number_is_caught() -> None:
    notebook = jupytext.read(NOTEBOOKS / ABOUT_A_RUN[0])
    cell = next(
        c for c in notebook.cells if c.cell_type == "markdown" and "What to see" in c.source
    )
    assert typed_numbers(cell.source) == []
    planted = cell.source + " The deferred checkout's p99 was 23 ms at every step."
    assert typed_numbers(planted) == ["23"]
    assert typed_numbers("capacity 4.4/s, from 4 web workers") == ["4.4/s,", "4"]
    assert typed_numbers("see notebook 4, section 7 and graph 5 (p99; Erlang, 1917)") == []
    assert typed_numbers("`make loadtest QUICK=1` and $(1 + c_s^2) / 2$") == []
