"""The words of the pages clients and technicians see, in pt-BR (the desk's) and English.

Kept apart from the templates so both languages can be read side by side and a missing
key shows up in one test instead of on a client's screen. Messages for broken booking
rules come from ``rules/messages.py``; these are only the page's own words. Placeholders
are filled with ``str.format`` in the templates, and the result is still autoescaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import get_timezone_name

from rules.lifecycle import CancelReason

WEEKDAYS: Mapping[str, tuple[str, ...]] = {
    "pt-BR": (
        "segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira",
        "sábado", "domingo",
    ),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}  # fmt: skip

MONTHS: Mapping[str, tuple[str, ...]] = {
    "pt-BR": (
        "janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto",
        "setembro", "outubro", "novembro", "dezembro",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ),
}  # fmt: skip


def day_label(day: date, language: str, *, year: bool = False) -> str:
    """``segunda-feira, 1º de dezembro`` / ``Monday, 1 December`` (optionally with the year)."""
    weekday = WEEKDAYS[language][day.weekday()]
    month = MONTHS[language][day.month - 1]
    if language == "pt-BR":
        number = "1º" if day.day == 1 else str(day.day)
        text = f"{weekday}, {number} de {month}"
        return f"{text} de {day.year}" if year else text
    text = f"{weekday}, {day.day} {month}"
    return f"{text} {day.year}" if year else text


@cache
def zone_name(zone: ZoneInfo, language: str) -> str:
    """The time zone as people there call it, from CLDR: ``horário de Brasília`` for
    America/Sao_Paulo in pt-BR, ``Brasilia Time`` in English. A zone CLDR places nowhere
    (``UTC``, ``Etc/GMT+3``) is its offset instead: ``UTC``, ``UTC-03:00``."""
    locale = Locale.parse(language.replace("-", "_"))
    name = get_timezone_name(zone.key, locale=locale)
    if locale.territories.get("ZZ", "Unknown Region") in name:
        # Etc zones have one offset for ever: any date reads it.
        offset = datetime(2000, 1, 1, tzinfo=zone).strftime("%z")
        return "UTC" if offset == "+0000" else f"UTC{offset[:3]}:{offset[3:]}"
    # Portuguese writes the generic name in lower case inside a sentence.
    return name[:1].lower() + name[1:] if language == "pt-BR" else name


TEXTS: Mapping[str, Mapping[str, str]] = {
    "pt-BR": {
        "skip": "Pular para o conteúdo",
        "switch_label": "Idioma",
        "switch_to": "English",
        "switch_lang": "en",
        "title_index": "Agendar atendimento remoto",
        "lead_index": "Escolha o tipo de atendimento, depois um horário livre.",
        "choose": "Escolher horário",
        "duration": "Duração: {duration}.",
        "notice": "Agende com pelo menos {notice} de antecedência.",
        "no_notice": "Pode ser agendado para hoje.",
        "tz_desk": "Horários no fuso do suporte: {zone} (UTC{offset}).",
        "tz_local": "Seu navegador está em outro fuso horário:",
        "tz_local_hint": "Entre parênteses, o horário no seu fuso.",
        "title_book": "Agendar: {label}",
        "title_rebook": "Marcar outro horário: {label}",
        "other_types": "Outros tipos de atendimento",
        "pick_time": "Escolha o horário",
        "no_slots": "Não há horários livres neste período.",
        "earlier": "Datas anteriores",
        "later": "Mais datas",
        "details": "Seus dados",
        "required": "obrigatório",
        "optional": "opcional",
        "label_company": "Empresa",
        "label_responsible_name": "Responsável presente no atendimento",
        "label_phone": "Telefone/WhatsApp do responsável",
        "label_email": "E-mail",
        "label_remote_tool": "Programa de acesso remoto",
        "label_remote_id": "ID de acesso",
        "label_description": "Descreva o problema",
        "hint_responsible_name": "Uma pessoa da empresa precisa acompanhar todo o atendimento.",
        "hint_phone": "Com DDD, por exemplo (11) 98765-4321.",
        "hint_email": "Para receber a confirmação e o lembrete.",
        "hint_remote_id": "O número que aparece no programa (exemplo: {example}). "
        "Se ainda não tiver, informe ao ligar.",
        "rules_heading": "Regras do atendimento remoto",
        "accept": "Li e aceito as regras do atendimento remoto",
        "submit": "Agendar",
        "submit_rebook": "Confirmar novo horário",
        "errors_heading": "Corrija o que está indicado:",
        "refreshed": "A lista de horários abaixo foi atualizada.",
        "rebook_moves": "O horário atual será cancelado quando o novo for confirmado.",
        "title_booked": "Atendimento agendado",
        "lead_booked": "Pronto! Seu atendimento está agendado.",
        "title_manage": "Seu atendimento",
        "when": "Quando",
        "type": "Tipo",
        "technician": "Técnico",
        "status": "Situação",
        "company": "Empresa",
        "responsible": "Responsável",
        "phone": "Telefone/WhatsApp",
        "tool": "Acesso remoto",
        "access_id": "ID de acesso",
        "id_missing": "(informado ao ligar)",
        "problem": "Problema",
        "status_booked": "agendado",
        "status_in_progress": "em andamento",
        "status_completed": "concluído",
        "status_rescheduled": "não realizado — precisa ser reagendado",
        "status_cancelled": "cancelado",
        "prepare_heading": "Como se preparar",
        "prepare_install": "Instale o {tool} no computador antes das {time}.",
        "prepare_call": "No horário marcado, chame o suporte por WhatsApp ou ligação com os "
        "dados do acesso ({access}).",
        "prepare_access_id": "{tool}, ID {id}",
        "prepare_access_tool": "o ID que o {tool} mostrar",
        "contact_whatsapp": "WhatsApp",
        "contact_phone": "Telefone",
        "prepare_responsible": "{name} (ou outro responsável da empresa) deve estar presente "
        "durante todo o atendimento.",
        "prepare_tolerance": "Toleramos até {minutes} minutos de atraso: sem contato até as "
        "{deadline}, o atendimento é reagendado e você recebe um link para marcar de novo.",
        "prepare_hands": "Durante o acesso, só mexa no teclado ou no mouse quando o técnico pedir.",
        "ics": "Adicionar à agenda (.ics)",
        "keep_link": "Guarde este link para ver, cancelar ou remarcar o atendimento:",
        "change_until": "É possível cancelar ou remarcar por aqui até {time}.",
        "change_closed": "Falta menos de {cutoff} para o início: para cancelar ou remarcar, "
        "fale com o suporte.",
        "cancel": "Cancelar o atendimento",
        "cancelled": "Este atendimento foi cancelado.",
        "rebook": "Marcar outro horário",
        "book_again": "Agendar novamente",
        "missed": "O atendimento não começou dentro da tolerância e precisa ser reagendado. "
        "Escolha um novo horário:",
        "next_slots": "Próximos horários livres",
        "all_times": "Ver todos os horários",
        "ics_summary": "Atendimento remoto — {desk}",
        "ics_manage": "Ver, cancelar ou remarcar: {url}",
        "ics_see": "Ver o atendimento: {url}",
        "title_checkin": "Check-in do atendimento",
        "lead_checkin": "Abra quando o cliente ligar e confirme o início do atendimento.",
        "checkin_button": "Iniciar atendimento (check-in)",
        "checkin_done": "Check-in feito às {time}: atendimento em andamento.",
        "checkin_opens": "O check-in abre às {time}.",
        "checkin_too_early": "Ainda é cedo: o check-in abre às {time}.",
        "checkin_too_late": "A tolerância terminou às {deadline}: o atendimento precisa ser "
        "reagendado.",
        "checkin_final": "Não é possível fazer o check-in: o atendimento está {status}.",
        "title_error": "Não foi possível continuar",
        "error_csrf": "Por segurança, este formulário expirou. Volte, recarregue a página e "
        "tente de novo.",
        "error_link_invalid": "Este link não é válido. Confira se o endereço foi copiado inteiro.",
        "error_link_expired": "Este link expirou.",
        "error_not_found": "Página não encontrada.",
        "error_unknown_type": "Tipo de atendimento desconhecido.",
        "error_rate": "Muitas tentativas de agendamento a partir desta conexão. Tente de novo em "
        "{minutes} minutos.",
        "error_cancel_state": "Este atendimento está {status} e não pode mais ser cancelado.",
        "error_change_closed": "Falta menos de {cutoff} para o início: o atendimento não pode "
        "mais ser cancelado ou remarcado por aqui. Fale com o suporte.",
        "error_rebook_state": "Este atendimento está {status} e não pode ser remarcado.",
        "error_generic": "O pedido não pôde ser atendido ({detail}).",
        "back_home": "Voltar ao início",
        "back": "Voltar",
        "reason_client": "cancelado a pedido do cliente",
        "reason_desk": "cancelado pelo suporte",
        "reason_technician_deleted": "o técnico retirou o atendimento da agenda",
        "reason_technician_cancelled": "o técnico cancelou o atendimento na agenda",
        "reason_rebooked": "substituído por um novo horário marcado pelo cliente",
    },
    "en": {
        "skip": "Skip to content",
        "switch_label": "Language",
        "switch_to": "Português",
        "switch_lang": "pt-BR",
        "title_index": "Book a remote session",
        "lead_index": "Choose the kind of session, then a free time.",
        "choose": "Choose a time",
        "duration": "Duration: {duration}.",
        "notice": "Book at least {notice} ahead.",
        "no_notice": "Can be booked for today.",
        "tz_desk": "Times are in the desk's time zone: {zone} (UTC{offset}).",
        "tz_local": "Your browser is in another time zone:",
        "tz_local_hint": "Your local time is in brackets.",
        "title_book": "Book: {label}",
        "title_rebook": "Book another time: {label}",
        "other_types": "Other kinds of session",
        "pick_time": "Pick a time",
        "no_slots": "No free times in this period.",
        "earlier": "Earlier dates",
        "later": "Later dates",
        "details": "Your details",
        "required": "required",
        "optional": "optional",
        "label_company": "Company",
        "label_responsible_name": "Person responsible, present during the session",
        "label_phone": "Their phone/WhatsApp",
        "label_email": "E-mail",
        "label_remote_tool": "Remote-access program",
        "label_remote_id": "Access ID",
        "label_description": "Describe the problem",
        "hint_responsible_name": "Someone from the company must follow the whole session.",
        "hint_phone": "With the area code, e.g. (11) 98765-4321.",
        "hint_email": "To receive the confirmation and the reminder.",
        "hint_remote_id": "The number the program shows (example: {example}). "
        "If you do not have it yet, give it when you call.",
        "rules_heading": "Remote-session rules",
        "accept": "I have read and accept the remote-session rules",
        "submit": "Book",
        "submit_rebook": "Confirm the new time",
        "errors_heading": "Please fix the following:",
        "refreshed": "The times below have been refreshed.",
        "rebook_moves": "Your current time is cancelled once the new one is confirmed.",
        "title_booked": "Session booked",
        "lead_booked": "Done! Your session is booked.",
        "title_manage": "Your session",
        "when": "When",
        "type": "Kind",
        "technician": "Technician",
        "status": "Status",
        "company": "Company",
        "responsible": "Responsible person",
        "phone": "Phone/WhatsApp",
        "tool": "Remote access",
        "access_id": "Access ID",
        "id_missing": "(given when calling)",
        "problem": "Problem",
        "status_booked": "booked",
        "status_in_progress": "in progress",
        "status_completed": "completed",
        "status_rescheduled": "missed — needs a new time",
        "status_cancelled": "cancelled",
        "prepare_heading": "How to prepare",
        "prepare_install": "Install {tool} on the computer before {time}.",
        "prepare_call": "At the booked time, call the desk by WhatsApp or phone with the access "
        "details ({access}).",
        "prepare_access_id": "{tool}, ID {id}",
        "prepare_access_tool": "the ID {tool} shows",
        "contact_whatsapp": "WhatsApp",
        "contact_phone": "Phone",
        "prepare_responsible": "{name} (or another person responsible at the company) must be "
        "present for the whole session.",
        "prepare_tolerance": "Up to {minutes} minutes of delay are tolerated: with no call by "
        "{deadline}, the session is rescheduled and you get a link to book again.",
        "prepare_hands": "During the session, only touch the keyboard or mouse when the "
        "technician asks.",
        "ics": "Add to calendar (.ics)",
        "keep_link": "Keep this link to see, cancel or rebook the session:",
        "change_until": "You can cancel or rebook here until {time}.",
        "change_closed": "The session starts in less than {cutoff}: to cancel or rebook, "
        "contact the desk.",
        "cancel": "Cancel the session",
        "cancelled": "This session was cancelled.",
        "rebook": "Book another time",
        "book_again": "Book again",
        "missed": "The session did not start within the tolerance and must be rescheduled. "
        "Pick a new time:",
        "next_slots": "Next free times",
        "all_times": "See all times",
        "ics_summary": "Remote session — {desk}",
        "ics_manage": "See, cancel or rebook: {url}",
        "ics_see": "See the session: {url}",
        "title_checkin": "Session check-in",
        "lead_checkin": "Open when the client calls, then confirm the start.",
        "checkin_button": "Start the session (check-in)",
        "checkin_done": "Checked in at {time}: the session is in progress.",
        "checkin_opens": "Check-in opens at {time}.",
        "checkin_too_early": "Too early: check-in opens at {time}.",
        "checkin_too_late": "The tolerance ended at {deadline}: the session must be rescheduled.",
        "checkin_final": "Cannot check in: the session is {status}.",
        "title_error": "Could not continue",
        "error_csrf": "For your security this form expired. Go back, reload the page and try "
        "again.",
        "error_link_invalid": "This link is not valid. Check that the whole address was copied.",
        "error_link_expired": "This link has expired.",
        "error_not_found": "Page not found.",
        "error_unknown_type": "Unknown kind of session.",
        "error_rate": "Too many booking attempts from this connection. Please try again in "
        "{minutes} minutes.",
        "error_cancel_state": "This session is {status} and can no longer be cancelled.",
        "error_change_closed": "The session starts in less than {cutoff}: it can no longer be "
        "cancelled or rebooked here. Please contact the desk.",
        "error_rebook_state": "This session is {status} and cannot be rebooked.",
        "error_generic": "The request could not be handled ({detail}).",
        "back_home": "Back to the start",
        "back": "Go back",
        "reason_client": "cancelled at the client's request",
        "reason_desk": "cancelled by the desk",
        "reason_technician_deleted": "the technician removed the session from their calendar",
        "reason_technician_cancelled": "the technician cancelled the session in their calendar",
        "reason_rebooked": "replaced by a new time the client booked",
    },
}


# What earlier versions stored instead of a code; they read the same as the code now.
_OLD_REASONS = {
    "cancelled": CancelReason.DESK,
    "cancelled by the desk": CancelReason.DESK,
    "cancelled by the client": CancelReason.CLIENT,
    "the technician deleted the event": CancelReason.TECHNICIAN_DELETED,
    "the technician cancelled the event": CancelReason.TECHNICIAN_CANCELLED,
}


def reason_text(stored: str | None, language: str) -> str:
    """A stored cancel reason in ``language``: a :class:`CancelReason` code in the
    catalog's words, a person's own words as they wrote them; ``""`` for none."""
    if not stored:
        return ""
    code = _OLD_REASONS.get(stored)
    if code is None and stored.startswith("rebooked as "):
        code = CancelReason.REBOOKED
    if code is None:
        try:
            code = CancelReason(stored)
        except ValueError:
            return stored
    return TEXTS[language][f"reason_{code}"]
