"""Moved to referral.adapters.work_queue; this path is the same module, for one release."""

import sys

from referral.adapters import work_queue as _moved

sys.modules[__name__] = _moved
