"""Unit tests for pvegit/config: pvegit.toml key by key, host settings, schedules.

Pure logic, no node, no server. What tests/test_notify.py (a full file),
tests/test_sessions.py (session lifetimes) and tests/test_schedules.py
(the schedule forms) already check is not repeated here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pvegit.config import host_settings
from pvegit.config.categories import DEFAULT_CATEGORIES
from pvegit.config.file import SYSTEM_CONFIG, Config, check_target, config_path, parse_config
from pvegit.config.schedules import parse_schedule
from pvegit.errors import ConfigError
from pvegit.state.store import Host

# -- pvegit.toml: where it is read from -------------------------------------------------


def test_config_path_prefers_the_explicit_file_then_the_environment_then_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PVEGIT_CONFIG", raising=False)
    explicit = tmp_path / "explicit.toml"
    in_home = tmp_path / "pvegit.toml"
    expected_default = SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None
    assert config_path(tmp_path) == expected_default
    in_home.write_text("")
    assert config_path(tmp_path) == in_home
    monkeypatch.setenv("PVEGIT_CONFIG", str(tmp_path / "from-env.toml"))
    assert config_path(tmp_path) == tmp_path / "from-env.toml"
    assert config_path(tmp_path, explicit) == explicit


def test_a_named_file_that_is_missing_is_an_error_not_the_defaults(tmp_path: Path) -> None:
    from pvegit.config.file import load_config

    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path, tmp_path / "missing.toml")


# -- pvegit.toml: [server], key by key ---------------------------------------------------


def _server_error(server: Any) -> str:
    with pytest.raises(ConfigError) as error:
        parse_config({"server": server}, Path("/etc/pvegit/pvegit.toml"))
    return str(error.value)


def test_every_message_names_the_file_and_the_key() -> None:
    message = _server_error({"jitter": -1})
    assert message.startswith("/etc/pvegit/pvegit.toml: server.jitter: ")
    with pytest.raises(ConfigError, match=r"^config: server\.jitter: "):
        parse_config({"server": {"jitter": -1}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"servers": {}}, "servers: unknown section"),
        ({"server": []}, "server: must be a table"),
        ({"notify": {}}, "notify: must be an array of tables"),
        ({"notify": ["x"]}, r"notify\[0\]: must be a table"),
    ],
)
def test_sections_have_their_shape(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("concurrency", True),  # a bool is not a number, though Python says it is an int
        ("concurrency", 2.5),  # whole numbers only
        ("concurrency", 65),
        ("run_timeout", 29),
        ("jitter", 3601),
        ("run_log_days", "30"),
        ("storage_reserve_mb", -1),
        ("storage_warn_percent", 91),
        ("stale_factor", 0.5),
        ("inventory_command_limit_kb", 0),
    ],
)
def test_numbers_outside_their_range_name_the_range(key: str, value: Any) -> None:
    assert f"server.{key}: must be a" in _server_error({key: value})
    assert "from " in _server_error({key: value})


def test_numbers_inside_their_range_are_taken() -> None:
    config = parse_config(
        {"server": {"stale_factor": 3, "storage_warn_percent": 12.5, "run_timeout": 30}}
    )
    assert (config.stale_factor, config.storage_warn_percent, config.run_timeout) == (3, 12.5, 30)


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "127.0.0.1:65536", ":8080", 8080, "host:x"])
def test_listen_needs_an_address_and_a_port(listen: Any) -> None:
    assert "server.listen: must be 'ADDRESS:PORT'" in _server_error({"listen": listen})


def test_an_ipv6_listen_address_is_split_at_its_last_colon() -> None:
    assert parse_config({"server": {"listen": "[::1]:8443"}}).listen == "[::1]:8443"


def test_behind_tls_proxy_is_a_boolean() -> None:
    assert "must be true or false" in _server_error({"behind_tls_proxy": "yes"})
    assert parse_config({"server": {"behind_tls_proxy": True}}).behind_tls_proxy is True


def test_the_inventory_total_may_not_be_below_one_command() -> None:
    message = _server_error({"inventory_command_limit_kb": 512, "inventory_total_limit_kb": 256})
    assert "server.inventory_total_limit_kb: 256 KiB for all commands is less than" in message
    limits = parse_config({"server": {"inventory_command_limit_kb": 8}}).inventory_limits
    assert limits.command_bytes == 8 * 1024
    assert limits.total_bytes == Config.inventory_total_limit_kb * 1024


@pytest.mark.parametrize("delays", [[0], [True], [86401], list(range(1, 12)), "60"])
def test_retry_delays_are_a_short_list_of_seconds(delays: Any) -> None:
    assert "server.retry_delays: must be a list" in _server_error({"retry_delays": delays})


@pytest.mark.parametrize(
    "mirror",
    ["ssh://git@example.org/pve.git", "git@example.org:{host}.git", 5, "ftp://x/{host}.git"],
)
def test_a_mirror_is_a_git_url_with_the_host_in_it(mirror: Any) -> None:
    assert "server.mirror: must be a git URL with {host}" in _server_error({"mirror": mirror})


def test_a_good_mirror_and_time_zone_are_kept() -> None:
    config = parse_config(
        {"server": {"mirror": "file:///srv/{host}.git", "timezone": "Europe/Vienna"}}
    )
    assert config.mirror == "file:///srv/{host}.git"
    assert str(config.zone) == "Europe/Vienna"


def test_metrics_allow_is_a_list_of_strings() -> None:
    assert "server.metrics_allow: must be a list" in _server_error({"metrics_allow": "10.0.0.5"})
    assert "server.metrics_allow" in _server_error({"metrics_allow": [10]})


# -- pvegit.toml: [[notify]] targets -----------------------------------------------------


def _target_error(item: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        check_target(item, "notify[3]")
    return str(error.value)


def test_a_target_takes_only_the_keys_of_its_kind() -> None:
    webhook = {"type": "webhook", "url": "https://example.org/hook", "host": "smtp"}
    assert _target_error(webhook) == "notify[3]: notify[3].host: unknown key for a webhook target"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"host": ""}, "host"),
        ({"port": 0}, "port"),
        ({"port": "25"}, "port"),
        ({"security": "ssl"}, "security"),
        ({"to": []}, "to"),
        ({"to": ["root"]}, "to"),
        ({"from": "pvegit"}, "from"),
    ],
)
def test_an_email_target_is_checked_key_by_key(changes: dict[str, Any], key: str) -> None:
    item = {"type": "email", "host": "smtp.example.org", "from": "p@example.org", "to": "a@b.c"}
    assert f"notify[3].{key}: " in _target_error({**item, **changes})


def test_a_webhook_format_is_one_of_the_known_ones() -> None:
    item = {"type": "webhook", "url": "https://example.org/hook", "format": "teams"}
    assert "notify[3].format: must be one of: generic, slack, gotify, ntfy" in _target_error(item)


def test_a_target_without_a_name_is_named_after_its_kind_and_place() -> None:
    target = check_target({"type": "webhook", "url": "http://example.org/"}, "notify[0]")
    assert target.name == "webhook-notify[0]" and target.format == "generic"
    assert target.events == ("failed", "stale", "recovered", "changed", "restore")


# -- host settings, field by field -------------------------------------------------------


def test_addresses() -> None:
    assert host_settings.check_address(" 192.0.2.1 ", local_allowed=False) == "192.0.2.1"
    assert host_settings.check_address("[2001:db8::1]", local_allowed=False) == "[2001:db8::1]"
    assert host_settings.check_address("local:/mnt/x", local_allowed=True) == "local:/mnt/x"
    with pytest.raises(ConfigError, match="is this machine"):
        host_settings.check_address("local", local_allowed=False)
    for bad in ("", "a b", "pve;reboot", "pve/1"):
        with pytest.raises(ConfigError, match="not a host name or IP address"):
            host_settings.check_address(bad, local_allowed=True)


def test_ports_users_and_names() -> None:
    assert host_settings.check_port("2222") == 2222 and host_settings.check_port(22) == 22
    for bad, message in (("x", "not a number"), ("0", "out of range"), (65536, "out of range")):
        with pytest.raises(ConfigError, match=message):
            host_settings.check_port(bad)
    assert host_settings.check_user(" pvebackup ") == "pvebackup"
    with pytest.raises(ConfigError, match="not a valid login name"):
        host_settings.check_user("Root")
    assert host_settings.check_name(" pve1 ") == "pve1"
    with pytest.raises(ConfigError):
        host_settings.check_name("../x")


def test_categories_paths_and_schedules_skip_blanks_and_normalize() -> None:
    assert host_settings.check_categories(["cluster", " ", " network "]) == ("cluster", "network")
    with pytest.raises(ConfigError, match="choose at least one category"):
        host_settings.check_categories(["", " "])
    assert host_settings.check_includes(["/etc/x", "", "  "]) == ("etc/x",)
    assert host_settings.check_excludes(["", "/etc/pve/x*"]) == ("etc/pve/x*",)
    assert host_settings.check_schedule(None) is None
    assert host_settings.check_schedule("  ") is None
    assert host_settings.check_schedule("Daily at 1:05") == "daily at 01:05"


LOCAL = Host("here", "local", categories=("cluster",), schedule="hourly")
REMOTE = Host("pve1", "192.0.2.1", categories=("cluster",))


def test_the_web_may_change_only_when_and_what_a_local_host_leaves_out() -> None:
    host_settings.check_web_edit(LOCAL, {"schedule": "daily", "excludes": ("etc/x",)})
    host_settings.check_web_edit(LOCAL, {"address": "local", "categories": ("cluster",)})
    with pytest.raises(ConfigError, match=r"its address, categories can only be changed by root"):
        host_settings.check_web_edit(LOCAL, {"address": "local:/", "categories": ("network",)})
    host_settings.check_web_edit(REMOTE, {"address": "192.0.2.2"})
    with pytest.raises(ConfigError, match="pvegit restore here"):
        host_settings.check_web_restore(LOCAL)
    host_settings.check_web_restore(REMOTE)


def test_the_web_form_locks_a_local_hosts_where_and_what() -> None:
    assert host_settings.locked_from_web(None) == ()
    assert host_settings.locked_from_web(REMOTE) == ()
    locked = host_settings.locked_from_web(LOCAL)
    assert locked == ("address", "port", "user", "categories", "includes")


def test_check_settings_collects_every_error_at_once() -> None:
    checked = host_settings.check_settings(
        {"name": "../x", "address": "a b", "port": "0", "user": "R", "schedule": "often"},
        as_root=True,
    )
    assert set(checked.errors) == {"name", "address", "port", "user", "schedule"}
    assert checked.values == {}
    with pytest.raises(ConfigError) as first:
        checked.raise_first()
    assert str(first.value) == checked.errors["name"]  # in the order of the fields


def test_check_settings_leaves_out_what_was_not_given() -> None:
    checked = host_settings.check_settings(
        {"port": 2222, "user": None, "includes": ["/etc/x"]}, as_root=True
    )
    assert checked.values == {"port": 2222, "includes": ("etc/x",)} and not checked.errors
    checked.raise_first()  # nothing wrong: nothing raised


def test_only_root_makes_a_local_host_but_the_web_may_keep_one() -> None:
    assert host_settings.check_settings({"address": "local"}, as_root=True).values == {
        "address": "local"
    }
    made_from_web = host_settings.check_settings({"address": "local"}, as_root=False)
    assert "is this machine" in made_from_web.errors["address"]
    kept = host_settings.check_settings(
        {"address": "local", "schedule": "daily", "categories": ["cluster"]},
        current=LOCAL,
        as_root=False,
    )
    assert not kept.errors and kept.values["schedule"] == "daily"
    moved = host_settings.check_settings(
        {"address": "local", "categories": list(DEFAULT_CATEGORIES)}, current=LOCAL, as_root=False
    )
    assert "can only be changed by root" in moved.errors["address"]
    assert not host_settings.check_settings(
        {"categories": ["network"]}, current=LOCAL, as_root=True
    ).errors


# -- schedules: what tests/test_schedules.py does not ------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "seconds", "at", "day"),
    [
        ("  WEEKLY   on  Monday at 7:05 ", "weekly", 604800, "07:05", "monday"),
        ("daily", "every", 86400, None, None),
        ("every 1 day", "every", 86400, None, None),
        ("every 5 minutes", "every", 300, None, None),
        ("every 1 hour", "every", 3600, None, None),
    ],
)
def test_schedule_parts(
    spec: str, kind: str, seconds: int, at: str | None, day: str | None
) -> None:
    schedule = parse_schedule(spec)
    assert (schedule.kind, schedule.interval_seconds, schedule.at, schedule.day) == (
        kind,
        seconds,
        at,
        day,
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("every 4 minutes", "the shortest interval is 5 minutes"),
        ("every 0 hours", "the shortest interval is 5 minutes"),
        ("daily at 7:5", "not a time of day"),
        ("daily at 12:60", "not a time of day"),
        ("weekly on monday at noon", "not a time of day"),
        ("every 2 weeks", "not understood"),
    ],
)
def test_schedule_errors_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_schedule(spec)
