"""Entry point: `python -m reliability [scenario ...]`; see reliability/__init__.py."""

from reliability.cli import main

raise SystemExit(main())
