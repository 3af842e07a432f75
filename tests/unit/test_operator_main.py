"""The operator's kopf identity must not need a passwd entry: images run as a bare uid (65532)."""

from __future__ import annotations

import pwd

import pytest

from helm_e2e.operator_main import operator_identity


def test_identity_needs_no_passwd_entry_for_the_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(var, raising=False)
    identity = operator_identity()
    assert identity.startswith("helm-e2e@")
    assert identity != operator_identity.__name__
