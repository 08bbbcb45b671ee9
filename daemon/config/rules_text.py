"""The rules text clients accept, written from the desk's policy document and its settings.

Unless ``[desk] rules_text`` or ``rules_file`` replaces it, the text clients read and accept
before booking is the desk's policy document (seed/000_…txt) in pt-BR and English, with this
file's hours, tolerance, tools and session types filled in, so the rules can never say
something the daemon does not do. :func:`rules_version` names the wording each acceptance
was given under.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta

from rules.model import NoHolidays, Policy, TimeRange

DAY_NAMES = {
    "pt-BR": (
        "segunda-feira",
        "terça-feira",
        "quarta-feira",
        "quinta-feira",
        "sexta-feira",
        "sábado",
        "domingo",
    ),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def rules_version(texts: Mapping[str, str]) -> str:
    """A short hash naming the rules' wording, stored with each acceptance."""
    digest = hashlib.sha256()
    for language in sorted(texts):
        digest.update(f"{language}\n{texts[language]}\n\0".encode())
    return digest.hexdigest()[:12]


def spoken_duration(value: timedelta, language: str) -> str:
    """``2h`` → "2 horas" / "2 hours"; whole days from two days up."""
    pt = language == "pt-BR"
    total = int(value.total_seconds())
    if total >= 2 * 86400 and total % 86400 == 0:
        return f"{total // 86400} {'dias' if pt else 'days'}"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    words = [
        ("hora", "horas", "hour", "hours", hours),
        ("minuto", "minutos", "minute", "minutes", minutes),
        ("segundo", "segundos", "second", "seconds", seconds),
    ]
    parts = []
    for one_pt, many_pt, one_en, many_en, amount in words:
        if amount:
            one, many = (one_pt, many_pt) if pt else (one_en, many_en)
            parts.append(f"{amount} {one if amount == 1 else many}")
    if not parts:
        return "0 minutos" if pt else "0 minutes"
    return (" e " if pt else " ").join(parts)


def _join(items: Sequence[str], word: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def hours_phrase(weekly: Mapping[int, Sequence[TimeRange]], language: str) -> str:
    """The weekly hours in words, consecutive days with equal hours grouped."""
    pt = language == "pt-BR"
    names = DAY_NAMES["pt-BR" if pt else "en"]
    groups: list[tuple[int, int, tuple[TimeRange, ...]]] = []
    for day in range(7):
        ranges = tuple(weekly.get(day, ()))
        if not ranges:
            continue
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == ranges:
            groups[-1] = (groups[-1][0], day, ranges)
        else:
            groups.append((day, day, ranges))
    phrases = []
    for first, last, ranges in groups:
        if pt:
            days = names[first] if first == last else f"de {names[first]} a {names[last]}"
            times = _join([f"das {r.start:%H:%M} às {r.end:%H:%M}" for r in ranges], "e")
        else:
            days = names[first] if first == last else f"{names[first]} to {names[last]}"
            times = _join([f"{r.start:%H:%M}–{r.end:%H:%M}" for r in ranges], "and")
        phrases.append(f"{days}, {times}")
    if not phrases:
        return "somente nas datas anunciadas" if pt else "only on announced dates"
    return "; ".join(phrases)


def default_rules_text(
    policy: Policy,
    *,
    language: str,
    desk_name: str,
    phone: str | None = None,
    whatsapp: str | None = None,
) -> str:
    """The desk's policy document (seed/000_…txt) as rules for clients, from ``policy``."""
    pt = language == "pt-BR"
    tools = _join([tool.name for tool in policy.remote_tools], "ou" if pt else "or")
    contacts = [
        f"WhatsApp {whatsapp}" if whatsapp else "",
        (f"{'telefone' if pt else 'phone'} {phone}" if phone else ""),
    ]
    contact = "; ".join(c for c in contacts if c)
    contact = f" ({contact})" if contact else ""
    holidays = not isinstance(policy.holidays, NoHolidays)
    hours = hours_phrase(policy.weekly, language)
    grace = spoken_duration(policy.grace, language)
    notices = []
    for session_type in policy.session_types.values():
        duration = spoken_duration(session_type.duration, language)
        if session_type.min_notice > timedelta(0):
            notice = spoken_duration(session_type.min_notice, language)
            notice = f"pelo menos {notice}" if pt else f"at least {notice}"
        else:
            notice = "sem antecedência mínima" if pt else "no minimum notice"
        notices.append(f"{session_type.label} ({duration}): {notice}")
    notice_list = "; ".join(notices)
    if pt:
        lines = [
            f"Regras para acessos remotos — {desk_name}",
            "",
            "Para que o atendimento por acesso remoto seja eficiente, o cliente deve seguir "
            "estas regras:",
            "",
            f"1. O acesso remoto se dará através do {tools} ou de outro meio sugerido pelo "
            "suporte técnico.",
            "2. O programa de acesso remoto deve ser instalado antes do horário de início do "
            "atendimento. Quando estiver tudo pronto, o responsável deve chamar o suporte por "
            f"WhatsApp ou ligação{contact}, com os dados do acesso, para iniciar o atendimento.",
            "3. Casos que demandam mais tempo devem ser agendados previamente. Antecedência "
            f"mínima por tipo de atendimento: {notice_list}.",
            f"4. O acesso remoto é permitido {hours}"
            + (", exceto em feriados." if holidays else "."),
            "5. O horário agendado deve ser cumprido. Serão tolerados até "
            f"{grace} de atraso para o início do atendimento; se no horário agendado não "
            "houver disponibilidade, o acesso remoto terá de ser reagendado.",
            "6. O cliente só deve interferir no atendimento quando solicitado pelo suporte: "
            "não mexa no teclado nem no mouse durante o acesso remoto, pois isso torna o "
            "atendimento mais demorado.",
            "7. Um responsável do cliente deve estar disponível durante o acesso remoto, "
            "obrigatoriamente.",
            "",
            "O suporte técnico compromete-se a manter a confidencialidade, o profissionalismo, "
            "a responsabilidade e a ética.",
        ]
    else:
        lines = [
            f"Remote-access rules — {desk_name}",
            "",
            "For remote support to work well, the client agrees to these rules:",
            "",
            f"1. Remote access takes place through {tools} or another means the support desk "
            "suggests.",
            "2. Install the remote-access program before the session's start time. When "
            "everything is ready, the person responsible calls the desk by WhatsApp or "
            f"phone{contact} with the access details to begin.",
            "3. Cases that need more time must be booked in advance. Minimum notice by session "
            f"type: {notice_list}.",
            f"4. Remote access is available {hours}"
            + (", except on public holidays." if holidays else "."),
            f"5. The booked time must be kept. Up to {grace} of delay is tolerated for the "
            "session to start; if the client is not available at the booked time, the "
            "session must be rescheduled.",
            "6. The client only touches the keyboard or mouse when the technician asks: "
            "interfering during remote access makes the session take longer.",
            "7. A person responsible on the client's side must be present during the remote "
            "session.",
            "",
            "The support desk is committed to confidentiality, professionalism, responsibility "
            "and ethics.",
        ]
    return "\n".join(lines)
