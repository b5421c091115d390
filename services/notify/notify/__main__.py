"""`python -m notify [serve|relay|migrate]`"""

import sys

from care_shared import cli
from notify.bootstrap import create_app, make_runtime
from notify.settings import NotifySettings

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:], settings=NotifySettings(), make_runtime=make_runtime, make_app=create_app))
