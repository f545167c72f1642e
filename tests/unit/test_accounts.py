"""Unit tests for accounts: the hashes in state/credentials.py, users (actions/users.py)
and API tokens (actions/tokens.py), on a real store in tmp_path.

The faces are tested in tests/test_web.py, tests/test_roles.py, tests/test_sessions.py
and tests/test_api.py.
"""

from __future__ import annotations

import pytest

from pvegit.actions.tokens import create_token, list_tokens, revoke_token
from pvegit.actions.users import (
    NewUser,
    RoleChange,
    add_user,
    end_sessions,
    make_demo_admin,
    remove_user,
    set_password,
    set_role,
)
from pvegit.config.names import is_plain_name
from pvegit.config.roles import ADMIN, OPERATOR, VIEWER
from pvegit.errors import ConfigError, NotFound
from pvegit.state.credentials import (
    TOKEN_PREFIX,
    hash_password,
    hash_token,
    new_token,
    validate_new_password,
    verify_password,
)
from pvegit.state.store import Store

PASSWORD = "correct horse battery"


def _audited(store: Store, action: str) -> dict[str, object]:
    [event] = store.audit_events(action=action)
    assert event.actor == "tester"
    return dict(event.detail)


def test_a_password_hash_verifies_only_its_password() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$32768$8$1$") and PASSWORD not in stored
    assert hash_password(PASSWORD) != stored  # salted
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "!", stored)


@pytest.mark.parametrize("stored", [None, "", "md5$x", "scrypt$1$2$3$not-base64$x", "a$b"])
def test_no_user_or_a_foreign_hash_matches_nothing(stored: str | None) -> None:
    assert verify_password(PASSWORD, stored) is False


def test_a_new_password_needs_ten_characters() -> None:
    assert validate_new_password("0123456789") == "0123456789"
    with pytest.raises(ConfigError, match="at least 10 characters"):
        validate_new_password("012345678")


def test_tokens_are_random_and_stored_as_their_sha256() -> None:
    token = new_token()
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40 and new_token() != token
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("name", "plain"),
    [("prometheus", True), ("ci.bot-1_x", True), ("x" * 64, True), ("x" * 65, False)]
    + [(name, False) for name in ("", "two words", "-x", ".x", "a/b", "a\nb", "ünï")],
)
def test_plain_names(name: str, plain: bool) -> None:
    assert is_plain_name(name) is plain


def test_the_first_user_is_an_admin_then_viewers(store: Store) -> None:
    assert add_user(store, "alice", PASSWORD, actor="tester") == NewUser("alice", ADMIN)
    assert _audited(store, "user added") == {"user": "alice", "role": ADMIN}
    assert add_user(store, "bob", PASSWORD, actor="t") == NewUser("bob", VIEWER)
    assert add_user(store, "carol", PASSWORD, OPERATOR, actor="t").role == OPERATOR
    account = store.user("alice")
    assert account is not None and verify_password(PASSWORD, account.password_hash)


@pytest.mark.parametrize(
    ("name", "password", "role", "problem"),
    [
        ("two words", PASSWORD, None, "user name 'two words' is not allowed"),
        ("alice", PASSWORD, "root", "role"),
        ("alice", "short", None, "at least 10 characters"),
        ("alice", PASSWORD, VIEWER, "the first user must be an admin"),
    ],
)
def test_a_user_refused_leaves_no_trace(
    store: Store, name: str, password: str, role: str | None, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        add_user(store, name, password, role, actor="tester")
    assert store.users() == [] and store.audit_events() == []


def test_a_new_password_ends_the_sessions(store: Store) -> None:
    add_user(store, "alice", PASSWORD, actor="t")
    before = store.user("alice")
    set_password(store, "alice", "another good one", actor="tester")
    after = store.user("alice")
    assert before is not None and after is not None
    assert after.sessions_epoch == before.sessions_epoch + 1
    assert verify_password("another good one", after.password_hash)
    assert _audited(store, "password changed") == {"user": "alice"}
    with pytest.raises(ConfigError, match="at least 10"):
        set_password(store, "alice", "short", actor="t")
    with pytest.raises(NotFound, match="no user 'nobody'"):
        set_password(store, "nobody", PASSWORD, actor="t")


def test_roles_change_but_the_last_admin_stays(store: Store) -> None:
    add_user(store, "alice", PASSWORD, actor="t")
    add_user(store, "bob", PASSWORD, actor="t")
    assert set_role(store, "bob", ADMIN, actor="tester") == RoleChange("bob", ADMIN, VIEWER)
    assert _audited(store, "user role changed") == {
        "user": "bob",
        "role": ADMIN,
        "previous": VIEWER,
    }
    set_role(store, "alice", VIEWER, actor="t")
    with pytest.raises(ConfigError, match="last admin"):
        set_role(store, "bob", OPERATOR, actor="t")
    with pytest.raises(ConfigError, match="last admin"):
        remove_user(store, "bob", actor="t")
    with pytest.raises(NotFound):
        set_role(store, "nobody", ADMIN, actor="t")
    assert len(store.audit_events(action="user role changed")) == 2


def test_logging_out_everywhere_and_removing(store: Store) -> None:
    add_user(store, "alice", PASSWORD, actor="t")
    add_user(store, "bob", PASSWORD, actor="t")
    end_sessions(store, "bob", actor="tester")
    assert _audited(store, "logged out everywhere") == {"user": "bob"}
    bob = store.user("bob")
    assert bob is not None and bob.sessions_epoch == 1
    remove_user(store, "bob", actor="tester")
    assert _audited(store, "user removed") == {"user": "bob"}
    assert [user.name for user in store.users()] == ["alice"]
    with pytest.raises(NotFound):
        end_sessions(store, "bob", actor="t")
    with pytest.raises(NotFound):
        remove_user(store, "bob", actor="t")


def test_the_demo_admin_is_made_an_admin_with_the_new_password(store: Store) -> None:
    make_demo_admin(store, "first-one-time", actor="tester")
    add_user(store, "alice", PASSWORD, ADMIN, actor="t")
    set_role(store, "admin", VIEWER, actor="t")
    make_demo_admin(store, "second-one-time", actor="t")
    admin = store.user("admin")
    assert admin is not None and admin.role == ADMIN
    assert verify_password("second-one-time", admin.password_hash)
    assert admin.sessions_epoch >= 1  # the first password's sessions are over
    assert len(store.audit_events(action="demo admin password set")) == 2


def test_a_token_is_shown_once_and_stored_as_its_hash(store: Store) -> None:
    created = create_token(store, "prometheus", OPERATOR, actor="tester")
    assert created.name == "prometheus" and created.role == OPERATOR
    assert created.secret.startswith(TOKEN_PREFIX)
    assert _audited(store, "token created") == {"token": "prometheus", "role": OPERATOR}
    found = store.active_token(hash_token(created.secret))
    assert found is not None and (found.name, found.role) == ("prometheus", OPERATOR)
    [listed] = list_tokens(store)
    assert listed.created_by == "tester" and listed.active


@pytest.mark.parametrize(
    ("name", "role", "problem"),
    [
        ("two words", VIEWER, "name the token with letters"),
        ("../etc", VIEWER, "name the token with letters"),
        ("ci", "root", "role"),
    ],
)
def test_a_token_refused_leaves_no_trace(store: Store, name: str, role: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        create_token(store, name, role, actor="t")
    assert list_tokens(store) == [] and store.audit_events() == []


def test_a_revoked_token_opens_nothing_and_keeps_its_name(store: Store) -> None:
    created = create_token(store, "ci", VIEWER, actor="t")
    revoke_token(store, "ci", actor="tester")
    assert _audited(store, "token revoked") == {"token": "ci"}
    assert store.active_token(hash_token(created.secret)) is None
    assert not list_tokens(store)[0].active
    with pytest.raises(NotFound, match="no active token 'ci'"):
        revoke_token(store, "ci", actor="t")
    with pytest.raises(ConfigError, match="exists already"):
        create_token(store, "ci", VIEWER, actor="t")
