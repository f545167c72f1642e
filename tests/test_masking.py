"""The content model (pvegit.content.filediff) and its masked lines
(pvegit.content.masking), unit by unit; tests/test_secret_lines.py checks every
face on a real node."""

from __future__ import annotations

import random
import string
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvegit.config.selection import (
    is_runtime,
    is_secret,
    link_aliases,
    matches_any,
    resolve_link_path,
    resolve_selection,
)
from pvegit.content.filediff import MAX_DIFF_BYTES, diff_contents, file_content
from pvegit.content.masking import MASK, mask_lines
from pvegit.git.model import ChangeKind, FileChange
from pvegit.textsafe import printable

MASKED = [  # path, line, the secret value in it
    ("etc/iscsi/iscsid.conf", "node.session.auth.password = Chap1", "Chap1"),
    ("etc/iscsi/iscsid.conf", "node.session.auth.password_in=Chap 2", "Chap 2"),
    ("etc/iscsi/iscsid.conf", "#discovery.sendtargets.auth.password = old", "old"),
    ("etc/frr/frr.conf", "password zebra", "zebra"),
    ("etc/frr/frr.conf", "enable password zebra", "zebra"),
    ("etc/frr/frr.conf.local", " neighbor 10.0.0.2 password bgp-secret", "bgp-secret"),
    ("etc/frr/frr.conf", " neighbor PEERS password 7 bgp", "bgp"),
    ("etc/frr/frr.conf", " isis password md5 isis-secret", "isis-secret"),
    ("etc/frr/frr.conf", " area-password clear area-secret", "area-secret"),
    ("etc/frr/frr.conf", " ip ospf authentication-key ospf-key", "ospf-key"),
    ("etc/frr/frr.conf", " ip ospf message-digest-key 1 md5 ospf-md5", "ospf-md5"),
    ("etc/frr/frr.conf", "  key-string chain-secret", "chain-secret"),
    ("etc/network/interfaces", "\twpa-psk wifi-secret", "wifi-secret"),
    ("etc/network/interfaces.d/wlan", "    wpa-password wifi secret", "wifi secret"),
    ("etc/network/interfaces.new", "\twireless-key s:wep-secret", "s:wep-secret"),
    ("etc/systemd/network/wg0.netdev", "PrivateKey=wg-secret=", "wg-secret="),
    ("etc/systemd/network/wg0.netdev", "PresharedKey = wg-psk=", "wg-psk="),
    ("etc/fstab", "//nas/iso /mnt cifs username=u,password=cifs-secret,vers=3 0 0", "cifs-secret"),
    ("etc/postfix/main.cf", "smtp_sasl_password_maps = static:me:mail-secret", "mail-secret"),
    ("etc/pve/nodes/pve1/qemu-server/100.conf", "cipassword: $5$hash", "$5$hash"),
    ("etc/pve/qemu-server/100.conf", "cipassword: $5$hash", "$5$hash"),  # through the link
    ("etc/ppp/peers/provider", "password ppp-secret", "ppp-secret"),
    ("etc/apt/apt.conf.d/80proxy", 'Acquire::http::Proxy "http://u:apt-pw@proxy:3142";', "apt-pw"),
    ("etc/apt/sources.list", "deb https://u:repo-pw@repo.example.org/debian main", "repo-pw"),
    ("usr/local/bin/job", "curl https://backup:script-pw@example.org/x", "script-pw"),
]


@pytest.mark.parametrize(("path", "line", "secret"), MASKED)
def test_a_password_line_keeps_its_key_and_loses_its_value(
    path: str, line: str, secret: str
) -> None:
    assert mask_lines(path, [line]) == ((line.replace(secret, MASK),), 1)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("etc/frr/frr.conf", "router bgp 65001"),
        ("etc/frr/frr.conf", "no password"),
        ("etc/iscsi/iscsid.conf", "node.session.auth.username = pve"),
        ("etc/network/interfaces", "\twpa-ssid lab"),
        ("etc/network/interfaces", "\taddress 10.0.0.1/24"),
        ("etc/pve/storage.cfg", "\tpassword is in priv/storage"),  # rules are per file
        ("etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main"),
        ("etc/fstab", "proc /proc proc defaults 0 0"),
    ],
)
def test_other_lines_are_left_alone(path: str, line: str) -> None:
    assert mask_lines(path, [line]) == ((line,), 0)


def test_a_private_key_inside_any_file_is_masked_between_its_markers() -> None:
    lines = [
        "x=1",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC",
        "AAAA",
        "-----END OPENSSH PRIVATE KEY-----",
        "y",
    ]
    shown, count = mask_lines("usr/local/bin/deploy", lines)
    assert shown == ("x=1", lines[1], MASK, MASK, lines[4], "y") and count == 2


@pytest.mark.parametrize(
    ("path", "line", "shown"),
    [
        (  # a key in a shell variable, its line breaks written as \n
            "usr/local/bin/deploy.sh",
            'CERT_KEY="-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----"',
            f'CERT_KEY="-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----"',
        ),
        (  # in a JSON string, with text after it
            "etc/pve/nodes/pve1/config",
            '{"key": "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQ\\n-----END EC PRIVATE KEY-----\\n"}',
            f'{{"key": "-----BEGIN EC PRIVATE KEY-----{MASK}-----END EC PRIVATE KEY-----\\n"}}',
        ),
        (  # two keys on one line, and what lies between them kept
            "etc/x.json",
            '["-----BEGIN RSA PRIVATE KEY-----\\nAAA\\n-----END RSA PRIVATE KEY-----", '
            '"-----BEGIN OPENSSH PRIVATE KEY-----b3Bl-----END OPENSSH PRIVATE KEY-----"]',
            f'["-----BEGIN RSA PRIVATE KEY-----{MASK}-----END RSA PRIVATE KEY-----", '
            f'"-----BEGIN OPENSSH PRIVATE KEY-----{MASK}-----END OPENSSH PRIVATE KEY-----"]',
        ),
    ],
)
def test_a_private_key_on_one_line_is_masked_between_its_markers(
    path: str, line: str, shown: str
) -> None:
    assert mask_lines(path, [line]) == ((shown,), 1)
    assert mask_lines(path, [shown]) == ((shown,), 0)  # masking twice changes nothing


def test_a_private_key_beginning_and_ending_inside_lines_is_masked_whole() -> None:
    lines = [
        'KEY="-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
        "BKcwggSjAgEAAoIBAQC7",
        "",
        'QIDAQAB\\n-----END PRIVATE KEY-----" # the deploy key',
        "URL=http://example.org",
    ]
    shown, count = mask_lines("usr/local/bin/deploy", lines)
    assert shown == (
        f'KEY="-----BEGIN PRIVATE KEY-----{MASK}',
        MASK,
        "",
        f'{MASK}-----END PRIVATE KEY-----" # the deploy key',
        "URL=http://example.org",
    )
    assert count == 3


@given(
    st.text(alphabet=string.ascii_letters + string.digits + "+/=\\", min_size=1),
    st.text(alphabet=string.ascii_letters + ' ="{}:', max_size=20),
)
def test_no_part_of_a_one_line_key_is_shown(body: str, around: str) -> None:
    line = f"{around}-----BEGIN PRIVATE KEY-----{body}-----END PRIVATE KEY-----{around}"
    expected = f"{around}-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----{around}"
    assert mask_lines("etc/anything", [line]) == ((expected,), 1)


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        # '@' and '/' unencoded in the password: it runs to the URL's last '@'.
        (
            'Acquire::http::Proxy "http://bob:p@ss/w0rd@proxy:3142";',
            f'Acquire::http::Proxy "http://bob:{MASK}@proxy:3142";',
        ),
        ("http://bob:p:a@ss@proxy/x", f"http://bob:{MASK}@proxy/x"),
        # an e-mail address as the user name
        ("https://bob@example.org:pw@proxy/", f"https://bob@example.org:{MASK}@proxy/"),
        # two URLs on a line, each its own
        ("ftp://u:pw1@h/x http://v:pw2@k/", f"ftp://u:{MASK}@h/x http://v:{MASK}@k/"),
        ('{"a":"http://u:pw@h","b":"x@y"}', f'{{"a":"http://u:{MASK}@h","b":"x@y"}}'),
        # an '@' in the path after a password: more is masked, never less
        ("https://u:tok@registry.example.org/@scope/pkg", f"https://u:{MASK}@scope/pkg"),
        # no password: left alone
        ("http://user@host:8080/path", "http://user@host:8080/path"),
        (
            "git+ssh://git@host.example.org:org/repo.git",
            "git+ssh://git@host.example.org:org/repo.git",
        ),
        ("http://[::1]:3128/", "http://[::1]:3128/"),
        ("ssh://root@10.0.0.1:22", "ssh://root@10.0.0.1:22"),
        ("http://u:@host/", "http://u:@host/"),
    ],
)
def test_a_password_in_a_url_is_masked_whole(line: str, shown: str) -> None:
    assert mask_lines("etc/apt/apt.conf.d/80proxy", [line]) == ((shown,), int(line != shown))


@given(st.text(alphabet=string.ascii_letters + string.digits + "@/:#?%!$&*+,;=-._~", min_size=1))
def test_no_part_of_a_url_password_is_shown(password: str) -> None:
    line = f'Acquire::http::Proxy "http://user:{password}@proxy.example.org:3142";'
    expected = f'Acquire::http::Proxy "http://user:{MASK}@proxy.example.org:3142";'
    assert mask_lines("etc/apt/apt.conf.d/80proxy", [line])[0] == (expected,)


def test_pve_local_is_classified_where_it_leads() -> None:
    assert resolve_link_path("etc/pve/local/pve-ssl.key") == "etc/pve/nodes/*/pve-ssl.key"
    assert (
        resolve_link_path("etc/pve/qemu-server/100.conf") == "etc/pve/nodes/*/qemu-server/100.conf"
    )
    assert resolve_link_path("etc/pve/localhost") == "etc/pve/localhost"
    assert is_secret("etc/pve/local/pve-ssl.key") and is_secret("/etc/pve/local/pveproxy-ssl.key")
    assert not is_secret("etc/pve/local/pve-ssl.pem")
    assert is_runtime("etc/pve/local/lrm_status")
    assert link_aliases("etc/pve/nodes/*/pve-ssl.key") == ("etc/pve/local/pve-ssl.key",)
    assert link_aliases("etc/pve/nodes/pve2/pve-ssl.key") == ()  # another node's folder
    assert set(link_aliases("etc/pve/nodes")) == {
        "etc/pve/local",
        "etc/pve/qemu-server",
        "etc/pve/lxc",
        "etc/pve/openvz",
    }
    assert link_aliases("etc/pve/nodes/*/qemu-server/1*.conf") == (
        "etc/pve/local/qemu-server/1*.conf",
        "etc/pve/qemu-server/1*.conf",
    )
    # tar matches the names it reads: the link's names are excluded on the node too.
    selection = resolve_selection(["network"], ["/etc/pve/local/*"], ["/etc/pve/nodes/*/host.fw"])
    for path in ("etc/pve/local/pve-ssl.key", "etc/pve/local/lrm_status", "etc/pve/local/host.fw"):
        assert matches_any(selection.excludes, path), path
    assert not matches_any(selection.excludes, "etc/pve/local/pve-ssl.pem")
    with_secrets = resolve_selection(["network", "secrets"], ["/etc/pve/local/*"])
    assert not matches_any(with_secrets.excludes, "etc/pve/local/pve-ssl.key")


@pytest.mark.parametrize(
    "path",
    [
        "etc/iscsi/nodes/iqn.2024-01.org.example:store/10.0.0.5,3260,1/default",
        "etc/iscsi/send_targets/10.0.0.5,3260/st_config",
        "etc/postfix/sasl/sasl_passwd",
        "etc/postfix/sasl_passwd.lmdb",
        "etc/chrony/chrony.keys",
        "etc/ppp/chap-secrets",
        "etc/ppp/pap-secrets",
        "etc/corosync/qdevice/net/nssdb/key4.db",
        "etc/ssl/private/ssl-cert-snakeoil.key",
    ],
)
def test_the_extended_secret_list(path: str) -> None:
    assert is_secret(path)
    assert matches_any(
        resolve_selection(["cluster", "network", "storage", "system"]).excludes, path
    )


def test_iscsid_conf_is_collected_and_masked_not_secret() -> None:
    assert not is_secret("etc/iscsi/iscsid.conf")
    selection = resolve_selection(["storage"])
    assert not matches_any(selection.excludes, "etc/iscsi/iscsid.conf")


def _change(kind: str = "modified", path: str = "etc/frr/frr.conf") -> FileChange:
    return FileChange(
        path,
        ChangeKind(kind),
        None if kind == "added" else 0o100644,
        None if kind == "deleted" else 0o100644,
        None if kind == "added" else "1" * 40,
        None if kind == "deleted" else "2" * 40,
    )


def test_a_changed_password_is_a_changed_masked_line() -> None:
    old = b"hostname pve1\npassword old-secret\nline vty\n"
    new = b"hostname pve1\npassword new-secret\nline vty\n"
    diff = diff_contents(_change(), old, new)
    assert diff.kind == "text" and (diff.added, diff.removed, diff.masked) == (1, 1, 2)
    assert diff.hidden and not diff.revealed
    assert "-password ********\n+password ********\n" in diff.unified()
    assert "secret" not in diff.unified() and diff.changed_lines() == [
        "-password ********",
        "+password ********",
    ]
    revealed = diff_contents(_change(), old, new, reveal=True)
    assert revealed.hidden and revealed.masked == 0
    assert "-password old-secret\n+password new-secret\n" in revealed.unified()


def test_kinds_and_caps() -> None:
    secret = diff_contents(_change(path="etc/pve/priv/token.cfg"), b"a 1\n", b"a 2\n")
    assert secret.kind == "secret" and secret.lines == () and "2\n" not in secret.unified()
    assert "Secret files a/etc/pve/priv/token.cfg" in secret.unified()
    assert diff_contents(_change(path="etc/x"), b"\0", b"\0\1").kind == "binary"
    big = b"x\n" * (MAX_DIFF_BYTES // 2)
    assert diff_contents(_change(path="etc/x"), big, big + b"y\n").kind == "too-large"
    long = diff_contents(_change(path="etc/x"), b"", b"a\n" * 50, max_lines=10)
    assert long.truncated and len(long.lines) == 10 and long.added == 50
    content = file_content("etc/frr/frr.conf", b"password x\nhostname h\n")
    assert content.text == "password ********\nhostname h\n" and content.masked == 1
    assert file_content("etc/pve/priv/token.cfg", b"t 1\n").text is None
    assert file_content("etc/pve/priv/token.cfg", b"t 1\n", reveal=True).text == "t 1\n"
    assert file_content("etc/x", b"x" * 10, max_bytes=5).kind == "too-large"


def test_an_unmasked_diff_applies_with_the_real_git(tmp_path: Path) -> None:
    """The CLI and the API print the model's unified text: for a file without secret lines
    the real ``git apply`` turns the old file into the new one with it (a missing final
    newline on either side included)."""
    rng = random.Random(7)
    # Characters str.splitlines breaks at, which git does not: one line to git.
    pieces = ["a\n", "b\n", "c\n", "\n", "ü\n", "x = 1\n", "e\r\n", "f\x0cg\n", "h\ri\x1cj\n"]

    def content() -> bytes:
        text = "".join(rng.choices(pieces, k=rng.randint(0, 10)))
        return (text + rng.choice(["", "d"])).encode()

    for number in range(150):
        kind = rng.choice(["added", "modified", "deleted"])
        old = b"" if kind == "added" else content()
        new = b"" if kind == "deleted" else content()
        if old == new:
            continue
        work = tmp_path / str(number)
        (work / "etc").mkdir(parents=True)
        if kind != "added":
            (work / "etc/x").write_bytes(old)
        patch = work / "change.patch"
        patch.write_text(diff_contents(_change(kind, "etc/x"), old, new).unified())
        subprocess.run(["git", "apply", "change.patch"], cwd=work, check=True, capture_output=True)
        assert (work / "etc/x").exists() == (kind != "deleted")
        if kind != "deleted":
            assert (work / "etc/x").read_bytes() == new


def test_a_binary_file_is_masked_like_a_text_file() -> None:
    """A NUL byte makes a file binary, not free of passwords: the bytes a face writes
    whole (``pvegit show``) are masked too, other bytes kept as they are."""
    data = b"! frr\x00\nrouter bgp 65000\n neighbor 10.0.0.2 password S3cretBGP\n\xff end"
    content = file_content("etc/frr/frr.conf", data, max_bytes=None)
    assert (content.kind, content.text, content.masked, content.hidden) == ("binary", None, 1, True)
    assert content.data == data.replace(b"S3cretBGP", MASK.encode())
    revealed = file_content("etc/frr/frr.conf", data, reveal=True, max_bytes=None)
    assert (revealed.data, revealed.masked, revealed.hidden) == (data, 0, True)
    key = b"\x00\x01\n-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n"
    assert file_content("usr/lib/blob.bin", key).data == key.replace(b"MIIEvQ", MASK.encode())
    plain = b"\x00 router bgp 65000\n"
    assert file_content("etc/frr/frr.conf", plain).data is plain
    text = file_content("etc/frr/frr.conf", b"hostname caf\xe9\npassword x\n")
    assert text.data == b"hostname caf\xe9\npassword ********\n"  # bytes not UTF-8 kept
    assert text.text == "hostname caf\ufffd\npassword ********\n"


# Names a node may give a file: each must stay on its diff header lines.
ODD_NAMES = [
    "etc/motd\n+wpa-psk hunter2 (a line forged by a file name)",
    "etc/\x1b]0;pwned\x07\x1b[2J.cfg",
    "etc/tab\there.cfg",
    'etc/quote"and\\backslash.cfg',
    "etc/name with spaces.cfg",
    "etc/ünïcödé-名前.cfg",
    "etc/del\x7f.cfg",
    "etc/latin1-\udce9t\udce9.cfg",  # bytes that are not UTF-8
    "etc/csi-\x9b2J.cfg",  # a C1 control: git would leave it raw
]


def _git_diff(work: Path, name: str, old: bytes | None, new: bytes | None) -> str:
    """What the real git prints for the change (quotePath off: UTF-8 names as they are)."""

    def run(*arguments: str) -> str:
        return subprocess.run(
            ["git", "-c", "core.quotePath=false", *arguments],
            cwd=work,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8", "surrogateescape")

    work.mkdir()
    run("init", "-q")
    file = work / name
    file.parent.mkdir(parents=True, exist_ok=True)
    for data in (old, new):
        if data is None:
            file.unlink(missing_ok=True)
        else:
            file.write_bytes(data)
        run("add", "-A")
        run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", ".")
    lines = run("diff", "HEAD~1", "HEAD").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("index "))


@pytest.mark.parametrize("name", ODD_NAMES, ids=[printable(name) for name in ODD_NAMES])
@pytest.mark.parametrize("kind", ["added", "modified", "deleted"])
def test_an_odd_name_stays_on_its_header_lines_as_git_writes_it(
    tmp_path: Path, name: str, kind: str
) -> None:
    old = None if kind == "added" else b"hello\n"
    new = None if kind == "deleted" else b"hello\nworld\n"
    diff = diff_contents(_change(kind, name), old or b"", new or b"")
    text = diff.unified()
    assert printable(text, lines=True) == text  # nothing that drives a terminal
    body = [line for line in text.splitlines() if line[:1] in "+-" and line[:4] not in "+++ --- "]
    assert (
        body == {"added": ["+hello", "+world"], "modified": ["+world"], "deleted": ["-hello"]}[kind]
    )
    if not any("\x80" <= character <= "\x9f" or character >= "\udc80" for character in name):
        assert text == _git_diff(tmp_path / "git", name, old, new)
    # The real git reads the exact name back.
    work = tmp_path / "apply"
    (work / name).parent.mkdir(parents=True)
    if old is not None:
        (work / name).write_bytes(old)
    (work / "change.patch").write_text(text, encoding="utf-8", errors="surrogateescape")
    subprocess.run(["git", "apply", "change.patch"], cwd=work, check=True, capture_output=True)
    assert (work / name).exists() == (new is not None)
    if new is not None:
        assert (work / name).read_bytes() == new
