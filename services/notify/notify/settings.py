from care_shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    service_name: str = "notify"
    database_url: str = "sqlite+aiosqlite:///var/notify.db"
    http_port: int = 8004

    # Channels: a channel without its setting is not configured, and its reminders fail
    # (after their tries) with "channel not configured".
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "Your care team <care-team@trd-care.example>"
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None

    # CRISIS_LINE: the clinic's crisis line (a phone number, as patients should read it), added
    # to the crisis resources' default row (CLINICAL.md 8) for patients whose country has no
    # row of its own. Unset: the default row alone.
    crisis_line: str | None = None

    # The delivery loop (times of the injectable clock, except the lease: wall-clock).
    delivery_enabled: bool = True
    delivery_poll_seconds: float = 1.0
    delivery_max_attempts: int = 5
    delivery_backoff_seconds: list[float] = [60.0, 300.0, 900.0, 3600.0]
    delivery_lease_seconds: float = 60.0

    # Tests and demos only. NOTIFY_CLOCK_FILE: a file holding an ISO 8601 time that is "now"
    # for the schedule and the delivery loop (re-read on every look; absent or empty means the
    # system clock), so a test can move a real process's time. NOTIFY_DELIVERY_FAULT:
    # "kill_after_send:email" or ":sms" SIGKILLs the process after a message went out and
    # before it is recorded (the crash tests).
    notify_clock_file: str | None = None
    notify_delivery_fault: str | None = None
