"""`python -m pathway [serve|relay|migrate|rebuild]`"""

import sys

from care_shared import cli
from care_shared.db import Database
from care_shared.nats_auth import client_options
from care_shared.rebuild import RebuildReport
from pathway.bootstrap import create_app, make_runtime
from pathway.rebuild import rebuild_and_compare
from pathway.settings import PathwaySettings


async def rebuild(db: Database, settings: PathwaySettings, progress: bool) -> RebuildReport:
    """Pathway's projection comes from intake's stream in JetStream."""
    return await rebuild_and_compare(
        db, settings.nats_servers(), progress=progress, connect_options=client_options(settings)
    )


if __name__ == "__main__":
    sys.exit(
        cli.main(
            sys.argv[1:],
            settings=PathwaySettings(),
            make_runtime=make_runtime,
            make_app=create_app,
            rebuild=rebuild,
        )
    )
