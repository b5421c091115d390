"""Moved to notify.adapters.channels; this path is the same module, for one release."""

import sys

from notify.adapters import channels as _moved

sys.modules[__name__] = _moved
