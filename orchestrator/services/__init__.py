"""What the HTTP edges (and the CLI) call: one module per area, no HTTP in any of them.

    state.py        AppState: what the API process holds for its lifetime (engine, policy, catalog, ...)
    access.py       the caller (`Principal`) and `can(...)`, asked of the policy engine
    schemas.py      the public shapes of tasks, checkpoints and the catalog (API and pages alike)
    tasks.py        submit (pin, record, start the workflow), read, list, cancel
    checkpoints.py  inbox, decide, reassign, comment; the one place that says who may decide
    preview.py, preview_request.py   what a request would run, need and cost
    intake.py       picks a workflow for a request (a small classifier trained from the catalog)
    catalog.py, policies.py          the catalog and the tool policy as people read them
    people.py, switches.py, cost.py, notify.py, attachments.py

Services raise `orchestrator.errors` kinds; the edges turn them into answers.
"""
