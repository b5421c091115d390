"""Moved to referral.entrypoints.http; this path is the same module, for one release."""

import sys

from referral.entrypoints import http as _moved

sys.modules[__name__] = _moved
