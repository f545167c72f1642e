"""The systemd units and the install guide."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
HARDENING = (
    "NoNewPrivileges",
    "ProtectSystem",
    "PrivateTmp",
    "ProtectHome",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectControlGroups",
    "RestrictNamespaces",
    "RestrictAddressFamilies",
    "SystemCallFilter",
    "CapabilityBoundingSet",
)


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("PVEGIT_REQUIRE_SSHD"):
            pytest.fail(f"{tool} is missing")
        pytest.skip(f"{tool} is missing")
    return found


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require("systemd-analyze")
    pvegit = shutil.which("pvegit") or "/bin/true"
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/pvegit/venv/bin/pvegit", pvegit)
        (tmp_path / unit.name).write_text(text)
    names = sorted(str(path) for path in tmp_path.iterdir())
    result = subprocess.run([analyze, "verify", *names], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_service_is_hardened_and_every_hardening_line_is_explained() -> None:
    lines = (UNITS / "pvegit.service").read_text().splitlines()
    for key in HARDENING:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        above = lines[max(0, index - 4) : index]
        assert any(line.startswith("#") for line in above), f"{key} has no comment above it"
    text = "\n".join(lines)
    assert "StateDirectory=pvegit" in text and "User=pvegit" in text
    assert re.search(r"^ExecStart=.*pvegit serve$", text, re.M)


def test_timer_is_persistent_and_spread() -> None:
    text = (UNITS / "pvegit-snapshot.timer").read_text()
    assert "Persistent=true" in text and "RandomizedDelaySec=" in text
    assert "pvegit snapshot --all" in (UNITS / "pvegit-snapshot.service").read_text()


def test_install_guide_works_in_a_clean_root() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("PVEGIT_REQUIRE_SSHD"):
            pytest.fail("the install check needs root and unshare")
        pytest.skip("the install check needs root and unshare")
    require("systemd-analyze")
    result = subprocess.run(
        ["bash", str(ROOT / "deploy/check-install.sh"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "install check passed" in result.stdout
