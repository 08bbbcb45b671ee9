"""The ``[whatsapp]`` section: the desk's WhatsApp Business number on Meta's Cloud API,
its secrets, and the approved templates by event (how they are used: deploy/whatsapp.md).

Declared like the plain sections of :mod:`daemon.config.model`, with :func:`setting`;
``templates`` is a nested table the loader builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from daemon.config.kinds import REQUIRED, Duration, Text, Url
from daemon.config.model import _RANDOM_FILL_HINT, setting
from daemon.config.secrets import Secret, SecretFile
from daemon.i18n import locale_of

# A template's name as Meta accepts it: lowercase letters, digits and underscores.
_TEMPLATE_NAME = Text(
    'a template name like "sessao_agendada" (lowercase letters, digits and "_")',
    pattern=r"[a-z0-9_]{1,512}",
)


# fmt: off
@dataclass(frozen=True)
class WhatsAppTemplates:
    """The approved message templates, by event; deploy/whatsapp.md lists their parameters."""

    booked: str = setting(
        _TEMPLATE_NAME, "sessao_agendada", "Sent when a session is booked.")
    reminder: str = setting(
        _TEMPLATE_NAME, "sessao_lembrete",
        "Sent [booking] reminder before the start, with the preparation checklist.")
    rescheduled: str = setting(
        _TEMPLATE_NAME, "sessao_reagendada",
        "Sent when a session is missed (no check-in within the tolerance), with the link to "
        "book again.")
    cancelled: str = setting(
        _TEMPLATE_NAME, "sessao_cancelada", "Sent when a session is cancelled.")

    def for_event(self, event: str) -> str | None:
        """The template name of ``event`` (a :data:`WHATSAPP_EVENTS` name), else None."""
        return getattr(self, event, None) if event in WHATSAPP_EVENTS else None


# The events that send the client a WhatsApp template: the fields of WhatsAppTemplates.
WHATSAPP_EVENTS = ("booked", "reminder", "rescheduled", "cancelled")


@dataclass(frozen=True)
class WhatsAppConfig:
    # templates is a nested table: the schema writes its keys, the loader builds it
    templates: WhatsAppTemplates
    phone_number_id: str = setting(
        Text("the phone number id, digits only", pattern=r"[0-9]{5,30}"), REQUIRED,
        "The desk's WhatsApp Business number id (WhatsApp Manager → API Setup), not the "
        "phone number itself.", "123456789012345")
    access_token: Secret = setting(
        SecretFile(example="secrets/whatsapp-token", min_length=16), REQUIRED,
        "File holding the Cloud API access token (a system user's permanent token).",
        "secrets/whatsapp-token", key="access_token_file")
    app_secret: Secret = setting(
        SecretFile(example="secrets/whatsapp-app-secret", min_length=16), REQUIRED,
        "File holding the Meta app's secret, which signs each webhook delivery "
        "(X-Hub-Signature-256).", "secrets/whatsapp-app-secret", key="app_secret_file")
    verify_token: Secret = setting(
        SecretFile(example="secrets/whatsapp-verify-token", min_length=16,
                   create=_RANDOM_FILL_HINT), REQUIRED,
        "File holding the token Meta sends back when the webhook is registered (you choose "
        "it, and type the same in the app's webhook settings).",
        "secrets/whatsapp-verify-token", key="verify_token_file")
    api_endpoint: str = setting(
        Url('an http(s) URL like "https://graph.facebook.com/v21.0/"'),
        "https://graph.facebook.com/v21.0/",
        "The Graph API's address, with its version: a proxy or a local test server.",
        then=lambda url: url.rstrip("/") + "/")
    language: str | None = setting(
        Text('a template language code like "pt_BR"', pattern=r"[a-z]{2,3}(_[A-Z]{2})?"),
        help="The language code the templates were approved in; default: the desk's "
        'language ("pt_BR", "en" or "es").', example="pt_BR")
    timeout: timedelta = setting(
        Duration(positive=True), "10s", "Time limit of one request to the Cloud API.")
    auto_reply_every: timedelta = setting(
        Duration(), "30m",
        "A client who writes outside any check-in window is answered (their next session's "
        "time, or the booking link) at most once this often; \"0m\" answers every message.")

    def template_language(self, desk_language: str) -> str:
        """The code templates are sent with: ``language``, else the desk's in Meta's form."""
        # CLDR's locale names are Meta's codes: pt_BR, en, es.
        return self.language or str(locale_of(desk_language))
# fmt: on
