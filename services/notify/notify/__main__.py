"""`python -m notify [serve|relay|migrate|rebuild]`"""

import sys

from care_shared import cli
from care_shared.rebuild import progress_bar
from notify.bootstrap import create_app, make_runtime
from notify.rebuild import rebuild_and_compare
from notify.settings import NotifySettings

if __name__ == "__main__":
    sys.exit(
        cli.main(
            sys.argv[1:],
            settings=NotifySettings(),
            make_runtime=make_runtime,
            make_app=create_app,
            rebuild=lambda db, _settings, progress: rebuild_and_compare(
                db, progress_bar("replaying reminders") if progress else None
            ),
        )
    )
