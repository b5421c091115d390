"""Moved to referral.adapters.records; this path is the same module, for one release."""

import sys

from referral.adapters import records as _moved

sys.modules[__name__] = _moved
