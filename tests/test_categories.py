from __future__ import annotations

import pytest

from pvegit.categories import (
    CATEGORY_NAMES,
    DEFAULT_CATEGORIES,
    is_runtime,
    is_secret,
    matches_any,
    normalize_node_path,
    pattern_matches,
    resolve_selection,
    validate_include,
)
from pvegit.errors import ConfigError


def test_catalogue_has_the_required_categories() -> None:
    for name in ("cluster", "network", "storage", "system", "inventory", "secrets"):
        assert name in CATEGORY_NAMES
    assert "secrets" not in DEFAULT_CATEGORIES
    assert set(DEFAULT_CATEGORIES) == set(CATEGORY_NAMES) - {"secrets", "configdb"}


def test_default_selection_excludes_secrets_and_runtime_files() -> None:
    selection = resolve_selection(DEFAULT_CATEGORIES)
    assert not selection.include_secrets
    for path in (
        "etc/pve/priv/authkey.key",
        "etc/pve/priv/storage/pbs.enc",
        "etc/pve/nodes/pve1/pve-ssl.key",
        "etc/corosync/authkey",
        "etc/ssh/ssh_host_ed25519_key",
        "etc/pve/.version",
        "etc/pve/nodes/pve2/lrm_status",
        "etc/pve/sdn/mac-cache.json",
    ):
        assert matches_any(selection.excludes, path), path
    assert not matches_any(selection.excludes, "etc/pve/storage.cfg")
    assert not matches_any(selection.excludes, "etc/ssh/ssh_host_ed25519_key.pub")
    assert "etc/pve" in selection.paths
    assert "pveversion" in selection.commands


def test_secrets_are_collected_only_when_chosen() -> None:
    selection = resolve_selection((*DEFAULT_CATEGORIES, "secrets"))
    assert selection.include_secrets
    assert not matches_any(selection.excludes, "etc/pve/priv/storage/pbs.enc")
    # runtime files stay out even then
    assert matches_any(selection.excludes, "etc/pve/priv/authkey.key")
    assert matches_any(selection.excludes, "etc/pve/priv/lock/ha_agent_pve1_lock")


def test_secret_and_runtime_classification() -> None:
    assert is_secret("etc/pve/priv/token.cfg")
    assert is_secret("/etc/pve/nodes/pve1/pveproxy-ssl.key")
    assert not is_secret("etc/pve/nodes/pve1/pveproxy-ssl.pem")
    assert is_runtime("etc/pve/.members")
    assert not is_runtime("etc/pve/user.cfg")


def test_pattern_semantics_follow_tar() -> None:
    assert pattern_matches("etc/pve/priv", "etc/pve/priv/storage/x.pw")
    assert not pattern_matches("etc/pve/priv", "etc/pve/private")
    assert pattern_matches("etc/pve/nodes/*/lrm_status", "etc/pve/nodes/pve1/lrm_status")


def test_includes_are_validated() -> None:
    assert validate_include("/opt/scripts/*.sh") == "opt/scripts/*.sh"
    for bad in ("/etc/$(reboot)", "/etc/a b", "/etc/../root", "", "/.pvegit/x", "/etc/`id`"):
        with pytest.raises(ConfigError):
            validate_include(bad)
    selection = resolve_selection(["network"], includes=["/opt/x"], excludes=["/etc/hosts"])
    assert "opt/x" in selection.paths
    assert matches_any(selection.excludes, "etc/hosts")


def test_unknown_category_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown category 'clutser'"):
        resolve_selection(["clutser"])


def test_normalize_node_path() -> None:
    assert normalize_node_path("/etc/pve/storage.cfg") == "etc/pve/storage.cfg"
    assert normalize_node_path("etc//network/./interfaces/") == "etc/network/interfaces"
