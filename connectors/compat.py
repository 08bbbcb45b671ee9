"""CalDAV server quirks, written down in one place (like python-caldav's compatibility_hints).

Each :class:`Quirk` says which server does what, what the adapter does about it, and which
test in ``tests/connectors/test_caldav.py`` shows it against the real server. The small
predicates below are the only places the adapter looks at server-specific answers, so a new
server's oddity is one entry here plus one branch in a predicate.

Measured on Radicale 3.9.0 and Xandikos 0.4.10 (both from PyPI) with caldav 3.6.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DAV_SUPPORTED_REPORT",
    "DAV_VALID_SYNC_TOKEN",
    "NO_UID_CONFLICT",
    "QUIRKS",
    "Quirk",
    "is_invalid_sync_token",
    "is_uid_conflict",
    "sync_collection_unsupported",
    "usable_etag",
]

DAV_VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"  # noqa: S105 - an XML element name
DAV_SUPPORTED_REPORT = "{DAV:}supported-report"
NO_UID_CONFLICT = "{urn:ietf:params:xml:ns:caldav}no-uid-conflict"


@dataclass(frozen=True)
class Quirk:
    """One observed server behaviour the adapter has to know about."""

    servers: tuple[str, ...]
    behaviour: str
    handling: str
    test: str  # the test that shows it, in tests/connectors/test_caldav.py


QUIRKS: Mapping[str, Quirk] = {
    "invalid-sync-token-status": Quirk(
        servers=("radicale", "xandikos"),
        behaviour=(
            "A sync token the server does not know is refused with the DAV:valid-sync-token "
            "precondition: Radicale answers 403 (as RFC 6578 §3.2 suggests), Xandikos 412. "
            "Xandikos 0.4.10 answers 412 even for a token that is not a hex SHA (older "
            "releases answered 500 there, which the adapter would report as Unavailable)."
        ),
        handling="both answers → full resync with full=True and a warning Problem",
        test="test_invalid_token_resyncs_in_full",
    ),
    "caldav-fake-token-fallback": Quirk(
        servers=("caldav 3.6",),
        behaviour=(
            "Calendar.get_objects_by_sync_token() silently falls back to fetching every object "
            "when the sync REPORT fails, and returns a token starting with 'fake-'."
        ),
        handling=(
            "always called with disable_fallback=True: a failed REPORT is an error, never a "
            "silent full fetch; the adapter's own fallback (CTag/ETag) is explicit"
        ),
        test="test_server_stopped_raises_unavailable",
    ),
    "caldav-multiget-missing-object": Quirk(
        servers=("caldav 3.6",),
        behaviour=(
            "Calendar.multiget() raises TypeError when one of the hrefs answers 404 (an object "
            "deleted between the sync REPORT and the fetch)."
        ),
        handling=(
            "the adapter sends calendar-multiget itself and reads each response's status: a "
            "404 member is reported as deleted"
        ),
        test="test_object_deleted_between_listing_and_fetch_is_reported_deleted",
    ),
    "radicale-skips-broken-items": Quirk(
        servers=("radicale",),
        behaviour=(
            "A file in Radicale's storage that it cannot parse is left out of every answer "
            "(storage skip_broken_item, on by default): clients never see it, so its time "
            "looks free. Radicale logs 'Skip broken item'."
        ),
        handling=(
            "nothing the adapter can see; the admin must watch Radicale's log (documented in "
            "deploy notes)"
        ),
        test="test_radicale_refuses_invalid_objects_and_hides_broken_files_on_disk",
    ),
    "put-validation": Quirk(
        servers=("radicale", "xandikos"),
        behaviour=(
            "Radicale validates every PUT and answers 400 for unparseable text, an unreadable "
            "DTSTART, a bad RRULE or a missing UID. Xandikos only refuses text it cannot parse "
            "at all (412 CALDAV:valid-calendar-data) and stores a VEVENT with 'DTSTART:notadate', "
            "'RRULE:FREQ=SOMETIMES' or no UID as given."
        ),
        handling=(
            "every object read is parsed defensively (connectors.ical): an unreadable event "
            "is a Problem naming calendar and UID and the sync continues"
        ),
        test="test_malformed_objects_become_problems_and_sync_continues",
    ),
    "stale-write": Quirk(
        servers=("radicale", "xandikos"),
        behaviour=(
            "A PUT or DELETE with a stale If-Match answers 412 on both (Radicale with a text "
            "body, Xandikos with none); so does If-Match on an object that is gone. Xandikos "
            "also returns a Schedule-Tag, so caldav's own save() sends If-Schedule-Tag-Match "
            "there and reports ScheduleTagMismatchError where Radicale gives "
            "ETagMismatchError; caldav's add_event() with an existing UID silently overwrites "
            "unless no_overwrite=True."
        ),
        handling=(
            "the adapter sends its own PUT/DELETE with If-Match or If-None-Match: * and reads "
            "the status; a 412 is told apart (gone → NotFound, changed → Conflict) by one GET"
        ),
        test="test_conditional_update_with_stale_etag_conflicts",
    ),
    "uid-conflict-status": Quirk(
        servers=("radicale", "xandikos"),
        behaviour=(
            "Creating an object whose UID another object in the calendar already has is "
            "refused with CALDAV:no-uid-conflict: Radicale answers 409, Xandikos 412 (the "
            "same status as 'this name exists')."
        ),
        handling="the precondition, not the status, decides: → Conflict",
        test="test_create_with_uid_taken_by_another_object_conflicts",
    ),
    "server-side-expansion-utc": Quirk(
        servers=("radicale", "xandikos"),
        behaviour=(
            "CALDAV:expand in a calendar-query returns occurrences with UTC DTSTART and "
            "RECURRENCE-ID, losing the event's zone."
        ),
        handling=(
            "never asked for: recurrence is expanded client-side, once per changed object, "
            "in the desk's zone (connectors.ical)"
        ),
        test="test_recurring_event_with_exdate_and_override_blocks_the_right_times",
    ),
    "radicale-vtimezone-per-object": Quirk(
        servers=("radicale",),
        behaviour=(
            "Radicale stores a full VTIMEZONE in every object and re-serialises objects (LF "
            "line ends); reading a whole calendar is slow (seconds for 1,000 events)."
        ),
        handling=(
            "incremental sync: an idle sync is one sync-collection REPORT with no bodies, and "
            "only changed objects are fetched (calendar-multiget)"
        ),
        test="test_idle_sync_is_one_request_without_bodies",
    ),
    "xandikos-no-plain-http-auth": Quirk(
        servers=("xandikos",),
        behaviour=(
            "Xandikos only offers Basic auth together with its own self-signed TLS "
            "(--htpasswd requires --autocert); behind a reverse proxy the proxy authenticates."
        ),
        handling="nothing special: credentials are sent preemptively and ignored there",
        test="TestCalDAVContract",
    ),
    "created-and-deleted-between-syncs": Quirk(
        servers=("radicale", "xandikos"),
        behaviour=(
            "An object created and deleted between two syncs: Radicale's sync-collection "
            "keeps a history of deleted hrefs and reports it (404, a bare href, no UID); "
            "Xandikos diffs two Git trees and reports nothing; the CTag/ETag fallback never "
            "lists it on either."
        ),
        handling=(
            "the store keeps the href each session event was written at: a bare deleted "
            "href maps back to its session, and a session event no listing has named is "
            "read once (get_session) to learn whether it is gone"
        ),
        test="test_an_object_created_and_deleted_between_syncs_is_reported_by_radicale_alone",
    ),
    "free-busy-report": Quirk(
        servers=("radicale", "xandikos"),
        behaviour=(
            "The principal's scheduling-outbox free-busy POST fails on both (as reported in "
            "the issue; Radicale has no scheduling at all); a CALDAV:free-busy-query REPORT on "
            "the calendar itself works (Radicale writes FBTYPE=BUSY, Xandikos VALUE=PERIOD "
            "without FBTYPE)."
        ),
        handling="free_busy() uses the per-calendar REPORT",
        test="test_free_busy_report_matches_sync",
    ),
}


def _has(preconditions: Iterable[str], tag: str) -> bool:
    return tag in set(preconditions)


def is_invalid_sync_token(status: int | None, preconditions: Iterable[str]) -> bool:
    """The server refused our sync token (quirk ``invalid-sync-token-status``)."""
    return status in (403, 409, 412) and _has(preconditions, DAV_VALID_SYNC_TOKEN)


def is_uid_conflict(status: int | None, preconditions: Iterable[str]) -> bool:
    """Another object already holds this UID (quirk ``uid-conflict-status``)."""
    return status in (403, 409, 412) and _has(preconditions, NO_UID_CONFLICT)


def sync_collection_unsupported(status: int | None, preconditions: Iterable[str]) -> bool:
    """The server does not do RFC 6578 sync-collection on this calendar.

    RFC 3253 answers an unknown REPORT with 403 DAV:supported-report; servers in the wild
    also say 400, 405, 415 or 501. A 404 is not among them: that is a missing calendar.
    """
    if _has(preconditions, DAV_SUPPORTED_REPORT):
        return True
    return status in (400, 405, 415, 501)


def usable_etag(value: str | None) -> str | None:
    """A strong ETag from a response header, or None.

    A weak ETag (``W/"..."``) cannot be used with If-Match (RFC 7232 §3.1 uses the strong
    comparison), so it counts as none and the adapter asks again with a GET.
    """
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/") or not value:
        return None
    return value
