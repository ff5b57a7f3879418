"""The `shequn` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from services.runtime.auth import Authenticator, Role
from services.runtime.settings import Settings
from services.runtime.store import client

T = TypeVar("T")


async def _with_keys(do: Callable[[Authenticator], Awaitable[T]]) -> T:
    """Run `do` on the API keys of the identity database (SHEQUN_IDENTITY_MONGO_URL, or
    SHEQUN_MONGO_URL)."""
    settings = Settings()
    mongo = client(settings.identity_url)
    try:
        return await do(Authenticator(mongo, settings.mongo_db_prefix, 0))
    finally:
        await mongo.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shequn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="start the whole system locally")
    dev.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("SHEQUN_DEV_DIR", ".shequn")),
        help="where the dev file, database files and logs go (default .shequn, or $SHEQUN_DEV_DIR)",
    )
    demo = commands.add_parser(
        "demo", help="send a week of simulated group life to the running dev stack"
    )
    demo.add_argument(
        "--dev-file",
        type=Path,
        default=None,
        help="the running stack's dev file (default .shequn/dev.json, or $SHEQUN_DEV_DIR/dev.json)",
    )
    demo.add_argument("--seed", type=int, default=7, help="the same seed sends the same events")
    demo.add_argument("--groups", type=int, default=20, help="how many groups (default 20)")
    demo.add_argument("--members", type=int, default=2000, help="how many members (default 2000)")
    keys = commands.add_parser(
        "create-key", help="create an API key (printed once) in the identity database"
    )
    keys.add_argument("--tenant", required=True)
    keys.add_argument("--role", default="owner", choices=[r.name.lower() for r in Role])
    keys.add_argument("--name", default="cli")
    commands.add_parser(
        "revoke-key",
        help="revoke the API key read from standard input (never an argument: it would be in"
        " the shell's history and the process list); services stop taking it within"
        " SHEQUN_AUTH_CACHE_SECONDS",
    )
    args = parser.parse_args(argv)

    if args.command == "dev":
        from services.devtools.stack import run_dev

        return asyncio.run(run_dev(args.state_dir.resolve()))
    if args.command == "demo":
        from services.devtools.demo.run import run_demo

        dev_file = args.dev_file or Path(os.environ.get("SHEQUN_DEV_DIR", ".shequn")) / "dev.json"
        return asyncio.run(
            run_demo(dev_file, seed=args.seed, groups=args.groups, members=args.members)
        )
    if args.command == "revoke-key":
        key = sys.stdin.readline().strip()
        if not key:
            parser.error("revoke-key reads the key from standard input")
        asyncio.run(_with_keys(lambda keys: keys.revoke(key)))
        print("revoked")
        return 0
    print(
        asyncio.run(
            _with_keys(lambda keys: keys.create_key(args.tenant, Role.parse(args.role), args.name))
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
