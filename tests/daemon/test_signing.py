from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.signing import BadToken, Signer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SIGNER = Signer(b"0123456789abcdef-test-key")


def test_round_trip_until_expiry() -> None:
    token = SIGNER.sign("checkin", "abc123", NOW + timedelta(hours=1))
    assert SIGNER.verify(token, "checkin", NOW) == "abc123"
    with pytest.raises(BadToken, match="expired"):
        SIGNER.verify(token, "checkin", NOW + timedelta(hours=1))


def test_purpose_and_key_are_bound() -> None:
    token = SIGNER.sign("manage", "abc123", NOW + timedelta(hours=1))
    with pytest.raises(BadToken, match="another purpose"):
        SIGNER.verify(token, "checkin", NOW)
    with pytest.raises(BadToken, match="signature"):
        Signer(b"another-key-of-16-bytes").verify(token, "manage", NOW)


@pytest.mark.parametrize("mangle", ["id", "expiry", "format"])
def test_tampering_is_detected(mangle: str) -> None:
    purpose, session, expiry, mac = SIGNER.sign("checkin", "abc123", NOW + timedelta(1)).split(".")
    if mangle == "id":
        token = f"{purpose}.abc124.{expiry}.{mac}"
    elif mangle == "expiry":
        token = f"{purpose}.{session}.{int(expiry) + 86400}.{mac}"
    else:
        token = f"{purpose}.{session}.{mac}"
    with pytest.raises(BadToken):
        SIGNER.verify(token, "checkin", NOW)


@pytest.mark.parametrize(
    "signature",
    ["é" * 43, "\u200b", "\udcff", "ﬁ", "ab\x00cd"],
    ids=["accented", "zero-width", "lone-surrogate", "ligature", "nul"],
)
def test_a_signature_of_any_characters_is_refused_not_crashed_on(signature: str) -> None:
    token = SIGNER.sign("manage", "abc123", NOW + timedelta(hours=1))
    forged = token.rsplit(".", 1)[0] + "." + signature
    with pytest.raises(BadToken, match=r"signature|malformed"):
        SIGNER.verify(forged, "manage", NOW)


@pytest.mark.parametrize("expiry", ["²³", "١٢٣", "9" * 30])
def test_an_expiry_that_is_not_a_plain_epoch_is_refused(expiry: str) -> None:
    # Signed with the right key, so only the expiry itself can be wrong.
    message = f"manage.abc123.{expiry}"
    token = f"{message}.{SIGNER._mac(message)}"
    with pytest.raises(BadToken, match="malformed"):
        SIGNER.verify(token, "manage", NOW)
