"""Moved to notify.domain.quiet_hours; this path is the same module, for one release."""

import sys

from notify.domain import quiet_hours as _moved

sys.modules[__name__] = _moved
