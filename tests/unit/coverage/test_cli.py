"""`roster import` is registered with the arguments the issue names."""

from __future__ import annotations

import argparse

from services.coverage.cli import add_commands, cmd_roster_import


def test_roster_import_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "roster",
            "import",
            "--tenant",
            "t1",
            "--payer",
            "P",
            "--contract",
            "C",
            "--format",
            "834",
            "f.x12",
        ]
    )
    assert (args.tenant, args.payer, args.contract, args.format, args.file) == (
        "t1",
        "P",
        "C",
        "834",
        "f.x12",
    )
    assert args.fn is cmd_roster_import
