"""Moved to notify.domain.crisis_resources; this path is the same module, for one release."""

import sys

from notify.domain import crisis_resources as _moved

sys.modules[__name__] = _moved
