"""The Temporal runtime: it builds on the control plane (`orchestrator`), never the other way.

    worker.py        wires activities (with their dependencies) and the task workflow to a task queue
    workflows/       deterministic workflow code: imports only the contracts, temporalio, pydantic
                     and the standard library
    activities/      everything with an effect: database records, policy, budgets, tools, model calls
    router_client.py the one place that talks HTTP to the LLM router
"""
