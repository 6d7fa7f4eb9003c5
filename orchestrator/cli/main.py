"""`frontdesk`: the one console script.

frontdesk dev          the whole local stack (what `make run` starts)
frontdesk api          API + UI alone          frontdesk worker       one Temporal worker
frontdesk demo-model   the offline demo model  frontdesk migrate      upgrade the database
frontdesk seed         migrate + demo tenant, prints logins and tokens
frontdesk tenant ...   add | list | revoke     (on the database: the operator's bootstrap)
frontdesk user ...     add | list | revoke     frontdesk token ...    add | list | revoke
frontdesk task ...     submit | show | list | cancel
frontdesk checkpoint   list | approve | reject
frontdesk model-calls  list | reconcile   (on the database: interrupted router requests)
frontdesk audit ...    verify | anchor | purge   (on the database: the audit chain)
                       verify-bundle | keygen | public-key   (no database)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from orchestrator.settings import get_settings


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_dev(_: argparse.Namespace) -> int:
    from orchestrator.demo.devstack.supervisor import run_dev_stack

    return run_dev_stack(get_settings())


def cmd_api(_: argparse.Namespace) -> int:
    from orchestrator.server import serve

    _logging()
    serve(get_settings())  # SIGTERM: streams end, requests in flight get the shutdown grace
    return 0


def cmd_worker(_: argparse.Namespace) -> int:
    from workers.worker import run_worker

    _logging()
    asyncio.run(run_worker(get_settings()))
    return 0


def cmd_demo_model(_: argparse.Namespace) -> int:
    from orchestrator.demo.model import serve

    settings = get_settings()
    _logging()
    serve("127.0.0.1", settings.demo_model_port)
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from orchestrator.db import migrate

    migrate(get_settings().effective_database_url)
    print("database is at the newest schema")
    return 0


def cmd_seed(_: argparse.Namespace) -> int:
    from orchestrator.demo.seed import prepare_database

    info = prepare_database(get_settings())
    for email, password, roles in info.logins:
        print(f"login  {email:<22} password {password}  roles {', '.join(roles)}")
    for email, token in info.tokens:
        print(f"token  {email:<22} {token}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from orchestrator.cli import (
        accounts_cmd,
        audit_cmd,
        budget_cmd,
        catalog_cmd,
        checkpoint_cmd,
        model_calls_cmd,
        policy_cmd,
        switch_cmd,
        task_cmd,
    )

    parser = argparse.ArgumentParser(
        prog="frontdesk", description="Frontdesk: the control plane for AI agents."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func, text in [
        ("dev", cmd_dev, "start the whole local stack (Temporal, demo model, router, worker, API)"),
        ("api", cmd_api, "run the API + UI against the services named in settings"),
        ("worker", cmd_worker, "run one Temporal worker"),
        ("demo-model", cmd_demo_model, "run the offline demo model (deterministic, not an LLM)"),
        ("migrate", cmd_migrate, "upgrade the database schema"),
        ("seed", cmd_seed, "migrate and seed the demo tenant; print logins and tokens"),
    ]:
        sub.add_parser(name, help=text, description=text).set_defaults(func=func)
    task_cmd.register(sub)
    checkpoint_cmd.register(sub)
    switch_cmd.register(sub)
    budget_cmd.register(sub)
    policy_cmd.register(sub)
    catalog_cmd.register(sub)
    accounts_cmd.register(sub)
    model_calls_cmd.register(sub)
    audit_cmd.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
