"""`mtm-billing roster import`: the coverage commands, registered by `services/cli.py`
through `add_commands(subparsers)`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec

from shared.config import Settings, SettingsError


async def _import(database_url: str, args: argparse.Namespace, content: bytes) -> Any:
    from services.coverage.rosters.importer import import_file
    from shared.auth import Principal, Role, validate_tenant
    from shared.db import create_engine
    from shared.uow import Database, UnitOfWork

    tenant = validate_tenant(args.tenant)
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with UnitOfWork(Database(engine), None) as uow:
            principal = Principal(0, "cli", tenant, Role.ADMIN)
            return await import_file(
                uow,
                principal,
                fmt=args.format,
                payer_id=args.payer,
                contract_id=args.contract,
                content=content,
                request_id=None,
            )
    finally:
        await engine.dispose()


def cmd_roster_import(args: argparse.Namespace) -> None:
    from shared.errors import AppError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"mtm-billing: {exc}")
    if not settings.database_url:
        sys.exit("mtm-billing: set MTM_DATABASE_URL")
    try:
        content = Path(args.file).read_bytes()
    except OSError as exc:
        sys.exit(f"mtm-billing: cannot read {args.file}: {exc.strerror}")
    try:
        result = asyncio.run(_import(settings.database_url, args, content))
    except AppError as exc:
        print(f"mtm-billing: {exc.message}", file=sys.stderr)
        for problem in exc.errors:
            print(f"  {problem.field}: {problem.message}", file=sys.stderr)
        sys.exit(1)
    print(msgspec.json.format(msgspec.json.encode(result), indent=2).decode())


def add_commands(subparsers: Any) -> None:
    """Register `roster import --tenant T --payer P --contract C --format csv|834|271 FILE`."""
    roster = subparsers.add_parser("roster", help="coverage rosters")
    rsub = roster.add_subparsers(dest="roster_command", required=True)
    imp = rsub.add_parser(
        "import",
        help="import a roster file (all or nothing; the same file twice changes nothing)",
    )
    imp.add_argument("--tenant", required=True)
    imp.add_argument("--payer", required=True, help="payer id (uuid)")
    imp.add_argument("--contract", required=True, help="contract id (uuid)")
    imp.add_argument("--format", required=True, choices=["csv", "834", "271"])
    imp.add_argument("file")
    imp.set_defaults(fn=cmd_roster_import)
