"""Moved to notify.domain.contact; this path is the same module, for one release."""

import sys

from notify.domain import contact as _moved

sys.modules[__name__] = _moved
