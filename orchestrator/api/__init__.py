"""The REST API edge: `routes/` (one module per resource), `deps.py` (session, caller,
authorization as one dependency), `errors.py` (service errors -> problem JSON).

It calls `orchestrator.services` only; `orchestrator/app.py` composes it with the web UI.
"""
