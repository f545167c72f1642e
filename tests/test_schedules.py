from __future__ import annotations

import pytest

from pvegit.config.schedules import parse_schedule
from pvegit.errors import ConfigError


@pytest.mark.parametrize(
    ("spec", "normalized", "seconds"),
    [
        ("hourly", "hourly", 3600),
        ("every 6 hours", "every 6 hours", 21600),
        ("Daily at 2:30", "daily at 02:30", 86400),
        ("weekly on Sunday at 03:00", "weekly on sunday at 03:00", 604800),
        ("manual", "manual", None),
    ],
)
def test_valid_schedules(spec: str, normalized: str, seconds: int | None) -> None:
    schedule = parse_schedule(spec)
    assert schedule.spec == normalized
    assert schedule.interval_seconds == seconds


@pytest.mark.parametrize(
    "spec", ["sometimes", "daily at 25:00", "every 1 minutes", "weekly on funday at 03:00", ""]
)
def test_invalid_schedules_say_what_works(spec: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_schedule(spec)
    assert "schedule" in str(error.value)
