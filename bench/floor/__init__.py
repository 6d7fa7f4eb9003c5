"""The floor: a bare temporalio workflow doing the work of Frontdesk's `refund_request@1` task.

Three model calls through the same LiteLLM proxy (plain httpx, the same prompt, tools and output
schema as the refund agent), the same two tool activities on the same tables (`lookup_order` reads
the order, `issue_refund` writes the refund ledger row and updates the order, idempotent by key),
and one approval delivered as a Temporal update before the refund. No governance: no task or step
records, no policy, budgets, kill switches, checkpoint rows, audit events or cost records.

`bench.compare` measures Frontdesk against it; docs/performance.md says what it does and does not do.
"""

TASK_QUEUE_PREFIX = "floor-"
WORKFLOW_NAME = "floor_refund"
DECIDE_UPDATE = "floor_decide"
AWAITING_QUERY = "floor_awaiting"
