"""Server settings from a TOML file: ``$PVEGIT_HOME/pvegit.toml`` or ``/etc/pvegit/pvegit.toml``.

Every key is checked when the file is read; a bad file stops ``pvegit serve``
with a message naming the key and what is wrong with it. Missing keys take
the defaults below. See docs/configuration.md.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pvegit.config.limits import DEFAULT_COMMAND_BYTES, DEFAULT_TOTAL_BYTES, InventoryLimits
from pvegit.config.schedules import parse_schedule
from pvegit.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/pvegit/pvegit.toml")
EVENTS = ("failed", "stale", "recovered", "changed", "restore")
WEBHOOK_FORMATS = ("generic", "slack", "gotify", "ntfy")


@dataclass(frozen=True)
class Target:
    """Where notifications go."""

    name: str
    kind: str  # "webhook" or "email"
    events: tuple[str, ...] = EVENTS
    url: str = ""
    format: str = "generic"
    token: str = ""  # sent as a bearer token / Gotify app token when set
    host: str = ""
    port: int = 587
    security: str = "starttls"  # "starttls", "tls" or "none"
    username: str = ""
    password: str = ""
    sender: str = ""
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Everything ``pvegit serve`` reads from its configuration file."""

    path: Path | None = None
    listen: str = "127.0.0.1:8080"
    behind_tls_proxy: bool = False
    concurrency: int = 4
    timezone: str = "UTC"
    default_schedule: str = "daily at 02:30"
    stale_factor: float = 2.0
    run_timeout: int = 900
    jitter: int = 120
    retry_delays: tuple[int, ...] = (60, 300, 900)
    run_log_days: int = 365
    metrics_allow: tuple[str, ...] = ()
    storage_reserve_mb: int = 64  # runs refused with less free on $PVEGIT_HOME's disk
    storage_warn_percent: float = 10.0  # warned about below this share free
    mirror: str = ""  # e.g. "ssh://git@git.example.org/pve/{host}.git"; empty: no mirror
    session_idle_minutes: int = 60  # a web session ends after this long without a request
    session_max_hours: int = 12  # and this long after its login
    inventory_command_limit_kb: int = DEFAULT_COMMAND_BYTES // 1024  # one command's output
    inventory_total_limit_kb: int = DEFAULT_TOTAL_BYTES // 1024  # all of a run's commands
    targets: tuple[Target, ...] = field(default_factory=tuple)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def session_idle_seconds(self) -> int:
        """A web session ends after this long without a request."""
        return self.session_idle_minutes * 60

    @property
    def session_max_seconds(self) -> int:
        """A web session ends this long after its login, whatever happens."""
        return self.session_max_hours * 3600

    @property
    def inventory_limits(self) -> InventoryLimits:
        """How much inventory output a snapshot reads (see pvegit/node/inventorystream.py)."""
        return InventoryLimits(
            command_bytes=self.inventory_command_limit_kb * 1024,
            total_bytes=self.inventory_total_limit_kb * 1024,
        )


def config_path(home: Path, explicit: Path | None = None) -> Path | None:
    """The file to read: --config, $PVEGIT_CONFIG, the home's, or the system one."""
    if explicit is not None:
        return explicit
    if os.environ.get("PVEGIT_CONFIG"):
        return Path(os.environ["PVEGIT_CONFIG"])
    for candidate in (home / "pvegit.toml", SYSTEM_CONFIG):
        if candidate.exists():
            return candidate
    return None


def load_config(home: Path, explicit: Path | None = None) -> Config:
    """Read and check the configuration; defaults when there is no file."""
    path = config_path(home, explicit)
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such file") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    where = str(path) if path else "config"

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {problem}")

    unknown = set(data) - {"server", "notify"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown section (known: [server], [[notify]])")
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise fail("server", "must be a table ([server])")
    known = {
        "listen",
        "behind_tls_proxy",
        "concurrency",
        "timezone",
        "default_schedule",
        "stale_factor",
        "run_timeout",
        "jitter",
        "retry_delays",
        "run_log_days",
        "metrics_allow",
        "mirror",
        "storage_reserve_mb",
        "storage_warn_percent",
        "session_idle_minutes",
        "session_max_hours",
        "inventory_command_limit_kb",
        "inventory_total_limit_kb",
    }
    for key in server:
        if key not in known:
            raise fail(f"server.{key}", f"unknown key (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {"path": path}

    def number(key: str, low: float, high: float, *, whole: bool = True) -> None:
        if key not in server:
            return
        value = server[key]
        kinds = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            raise fail(f"server.{key}", f"must be {kind} from {low:g} to {high:g}, not {value!r}")
        values[key] = value

    if "listen" in server:
        listen = server["listen"]
        host, _, port = str(listen).rpartition(":")
        if (
            not isinstance(listen, str)
            or not host
            or not port.isdigit()
            or not 0 < int(port) < 65536
        ):
            raise fail(
                "server.listen", f"must be 'ADDRESS:PORT', e.g. '127.0.0.1:8080', not {listen!r}"
            )
        values["listen"] = listen
    if "behind_tls_proxy" in server:
        if not isinstance(server["behind_tls_proxy"], bool):
            raise fail("server.behind_tls_proxy", "must be true or false")
        values["behind_tls_proxy"] = server["behind_tls_proxy"]
    number("concurrency", 1, 64)
    number("stale_factor", 1, 100, whole=False)
    number("run_timeout", 30, 86400)
    number("jitter", 0, 3600)
    number("run_log_days", 1, 36500)
    number("storage_reserve_mb", 0, 1_000_000)
    number("storage_warn_percent", 0, 90, whole=False)
    number("session_idle_minutes", 1, 7 * 24 * 60)
    number("session_max_hours", 1, 30 * 24)
    number("inventory_command_limit_kb", 1, 1024 * 1024)
    number("inventory_total_limit_kb", 1, 4 * 1024 * 1024)
    each = values.get("inventory_command_limit_kb", Config.inventory_command_limit_kb)
    total = values.get("inventory_total_limit_kb", Config.inventory_total_limit_kb)
    if total < each:
        raise fail(
            "server.inventory_total_limit_kb",
            f"{total} KiB for all commands is less than inventory_command_limit_kb ({each} KiB) "
            "for one: raise it or lower the other",
        )
    idle = values.get("session_idle_minutes", Config.session_idle_minutes)
    longest = values.get("session_max_hours", Config.session_max_hours)
    if idle > longest * 60:
        raise fail(
            "server.session_idle_minutes",
            f"{idle} minutes is longer than session_max_hours ({longest} h): a session ends "
            "at the latter anyway; lower it or raise session_max_hours",
        )
    if "timezone" in server:
        try:
            ZoneInfo(str(server["timezone"]))
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise fail(
                "server.timezone",
                f"unknown time zone {server['timezone']!r} "
                "(use a name like 'Europe/Vienna' or 'UTC')",
            ) from err
        values["timezone"] = str(server["timezone"])
    if "default_schedule" in server:
        try:
            values["default_schedule"] = parse_schedule(str(server["default_schedule"])).spec
        except ConfigError as err:
            raise fail("server.default_schedule", str(err)) from err
    if "retry_delays" in server:
        delays = server["retry_delays"]
        if (
            not isinstance(delays, list)
            or not all(
                isinstance(item, int) and not isinstance(item, bool) and 0 < item <= 86400
                for item in delays
            )
            or len(delays) > 10
        ):
            raise fail(
                "server.retry_delays",
                "must be a list of up to 10 delays in seconds, e.g. [60, 300, 900]",
            )
        values["retry_delays"] = tuple(delays)
    if "mirror" in server:
        mirror = server["mirror"]
        if (
            not isinstance(mirror, str)
            or not mirror.startswith(("file://", "ssh://", "https://", "http://"))
            or "{host}" not in mirror
        ):
            raise fail(
                "server.mirror",
                "must be a git URL with {host} in it, e.g. "
                "'ssh://git@git.example.org/pve/{host}.git'",
            )
        values["mirror"] = mirror
    if "metrics_allow" in server:
        allow = server["metrics_allow"]
        if not isinstance(allow, list) or not all(isinstance(item, str) for item in allow):
            raise fail("server.metrics_allow", "must be a list of addresses, e.g. ['10.0.0.5']")
        values["metrics_allow"] = tuple(allow)
    targets = data.get("notify", [])
    if not isinstance(targets, list):
        raise fail("notify", "must be an array of tables ([[notify]])")
    values["targets"] = tuple(
        parse_target(item, f"notify[{index}]", fail) for index, item in enumerate(targets)
    )
    return Config(**values)


def check_target(item: dict[str, Any], where: str = "target") -> Target:
    """Check one target's settings (a [[notify]] table, or the web form's)."""

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {problem}")

    return parse_target(item, where, fail)


def parse_target(item: Any, key: str, fail: Any) -> Target:
    """One [[notify]] table."""
    if not isinstance(item, dict):
        raise fail(key, "must be a table")
    kind = item.get("type")
    if kind not in ("webhook", "email"):
        raise fail(f"{key}.type", "must be 'webhook' or 'email'")
    allowed = {"name", "type", "events"} | (
        {"url", "format", "token"}
        if kind == "webhook"
        else {"host", "port", "security", "username", "password", "from", "to"}
    )
    for name in item:
        if name not in allowed:
            raise fail(f"{key}.{name}", f"unknown key for a {kind} target")
    events = item.get("events", list(EVENTS))
    if not isinstance(events, list) or not all(event in EVENTS for event in events):
        raise fail(f"{key}.events", f"must be a list of: {', '.join(EVENTS)}")
    name = str(item.get("name", f"{kind}-{key}"))
    if kind == "webhook":
        url = item.get("url", "")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise fail(f"{key}.url", "must be an http:// or https:// URL")
        format_name = item.get("format", "generic")
        if format_name not in WEBHOOK_FORMATS:
            raise fail(f"{key}.format", f"must be one of: {', '.join(WEBHOOK_FORMATS)}")
        return Target(
            name, kind, tuple(events), url=url, format=format_name, token=str(item.get("token", ""))
        )
    host = item.get("host")
    if not isinstance(host, str) or not host:
        raise fail(f"{key}.host", "must name the SMTP server")
    port = item.get("port", 587)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise fail(f"{key}.port", "must be a port number")
    security = item.get("security", "starttls")
    if security not in ("starttls", "tls", "none"):
        raise fail(f"{key}.security", "must be 'starttls', 'tls' or 'none'")
    recipients = item.get("to", [])
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise fail(f"{key}.to", "must be one or more e-mail addresses")
    sender = item.get("from", "")
    if not isinstance(sender, str) or "@" not in sender:
        raise fail(f"{key}.from", "must be an e-mail address")
    return Target(
        name,
        kind,
        tuple(events),
        host=host,
        port=port,
        security=security,
        username=str(item.get("username", "")),
        password=str(item.get("password", "")),
        sender=sender,
        recipients=tuple(recipients),
    )
