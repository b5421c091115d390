"""Moved to referral.entrypoints.sweep; this path is the same module, for one release."""

import sys

from referral.entrypoints import sweep as _moved

sys.modules[__name__] = _moved
