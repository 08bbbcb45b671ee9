"""The rules text clients accept, written from the desk's policy document and its settings.

Unless ``[desk] rules_text`` or ``rules_file`` replaces it, the text clients read and accept
before booking is the desk's policy document (seed/000_…txt), one msgid per sentence so
each catalog's language has it, with this file's hours, tolerance, tools and session types
filled in, so the rules can never say something the daemon does not do. Durations, days
and lists are CLDR's (:mod:`daemon.i18n`). :func:`rules_version` names the wording each
acceptance was given under.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta

from daemon.i18n import gettext, hours_phrase, join, spoken_duration
from rules.model import NoHolidays, Policy


def rules_version(texts: Mapping[str, str]) -> str:
    """A short hash naming the rules' wording, stored with each acceptance."""
    digest = hashlib.sha256()
    for language in sorted(texts):
        digest.update(f"{language}\n{texts[language]}\n\0".encode())
    return digest.hexdigest()[:12]


def default_rules_text(
    policy: Policy,
    *,
    language: str,
    desk_name: str,
    phone: str | None = None,
    whatsapp: str | None = None,
) -> str:
    """The desk's policy document (seed/000_…txt) as rules for clients, from ``policy``."""
    _ = gettext(language)
    tools = join([tool.name for tool in policy.remote_tools], language, style="or")
    contacts = [
        f"WhatsApp {whatsapp}" if whatsapp else "",
        _("phone {number}").format(number=phone) if phone else "",
    ]
    contact = "; ".join(c for c in contacts if c)
    contact = f" ({contact})" if contact else ""
    notices = []
    for session_type in policy.session_types.values():
        if session_type.min_notice > timedelta(0):
            notice = _("at least {duration}").format(
                duration=spoken_duration(session_type.min_notice, language)
            )
        else:
            notice = _("no minimum notice")
        notices.append(
            _("{label} ({duration}): {notice}").format(
                label=session_type.label,
                duration=spoken_duration(session_type.duration, language),
                notice=notice,
            )
        )
    hours = hours_phrase(policy.weekly, language)
    if isinstance(policy.holidays, NoHolidays):
        rule_4 = _("4. Remote access is available {hours}.")
    else:
        rule_4 = _("4. Remote access is available {hours}, except on public holidays.")
    lines = [
        _("Remote-access rules — {desk}").format(desk=desk_name),
        "",
        _("For remote support to work well, the client agrees to these rules:"),
        "",
        _(
            "1. Remote access takes place through {tools} or another means the support desk "
            "suggests."
        ).format(tools=tools),
        _(
            "2. Install the remote-access program before the session's start time. When "
            "everything is ready, the person responsible calls the desk by WhatsApp or "
            "phone{contact} with the access details to begin."
        ).format(contact=contact),
        _(
            "3. Cases that need more time must be booked in advance. Minimum notice by "
            "session type: {notices}."
        ).format(notices="; ".join(notices)),
        rule_4.format(hours=hours),
        _(
            "5. The booked time must be kept. Up to {grace} of delay is tolerated for the "
            "session to start; if the client is not available at the booked time, the "
            "session must be rescheduled."
        ).format(grace=spoken_duration(policy.grace, language)),
        _(
            "6. The client only touches the keyboard or mouse when the technician asks: "
            "interfering during remote access makes the session take longer."
        ),
        _(
            "7. A person responsible on the client's side must be present during the remote "
            "session."
        ),
        "",
        _(
            "The support desk is committed to confidentiality, professionalism, "
            "responsibility and ethics."
        ),
    ]
    return "\n".join(lines)
