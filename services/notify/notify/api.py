"""Moved to notify.entrypoints.http; this path is the same module, for one release."""

import sys

from notify.entrypoints import http as _moved

sys.modules[__name__] = _moved
