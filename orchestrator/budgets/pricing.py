"""Price table for model usage when the router reports no cost.

Prices are USD per token, read from ``policies/prices.yaml``. Lookup order: the served
(upstream) model name, then the tier alias that was requested, then ``default``. Values go
through ``str`` into ``Decimal`` so a YAML float such as ``0.0000001`` stays exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ModelPrice:
    input: Decimal
    output: Decimal
    cached_input: Decimal

    @classmethod
    def from_mapping(cls, key: str, raw: Any) -> ModelPrice:
        if not isinstance(raw, Mapping):
            raise ValueError(f"price entry {key!r} must be a mapping with input/output prices")
        input_price = _to_price(key, "input", raw.get("input"))
        output_price = _to_price(key, "output", raw.get("output"))
        # Without a cached price, cached tokens cost as much as any other input token.
        cached = raw.get("cached_input")
        cached_price = input_price if cached is None else _to_price(key, "cached_input", cached)
        return cls(input=input_price, output=output_price, cached_input=cached_price)


def _to_price(key: str, field: str, value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        raise ValueError(f"price entry {key!r} needs a numeric {field!r}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"price entry {key!r}: {field!r} is not a number: {value!r}") from None
    if not price.is_finite() or price < 0:
        raise ValueError(f"price entry {key!r}: {field!r} must be a finite, non-negative number")
    return price


class PriceTable:
    def __init__(self, models: Mapping[str, ModelPrice], default: ModelPrice) -> None:
        self._models = dict(models)
        self.default = default

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceTable:
        models_raw = data.get("models") or {}
        if not isinstance(models_raw, Mapping):
            raise ValueError("'models' must be a mapping of model name to prices")
        if "default" not in data:
            raise ValueError("the price table needs a 'default' entry")
        models = {str(name): ModelPrice.from_mapping(str(name), raw) for name, raw in models_raw.items()}
        return cls(models, ModelPrice.from_mapping("default", data["default"]))

    @classmethod
    def load(cls, path: str | Path) -> PriceTable:
        with Path(path).open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: the price table must be a YAML mapping")
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def lookup(self, model_served: str | None, tier: str) -> ModelPrice:
        candidates: list[str] = []
        if model_served:
            candidates.append(model_served)
            # Routers may report the upstream name with its provider prefix ("openai/demo-slm").
            if "/" in model_served:
                candidates.append(model_served.rsplit("/", 1)[1])
        candidates.append(tier)
        for name in candidates:
            if name in self._models:
                return self._models[name]
        return self.default

    def price(
        self,
        model_served: str | None,
        tier: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
    ) -> Decimal:
        """Cost in USD. ``cached_tokens`` is the cached part of ``prompt_tokens``, not extra."""
        p = self.lookup(model_served, tier)
        prompt = max(prompt_tokens, 0)
        cached = min(max(cached_tokens, 0), prompt)
        return (
            Decimal(prompt - cached) * p.input
            + Decimal(cached) * p.cached_input
            + Decimal(max(completion_tokens, 0)) * p.output
        )
