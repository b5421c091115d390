"""Moved to notify.domain.messages; this path is the same module, for one release."""

import sys

from notify.domain import messages as _moved

sys.modules[__name__] = _moved
