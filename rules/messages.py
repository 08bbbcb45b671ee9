"""Human messages for violations, in pt-BR (the desk's language) and English.

Codes are the contract; messages are for people and may improve freely. A template is
looked up by ``"code/detail"`` first, then by ``code`` alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rules.model import Code, Violation

LANGUAGES = ("pt-BR", "en")

FIELD_LABELS: Mapping[str, Mapping[str, str]] = {
    "pt-BR": {
        "type": "tipo de atendimento",
        "start": "horário",
        "company": "empresa",
        "responsible_name": "responsável",
        "phone": "telefone/WhatsApp",
        "email": "e-mail",
        "remote_tool": "ferramenta de acesso remoto",
        "remote_id": "ID de acesso",
        "description": "descrição do problema",
        "accept_rules": "aceite das regras",
        "language": "idioma",
    },
    "en": {
        "type": "session type",
        "start": "time",
        "company": "company",
        "responsible_name": "responsible person",
        "phone": "phone/WhatsApp",
        "email": "e-mail",
        "remote_tool": "remote-access tool",
        "remote_id": "access ID",
        "description": "problem description",
        "accept_rules": "acceptance of the rules",
        "language": "language",
    },
}

_TEMPLATES: Mapping[str, Mapping[str, str]] = {
    "pt-BR": {
        "closed_day/holiday": "Não há atendimento em {date}: feriado ({label}).",
        "closed_day/closed_date": "Não há atendimento em {date}: o suporte estará fechado.",
        "closed_day": "Não há atendimento neste dia.",
        "closed_day/weekly": "Não há atendimento neste dia; atendemos {days}.",
        "outside_hours": "Fora do horário de atendimento ({hours}).",
        "spans_break": "O atendimento ultrapassaria o intervalo das {break_start} às {break_end}; escolha um horário que termine antes dele.",
        "insufficient_notice": "Este tipo de atendimento precisa ser agendado com pelo menos {notice} de antecedência.",
        "beyond_horizon": "Só é possível agendar até {horizon} à frente.",
        "in_past": "Este horário já passou.",
        "unknown_type": "Tipo de atendimento desconhecido (disponíveis: {types}).",
        "no_technician_available": "Nenhum técnico está livre neste horário; escolha outro.",
        "calendar_stale": "Não foi possível confirmar a agenda dos técnicos agora; tente novamente em alguns minutos.",
        "slot_taken": "Este horário acabou de ser reservado por outra pessoa; escolha outro.",
        "missing_field": "Preencha o campo {field_label}.",
        "invalid_field/phone": "Telefone/WhatsApp inválido: informe DDD e número, por exemplo (11) 98765-4321.",
        "invalid_field/email": "E-mail inválido.",
        "invalid_field/remote_id": "ID de acesso do {tool} inválido (exemplo: {example}).",
        "invalid_field/too_long": "O campo {field_label} aceita no máximo {max} caracteres.",
        "invalid_field/grid": "Escolha um dos horários oferecidos (a cada {step} minutos).",
        "invalid_field": "Valor inválido no campo {field_label}.",
        "rules_not_accepted": "É preciso ler e aceitar as regras do atendimento remoto.",
        "tool_not_allowed": "Ferramenta de acesso remoto não permitida (permitidas: {tools}).",
    },
    "en": {
        "closed_day/holiday": "The desk is closed on {date}: public holiday ({label}).",
        "closed_day/closed_date": "The desk is closed on {date}.",
        "closed_day": "The desk is closed on this day.",
        "closed_day/weekly": "The desk is closed on this day; remote sessions run {days}.",
        "outside_hours": "Outside the desk's hours ({hours}).",
        "spans_break": "The session would run into the break from {break_start} to {break_end}; pick a time that ends before it.",
        "insufficient_notice": "This session type must be booked at least {notice} in advance.",
        "beyond_horizon": "Bookings are open up to {horizon} ahead.",
        "in_past": "This time has already passed.",
        "unknown_type": "Unknown session type (available: {types}).",
        "no_technician_available": "No technician is free at this time; please pick another.",
        "calendar_stale": "The technicians' calendars could not be checked just now; please try again in a few minutes.",
        "slot_taken": "This time was just booked by someone else; please pick another.",
        "missing_field": "Please fill in the {field_label}.",
        "invalid_field/phone": "Invalid phone/WhatsApp: give the area code and number, e.g. (11) 98765-4321.",
        "invalid_field/email": "Invalid e-mail address.",
        "invalid_field/remote_id": "Invalid {tool} access ID (example: {example}).",
        "invalid_field/too_long": "The {field_label} takes at most {max} characters.",
        "invalid_field/grid": "Please pick one of the offered times (every {step} minutes).",
        "invalid_field": "Invalid value for the {field_label}.",
        "rules_not_accepted": "Please read and accept the remote-session rules.",
        "tool_not_allowed": "Remote-access tool not allowed (allowed: {tools}).",
    },
}


def language_of(tag: str | None) -> str:
    """Map a language tag (``pt``, ``pt-br``, ``en-US``...) to a supported language."""
    if tag and tag.strip().lower().startswith("en"):
        return "en"
    return "pt-BR"


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


_DAYS = {
    # (as the start of a range or alone in a list, as the end of a range)
    "pt-BR": [("segunda", "segunda-feira"), ("terça", "terça-feira"), ("quarta", "quarta-feira"),
              ("quinta", "quinta-feira"), ("sexta", "sexta-feira"), ("sábado", "sábado"),
              ("domingo", "domingo")],
    "en": [(d, d) for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                            "Saturday", "Sunday")],
}  # fmt: skip


_UNIT_WORDS = {
    "pt-BR": {"d": ("dia", "dias"), "h": ("hora", "horas"), "min": ("minuto", "minutos")},
    "en": {"d": ("day", "days"), "h": ("hour", "hours"), "min": ("minute", "minutes")},
}


def _spoken(short: str, lang: str) -> str:
    """``"30d"`` → ``"30 dias"``; anything else as given."""
    match = re.fullmatch(r"(\d+)(d|h|min)", short)
    if match is None:
        return short
    count = int(match.group(1))
    one, many = _UNIT_WORDS[lang][match.group(2)]
    return f"{count} {one if count == 1 else many}"


def _days_phrase(open_days: str, lang: str) -> str:
    """ "de segunda a sexta-feira" / "Monday to Friday" for a run of days, else a list."""
    days = [int(d) for d in open_days.split(",") if d]
    names = _DAYS[lang]
    pt = lang == "pt-BR"
    if not days:
        return "somente em datas anunciadas" if pt else "only on announced dates"
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        first, last = names[days[0]][0], names[days[-1]][1]
        return f"de {first} a {last}" if pt else f"{first} to {last}"
    listed = [names[d][1] for d in days]
    if len(listed) == 1:
        return listed[0]
    joined = ", ".join(listed[:-1])
    return f"{joined} e {listed[-1]}" if pt else f"{joined} and {listed[-1]}"


def message(violation: Violation, language: str = "pt-BR") -> str:
    """The violation as a sentence in ``language`` (pt-BR when unsupported)."""
    lang = language_of(language)
    templates = _TEMPLATES[lang]
    code = Code(violation.code).value
    template = templates.get(f"{code}/{violation.detail}") or templates[code]
    params = _Defaulting(violation.params)
    for name in ("notice", "horizon"):  # "24h" in a sentence reads "24 horas"
        if name in violation.params:
            params[name] = _spoken(violation.params[name], lang)
    if "open_days" in violation.params:
        params["days"] = _days_phrase(violation.params["open_days"], lang)
    if violation.field:
        params["field_label"] = FIELD_LABELS[lang].get(violation.field, violation.field)
    return template.format_map(params)
