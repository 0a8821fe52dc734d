"""The `chatstream` command (also `python -m chatstream`): database migrations.

    chatstream db upgrade               # DATABASE_URL's schema to the newest revision
    chatstream db upgrade --url URL     # another database
    chatstream db current               # the schema's revision, and this version's
    chatstream db downgrade base        # drop chatstream's tables (asks nothing: mind the URL)

Needs `chatstream[sqlite]` or `chatstream[postgres]`; every mistake is one `error: ...` line and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from chatstream.errors import AppError, ConfigError
from chatstream.settings import Settings
from chatstream.store.sql import redact_url, require_sql, sql_dialect

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="chatstream", description="chatstream's database migrations.")
    commands = parser.add_subparsers(dest="group", required=True)
    db = commands.add_parser("db", help="the SQL store's schema (DATABASE_URL)")
    steps = db.add_subparsers(dest="command", required=True)
    for name, text in (
        ("upgrade", "apply the migrations up to REVISION (default: head)"),
        ("downgrade", "revert the migrations down to REVISION (base: drop every chatstream table)"),
        ("current", "print the schema's revision and the one this chatstream needs"),
    ):
        step = steps.add_parser(name, help=text, description=text)
        step.add_argument("--url", help="the database (default: DATABASE_URL)")
        if name == "upgrade":
            step.add_argument("revision", nargs="?", default="head")
        elif name == "downgrade":
            step.add_argument("revision")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = args.url or Settings.from_env().database_url
        if not url or sql_dialect(url) is None:
            raise ConfigError(
                "no SQL database: set DATABASE_URL (sqlite+aiosqlite:///path.db or postgresql+asyncpg://...) "
                "or pass --url"
            )
        require_sql(url)
        print(asyncio.run(_run(args, url)))
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


async def _run(args: argparse.Namespace, url: str) -> str:
    from chatstream.store.sql.engine import open_database
    from chatstream.store.sql.migrate import HEAD, current_revision, downgrade, upgrade

    database = open_database(url)
    where = redact_url(url)
    try:
        if args.command == "upgrade":
            before = await current_revision(database)
            await upgrade(database, args.revision)
            return f"{where}: schema {before or 'empty'} -> {await current_revision(database)}"
        if args.command == "downgrade":
            before = await current_revision(database)
            await downgrade(database, args.revision)
            return f"{where}: schema {before or 'empty'} -> {await current_revision(database) or 'empty'}"
        return f"{where}: schema {await current_revision(database) or 'empty'} (this chatstream needs {HEAD})"
    finally:
        await database.aclose()
