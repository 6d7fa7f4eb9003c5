"""The offline demo: a deterministic stand-in model, its skills, the demo catalog and its tables,
the seed, and the dev stack that `frontdesk dev` / `make run` start.

Nothing outside this folder (and the CLI that starts it) imports it: a production install runs
without it, and its catalog loads only when FRONTDESK_CATALOG_PACKAGES names it.
"""
