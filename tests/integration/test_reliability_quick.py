"""A short `make reliability` inside `make test`: tiny sizes of worker-kill (1 kill), temporal-kill
(1 kill) and model-faults (5xx, a timeout, malformed output, always 500), run through the same code
as `python -m reliability` (reliability/cli.py's `run`), against real processes: Temporal dev server,
demo model, LiteLLM router, worker and API. Every row must pass; the figures are printed."""

from __future__ import annotations

from typing import Any

import pytest
from repo_paths import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.router, pytest.mark.timeout(420)]

SIZES: dict[str, dict[str, Any]] = {
    "worker-kill": {"kills": 1, "tasks": 2, "spacing": 5.0},
    "temporal-kill": {"kills": 1, "tasks": 3, "spacing": 5.0},
    "model-faults": {"tasks": 1},
}


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from reliability import cli, report

    return cli, report


async def test_every_row_of_the_small_reliability_run_passes(cli: Any) -> None:
    runner, report = cli
    rows, raw = await runner.run(list(SIZES), quick=True, sizes=SIZES)
    print(report.table(rows))  # the figures, visible with -s or on failure
    assert {r.scenario for r in rows} == set(SIZES), raw
    failed = [r for r in rows if not r.passed]
    assert not failed, f"{report.table(failed)}\n{raw}"
    # the malformed-output cases each got a row of their own
    assert sum("malformed output" in r.requirement for r in rows) == 4
