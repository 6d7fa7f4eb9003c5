"""The ApplicationError types a task workflow, its updates and its activities end with.

Raise `ApplicationError(message, type=<one of these>)` and match on these constants, never on
message text. They travel in recorded histories and update answers, so a name never changes.

    ROUTER_ERROR          the router refused or failed a model call for good (not retried)
    BUDGET_ERROR          a budget rule refused the reservation
    TASK_MISSING          an activity found no row for the task it was given
    CHECKPOINT_NOT_OPEN   a decision or reassignment for a checkpoint that is not open
    FORBIDDEN             the decider may not decide (own task, not assigned)
    CONFLICT              the decider already approved in this round
    EDIT_REFUSED          edited arguments that cannot be accepted (invalid, or no longer allowed)
    INFRA_UNAVAILABLE     the database (or another service an activity needs) could not be reached;
                          retried until FRONTDESK_INFRA_OUTAGE_MAX_SECONDS, then final
    DATA_ERROR            the database refused the data itself (constraint, invalid value, NUL byte)
                          or a row the activity needs is missing: final, retrying cannot help
"""

from __future__ import annotations

ROUTER_ERROR = "RouterError"
BUDGET_ERROR = "BudgetError"
TASK_MISSING = "TaskMissing"
CHECKPOINT_NOT_OPEN = "CheckpointNotOpen"
FORBIDDEN = "Forbidden"
CONFLICT = "Conflict"
EDIT_REFUSED = "EditRefused"
INFRA_UNAVAILABLE = "InfraUnavailable"
DATA_ERROR = "DataError"
