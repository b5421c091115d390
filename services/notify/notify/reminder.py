"""Moved to notify.domain.reminder; this path is the same module, for one release."""

import sys

from notify.domain import reminder as _moved

sys.modules[__name__] = _moved
