"""daemon/malloc.py: the arena cap is set on glibc, left alone when an administrator set
one, and nothing is done under another C library."""

from __future__ import annotations

import os

import pytest

from daemon import malloc


def test_on_glibc_the_cap_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    if not malloc.glibc():
        pytest.skip("not glibc")
    assert malloc.cap_arenas() is True


@pytest.mark.parametrize(
    ("name", "value"),
    [("MALLOC_ARENA_MAX", "4"), ("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")],
)
def test_an_administrators_own_setting_wins(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert malloc.cap_arenas() is False


def test_another_c_library_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)

    def musl(name: str) -> str:
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(os, "confstr", musl)
    assert malloc.glibc() is False
    assert malloc.cap_arenas() is False
