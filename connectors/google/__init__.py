"""The Google Calendar adapter, one job per module.

* :mod:`~connectors.google.adapter`: :class:`GoogleCalendar`, the parts below in one class;
* :mod:`~connectors.google.auth`: the credentials file;
* :mod:`~connectors.google.transport`: HTTP, retries, Google's errors in our terms;
* :mod:`~connectors.google.sync`: reading: incremental sync and free/busy;
* :mod:`~connectors.google.translate`: Google's event JSON → iCalendar → busy blocks;
* :mod:`~connectors.google.sessions`: writing session events and reading one back.
"""

from connectors.google.adapter import DEFAULT_SCOPES, GoogleCalendar
from connectors.google.sessions import event_id

__all__ = ["DEFAULT_SCOPES", "GoogleCalendar", "event_id"]
