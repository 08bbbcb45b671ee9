"""The CalDAV adapter, one job per module.

* :mod:`~connectors.caldav.adapter`: :class:`CalDAVCalendar`, the parts below in one class;
* :mod:`~connectors.caldav.transport`: HTTP, traffic counting, multistatus answers, errors;
* :mod:`~connectors.caldav.sync`: reading: sync-collection or CTag/ETag, multiget, free/busy;
* :mod:`~connectors.caldav.poll`: the sync-collection REPORT each incremental sync repeats,
  over a kept stdlib connection;
* :mod:`~connectors.caldav.sessions`: writing session events and reading one back.

Note: this package is ``connectors.caldav``; the ``caldav`` imports in its modules are the
library (absolute imports only), never this package.
"""

from connectors.caldav.adapter import CalDAVCalendar
from connectors.caldav.sessions import object_name
from connectors.caldav.sync import SyncMethod
from connectors.caldav.transport import TransferStats

# isort: split
# A private name a test written against the single-module caldav.py imports from here.
from connectors.caldav.sync import _uid_from_text as _uid_from_text

__all__ = ["CalDAVCalendar", "SyncMethod", "TransferStats", "object_name"]
