"""Frontdesk's control plane: a library plus the API/UI process.

    contracts/   pure pydantic models and stable names shared with the workers (no I/O)
    catalog/     the registry of versioned workflows, agents and tools; the typed API; YAML
    policy/      casbin policy engine (people -> actions, agents -> tools), rules, lint
    budgets/     budget service, limits, rules, pricing
    services/    what the edges call: tasks, checkpoints, people, preview, cost, intake, ...
    api/ web/    the HTTP edges (REST, server-rendered pages); `app.py` composes the two
    cli/         the console script: the only part that may start workers or the demo
    demo/        the offline demo: demo model, sample catalog, dev stack, seeding
    db.py models.py migrations/ settings.py telemetry.py audit.py security.py errors.py

Dependencies point one way: the edges use services, services use the library modules and the
contracts; nothing here imports the Temporal runtime (`workers/`) or the demo
(tests/unit/test_layout.py holds these rules).
"""
