"""Normalising what clients type: phone/WhatsApp numbers (Brazilian formats) and e-mail.

Clients type phones in every Brazilian habit: ``(11) 98765-4321``, ``11 3456 7890``,
``+55 11 98765 4321``, ``0 21 11 98765-4321`` (carrier code), ``5511987654321``. All are
stored as E.164 (``+5511987654321``) so the desk can click to call or open WhatsApp.
Foreign numbers are accepted when written with ``+`` and a country code.
"""

from __future__ import annotations

import re

# RFC 5322 dot-atom local part, ASCII only: what any SMTP server takes without SMTPUTF8.
# A looser check would accept addresses the mailer then refuses, and the client would
# never get the confirmation or the "book again" link.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*", re.ASCII)
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,}", re.ASCII)


def normalise_phone(text: str) -> str | None:
    """E.164 form of ``text``, or None when it is not a plausible phone number."""
    stripped = text.strip()
    if not stripped or len(stripped) > 40:
        return None
    if re.search(r"[^0-9\s()+.\-/]", stripped):  # ASCII digits: "١٢٣" is not dialable
        return None
    digits = re.sub(r"[^0-9]", "", stripped)
    if stripped.startswith("+"):
        if digits.startswith("55"):
            national = _brazilian(digits[2:])
            return f"+55{national}" if national else None
        return f"+{digits}" if 8 <= len(digits) <= 15 and digits[0] != "0" else None
    if digits.startswith("00"):  # international prefix dialled from Brazil
        return normalise_phone("+" + digits[2:])
    if digits.startswith("0") and len(digits) in (13, 14):
        digits = digits[3:]  # 0 + carrier code (2 digits) + area code + number
    elif digits.startswith("0") and len(digits) in (11, 12):
        digits = digits[1:]  # trunk prefix 0 + area code + number
    elif digits.startswith("55") and len(digits) in (12, 13):
        digits = digits[2:]
    national = _brazilian(digits)
    return f"+55{national}" if national else None


def _brazilian(national: str) -> str | None:
    """Area code (two digits, 1-9 each) + 8-digit landline or 9-digit mobile starting with 9."""
    if len(national) not in (10, 11):
        return None
    area, number = national[:2], national[2:]
    if "0" in area:
        return None
    if len(number) == 9 and number[0] != "9":
        return None
    if len(number) == 8 and number[0] not in "2345":
        return None
    return national


def format_phone(e164: str) -> str:
    """A readable form for people: ``+55 11 98765-4321``."""
    if e164.startswith("+55") and len(e164) in (13, 14):
        area, number = e164[3:5], e164[5:]
        return f"+55 {area} {number[:-4]}-{number[-4:]}"
    return e164


def normalise_email(text: str) -> str | None:
    """The address trimmed (an international domain in its ASCII form, ``xn--``), or None
    when no mail server would take it."""
    value = text.strip()
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254 or len(local) > 64 or not _LOCAL.fullmatch(local):
        return None
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if not _DOMAIN.fullmatch(domain):
        return None
    return f"{local}@{domain}"


def whatsapp_id(e164: str) -> str:
    """The number as the WhatsApp Cloud API writes it (``to``, ``wa_id``): E.164 digits
    without the ``+``."""
    return re.sub(r"[^0-9]", "", e164)


def whatsapp_number(wa_id: str) -> str | None:
    """The E.164 number a WhatsApp id stands for, as the booking form stored it; ``None``
    for something that is no phone number.

    WhatsApp accounts of Brazilian mobiles made before the ninth digit was added
    (2012-2016) still carry an id without it: ``551187654321`` is the client who booked
    with ``+55 11 98765-4321``. Mobiles then had eight digits starting with 6-9 and
    landlines start with 2-5, so an eight-digit number is read without ambiguity: 6-9 gets
    the ninth digit back.
    """
    digits = re.sub(r"[^0-9]", "", wa_id)
    if not 8 <= len(digits) <= 15 or digits[0] == "0":
        return None
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        digits = f"{digits[:4]}9{digits[4:]}"
    return normalise_phone("+" + digits)
