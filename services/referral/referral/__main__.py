"""`python -m referral [serve|relay|migrate]`"""

import sys

from care_shared import cli
from referral.bootstrap import create_app, make_runtime
from referral.settings import ReferralSettings

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:], settings=ReferralSettings(), make_runtime=make_runtime, make_app=create_app))
