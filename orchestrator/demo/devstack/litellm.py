"""The LiteLLM proxy of the dev stack: its config, its environment and its command line.

The proxy lives in its own virtualenv (it pins its own fastapi/pydantic/openai), so Frontdesk
never imports it; it only writes a config file and starts the ``litellm`` binary. Every tier
points at the offline demo model, priced like ``policies/prices.yaml`` so the cost headers the
proxy returns match what Frontdesk would estimate itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.budgets.pricing import PriceTable
from orchestrator.resources import DEFAULT_POLICIES_DIR

DEFAULT_PRICES_FILE = DEFAULT_POLICIES_DIR / "prices.yaml"
LITELLM_VERSION = "1.106.2"  # the Makefile's LITELLM_VERSION installs the same
LITELLM_REQUIREMENT = f"litellm[proxy]=={LITELLM_VERSION}"
INSTALL_HINT = (
    "`frontdesk dev` installs it on its first run (it needs the package index); "
    "from a checkout, `make router` does the same"
)


class LiteLLMMissing(RuntimeError):
    """The LiteLLM proxy's virtualenv (or its ``litellm`` binary) is not installed."""


@dataclass(frozen=True)
class TierModel:
    tier: str
    upstream: str  # model name the demo model (or a real provider) is asked for
    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_cost_per_token: float | None = None


# Used when no price table is available; the same figures as policies/prices.yaml.
DEFAULT_TIERS: tuple[TierModel, ...] = (
    TierModel("tier-frontier", "demo-frontier", 0.000005, 0.000025),
    TierModel("tier-open", "demo-open", 0.0000006, 0.0000024),
    TierModel("tier-slm", "demo-slm", 0.0000001, 0.0000004),
)


def tier_models(prices_file: Path | None = DEFAULT_PRICES_FILE) -> list[TierModel]:
    """The tiers of the dev stack, priced from ``prices_file`` when it exists."""
    if prices_file is None or not prices_file.is_file():
        return list(DEFAULT_TIERS)
    table = PriceTable.load(prices_file)
    priced = []
    for tier in DEFAULT_TIERS:
        price = table.lookup(tier.upstream, tier.tier)
        priced.append(
            TierModel(
                tier=tier.tier,
                upstream=tier.upstream,
                input_cost_per_token=float(price.input),
                output_cost_per_token=float(price.output),
                cache_read_cost_per_token=float(price.cached_input),
            )
        )
    return priced


def litellm_config(*, demo_model_url: str, tiers: list[TierModel]) -> dict[str, Any]:
    api_base = demo_model_url.rstrip("/") + "/v1"
    model_list = []
    for tier in tiers:
        params: dict[str, Any] = {
            "model": f"openai/{tier.upstream}",
            "api_base": api_base,
            "api_key": "unused",
            "input_cost_per_token": tier.input_cost_per_token,
            "output_cost_per_token": tier.output_cost_per_token,
        }
        if tier.cache_read_cost_per_token is not None:
            params["cache_read_input_token_cost"] = tier.cache_read_cost_per_token
        model_list.append({"model_name": tier.tier, "litellm_params": params})
    return {
        "model_list": model_list,
        # Frontdesk retries itself (router_max_requests); the proxy only falls back.
        # No cooldowns: the demo upstream is local and deterministic, and a cooled-down tier would
        # turn one scripted failure into seconds of silent fallbacks for every later call.
        "router_settings": {
            "num_retries": 0,
            "fallbacks": [{"tier-frontier": ["tier-open"]}],
            "disable_cooldowns": True,
        },
        "litellm_settings": {
            "telemetry": False,
            "drop_params": True,
            "include_cost_in_streaming_usage": True,
        },
        "general_settings": {
            "master_key": "os.environ/LITELLM_MASTER_KEY",
            "forward_client_headers_to_llm_api": True,
        },
    }


def write_litellm_config(
    path: Path, *, demo_model_url: str, prices_file: Path | None = DEFAULT_PRICES_FILE
) -> Path:
    """Write the proxy config (YAML) to ``path`` and return it."""
    config = litellm_config(demo_model_url=demo_model_url, tiers=tier_models(prices_file))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def litellm_env(master_key: str) -> dict[str, str]:
    """The complete environment of the proxy process (nothing else leaks in from ours)."""
    env = {
        "LITELLM_MASTER_KEY": master_key,
        # Without this the proxy downloads a model price list from the internet at import.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        # The upstream is local: never send it through a proxy.
        "NO_PROXY": "*",
        "no_proxy": "*",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("PATH", "HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def litellm_binary(venv: Path) -> Path:
    binary = venv / "bin" / "litellm"
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise LiteLLMMissing(f"the LiteLLM proxy is not installed ({binary} is missing); {INSTALL_HINT}")
    return binary


Runner = Callable[[list[str]], None]


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise LiteLLMMissing(f"installing the LiteLLM proxy failed: `{' '.join(argv)}` said:\n{tail}")


def ensure_litellm(venv: Path, say: Callable[[str], None], *, run: Runner = _run) -> bool:
    """Install the LiteLLM proxy into its own virtualenv at ``venv`` unless it is there already.

    Returns whether it installed. The proxy pins its own fastapi/pydantic/openai, so it never
    shares Frontdesk's environment; the first `frontdesk dev` after `pip install` does this once.
    """
    marker = venv / ".installed"
    binary = venv / "bin" / "litellm"
    if marker.is_file() and binary.is_file():
        return False
    say(f"installing the LiteLLM router ({LITELLM_REQUIREMENT}) into {venv} (first run only; about a minute) ...")
    venv.parent.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").is_file():
        run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", LITELLM_REQUIREMENT])
    if not binary.is_file():
        raise LiteLLMMissing(f"installing the LiteLLM proxy left no {binary}")
    marker.touch()
    say("the LiteLLM router is installed")
    return True


def litellm_command(venv: Path, config: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    # An explicit, free port: when its default port is busy the proxy silently picks another.
    return [str(litellm_binary(venv)), "--config", str(config), "--host", host, "--port", str(port)]
