"""argparse helpers of the API commands: a leaf command with `--url`, `--token` (and `--json`)
whose `CliError` is printed as `error: …` and becomes its exit code, and flag values read as JSON.

Builds on `orchestrator.cli.api_client` (the error type and the token file's name).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from orchestrator.cli.api_client import TOKEN_FILE, CliError

Command = Callable[[argparse.Namespace], int]


def _guarded(command: Command) -> Command:
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code

    return run


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="API base URL (default: http://<api_host>:<api_port> from settings)")
    common.add_argument("--token", help=f"bearer token (default: the file <state_dir>/{TOKEN_FILE})")
    return common


def leaf(group: Any, name: str, command: Command, help_text: str, *, json_flag: bool = False) -> Any:
    """Add the command `name` to a subparsers `group`; it sets `args.func(args) -> exit code`."""
    parser = group.add_parser(name, parents=[_common()], help=help_text, description=help_text)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print the raw JSON answer")
    parser.set_defaults(func=_guarded(command))
    return parser


def parse_object(raw: str | None, flag: str) -> dict | None:
    """A flag's value as a JSON object (None when the flag is not given); exit code 2 if it is not."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"{flag} is not valid JSON: {exc.msg}", code=2) from exc
    if not isinstance(data, dict):
        raise CliError(f"{flag} must be a JSON object", code=2)
    return data
