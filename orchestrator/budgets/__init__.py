"""Budgets: reserve the worst case before money is spent, settle the real cost after.

    rules.py     budgets.yaml: which budgets apply, their limits and breach actions (pure)
    pricing.py   the price table (prices.yaml) and cost of a call
    limits.py    admin overrides of the limits, stored in the database
    service.py   BudgetService: atomic reservation and settlement on every budget that applies
"""
