"""`python -m pathway [serve|relay|migrate]`"""

import sys

from care_shared import cli
from pathway.bootstrap import create_app, make_runtime
from pathway.settings import PathwaySettings

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:], settings=PathwaySettings(), make_runtime=make_runtime, make_app=create_app))
