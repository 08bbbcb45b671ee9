"""The OpenAPI document and the server agree: schemathesis, in process, on every operation.

Each operation gets its boundary cases (schemathesis' coverage phase: empty and too long
values, dates at and past the supported years, missing parameters, other methods and
media types) and a bounded number of generated requests, positive and negative. Every
answer must have a documented status and match its documented schema; a request the
document calls invalid must be refused; one it calls valid may be refused only for what
a schema cannot say (the desk's rules, a date range too long or backwards), never for
its shape. The disagreements outside testing found are pinned case by case below.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from daemon.availability import supported
from daemon.metrics import Metrics
from daemon.web import openapi
from daemon.web.app import build_app
from tests import factories, wsgi
from tests.daemon.desk import ADMIN_TOKEN, make_desk, monday

# A schema cannot relate two parameters, and the rules need the desk's calendar: these
# refusals of a well-formed request are the server's to make.
BEYOND_A_SCHEMA = {("GET", "/api/v1/slots"): {"bad_range"}}

CONFIG = {
    "seed": 20261130,  # reproducible, like the suite's Hypothesis profile
    "generation": {"max-examples": 100, "mode": "all", "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    # Replaced by the check below, which knows the refusals a schema cannot express.
    "checks": {"positive_data_acceptance": {"enabled": False}},
}


def refused_only_for_what_a_schema_cannot_say(ctx: Any, response: Any, case: Any) -> None:
    """schemathesis' own check allows no 400 or 422 for a schema-valid request; here the
    rules' verdicts on a booking (violations without ``detail``, which shape errors
    carry) and the codes in ``BEYOND_A_SCHEMA`` are allowed, and nothing else."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if response.status_code not in (400, 422):
        return
    error = json.loads(response.content)["error"]
    if error["code"] in BEYOND_A_SCHEMA.get((case.method.upper(), case.path), set()):
        return
    if error["code"] == "booking_rejected" and not any(
        "detail" in violation for violation in error.get("violations", [])
    ):
        return  # the rules (a weekend, too short notice...), not the shape
    raise AssertionError(
        f"a request the document calls valid was refused for its shape: "
        f"{response.status_code} {error}"
    )


# schemathesis reads the document when the module is collected (its lazy, fixture-based
# loader fails on pytest 9), so the desk is made then and removed after the module's tests.
_FOLDER = Path(tempfile.mkdtemp(prefix="expediente-openapi-"))
_DESK = make_desk(_FOLDER, monday(7, 0))
APP = build_app(_DESK.service, _DESK.signer, Metrics())
DOCUMENT = openapi.document(_DESK.config.server.public_url, _DESK.config.policy)
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", APP, config=SchemathesisConfig.from_dict(CONFIG)
)


@pytest.fixture(scope="module", autouse=True)
def _remove_the_desk() -> Iterator[None]:
    yield
    _DESK.store.close()
    shutil.rmtree(_FOLDER, ignore_errors=True)


@schema.parametrize()
def test_the_server_does_what_its_openapi_document_says(case: Any) -> None:
    # With the admin token: the session routes are reachable and bookings are not rate
    # limited; schemathesis also drops it to check that a 401 follows.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        additional_checks=[refused_only_for_what_a_schema_cannot_say],
    )


def _documented(schema: dict[str, Any], value: Any) -> bool:
    return bool(jsonschema_rs.Draft202012Validator(schema, validate_formats=True).is_valid(value))


def _parameter(path: str, method: str, name: str) -> dict[str, Any]:
    operation = DOCUMENT["paths"][path][method]
    return next(p["schema"] for p in operation["parameters"] if p["name"] == name)


SLOTS = ("/api/v1/slots", "get")


@pytest.mark.parametrize(
    ("name", "value", "refusal"),
    [
        ("from", "1899-12-31", "bad_date"),  # dates outside 1900-9000
        ("to", "9001-01-01", "bad_date"),
        ("from", "1900-01-01", None),  # the first supported day
        ("to", "", None),  # empty query values: the default
        ("from", "", None),
        ("type", "", None),  # an empty type: the first one configured
        ("type", "nope", "unknown_type"),
    ],
)
def test_slots_parameters_found_in_outside_testing(
    name: str, value: str, refusal: str | None
) -> None:
    """The cases schemathesis found where document and server disagreed, pinned: the
    document calls a value valid exactly when the server takes it."""
    assert _documented(_parameter(*SLOTS, name), value) is (refusal is None)
    status, answer = _call("GET", f"/api/v1/slots?{urlencode({name: value})}")
    assert (status, answer.get("code")) == ((200, None) if refusal is None else (400, refusal))


@pytest.mark.parametrize(
    ("key", "valid", "status"), [("", False, 400), ("k" * 201, False, 400), ("k", True, 422)]
)
def test_an_empty_idempotency_key_is_refused_as_documented(
    key: str, valid: bool, status: int
) -> None:
    schema = _parameter("/api/v1/bookings", "post", "Idempotency-Key")
    assert _documented(schema, key) is valid
    body = {"type": "standard", "start": "2026-11-28T09:00:00-03:00", "accept_rules": True}
    code, error = _call("POST", "/api/v1/bookings", body, {"Idempotency-Key": key})
    assert code == status, error  # 422: the rules refuse a Saturday, the key was fine


def test_an_empty_booking_type_is_refused_as_documented() -> None:
    booking = DOCUMENT["components"]["schemas"]["Booking"]
    body = factories.booking("2026-11-30T09:00:00-03:00", type="", only_required=True)
    assert not _documented(booking, body)
    assert _documented(booking, {**body, "type": "standard"})
    code, error = _call("POST", "/api/v1/bookings", body)
    assert code == 422 and error["violations"][0]["field"] == "type"


def _call(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    status, _, data = wsgi.call(APP, wsgi.environ(method, path, raw, headers=headers))
    document = json.loads(data)
    return status, document.get("error", document)


def test_the_documented_years_are_the_supported_ones() -> None:
    """The year pattern is written by hand; it must say exactly what ``supported`` does."""
    pattern = re.compile(f"^{openapi.YEAR_PATTERN}$")
    documented = [year for year in range(1, 10000) if pattern.match(f"{year:04d}")]
    assert documented == [year for year in range(1, 10000) if supported(date(year, 6, 1))]
