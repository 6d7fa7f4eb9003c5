"""Budget rules and values: the `policies/budgets.yaml` model, money helpers, the worst-case
estimate and the result models that `orchestrator.budgets.service.BudgetService` returns.

Pure: no database access here, so the workflow side may import the result models.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from orchestrator.budgets.pricing import PriceTable

OnBreach = Literal["pause", "stop"]
Scope = Literal["task", "step", "tenant_month", "agent_month", "tool_month"]
TENANT_SCOPES = ("tenant_month", "agent_month", "tool_month", "task_max")
MONTH_SCOPES = ("tenant_month", "agent_month", "tool_month")
NANO = Decimal("0.000000001")
EPS = Decimal("0.0000000005")  # half a unit of NUMERIC(18, 9): absorbs SQLite's float sums
MAX_USD = Decimal("999999999")
_MONTH = re.compile(r"^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])$")
SUBJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,119}$")


class BudgetError(ValueError):
    """A budget operation that cannot be done as asked; the message says why."""


class BudgetNotFound(BudgetError):
    pass


class BudgetRulesError(ValueError):
    """`policies/budgets.yaml` is missing or invalid."""


def usd(amount: Decimal | None, sign: str = "$") -> str:
    """`$0.05`, `$0.048`, `$100.00`: at least cents, no trailing zeros beyond them."""
    if amount is None:
        return "unlimited"
    whole, _, frac = f"{amount.quantize(NANO):f}".partition(".")
    return f"{sign}{whole}.{frac.rstrip('0').ljust(2, '0')}"


Money = Annotated[Decimal, PlainSerializer(lambda d: usd(d, ""), return_type=str, when_used="json")]


def to_usd(value: Any, what: str = "amount", rounding: str = ROUND_HALF_UP) -> Decimal:
    """A finite, non-negative USD amount at the columns' 1e-9 scale; BudgetError otherwise."""
    if isinstance(value, bool):
        raise BudgetError(f"{what} must be a USD amount, got {value!r}")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise BudgetError(f"{what} must be a USD amount such as 0.50, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_USD:
        raise BudgetError(f"{what} must be between 0 and {MAX_USD} USD, got {value!r}")
    return amount.quantize(NANO, rounding=rounding)


def current_month(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def check_month(month: str) -> str:
    if not isinstance(month, str) or not _MONTH.match(month):
        raise BudgetError(f"month must look like 2026-11, got {month!r}")
    if month.startswith("9999"):  # the month after it, which a month's window needs, does not exist
        raise BudgetError(f"month must be before 9999-01, got {month!r}")
    return month


def subject_name(name: str) -> str:
    """Agent and tool budgets are per name, whatever the version: `refund_agent@1` -> `refund_agent`."""
    return name.split("@", 1)[0].strip()


def estimate_worst_case(prices: PriceTable, tier: str, prompt_chars: int, max_tokens: int) -> Decimal:
    """The most a call can cost: ceil(prompt_chars / 4) input tokens + `max_tokens` output tokens."""
    if prompt_chars < 0 or max_tokens < 0:
        raise ValueError("prompt_chars and max_tokens must not be negative")
    price = prices.lookup(None, tier)
    prompt_tokens = -(-prompt_chars // 4)
    worst = Decimal(prompt_tokens) * price.input + Decimal(max_tokens) * price.output
    return worst.quantize(NANO, rounding=ROUND_CEILING)


# --- rules file ------------------------------------------------------------------------------------


def _amount(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a USD amount, not true/false")
    return Decimal(str(value)) if isinstance(value, int | float) else value


Amount = Annotated[Decimal, BeforeValidator(_amount), Field(ge=0, le=MAX_USD, allow_inf_nan=False)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskRule(_Rule):
    default_limit_usd: Amount
    max_limit_usd: Amount
    on_breach: OnBreach = "pause"

    @model_validator(mode="after")
    def _default_within_max(self) -> TaskRule:
        if self.default_limit_usd > self.max_limit_usd:
            raise ValueError("default_limit_usd must not be above max_limit_usd")
        return self


class StepRule(_Rule):
    on_breach: OnBreach = "pause"


class TenantMonthRule(_Rule):
    limit_usd: Amount | None = None  # None: no monthly cap for the tenant
    on_breach: OnBreach = "stop"


class SubjectMonthRule(_Rule):
    on_breach: OnBreach = "stop"
    limits: dict[str, Amount] = Field(default_factory=dict)  # agent or tool name -> monthly limit

    @field_validator("limits", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        value = {} if value is None else value
        for name in value if isinstance(value, dict) else ():
            if not isinstance(name, str) or not SUBJECT_PATTERN.match(name) or "@" in name:
                raise ValueError(f"{name!r} is not an agent or tool name (letters, digits, _ . : -)")
        return value


class BudgetRules(_Rule):
    version: Literal[1] = 1
    task: TaskRule
    step: StepRule = StepRule()
    tenant_month: TenantMonthRule = TenantMonthRule()
    agent_month: SubjectMonthRule = SubjectMonthRule()
    tool_month: SubjectMonthRule = SubjectMonthRule()

    @classmethod
    def from_dict(cls, data: Any, source: str = "budget rules") -> BudgetRules:
        if not isinstance(data, dict):
            raise BudgetRulesError(f"{source}: must be a YAML mapping with task, step, tenant_month, …")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
            )
            raise BudgetRulesError(f"{source} is invalid: {problems}") from None

    @classmethod
    def load(cls, path: str | Path) -> BudgetRules:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise BudgetRulesError(f"cannot read {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise BudgetRulesError(f"{path} is not valid YAML: {exc}") from None
        return cls.from_dict(data, str(path))

    def default(self, scope: str, subject: str = "") -> tuple[Decimal | None, OnBreach]:
        """The file's limit and breach rule for a tenant-level scope (None limit: no cap)."""
        if scope == "tenant_month":
            return self.tenant_month.limit_usd, self.tenant_month.on_breach
        if scope in ("agent_month", "tool_month"):
            rule: SubjectMonthRule = getattr(self, scope)
            return rule.limits.get(subject), rule.on_breach
        if scope == "task_max":
            return self.task.max_limit_usd, "stop"
        raise BudgetError(f"scope must be one of {', '.join(TENANT_SCOPES)}, got {scope!r}")


# --- results ---------------------------------------------------------------------------------------


class BudgetBreach(BaseModel):
    """A budget refused a reservation (or a settled cost or tool charge pushed it over)."""

    scope: Scope
    subject: str = ""
    period: str
    limit_usd: Money
    spent_usd: Money
    reserved_usd: Money
    requested_usd: Money
    on_breach: OnBreach
    counter_id: int
    during: Literal["reserve", "settle", "charge"] = "reserve"  # what found the budget exceeded

    @property
    def label(self) -> str:
        """Which budget, in words: `task tsk_…`, `step 'draft' of task tsk_…`, `agent 'x', 2026-11`."""
        if self.scope == "task":
            return f"task {self.period}"
        if self.scope == "step":
            task_id, _, step = self.period.partition("/")
            return f"step '{step}' of task {task_id}"
        if self.scope == "tenant_month":
            return f"the tenant's month {self.period}"
        return f"{self.scope.removesuffix('_month')} '{self.subject}', month {self.period}"

    @computed_field  # type: ignore[prop-decorator]  # mypy does not know pydantic stacks it on a property
    @property
    def message(self) -> str:
        """`task budget exceeded (task tsk_…): limit $0.05, spent $0.048, reserved $0.003, …`"""
        if self.during == "reserve":
            then = "the task waits for a budget raise" if self.on_breach == "pause" else "the step stops"
            this = f"this call needs up to {usd(self.requested_usd)}; {then}"
        else:
            what = "this call cost" if self.during == "settle" else "this tool charged"
            this = f"{what} {usd(self.requested_usd)}; the next call on this budget is refused"
        return (
            f"{self.scope} budget exceeded ({self.label}): limit {usd(self.limit_usd)}, "
            f"spent {usd(self.spent_usd)}, reserved {usd(self.reserved_usd)}, {this}"
        )


class Reservation(BaseModel):
    reservation_id: str
    tenant_id: str
    task_id: str
    amount_usd: Money
    counter_ids: list[int]
    status: Literal["reserved", "settled", "released", "charged"]
    settled_usd: Money | None = None
    replayed: bool = False  # an earlier call with this id did the work; nothing changed now
    over: list[BudgetBreach] = Field(default_factory=list)  # budgets now past their limit


class BudgetLine(BaseModel):
    scope: str
    subject: str = ""
    period: str = ""
    task_id: str | None = None
    limit_usd: Money | None  # None: no cap
    spent_usd: Money = Decimal(0)
    reserved_usd: Money = Decimal(0)
    remaining_usd: Money | None = None
    on_breach: str
    counter_id: int | None = None
    source: Literal["file", "admin", "task"] = "file"


class BudgetReport(BaseModel):
    tenant_id: str
    month: str
    budgets: list[BudgetLine]  # tenant_month, agent_month, tool_month, task_max
    tasks: list[BudgetLine]  # task and step counters of the tasks created that month
