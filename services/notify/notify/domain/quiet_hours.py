"""Quiet hours (CLINICAL.md section 8): no message between 21:00 and 08:00 in the patient's
own time zone; a reminder due then goes out at 08:00 local time. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 0)
    end: time = time(8, 0)

    def is_quiet(self, at: datetime, timezone: str) -> bool:
        local = at.astimezone(ZoneInfo(timezone)).time()
        return local >= self.start or local < self.end

    def deliver_at(self, due: datetime, timezone: str) -> datetime:
        """`due` itself outside quiet hours, else the next 08:00 on the patient's wall clock.
        Built from the local date and wall time, so a DST change between `due` and the
        morning after still gives 08:00 local (not 07:00 or 09:00)."""
        zone = ZoneInfo(timezone)
        local = due.astimezone(zone)
        if not self.is_quiet(due, timezone):
            return due
        day = local.date() + timedelta(days=1) if local.time() >= self.start else local.date()
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)

    def send_at(self, planned: datetime, now: datetime, timezone: str) -> datetime:
        """When a message planned for `planned` may go, seen at `now`. A time still ahead
        stands (planning already moved it out of quiet hours); one that has passed (planned
        late, moved to a past time, a backlog, a retry) goes now, unless now is quiet: then
        at the next 08:00."""
        if planned <= now and self.is_quiet(now, timezone):
            return self.deliver_at(now, timezone)
        return planned
