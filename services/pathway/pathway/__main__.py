"""`python -m pathway [serve|relay|migrate|rebuild]`"""

import asyncio
import json
import sys

from care_shared import cli
from care_shared.db import Database
from care_shared.migrations import migrate
from pathway.bootstrap import MIGRATIONS, create_app, make_runtime
from pathway.rebuild import rebuild_and_compare
from pathway.settings import PathwaySettings


def rebuild(settings: PathwaySettings, progress: bool) -> int:
    async def run() -> dict:
        db = Database(settings.database_url)
        try:
            await migrate(db, MIGRATIONS)
            return (await rebuild_and_compare(db, settings.nats_servers(), progress=progress)).to_json()
        finally:
            await db.dispose()

    report = asyncio.run(run())
    print(json.dumps(report, indent=2))
    return 0 if report["identical_to_live"] else 1


def _extra(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("rebuild", help="replay intake's stream into a fresh projection and compare it with the live one")
    p.add_argument("--progress", action="store_true", help="draw a progress bar on stderr")
    p.set_defaults(handler=lambda args: rebuild(PathwaySettings(), args.progress))


if __name__ == "__main__":
    sys.exit(
        cli.main(sys.argv[1:], settings=PathwaySettings(), make_runtime=make_runtime, make_app=create_app, extra=_extra)
    )
