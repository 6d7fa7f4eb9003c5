"""The stable names by which the control plane and the workers reach a running task.

A Temporal workflow id is `Task.workflow_id` (the database row says it, nobody rebuilds it); the
names below are part of every recorded history, so they never change.
"""

from __future__ import annotations

TASK_WORKFLOW_NAME = "frontdesk.task"
DECIDE_UPDATE_NAME = "checkpoint.decide"
REASSIGN_UPDATE_NAME = "checkpoint.reassign"
SWITCHES_CHANGED_SIGNAL = "switches.changed"
