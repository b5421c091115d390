"""Moved to notify.entrypoints.delivery; this path is the same module, for one release."""

import sys

from notify.entrypoints import delivery as _moved

sys.modules[__name__] = _moved
