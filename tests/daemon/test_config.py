"""The configuration file: schema, defaults, every kind of problem, secrets, the example."""

from __future__ import annotations

import pickle
import shutil
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon import cli
from daemon.config import (
    SCHEMA,
    ArrayOfTables,
    Config,
    ConfigError,
    ConfigProblem,
    HolidayCalendar,
    Secret,
    SecretError,
    Table,
    describe,
    example_toml,
    load_config,
    parse_config,
    reference_markdown,
)
from rules.model import DEFAULT_REQUIRED_FIELDS, NoHolidays, Status
from rules.slots import free_slots
from tests.rules.factories import SEED_DAY, at, seed_policy

CONFIGS = Path(__file__).parent / "configs"
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "expediente.example.toml"

TECHNICIAN = """
[[technicians]]
id = "ana"
name = "Ana Souza"
[technicians.calendar]
kind = "caldav"
url = "http://127.0.0.1:5232/ana/work/"
"""
SECRET_VALUES = {
    "admin-token": "admin-token-VALUE-7f3a9c2e41d8",
    "signing-key": "signing-key-VALUE-0b6e5d1c93aa",
    "ana.caldav": "caldav-password-VALUE-55e1",
    "smtp-password": "smtp-password-VALUE-91c0",
    "webhook-key": "webhook-key-VALUE-4d2f8e0a7c",
    "whatsapp-token": "EAAG-token-VALUE-61b2c3d4",
    "whatsapp-app-secret": "app-secret-VALUE-8e9f0a1b",
    "whatsapp-verify-token": "verify-token-VALUE-2c3d4e5f",
}


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def write_secrets(folder: Path, names: tuple[str, ...] = ("admin-token", "signing-key")) -> None:
    (folder / "secrets").mkdir(exist_ok=True)
    for name in names:
        (folder / "secrets" / name).write_text(SECRET_VALUES[name] + "\n", encoding="utf-8")


def install(tmp_path: Path, fixture: str) -> Path:
    """Copy a fixture file into a fresh folder, as a desk would keep it."""
    target = tmp_path / "expediente.toml"
    shutil.copy(CONFIGS / fixture, target)
    return target


def problems_of(text: str, tmp_path: Path, **kwargs: object) -> list[ConfigProblem]:
    path = tmp_path / "expediente.toml"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, path=path, **kwargs)  # type: ignore[arg-type]
    return raised.value.problems


# --- the example and the shapes that must always load ----------------------------------


def test_shipped_example_is_the_one_generated_from_the_schema() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == example_toml(), (
        "regenerate it: python -m daemon.config --example > deploy/expediente.example.toml"
    )


def test_example_documents_every_key_of_the_schema() -> None:
    text = example_toml()

    def walk(table: Table, header: str) -> None:
        for setting in [*table.settings, *(s for v in table.variants.values() for s in v)]:
            name = f"{header}.{setting.name}" if header else setting.name
            if isinstance(setting.kind, ArrayOfTables):
                assert f"[[{name}]]" in text, name
                walk(setting.kind.table, name)
            elif isinstance(setting.kind, Table):
                assert f"[{name}]" in text, name
                walk(setting.kind, name)
            else:
                assert f"\n{setting.name} = " in text or f"\n# {setting.name} = " in text, name
                assert setting.help, f"{name} has no help text"

    walk(SCHEMA, "")


def test_key_reference_lists_every_key() -> None:
    reference = reference_markdown()
    for name in ("desk.holidays", "hours.sat", "technicians[].calendar.url", "smtp.host"):
        assert f"| `{name}`" in reference
    assert '| `technicians[].calendar.credentials_file` (kind = "google") | ' in reference
    assert '| `booking.grace` | a duration like "30m" | `"10m"` |' in reference


def test_example_validates_when_secrets_are_not_checked() -> None:
    config = load_config(EXAMPLE, check_secrets=False)
    assert [t.id for t in config.technicians] == ["ana"]


def test_example_lacks_only_its_secret_files(tmp_path: Path) -> None:
    target = tmp_path / "expediente.toml"
    shutil.copy(EXAMPLE, target)
    with pytest.raises(ConfigError) as raised:
        load_config(target)
    keys = [p.key for p in raised.value.problems]
    assert keys == [
        "technicians[1].calendar.password_file",
        "technicians[1].busy[1].password_file",
        "[server] admin_token_file",
        "[server] signing_key_file",
    ]
    assert all("does not exist" in p.found for p in raised.value.problems)
    write_secrets(tmp_path, ("admin-token", "signing-key", "ana.caldav"))
    assert load_config(target).technicians[0].calendar.password is not None


def test_the_documented_sample_configuration_loads(tmp_path: Path) -> None:
    path = install(tmp_path, "spec.toml")
    write_secrets(tmp_path, ("admin-token", "signing-key", "ana.caldav"))
    config = load_config(path)
    policy = config.policy
    assert policy.closed_dates == {date(2026, 12, 24): "", date(2026, 12, 31): ""}
    assert policy.holidays.get(date(2026, 7, 9)) is not None  # São Paulo's state holiday
    assert [c.role for c in config.technicians[0].calendars] == ["sessions", "busy"]
    assert config.server.host == "127.0.0.1" and config.server.port == 8080
    assert config.store.path == tmp_path / "expediente.db"
    # What the spec leaves out has bounds: refusals are limited, the audit does not grow forever.
    assert config.booking.refusal_limit == 30
    assert config.store.audit_retention == timedelta(days=365)


def test_every_section_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = install(tmp_path, "full.toml")
    write_secrets(
        tmp_path,
        (
            "signing-key", "ana.caldav", "smtp-password", "webhook-key",
            "whatsapp-token", "whatsapp-app-secret", "whatsapp-verify-token",
        ),
    )  # fmt: skip
    (tmp_path / "secrets" / "google.json").write_text('{"type": "service_account"}')
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "rules.txt").write_text("Our own rules.\n", encoding="utf-8")
    credentials = tmp_path / "credentials"  # admin_token_file is /run/keys/admin-token
    credentials.mkdir()
    (credentials / "admin-token").write_text(SECRET_VALUES["admin-token"])
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))

    config = load_config(path)

    desk, booking, policy = config.desk, config.booking, config.policy
    assert desk.language == "en" and policy.timezone == ZoneInfo("America/Manaus")
    assert desk.holidays is not None
    assert (desk.holidays.country, desk.holidays.subdivision) == ("BR", "SP")
    assert desk.holidays.categories == ("public", "optional")
    assert policy.closed_dates[date(2026, 12, 31)] == "Réveillon"
    assert policy.overrides[date(2026, 11, 20)] == ()
    assert [str(r) for r in policy.overrides[date(2026, 12, 23)]] == ["08:00-11:00"]
    assert [str(r) for r in policy.weekly[5]] == ["08:00-12:00"]
    assert [str(r) for r in policy.weekly[1]] == SEED_DAY_TEXT  # keys not given keep defaults
    assert desk.rules_text == "Our own rules." and desk.rules_texts == {"en": "Our own rules."}
    assert booking.reminder is None and booking.rate_limit is None
    assert booking.refusal_limit == 5
    assert booking.cancel_cutoff == timedelta(days=1)
    assert [t.name for t in policy.remote_tools] == ["AnyDesk", "RustDesk", "Suporte Web"]
    assert policy.remote_tools[2].id_pattern is None  # an unknown tool accepts any ID
    assert policy.required_fields == {"company", "responsible_name", "phone", "email", "remote_id"}
    assert list(policy.session_types) == ["quick", "setup-day"]
    assert policy.session_types["quick"].min_notice == timedelta(0)
    assert policy.session_types["setup-day"].duration == timedelta(hours=3, minutes=30)
    ana = config.technicians[0]
    assert ana.calendar.kind == "google" and ana.calendar.calendar_id == "ana@empresa.com.br"
    assert ana.calendar.credentials_file == tmp_path / "secrets" / "google.json"
    assert ana.calendar.api_endpoint == "http://127.0.0.1:9999/calendar/v3/"
    assert ana.busy[0].ca_file == tmp_path / "certs" / "ca.pem"
    assert ana.busy[0].verify_tls is False
    assert config.technicians[1].calendar.password is None
    server = config.server
    assert (server.host, server.port, server.listen) == ("::1", 8443, "[::1]:8443")
    assert server.public_url == "https://agenda.example.com"
    assert server.admin_token.path == credentials / "admin-token"
    assert server.admin_token.reveal() == SECRET_VALUES["admin-token"]
    assert server.behind_proxy is True
    assert config.store.path == tmp_path / "state" / "expediente.db"
    assert config.store.audit_retention is None  # "0d": kept forever
    assert config.smtp is not None and config.smtp.security == "tls"
    assert config.smtp.from_name == "Pardini Relógios — Suporte"  # the desk's name
    assert config.webhooks[0].events == {"booked", "cancelled"}
    assert config.webhooks[1].secret is None
    assert config.webhooks[1].events == {*(str(s) for s in Status), "moved"}
    assert config.log.level == "debug"
    whatsapp = config.whatsapp
    assert whatsapp is not None and whatsapp.phone_number_id == "123456789012345"
    assert whatsapp.api_endpoint == "http://127.0.0.1:9998/v21.0/"  # one slash to add paths to
    assert whatsapp.access_token.reveal() == SECRET_VALUES["whatsapp-token"]
    assert whatsapp.templates.booked == "sessao_agendada_v2"
    assert whatsapp.templates.for_event("reminder") == "sessao_lembrete"  # the default
    assert whatsapp.templates.for_event("moved") is None


def test_whatsapp_keys_are_checked(tmp_path: Path) -> None:
    text = (CONFIGS / "minimal.toml").read_text() + (
        '\n[whatsapp]\nphone_number_id = "+55 11 4000-0000"\naccess_token = "EAAG"\n'
        '[whatsapp.templates]\nbooked = "Sessão Agendada"\n'
    )
    found = {(p.key, p.expected.split(" like")[0]) for p in problems_of(text, tmp_path)}
    assert ("[whatsapp] phone_number_id", "the phone number id, digits only") in found
    assert ("[whatsapp] templates.booked", "a template name") in found
    assert ("[whatsapp] access_token", 'access_token_file = "path/to/file"') in found
    assert {"[whatsapp] app_secret_file", "[whatsapp] verify_token_file"} <= {k for k, _ in found}


SEED_DAY_TEXT = [str(r) for r in SEED_DAY]


# --- defaults are the desk's policy document ---------------------------------------------


def test_defaults_are_the_seed_policy(tmp_path: Path) -> None:
    path = install(tmp_path, "minimal.toml")
    write_secrets(tmp_path)
    policy = load_config(path).policy
    seed = seed_policy()
    assert policy.timezone == ZoneInfo("America/Sao_Paulo")
    assert dict(policy.weekly) == {**dict(seed.weekly), 5: (), 6: ()}
    assert dict(policy.session_types) == dict(seed.session_types)
    assert [t.name for t in policy.remote_tools] == ["AnyDesk"]
    assert policy.remote_tools[0].id_is_valid("123 456 789")
    assert policy.grace == timedelta(minutes=10)
    assert (policy.slot_step, policy.buffer, policy.horizon) == (
        seed.slot_step,
        seed.buffer,
        seed.horizon,
    )
    assert policy.checkin_early == seed.checkin_early
    assert policy.required_fields == DEFAULT_REQUIRED_FIELDS
    assert policy.holidays.get(date(2026, 12, 25)) == "Natal"  # national, in pt-BR
    assert policy.holidays.get(date(2026, 7, 9)) is None  # a São Paulo holiday: not by default
    assert policy.closed_dates == {} and policy.overrides == {}


def test_default_policy_offers_the_seed_grid(tmp_path: Path) -> None:
    path = install(tmp_path, "minimal.toml")
    write_secrets(tmp_path)
    policy = load_config(path).policy
    monday = date(2026, 11, 30)
    starts = [
        f"{s.start:%H:%M}"
        for s in free_slots(policy, "standard", monday, monday, at("2026-11-30 07:00"), {})
    ]
    assert starts[0] == "07:30" and starts[-1] == "17:00"
    assert "12:00" not in starts and "12:30" not in starts
    assert (
        free_slots(
            policy, "standard", date(2026, 12, 25), date(2026, 12, 25), at("2026-12-20 07:00"), {}
        )
        == []
    )


def test_default_rules_text_follows_the_policy_in_both_languages(tmp_path: Path) -> None:
    path = install(tmp_path, "minimal.toml")
    write_secrets(tmp_path)
    config = load_config(path)
    pt, en = config.desk.rules_texts["pt-BR"], config.desk.rules_texts["en"]
    assert config.desk.rules_text == pt
    assert "AnyDesk" in pt and "AnyDesk" in en
    assert "das 07:30 às 12:00 e das 13:00 às 17:30" in pt
    assert "Monday to Friday, 07:30–12:00 and 13:00–17:30" in en
    assert "10 minutos" in pt and "10 minutes" in en
    assert "pelo menos 24 horas" in pt
    assert "teclado" in pt and "responsável" in pt
    assert config.desk.rules_for("en") == en

    changed = path.read_text() + '\n[booking]\ngrace = "15m"\n'
    other = parse_config(changed, path=path)
    assert "15 minutos" in other.desk.rules_text
    assert other.policy.rules_version != config.policy.rules_version
    assert parse_config(path.read_text(), path=path).policy.rules_version == (
        config.policy.rules_version
    )
    assert config.policy.rules_version == config.desk.rules_version
    assert len(config.policy.rules_version) == 12


def test_default_rules_text_speaks_spanish(tmp_path: Path) -> None:
    config = parse_config(
        '[desk]\nlanguage = "es"\nphone = "+55 11 3333-4444"\n' + TECHNICIAN,
        path=tmp_path / "x.toml",
        check_secrets=False,
    )
    es = config.desk.rules_text
    assert es == config.desk.rules_for("es")
    assert es.startswith("Reglas para el acceso remoto — ")
    assert "de lunes a viernes, de 07:30 a 12:00 y de 13:00 a 17:30, excepto en días feriados" in es
    assert "Se tolerarán hasta 10 minutos de retraso" in es
    assert "(teléfono +55 11 3333-4444)" in es
    assert "al menos 24 horas" in es and "soporte técnico" in es


def test_own_rules_text_is_used_as_written(tmp_path: Path) -> None:
    write_secrets(tmp_path)
    text = '[desk]\nrules_text = """\nRegra 1.\nRegra 2.\n"""\n' + TECHNICIAN
    config = parse_config(text, path=tmp_path / "expediente.toml")
    assert config.desk.rules_text == "Regra 1.\nRegra 2."
    assert config.desk.rules_for("en") == "Regra 1.\nRegra 2."


def test_holidays_can_be_turned_off_and_in_english(tmp_path: Path) -> None:
    config = parse_config(
        "[desk]\nholidays = false\n" + TECHNICIAN, path=tmp_path / "x.toml", check_secrets=False
    )
    assert isinstance(config.policy.holidays, NoHolidays)
    assert config.desk.holidays is None
    english = parse_config(
        '[desk]\nlanguage = "en"\n' + TECHNICIAN, path=tmp_path / "x.toml", check_secrets=False
    )
    assert isinstance(english.policy.holidays, HolidayCalendar)
    assert english.policy.holidays.get(date(2026, 12, 25)) == "Christmas Day"


def test_holidays_in_spanish_or_the_countrys_own_language(tmp_path: Path) -> None:
    def name(head: str, day: date) -> str | None:
        config = parse_config(
            '[desk]\nlanguage = "es"\n' + head + TECHNICIAN,
            path=tmp_path / "x.toml",
            check_secrets=False,
        )
        return config.policy.holidays.get(day)

    assert name('holidays = { country = "MX" }\n', date(2026, 12, 25)) == "Navidad"
    # Brazil's holidays come in no Spanish: Portuguese, what people there call them.
    assert name("", date(2026, 12, 25)) == "Natal"


def test_the_default_session_types_speak_the_desks_language(tmp_path: Path) -> None:
    def labels(head: str) -> list[str]:
        config = parse_config(head + TECHNICIAN, path=tmp_path / "x.toml", check_secrets=False)
        return [t.label for t in config.policy.session_types.values()]

    assert labels("") == ["Atendimento remoto", "Atendimento longo (agendado com antecedência)"]
    assert labels('[desk]\nlanguage = "en"\n') == [
        "Remote session",
        "Long session (booked in advance)",
    ]
    assert labels('[desk]\nlanguage = "es"\n') == [
        "Atención remota",
        "Atención extendida (agendada con anticipación)",
    ]
    own = '[desk]\nlanguage = "en"\n[[session_types]]\nname = "quick"\nlabel = "Rápido"\n'
    own += 'duration = "30m"\nmin_notice = "0m"\n'
    assert labels(own) == ["Rápido"], "a label the admin wrote is theirs"


def test_relative_paths_start_at_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "expediente"
    folder.mkdir(parents=True)
    write_secrets(folder)
    (folder / "expediente.toml").write_text(TECHNICIAN + '\n[store]\npath = "data/x.db"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config("etc/expediente/expediente.toml")
    assert config.store.path == folder / "data" / "x.db"
    assert config.server.signing_key.path == folder / "secrets" / "signing-key"
    assert config.path == folder / "expediente.toml"


# --- problems: each names the file and the key, says what was expected and found ---------

CASES = [
    (
        '[booking]\nslot_step = "30 minutes"',
        "[booking] slot_step",
        'expected a duration like "30m", found "30 minutes"',
    ),
    ("[booking]\ngrace = 10", "[booking] grace", "found 10 (a number)"),
    ('[booking]\nslot_step = "0m"', "[booking] slot_step", "longer than zero"),
    ('[booking]\nhorizon = "1h30"', "[booking] horizon", "largest first"),
    ('[desk]\ntimezone = "Mars/Olympus"', "[desk] timezone", "IANA time zone"),
    ('[desk]\nlanguage = "fr"', "[desk] language", 'one of "pt-BR", "en", "es", found "fr"'),
    ('[desk]\nholidays = { country = "XX" }', "[desk] holidays.country", 'found "XX"'),
    (
        '[desk]\nholidays = { country = "BR", subdivision = "ZZ" }',
        "[desk] holidays.subdivision",
        "a subdivision of BR (AC, AL,",
    ),
    (
        '[desk]\nholidays = { country = "BR", categories = ["bank"] }',
        "[desk] holidays.categories[1]",
        "optional, public",
    ),
    ('[desk]\nholidays = { country = "BR", state = "SP" }', "[desk] holidays.state", "unknown key"),
    ("[desk]\nholidays = true", "[desk] holidays", "or false, found true"),
    ('[desk]\nclosed_dates = ["2026-02-30"]', "[desk] closed_dates[1]", 'a date like "2026-12-24"'),
    ('[desk]\nclosed_dates = "2026-12-24"', "[desk] closed_dates", "a list of dates"),
    ('[desk]\nname = ""', "[desk] name", "found an empty text"),
    ('[desk]\nemail = "suporte"', "[desk] email", "an e-mail address"),
    ('[desk]\nrules_file = "missing.txt"', "[desk] rules_file", "does not exist"),
    ('[hours]\nmon = ["07:30-12:00", "11:00-13:00"]', "[hours] mon", "do not overlap"),
    ('[hours]\nmon = ["07:30-12:00", "12:00-13:00"]', "[hours] mon", '"07:30-13:00"'),
    ('[hours]\nmon = ["12:00-07:30"]', "[hours] mon", 'found "12:00-07:30"'),
    ('[hours]\nmon = "07:30-12:00"', "[hours] mon", "a list of time ranges"),
    ('[hours]\nmon = ["7h30-12h"]', "[hours] mon", "HH:MM-HH:MM"),
    ('[overrides]\n"2026-13-01" = []', "[overrides] 2026-13-01", "a date like"),
    ('[overrides]\n"2026-12-23" = ["8-12"]', "[overrides] 2026-12-23", "time ranges"),
    (
        '[booking]\nrequired_fields = ["company", "cpf"]',
        "[booking] required_fields[2]",
        "remote_id",
    ),
    ("[booking]\nremote_tools = []", "[booking] remote_tools", "found an empty list"),
    (
        '[booking]\nremote_tools = ["AnyDesk", "anydesk"]',
        "[booking] remote_tools[2]",
        "each entry once",
    ),
    ("[booking]\nrate_limit = -1", "[booking] rate_limit", "a whole number from 0"),
    ('[booking]\nrate_limit = "10"', "[booking] rate_limit", "without quotes"),
    ("[booking]\nrefusal_limit = -1", "[booking] refusal_limit", "a whole number from 0"),
    ('[store]\naudit_retention = "1y"', "[store] audit_retention", 'a duration like "30m"'),
    (
        '[[session_types]]\nname = "x"\nlabel = "X"\nduration = "1h"\nmin_notice = "31d"',
        "session_types[1].min_notice",
        "no longer than [booking] horizon (30d), found 31d",
    ),
    (
        '[[session_types]]\nname = "x"\nlabel = "X"\nduration = "5h"',
        "session_types[1].duration",
        "fits in one opening range (the longest is 4h30m)",
    ),
    (
        '[[session_types]]\nname = "Long One"\nlabel = "X"\nduration = "1h"',
        "session_types[1].name",
        "an identifier",
    ),
    (
        '[[session_types]]\nname = "x"\nduration = "1h"',
        "session_types[1].label",
        "found nothing; this key is required",
    ),
    ("session_types = []", "[[session_types]]", "at least one [[session_types]] entry"),
    ('[server]\nlisten = "8080"', "[server] listen", "an address and port"),
    ('[server]\nlisten = "127.0.0.1:99999"', "[server] listen", "65535"),
    ('[server]\npublic_url = "agenda.example.com"', "[server] public_url", "an http(s) URL"),
    ('[server]\nbehind_proxy = "yes"', "[server] behind_proxy", "true or false"),
    (
        '[sync]\ninterval = "5m"\nstale_after = "5m"',
        "[sync] stale_after",
        "longer than [sync] interval (5m)",
    ),
    ('[smtp]\nport = 587\nfrom_address = "a@b.example"', "[smtp] host", "found nothing"),
    (
        '[smtp]\nhost = "h"\nfrom_address = "a@b.example"\nsecurity = "ssl"',
        "[smtp] security",
        '"starttls", "tls", "none"',
    ),
    (
        '[[webhooks]]\nurl = "https://h.example.com/"\nevents = ["paid"]',
        "webhooks[1].events[1]",
        '"booked"',
    ),
    ('[log]\nlevel = "verbose"', "[log] level", '"debug"'),
    (
        '[console]\nidle_timeout = "15s"\npoll_interval = "15s"',
        "[console] idle_timeout",
        "longer than [console] poll_interval (15s)",
    ),
    ("[console]\nfailed_logins = 0", "[console] failed_logins", "from 1 to 1000"),
    # Past what a date can be added to: the slot search would fail on every request.
    ('[booking]\nhorizon = "3000000d"', "[booking] horizon", "at most 3650d"),
    ('[booking]\nhorizon = "9999999999d"', "[booking] horizon", "at most 3650d"),
    ('[bookings]\nslot_step = "30m"', "[bookings]", 'did you mean "booking"?'),
    ('[booking]\nslot_stp = "15m"', "[booking] slot_stp", 'did you mean "slot_step"?'),
    ('[hours]\nthursday = ["08:00-12:00"]', "[hours] thursday", 'did you mean "thu"?'),
    ('[calendar]\nkind = "caldav"', "[calendar]", "[technicians.calendar]"),
    ('[desk]\nhours = { mon = ["08:00-12:00"] }', "[desk] hours", "[hours] section"),
]


@pytest.mark.parametrize(("snippet", "key", "fragment"), CASES)
def test_each_problem_names_file_key_expected_and_found(
    tmp_path: Path, snippet: str, key: str, fragment: str
) -> None:
    problems = problems_of(snippet + "\n" + TECHNICIAN, tmp_path, check_secrets=False)
    assert [p.key for p in problems] == [key], problems
    message = str(problems[0])
    assert message.startswith(f"{tmp_path / 'expediente.toml'}: {key}: expected ")
    assert ", found " in message
    assert fragment in message


CAL = '[[technicians]]\nid = "a"\nname = "A"\n[technicians.calendar]\n'
TECHNICIAN_CASES = [
    ("", "[[technicians]]", "found nothing"),
    ("technicians = []", "[[technicians]]", "at least one [[technicians]] entry, found none"),
    ('[technicians]\nid = "ana"', "[[technicians]]", "write [[technicians]] (double brackets)"),
    ('[[technicians]]\nid = "ana"\nname = "Ana"', "technicians[1].calendar", "found nothing"),
    (
        CAL.replace('"a"', '"Ana Souza"') + 'kind = "caldav"\nurl = "http://h/"',
        "technicians[1].id",
        "an identifier",
    ),
    (
        CAL + 'kind = "exchange"',
        "technicians[1].calendar.kind",
        'one of "caldav", "google", found "exchange"',
    ),
    (
        CAL + 'url = "http://h/"',
        "technicians[1].calendar.kind",
        "found nothing",
    ),
    (
        CAL + 'kind = "caldav"\nurl = "ftp://h/a/"',
        "technicians[1].calendar.url",
        'found "ftp://h/a/"',
    ),
    (
        CAL + 'kind = "google"\ncalendar_id = "a@b.example"',
        "technicians[1].calendar.credentials_file",
        "found nothing",
    ),
    (
        CAL + 'kind = "google"\ncalendar_id = "x"\ncredentials_file = "g.json"\nusername = "a"',
        "technicians[1].calendar.username",
        'a key of kind = "google", found a key of kind = "caldav"',
    ),
    (
        CAL + 'kind = "caldav"\nurl = "http://h/"\npassword_file = "p"',
        "technicians[1].calendar.username",
        "a user name to go with password_file",
    ),
    (
        CAL + 'kind = "caldav"\nurl = "http://h/a/"\n'
        '[[technicians.busy]]\nkind = "caldav"\nurl = "http://h/a/"',
        "technicians[1].busy[1]",
        "each calendar once per technician",
    ),
    (
        CAL + 'kind = "caldav"\nurl = "http://h/"\nca_file = "ca.pem"',
        "technicians[1].calendar.ca_file",
        "an existing file",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragment"), TECHNICIAN_CASES)
def test_technician_problems(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    problems = problems_of(text, tmp_path, check_secrets=False)
    assert [p.key for p in problems] == [key], problems
    assert str(problems[0]).startswith(f"{tmp_path / 'expediente.toml'}: {key}: expected ")
    assert fragment in str(problems[0])


def test_duplicate_ids_and_shared_session_calendars(tmp_path: Path) -> None:
    problems = problems_of(
        TECHNICIAN + TECHNICIAN.replace("Ana Souza", "Outra"), tmp_path, check_secrets=False
    )
    assert [p.key for p in problems] == ["technicians[2].id", "technicians[2].calendar.url"]
    assert 'found "ana" again' in str(problems[0])
    assert "[[technicians.busy]]" in problems[1].hint


def test_overrides_and_closed_dates_for_the_same_day(tmp_path: Path) -> None:
    text = '[desk]\nclosed_dates = ["2026-12-23"]\n[overrides]\n"2026-12-23" = ["08:00-12:00"]\n'
    problems = problems_of(text + TECHNICIAN, tmp_path, check_secrets=False)
    assert [p.key for p in problems] == ["[overrides] 2026-12-23"]


def test_a_desk_that_never_opens(tmp_path: Path) -> None:
    text = "[hours]\nmon = []\ntue = []\nwed = []\nthu = []\nfri = []\n" + TECHNICIAN
    problems = problems_of(text, tmp_path, check_secrets=False)
    assert [p.key for p in problems] == ["[hours]"]
    assert "every day closed" in str(problems[0])


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = install(tmp_path, "many_problems.toml")
    with pytest.raises(ConfigError) as raised:
        load_config(path, check_secrets=False)
    keys = [p.key for p in raised.value.problems]
    assert sorted(keys) == sorted(
        [
            "[desk] timezone",
            "[desk] language",
            "[desk] holidays.country",
            "[hours] mon",
            "[hours] tue",
            "[hours] thursday",
            "[booking] slot_step",
            "[booking] grace",
            "[booking] slot_stp",
            "[booking] required_fields[2]",
            "technicians[1].calendar.url",
            "technicians[1].calendar.password",
            "technicians[2].calendar.url",
            "technicians[2].calendar.calendar_id",
            "technicians[2].calendar.credentials_file",
            "[server] listen",
            "[sync] stale_after",
            "session_types[2].name",
            "session_types[2].min_notice",
            "technicians[2].id",
        ]
    )
    lines = str(raised.value).splitlines()
    assert len(lines) == len(keys)
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert 'did you mean "America/Sao_Paulo"?' in str(raised.value)
    assert "hunter2" not in str(raised.value)  # the fixture's inline password


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    problems = problems_of("[booking]\nslot_step = 30m\n", tmp_path)
    assert len(problems) == 1
    assert "line 2" in problems[0].found
    assert str(problems[0]).startswith(f"{tmp_path / 'expediente.toml'}: expected valid TOML")
    assert 'slot_step = "30m"' in problems[0].hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: cannot read the file"):
        load_config(tmp_path / "nowhere.toml")


def test_config_error_is_a_user_error_for_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "expediente.toml"
    path.write_text('[booking]\nslot_step = "30 minutes"\n' + TECHNICIAN)
    assert cli.main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f'{path}: [booking] slot_step: expected a duration like "30m"' in err


# --- secrets ----------------------------------------------------------------------------


def test_inline_secrets_are_refused_without_echoing_them(tmp_path: Path) -> None:
    text = TECHNICIAN + 'username = "ana"\npassword = "hunter2-Secret"\n'
    text += '[server]\nadmin_token = "token-Secret-123456"\n'
    problems = problems_of(text, tmp_path, check_secrets=False)
    assert [p.key for p in problems] == [
        "technicians[1].calendar.password",
        "[server] admin_token",
    ]
    assert "password_file" in str(problems[0]) and "admin_token_file" in str(problems[1])
    assert all(p.found == "an inline secret (not shown)" for p in problems)
    assert "Secret" not in "\n".join(str(p) for p in problems)


def test_a_password_in_a_url_is_refused_and_masked(tmp_path: Path) -> None:
    text = TECHNICIAN.replace("http://127.0.0.1", "http://ana:hunter2@127.0.0.1")
    problems = problems_of(text, tmp_path, check_secrets=False)
    assert [p.key for p in problems] == ["technicians[1].calendar.url"]
    assert "hunter2" not in str(problems[0])
    assert "ana:***@127.0.0.1" in str(problems[0])


def test_secrets_are_read_from_files(tmp_path: Path) -> None:
    write_secrets(tmp_path, ("admin-token", "signing-key", "ana.caldav"))
    text = TECHNICIAN + 'username = "ana"\npassword_file = "secrets/ana.caldav"\n'
    config = parse_config(text, path=tmp_path / "expediente.toml")
    password = config.technicians[0].calendar.password
    assert password is not None
    assert password.reveal() == SECRET_VALUES["ana.caldav"]  # the trailing newline is dropped
    assert config.technicians[0].calendar.password_file == tmp_path / "secrets" / "ana.caldav"
    assert config.server.admin_token.reveal() == SECRET_VALUES["admin-token"]


def test_missing_unreadable_and_weak_secret_files_are_problems(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "admin-token").write_text("short\n")
    (tmp_path / "secrets" / "ana.caldav").write_text("\n")
    text = TECHNICIAN + 'username = "ana"\npassword_file = "secrets/ana.caldav"\n'
    problems = problems_of(text, tmp_path)
    by_key = {p.key: p for p in problems}
    assert set(by_key) == {
        "technicians[1].calendar.password_file",
        "[server] admin_token_file",
        "[server] signing_key_file",
    }
    assert "which is empty" in by_key["technicians[1].calendar.password_file"].found
    assert by_key["[server] admin_token_file"].expected == "a secret of at least 16 characters"
    assert "short" not in str(by_key["[server] admin_token_file"])
    signing = str(by_key["[server] signing_key_file"])
    assert "(the default)" in signing and "does not exist" in signing
    assert "head -c 32 /dev/urandom" in signing


def test_google_credentials_must_be_a_json_key(tmp_path: Path) -> None:
    write_secrets(tmp_path)
    (tmp_path / "secrets" / "google.json").write_text("not json at all")
    text = (
        CAL + 'kind = "google"\ncalendar_id = "primary"\ncredentials_file = "secrets/google.json"\n'
    )
    problems = problems_of(text, tmp_path)
    assert [p.key for p in problems] == ["technicians[1].calendar.credentials_file"]
    assert "not json" not in str(problems[0])


def test_credentials_directory_wins_over_the_configured_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_secrets(tmp_path)  # the configured files exist too, with other values
    credentials = tmp_path / "run-credentials"
    credentials.mkdir()
    (credentials / "admin-token").write_text("from-systemd-credentials-0123\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = parse_config(TECHNICIAN, path=tmp_path / "expediente.toml")
    assert config.server.admin_token.reveal() == "from-systemd-credentials-0123"
    assert config.server.admin_token.path == credentials / "admin-token"
    # a file the credentials folder does not hold still comes from its configured path
    assert config.server.signing_key.reveal() == SECRET_VALUES["signing-key"]


def test_credentials_directory_alone_is_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in ("admin-token", "signing-key"):
        (credentials / name).write_text(SECRET_VALUES[name])
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = parse_config(TECHNICIAN, path=tmp_path / "expediente.toml")
    assert config.server.signing_key.reveal() == SECRET_VALUES["signing-key"]


def test_secret_never_shows_itself(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("s3cr3t-value\n")
    secret = Secret(tmp_path / "key")
    assert repr(secret) == str(secret) == f"{secret}" == f"{secret:>20}" == "***"
    assert "s3cr3t" not in repr([secret, {"k": secret}])
    assert secret.reveal() == "s3cr3t-value"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert Secret(tmp_path / "key") == secret
    assert Secret(value="inline-for-tests").reveal() == "inline-for-tests"


def test_unchecked_secret_fails_clearly_on_first_use(tmp_path: Path) -> None:
    config = parse_config(TECHNICIAN, path=tmp_path / "expediente.toml", check_secrets=False)
    with pytest.raises(SecretError, match="admin-token"):
        config.server.admin_token.reveal()


# --- check-config -----------------------------------------------------------------------


def full_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    path = install(tmp_path, "full.toml")
    write_secrets(tmp_path, tuple(SECRET_VALUES))
    (tmp_path / "secrets" / "google.json").write_text(
        '{"type": "service_account", "private_key": "google-PRIVATE-KEY"}'
    )
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("pem")
    (tmp_path / "rules.txt").write_text("Our rules.")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "secrets"))
    return load_config(path)


def test_describe_shows_the_effective_policy_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = full_config(tmp_path, monkeypatch)
    text = describe(config)
    for fragment in (
        "time zone America/Manaus",
        "mon  08:00-12:00, 13:00-18:00",
        "sat  08:00-12:00",
        "sun  closed",
        "Public holidays: closed (BR, subdivision SP, categories public, optional)",
        "2026-12-24 (Véspera de Natal)",
        "Override 2026-11-20: closed",
        "rescheduled 15m after the start",
        "setup-day: Installation; 3h30m, at least 2d ahead",
        "google ana@empresa.com.br as ana@empresa.com.br",
        "TLS NOT VERIFIED",
        "listens on [::1]:8443",
        f"admin token from {tmp_path / 'secrets' / 'admin-token'}",
        "E-mail: smtp.example.com:465 (tls) as agenda",
        "Webhook: https://hooks.example.com/expediente (booked, cancelled)",
        "WhatsApp: number id 123456789012345 via http://127.0.0.1:9998/v21.0/, templates in "
        "pt_BR: booked sessao_agendada_v2, reminder sessao_lembrete",
        "Rate limit: none; 5 refused per 30m",
        "audit kept forever",
        f"version {config.policy.rules_version}",
        "| Our rules.",
    ):
        assert fragment in text, fragment
    for value in [*SECRET_VALUES.values(), "google-PRIVATE-KEY"]:
        assert value not in text
        assert value not in repr(config)


def test_check_config_prints_the_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = install(tmp_path, "minimal.toml")
    write_secrets(tmp_path)
    assert cli.main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mon  07:30-12:00, 13:00-17:30" in out
    assert "ana: Ana Souza" in out
    assert f"{path}: OK" in out
    assert SECRET_VALUES["admin-token"] not in out


# --- calendars --------------------------------------------------------------------------


def test_calendar_ids_are_stable_and_distinct(tmp_path: Path) -> None:
    busy = (
        '[[technicians.busy]]\nkind = "caldav"\nurl = "http://127.0.0.1:5232/ana/a/"\n'
        '[[technicians.busy]]\nkind = "caldav"\nurl = "http://127.0.0.1:5232/ana/b/"\n'
    )
    swapped = busy.replace("/ana/a/", "/ana/X/").replace("/ana/b/", "/ana/a/")
    swapped = swapped.replace("/ana/X/", "/ana/b/")
    first = parse_config(TECHNICIAN + busy, path=tmp_path / "x.toml", check_secrets=False)
    second = parse_config(TECHNICIAN + swapped, path=tmp_path / "x.toml", check_secrets=False)
    ids_first = {c.address: c.id for c in first.calendars}
    ids_second = {c.address: c.id for c in second.calendars}
    assert ids_first == ids_second  # reordering keeps each calendar's id (and its sync state)
    assert len(set(ids_first.values())) == 3
    assert first.technicians[0].calendar.id.startswith("ana:sessions:")
    assert first.calendar(first.technicians[0].busy[0].id) == first.technicians[0].busy[0]
    assert first.technician("ana") is first.technicians[0]
