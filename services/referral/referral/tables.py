"""Moved to referral.adapters.tables; this path is the same module, for one release."""

import sys

from referral.adapters import tables as _moved

sys.modules[__name__] = _moved
