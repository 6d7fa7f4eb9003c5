"""Frontdesk at size: the three figures of issue 12 that `bench.compare` does not measure.

`python -m bench.big` runs them (each can be run alone and at a smaller size; see `--help`):

- reads:   task list / task detail p50/p95/p99 with 100,000 tasks in PostgreSQL, 50 concurrent readers
- audit:   audit events/s in one tenant with 20 refund tasks in flight on PostgreSQL, chain verified
- parked:  N refund tasks parked at their approval checkpoint: worker RSS, then all approved,
           approval -> completion p50/p95

It prints a markdown table (figure, value, target, pass/fail) and writes everything to
`.frontdesk/bench/big.json`. Timings are printed, never asserted. See docs/performance-scale.md.
"""
