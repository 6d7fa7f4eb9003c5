"""`make reliability`: faults injected into a real local stack, each measured against a requirement.

Run as ``python -m reliability`` (``--help`` lists the scenarios and their sizes). Every scenario
starts real processes (Temporal dev server, demo model, LiteLLM router, worker, API) in a temporary
folder, loopback only, and prints one table row per requirement: the requirement, the figure
measured, pass or fail. The rows are also written as JSON (``--json``).
"""
