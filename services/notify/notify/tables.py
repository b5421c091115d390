"""Moved to notify.adapters.tables; this path is the same module, for one release."""

import sys

from notify.adapters import tables as _moved

sys.modules[__name__] = _moved
