"""Moved to notify.domain.schedule; this path is the same module, for one release."""

import sys

from notify.domain import schedule as _moved

sys.modules[__name__] = _moved
