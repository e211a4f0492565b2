"""The notebooks: pairs in sync, committed without errors, and each one runs on a fresh kernel.

Each notebook runs top to bottom in its own kernel (nbclient, the notebook's directory as
the working directory), as `make notebooks` and an attendee would run it; the runtime is
printed, not asserted (the budget is 60 s on a quiet laptop, and CI machines are not
quiet). Every process a notebook starts is tagged (LABQUEUE_NOTEBOOK_TAG), so the test can
check that none is left once the kernel has shut down.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jupytext
import psutil
import pytest
from nbclient import NotebookClient

from labqueue.notebook.lab import TAG_ENV

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
#: Generous: a notebook that needs this long is broken (the budget is 60 s).
HANG_LIMIT = 240


def _cells(notebook: Any) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_eight_notebooks_numbered_in_order_each_with_its_pair() -> None:
    assert [p.name[:2] for p in PAIRS] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    for py in PAIRS:
        assert py.with_suffix(".ipynb").exists(), f"{py.name} has no .ipynb: run make notebooks"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_pair_in_sync(py: Path) -> None:
    """The .py (reviewed) and the .ipynb (committed with outputs) hold the same cells."""
    text, notebook = jupytext.read(py), jupytext.read(py.with_suffix(".ipynb"))
    assert _cells(text) == _cells(notebook), (
        f"{py.name} and its .ipynb differ: run `make notebooks` (or jupytext --sync {py})"
    )
    formats = notebook.metadata.get("jupytext", {}).get("formats", "")
    assert formats == "ipynb,py:percent", f"{py.name}: not paired as ipynb,py:percent"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_first_cell_says_how_to_run_it(py: Path) -> None:
    first = jupytext.read(py).cells[0]
    assert first.cell_type == "markdown"
    assert "`make lab`" in first.source and "conda env create -f environment.yml" in first.source


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_committed_with_outputs_and_no_errors(py: Path) -> None:
    notebook = json.loads(py.with_suffix(".ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    errors = [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, c in enumerate(code)
        for o in c.get("outputs", [])
        if o["output_type"] == "error"
    ]
    assert errors == []
    assert all(c.get("execution_count") for c in code), "not run top to bottom: make notebooks"
    assert sum(len(c.get("outputs", [])) for c in code) >= len(code) // 2


def _tagged(tag: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.environ().get(TAG_ENV) == tag or f"-{tag}-" in proc.cwd():
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
        except (psutil.Error, OSError):
            continue
    return found


@pytest.mark.slow
@pytest.mark.timeout(HANG_LIMIT + 60)
@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_fresh_kernel(py: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tag = f"test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(TAG_ENV, tag)
    monkeypatch.delenv("REDIS_URL", raising=False)
    notebook = jupytext.read(py)
    client = NotebookClient(
        notebook,
        timeout=HANG_LIMIT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.monotonic()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    print(f"{py.stem}: {time.monotonic() - start:.1f} s")
    deadline = time.monotonic() + 15
    while _tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged(tag) == [], "processes left behind by the notebook"
    assert os.environ.get(TAG_ENV) == tag


# -- the helpers the notebooks lean on ------------------------------------------------------


def test_erlang_c_matches_textbook_values() -> None:
    from labqueue.notebook import queueing

    # M/M/1 (lambda 0.5, S 1 s): W = 1 / (mu - lambda) = 2 s
    assert queueing.mmc_latency(0.5, 1.0, 1) == pytest.approx(2.0)
    # M/M/2 with 1 Erlang offered: P(wait) = 1/3, mean wait 1/3 s
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert queueing.mmc_wait(1.0, 1.0, 2) == pytest.approx(1 / 3)
    # constant service halves the M/M/c wait (Allen-Cunneen); past capacity: no steady state
    assert queueing.mmc_wait(1.0, 1.0, 2, cs2=0.0) == pytest.approx(1 / 6)
    assert queueing.mmc_latency(4.0, 1.0, 4) == float("inf")


def test_little_and_fifo_times_on_a_known_queue() -> None:
    import numpy as np

    from labqueue.notebook import queueing

    check = queueing.little_from_intervals(np.array([0.0, 1.0, 2.0]), np.array([1.5, 2.0, 4.0]))
    assert check.mean_time == pytest.approx(1.5)
    assert check.predicted_time == pytest.approx(1.5, rel=0.05)
    # two jobs a second arrive for 5 s, each leaves exactly 1 s after it came
    t = np.arange(0, 10, 0.5)
    arrived = np.minimum(t * 2, 10)
    departed = np.clip((t - 1) * 2, 0, 10)
    when, stayed = queueing.fifo_times(t, arrived, departed)
    assert len(when) == 10
    assert stayed == pytest.approx(np.ones(10))


def test_redis_cli_view_quotes_and_numbers_as_redis_cli_does() -> None:
    from labqueue.notebook.rediscli import format_reply

    assert format_reply('{"class":"Job\\\\Work"}') == '"{\\"class\\":\\"Job\\\\\\\\Work\\"}"'
    assert format_reply(None) == "(nil)"
    assert format_reply(3) == "(integer) 3"
    assert format_reply([]) == "(empty array)"
    assert format_reply(["a", ["b", "c"]]) == '1) "a"\n2) 1) "b"\n   2) "c"'


def test_redis_cli_view_decodes_set_members_and_indents_long_json() -> None:
    import fakeredis

    from labqueue.notebook.rediscli import RedisCli, json_views

    client = fakeredis.FakeRedis()  # raw bytes replies, as redis-cli reads them
    client.sadd("resque:queues", "default", "email")
    long_job = '{"class":"Job\\\\Work\\\\TestJob","args":[{"to":"samir@example.com"}],"id":"abc"}'
    client.rpush("resque:queue:default", long_job, '{"short":1}')
    text = RedisCli(client, prompt="redis").dump_text("resque:*")
    assert '1) "default"\n2) "email"' in text and "b'" not in text
    assert '# 1) as JSON, indented:\n{\n  "class": "Job\\\\Work\\\\TestJob",' in text
    assert "2) as JSON" not in text  # a short line is read as it is
    assert json_views(b"not json" * 20) == ""
    assert json_views(long_job).startswith("\n# as JSON, indented:\n{")
