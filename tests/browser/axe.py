"""axe-core accessibility checks on a live page.

axe-core comes from the npm registry (`make test` installs it into .frontdesk/npm). It is
evaluated through the DevTools protocol, which the app's strict CSP (script-src 'self') does not
govern, so the checked pages keep their real CSP and a CSP refusal still shows up as an error.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from playwright.async_api import Page
from repo_paths import REPO_ROOT

AXE_JS = REPO_ROOT / ".frontdesk" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
NODES_SHOWN = 3

_RUN = """async () => {
  const result = await window.axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.map(String), html: n.html, summary: n.failureSummary || ''})),
  }));
}"""


@functools.cache
def axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `make test`, it installs axe-core.", pytrace=False)
    return AXE_JS.read_text()


async def violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (any impact)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe_source() + "\n;undefined")
    found: list[dict[str, Any]] = await page.evaluate(_RUN)
    return found


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"][:NODES_SHOWN]:
            lines.append(f"    {' '.join(node['target'])}: {node['html'][:160]}")
            summary = " ".join(node["summary"].split())
            if summary:
                lines.append(f"      {summary[:300]}")
        if len(v["nodes"]) > NODES_SHOWN:
            lines.append(f"    ... and {len(v['nodes']) - NODES_SHOWN} more")
    return "\n".join(lines)


async def blocking_violations(page: Page) -> list[dict[str, Any]]:
    return [v for v in await violations(page) if v["impact"] in BLOCKING]


async def assert_accessible(page: Page, name: str) -> None:
    """Fail on every serious or critical axe violation, naming the rule and the elements."""
    found = await blocking_violations(page)
    assert not found, f"{name} ({page.url}) has accessibility violations:\n{describe(found)}"
