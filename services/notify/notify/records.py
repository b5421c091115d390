"""Moved to notify.adapters.records; this path is the same module, for one release."""

import sys

from notify.adapters import records as _moved

sys.modules[__name__] = _moved
