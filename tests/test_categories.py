from __future__ import annotations

import pytest

from pvegit.config.categories import CATEGORY_NAMES, DEFAULT_CATEGORIES
from pvegit.config.selection import (
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


def test_every_pve9_path_is_in_its_category() -> None:
    from pvegit.config.categories import category
    from testbed.pve9 import PVE9_PATHS

    default = resolve_selection(DEFAULT_CATEGORIES)
    with_secrets = resolve_selection((*DEFAULT_CATEGORIES, "secrets"))
    for pattern, name in PVE9_PATHS:
        path = pattern.replace("*", "x")  # one path the pattern stands for
        assert matches_any(category(name).paths, path), (path, name)
        collected = matches_any(default.paths, path) and not matches_any(default.excludes, path)
        assert collected == (name != "secrets"), path
        assert is_secret(path) == (name == "secrets"), path
        assert matches_any(with_secrets.paths, path), path
        assert not matches_any(with_secrets.excludes, path), path
        assert not is_runtime(path), path


def test_systemd_enablement_links_are_left_out_and_masks_kept() -> None:
    selection = resolve_selection(DEFAULT_CATEGORIES)
    for path in (
        "etc/systemd/system/multi-user.target.wants/pve-guests.service",
        "etc/systemd/system/timers.target.wants/pve-housekeeping.timer",
        "etc/systemd/system/local-fs.target.requires/zfs-mount.service",
        "etc/systemd/system/sockets.target.upholds/x.socket",
    ):
        assert matches_any(selection.excludes, path), path
    for path in (
        "etc/systemd/system/rpcbind.service",  # masked: a link to /dev/null
        "etc/systemd/system/pve-guests.service.d/override.conf",
        "etc/systemd/system/pve-housekeeping.timer",
    ):
        assert matches_any(selection.paths, path), path
        assert not matches_any(selection.excludes, path), path


def test_nic_link_files_are_hardware_bound() -> None:
    from pvegit.config.categories import HARDWARE_BOUND

    for path in (
        "usr/local/lib/systemd/network/50-pve-nic0.link",
        "usr/local/lib/systemd/network/50-pmx-nic1.link",
        "etc/systemd/network/10-enwan0.link",
    ):
        assert matches_any(HARDWARE_BOUND, path), path
    assert not matches_any(HARDWARE_BOUND, "etc/systemd/network/25-bond.netdev")


def test_matches_any_agrees_with_pattern_matches_for_literal_and_glob_patterns() -> None:
    # matches_any answers literal patterns from a set and globs from a regex; both must
    # say what fnmatch (pattern_matches, tar's semantics) says, for every pattern.
    selection = resolve_selection((*DEFAULT_CATEGORIES, "secrets"))
    patterns = (*selection.paths, *selection.excludes, "etc/", "a[b", "", "x\\y")
    names = [
        *patterns,
        *(f"{pattern}/below/it" for pattern in patterns),
        *(f"{pattern}x" for pattern in patterns),
        "etc/pve/nodes/pve1/lrm_status",
        "etc/pve/privatex",
        "etc//x",
        "/x",
        "",
    ]
    for name in names:
        expected = any(pattern_matches(pattern, name) for pattern in patterns)
        assert matches_any(patterns, name) == expected, name
        for pattern in patterns:
            assert matches_any((pattern,), name) == pattern_matches(pattern, name), (pattern, name)
