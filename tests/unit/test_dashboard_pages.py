"""The dashboard's pages, run with Streamlit's AppTest against a real, migrated PostgreSQL.

Each test gets its own schema (``migrated``) and points the app at it with
environment variables.  Test data goes in with plain INSERTs matching the
migrations; the green-check test builds a small real log (signed envelopes,
tiles, a signed checkpoint and a witness cosignature).
"""

from __future__ import annotations

import html
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from streamlit.testing.v1 import AppTest

from infra import log_store
from infra.identities import PlatformKeys
from infra.settings import Settings
from schemas.envelope import Envelope, sign_event
from schemas.note import cosign, parse_note
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from stream_processors.checkpointer import make_checkpoint

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = ["views/overview.py", "views/track.py", "views/projects.py", "views/watchdog.py",
         "views/publishers.py", "views/audit.py"]
LOCALES = Path(APP).parent / "locales"
OPERATOR = "op.remesas-sol"
SECRET = b"operator-secret-0123456789abcdef"
TRANSFER = "tr-0001"
PROJECT = "mx-zac-agua-2025"
FLAG = "flg_aaaaaaaaaaaaaaaaaaaaaaaaaa"
PFLAG = "flg_bbbbbbbbbbbbbbbbbbbbbbbbbb"
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def strings(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The dashboard never talks to Kafka: do not start the embedded broker for these tests."""
    return "unused:9092"


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with test-sized cost (production uses argon2-cffi's RFC 9106 defaults)."""
    from argon2 import PasswordHasher

    from dashboard import auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    auth._dummy_hash.cache_clear()


@pytest.fixture
def env(migrated: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DATABASE_URL", migrated.database_url)
    monkeypatch.setenv("DATABASE_SCHEMA", migrated.database_schema)
    monkeypatch.setenv("CUENTAS_DATA_DIR", migrated.data_dir)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("WITNESS_KEYS", TRUSTED_WITNESS)
    for var in ("DASHBOARD_DATABASE_URL", "CUENTAS_CONFIG", "MIN_GROUP_SIZE", "LOG_KEY_FILE", "REGISTRY_KEY_FILE",
                "MIN_WITNESSES"):
        monkeypatch.delenv(var, raising=False)
    return migrated


def sql(settings: Settings, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(settings.database_url, options=f"-c search_path={settings.database_schema}")
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def run(page: str | None = None, *, lang: str = "en", query: dict[str, str] | None = None,
        at: AppTest | None = None) -> AppTest:
    if at is None:
        at = AppTest.from_file(APP, default_timeout=30)
        at.query_params["lang"] = lang
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text(at: AppTest) -> str:
    """Everything a visitor can read on the page (and the downloadable tables)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "success", "info", "warning", "error",
                 "code", "text"):
        parts += [str(e.value) for e in getattr(at, kind)]
    for m in at.metric:
        parts += [str(m.label), str(m.value)]
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    for el in at.get("graphviz_chart"):
        parts.append(str(el.proto.spec))
    for el in at.get("page_link"):
        parts.append(str(el.proto.label))
    return "\n".join(parts)


# --- data -------------------------------------------------------------------------------------------


def append(cur: Any, envs: list[Envelope]) -> list[int]:
    return log_store.append(cur, [log_store.NewLeaf(e.event_id, e.event_type, e.publisher_id, e.seq, e.time(),
                                                      e.leaf_bytes()) for e in envs])


def _trusted_witness() -> str:
    from schemas.keys import ALG_COSIGNATURE_V1, format_verifier_key, public_key_bytes

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return format_verifier_key("witness.example", public_key_bytes(key), ALG_COSIGNATURE_V1)


TRUSTED_WITNESS = _trusted_witness()


def build_log(settings: Settings, keys: PlatformKeys, *, witness: bool = True) -> dict[str, Any]:
    """A real log: signed envelopes, tiles, a signed checkpoint and (optionally) a witness cosignature."""
    op = Ed25519PrivateKey.generate()
    code = receipt_code(SECRET, TRANSFER)
    sent = sign_event(op, publisher_id=OPERATOR, event_type="transfer.sent", seq=1, event_time=T0, payload={
        "transfer_id": TRANSFER, "operator": OPERATOR, "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 40000, "currency": "USD"}, "fee": {"amount": 800, "currency": "USD"},
        "exchange_rate": "17.5", "receive_promised": {"amount": 686000, "currency": "MXN"},
        "available_by": "2025-05-01T13:00:00Z",
        "destination": {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", "family")},
        "sender": pseudonym(SECRET, "snd", "sender"), "receipt_digest": receipt_digest(code),
        "disclosed_cost_bps": 350,
    })
    paid = sign_event(op, publisher_id=OPERATOR, event_type="transfer.paid_out", seq=2,
                      event_time=T0 + timedelta(minutes=50), payload={
                          "transfer_id": TRANSFER, "paid": {"amount": 686000, "currency": "MXN"},
                          "paid_at": "2025-05-01T12:40:00Z", "payout_ref": "pay-0001"})
    conn = psycopg2.connect(settings.database_url, options=f"-c search_path={settings.database_schema}")
    try:
        with conn.cursor() as cur:
            indices = append(cur, [sent, paid])
            size = make_checkpoint(cur, keys.log)
            cur.execute("SELECT note FROM checkpoints WHERE size = %s", (size,))
            note = cur.fetchone()[0]  # type: ignore[index]
            if witness:
                ts = int(time.time())
                wkey = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # TRUSTED_WITNESS below
                sig = cosign(parse_note(note).text, "witness.example", wkey, ts)
                cur.execute(
                    "INSERT INTO cosignatures (checkpoint_size, witness, key_id, cosigned_at, signature_line)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (size, "witness.example", sig.key_id.hex(), ts, sig.line()),
                )
        conn.commit()
    finally:
        conn.close()
    return {"code": code, "sent": sent, "paid": paid, "indices": indices, "size": size}


def seed(settings: Settings, log: dict[str, Any]) -> None:
    """Reconciled state and summaries, with plain INSERTs."""
    sent: Envelope = log["sent"]
    sql(settings, "INSERT INTO transfers (transfer_id, status, operator, corridor_from, corridor_to, destination_kind,"
        " send_amount, send_currency, fee_amount, promised_amount, promised_currency, paid_amount, payout_count,"
        " available_by, sent_at, first_paid_at, delivery_seconds, disclosed_cost_bps, effective_cost_bps,"
        " receipt_digest, sent_event_id, sent_log_index, event_count, state) VALUES (%s, 'paid', %s, 'US', 'MX',"
        " 'beneficiary', 40000, 'USD', 800, 686000, 'MXN', 680000, 1, %s, %s, %s, 2400, 350, 380, %s, %s, %s, 2,"
        " '{}')",
        (TRANSFER, OPERATOR, T0 + timedelta(hours=1), T0, T0 + timedelta(minutes=40),
         receipt_digest(log["code"]), sent.event_id, log["indices"][0]))
    sql(settings, "INSERT INTO summary_corridor_day (day, corridor_from, corridor_to, operator, currency, transfers,"
        " sent_amount, fee_amount, cost_bps_sum, paid, paid_within_1h, paid_within_1d, to_projects)"
        " VALUES (current_date, 'US', 'MX', %s, 'USD', 40, 1600000, 32000, 14000, 36, 30, 35, 4),"
        " (current_date - 1, 'US', 'MX', %s, 'USD', 20, 800000, 16000, 7000, 20, 18, 20, 0),"
        " (current_date, 'US', 'GT', 'op.tiny-group', 'USD', 3, 999999, 9999, 1800, 3, 3, 3, 0),"
        " (current_date - 2, 'US', 'GT', 'op.tiny-group', 'USD', 1, 1111, 11, 2, 1, 1, 1, 0)",
        (OPERATOR, OPERATOR))
    evidence = json.dumps([{"event_id": sent.event_id, "log_index": log["indices"][0]}])
    sql(settings, "INSERT INTO flags (flag_id, flag_type, subject_kind, subject_id, accountable, severity,"
        " amount_at_stake, currency, status, raised_at, evidence) VALUES"
        " (%s, 'short_payout', 'transfer', %s, %s, 'medium', 6000, 'MXN', 'open', %s, %s),"
        " (%s, 'share_unpaid', 'project', %s, 'gov.mx-zac-jerez', 'high', 25000000, 'MXN', 'open', %s, '[]')",
        (FLAG, TRANSFER, OPERATOR, T0 + timedelta(minutes=41), evidence, PFLAG, PROJECT, T0))
    sql(settings, "INSERT INTO summary_flags (flag_type, status, currency, n, amount) VALUES"
        " ('short_payout', 'open', 'MXN', 1, 6000), ('share_unpaid', 'open', 'MXN', 1, 25000000)")
    sql(settings, "INSERT INTO projects (project_id, status, club_id, country, state_code, municipality, project_type,"
        " currency, budget, club_received, disbursed, spent, funds_received, open_flags, state) VALUES"
        " (%s, 'registered', 'club.jerez-la', 'MX', 'MX-ZAC', 'jerez', 'water_sanitation', 'MXN', 100000000,"
        " 25000000, 50000000, 30000000, 75000000, 1, '{}')", (PROJECT,))
    sql(settings, "INSERT INTO project_parties (project_id, level, party_id, share_bps, owed, pledged, disbursed,"
        " latest_due, status) VALUES"
        " (%s, 'federal', 'gov.mx-federal', 2500, 25000000, 25000000, 25000000, %s, 'paid_in_full'),"
        " (%s, 'state', 'gov.mx-zac', 2500, 25000000, 25000000, 25000000, %s, 'paid_in_full'),"
        " (%s, 'municipal', 'gov.mx-zac-jerez', 2500, 25000000, 0, 0, %s, 'unpaid')",
        (PROJECT, T0, PROJECT, T0, PROJECT, T0))
    sql(settings, "INSERT INTO milestones (project_id, milestone_id, planned, due, amount, reported_at, spent,"
        " progress_pct, evidence, verified_at, outcome, status) VALUES"
        " (%s, 'ms-1-pozo', true, %s, 50000000, %s, 30000000, 60, %s, %s, 'confirmed', 'verified'),"
        " (%s, 'ms-2-red', true, %s, 50000000, NULL, 0, NULL, '[]', NULL, NULL, 'overdue')",
        (PROJECT, T0, T0 + timedelta(days=10), json.dumps(["ab" * 32]), T0 + timedelta(days=20),
         PROJECT, T0 + timedelta(days=90)))
    sql(settings, "INSERT INTO publisher_sequences (publisher_id, max_seq, accepted, last_event_time,"
        " last_accepted_at) VALUES (%s, 5, 3, %s, %s)", (OPERATOR, T0, T0))
    sql(settings, "INSERT INTO quarantine (raw_sha256, event_id, publisher_id, event_type, reason, message, raw,"
        " source) VALUES (%s, NULL, %s, 'transfer.sent', 'schema',"
        " %s, %s, 'cc.events/0/7')",
        (b"\x01" * 32, OPERATOR, "payload/sender: 'Juan Perez Lopez' does not match '^snd_[a-z2-7]{26}$'", b"{}"))


@pytest.fixture
def world(env: Settings) -> dict[str, Any]:
    keys = PlatformKeys.load(env)  # creates the platform's keys in the test's data dir
    log = build_log(env, keys)
    seed(env, log)
    return {"settings": env, "keys": keys, **log}


# --- tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["es", "en", "fr", "pt"])
def test_every_page_on_an_empty_database_in_every_language(env: Settings, lang: str) -> None:
    s = strings(lang)
    at = run(lang=lang)
    assert s["overview.title"] in text(at)
    for page in PAGES[1:]:
        run(page, at=at)
        assert not at.error, [e.value for e in at.error]
    assert s["audit.title"] in text(at)
    assert s["audit.no_checkpoint"] in text(at)
    # the language stays in the URL
    assert at.query_params["lang"] == [lang] or at.query_params["lang"] == lang


def test_language_from_the_browser_and_the_switcher(env: Settings) -> None:
    at = AppTest.from_file(APP, default_timeout=30)
    at.context = {"locale": "pt-BR"}
    at.run()
    assert strings("pt")["overview.title"] in text(at)
    at.selectbox(key="_cc_lang_picker").select("fr").run()
    assert strings("fr")["overview.title"] in text(at)
    assert at.query_params["lang"] in ("fr", ["fr"])


def test_pages_with_data(world: dict[str, Any]) -> None:
    at = run(lang="en")
    page = text(at)
    assert "USD\u00a024,000.00" in page  # 1,600,000 + 800,000 cents sent by the visible group
    # 4 transfers over the period < MIN_GROUP_SIZE 5: transfers are what the record can count (issue 14.6)
    assert "op.tiny-group" not in page and "9,999.99" not in page
    assert "Paid less than promised" in page
    assert "MXN\u00a0250,000.00" in page or "MXN\u00a060.00" in page

    run("views/projects.py", at=at)
    page = text(at)
    assert PROJECT in page and "gov.mx-zac-jerez" in page and "Late: share not paid" in page
    assert "ms-1-pozo" in page and "abababababab" in page

    run("views/watchdog.py", at=at)
    page = text(at)
    assert "Paid less than promised" in page and OPERATOR in page
    assert page.index("Agreed share not paid") < page.index("Paid less than promised")  # by amount at stake
    at.selectbox(key="wd_flag").select(FLAG).run()
    assert world["sent"].event_id in text(at)

    run("views/publishers.py", at=at)
    page = text(at)
    assert OPERATOR in page and "Juan" not in page and "Perez" not in page
    assert "Does not follow the event format" in page

    run("views/audit.py", at=at)
    page = text(at)
    assert "witness.example" in page
    assert "is valid" in page


def test_other_languages_format_numbers_their_way(world: dict[str, Any]) -> None:
    assert "USD\u00a024.000,00" in text(run(lang="pt"))
    assert "24\u202f000,00\u00a0USD" in text(run(lang="fr"))
    assert "USD\u00a024,000.00" in text(run(lang="es"))


def test_track_shows_a_verified_receipt(world: dict[str, Any]) -> None:
    code = world["code"].replace("-", " ").lower()  # typed loosely
    at = run("views/track.py", query={"code": code})
    page = text(at)
    assert at.success, page
    assert any("Verified" in s.value for s in at.success)
    assert "snd_" not in page and "ben_" not in page
    assert "MXN\u00a06,800.00" in page and "40 min" in page
    receipt = [b for b in at.get("download_button") if "receipt" in str(b.proto.label).lower()]
    assert receipt
    assert "cuentas verify receipt.json --log-key" in page


def test_track_links_to_the_light_receipt_check_page(world: dict[str, Any]) -> None:
    """Issue 18.3: the track page links to the static receipt check, with the code (normalized) and language."""
    at = run("views/track.py", query={"code": world["code"].replace("-", " ").lower()})
    links = [m.value for m in at.markdown if strings("en")["track.open_light"] in m.value]
    assert links == [f":material/bolt: [{strings('en')['track.open_light']}](http://127.0.0.1:8502/"
                     f"?lang=en&code={world['code']})"], links
    at = run("views/track.py")  # no code yet: the page itself
    assert any("(http://127.0.0.1:8502/?lang=en)" in m.value for m in at.markdown)


def test_audit_page_shows_the_keys_and_how_to_verify_without_any_private_key(world: dict[str, Any]) -> None:
    """Issues 14.3 and 17.6: the keys `cuentas log keys --json` prints, read from the public key files
    (no private key file on the machine), and the three steps to verify a receipt offline."""
    import shutil

    from infra.identities import keys_dir

    s, keys = world["settings"], world["keys"]
    shutil.rmtree(keys_dir(s))
    for page in ("views/audit.py", "views/track.py"):
        at = run(page, query={"code": world["code"]})
        page_text = text(at)
        verify = f"cuentas verify receipt.json --log-key {keys.log.verifier} --witness-key {TRUSTED_WITNESS}"
        assert verify in page_text
    at = run("views/audit.py")
    page_text = text(at)
    assert json.dumps({"log": str(keys.log.verifier), "witnesses": [TRUSTED_WITNESS]}, indent=2) in page_text
    for key in ("audit.guide_keys", "audit.guide_receipt", "audit.guide_verify", "audit.guide_result"):
        assert strings("en")[key] in page_text
    assert "cuentas receipt --code CC-XXXX-XXXX-XXXX-XXXX > receipt.json" in page_text
    assert "cuentas verify --export mirror/ --log-key" in page_text
    at = run("views/audit.py", lang="es")
    assert strings("es")["audit.offline_title"] in text(at)


def test_track_with_an_untrusted_witness_is_not_green(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cosignature line by a witness the dashboard does not trust earns no green check."""
    from schemas.keys import ALG_COSIGNATURE_V1, format_verifier_key, public_key_bytes

    other = format_verifier_key("witness.example", public_key_bytes(Ed25519PrivateKey.generate()), ALG_COSIGNATURE_V1)
    monkeypatch.setenv("WITNESS_KEYS", other)
    keys = PlatformKeys.load(env)
    log = build_log(env, keys)
    seed(env, log)
    at = run("views/track.py", query={"code": log["code"]})
    assert not any("Verified" in s.value for s in at.success)
    assert any("not yet witnessed" in w.value for w in at.warning)


def test_track_needs_every_trusted_witness_unless_min_witnesses_says_fewer(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14.2 on the dashboard: with two trusted witnesses and one cosignature the check is not
    green (one valid cosignature per trusted key by default); MIN_WITNESSES=1 lowers it."""
    from schemas.keys import ALG_COSIGNATURE_V1, format_verifier_key, public_key_bytes

    second = format_verifier_key("witness.second", public_key_bytes(Ed25519PrivateKey.generate()), ALG_COSIGNATURE_V1)
    monkeypatch.setenv("WITNESS_KEYS", f"{TRUSTED_WITNESS},{second}")
    keys = PlatformKeys.load(env)
    log = build_log(env, keys)
    seed(env, log)
    at = run("views/track.py", query={"code": log["code"]})
    assert not any("Verified" in s.value for s in at.success)
    assert any("not yet witnessed" in w.value for w in at.warning)
    monkeypatch.setenv("MIN_WITNESSES", "1")
    at = run("views/track.py", query={"code": log["code"]})
    assert any("Verified" in s.value for s in at.success), text(at)
    monkeypatch.setenv("MIN_WITNESSES", "7")  # more than the trusted witnesses: the strict default
    at = run("views/track.py", query={"code": log["code"]})
    assert not any("Verified" in s.value for s in at.success)


def test_track_without_a_witness_is_not_green(env: Settings) -> None:
    keys = PlatformKeys.load(env)
    log = build_log(env, keys, witness=False)
    seed(env, log)
    at = run("views/track.py", query={"code": log["code"]})
    assert not any("Verified" in s.value for s in at.success)
    assert any("not yet witnessed" in w.value for w in at.warning)


@pytest.mark.parametrize("garbage", [
    "", "   ", "hello", "CC-0000", "' OR 1=1 --", "'; DROP TABLE transfers; --", "CC-ABCD-EFGH-JKMN-PQRS'--",
    "\u202eCC-1234", "x" * 300, "CC-UUUU-UUUU-UUUU-UUUU", "<script>alert(1)</script>",
])
def test_track_refuses_bad_codes_kindly(world: dict[str, Any], garbage: str) -> None:
    at = run("views/track.py")
    at.text_input(key="track_code").input(garbage[:64])
    at.button[0].click()
    at.run()
    assert not at.exception
    assert not at.success
    assert not at.error
    assert at.warning or at.info


def test_track_unknown_code(world: dict[str, Any]) -> None:
    other = receipt_code(SECRET, "tr-somebody-else")
    at = run("views/track.py", query={"code": other})
    assert any(strings("en")["track.not_found"] in w.value for w in at.warning)
    assert TRANSFER not in text(at)


def test_bad_filters_and_ids(world: dict[str, Any]) -> None:
    at = run("views/projects.py")
    for bad in ("' OR 1=1 --", "UPPER CASE", "../../etc/passwd", "a"):
        at.text_input(key="pj_search").input(bad).run()
        assert not at.exception and not at.error
        assert any(strings("en")["projects.bad_search"] in w.value for w in at.warning)
    at.text_input(key="pj_search").input("no-such-project").run()
    assert any(strings("en")["projects.none"] in i.value for i in at.info)

    run("views/watchdog.py", at=at)
    at.text_input(key="wd_acc").input("x'; DELETE FROM flags; --").run()
    assert any(strings("en")["watchdog.bad_accountable"] in w.value for w in at.warning)
    at.text_input(key="wd_acc").input("").run()
    at.multiselect(key="wd_status").set_value([]).run()
    assert any(strings("en")["watchdog.pick_status"] in i.value for i in at.info)

    run("views/audit.py", at=at)
    at.text_input(key="au_event").input("' UNION SELECT leaf FROM log_entries --").run()
    assert any(strings("en")["audit.bad_event_id"] in w.value for w in at.warning)
    at.text_input(key="au_event").input(world["paid"].event_id).run()
    page = text(at)
    assert "entry 1 of a tree of 2" in page
    at.number_input(key="au_s1").set_value(5)
    at.number_input(key="au_s2").set_value(2)
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    assert any(strings("en")["audit.cons_size_order"] in w.value for w in at.warning)
    assert sql(world["settings"], "SELECT count(*) FROM flags")[0][0] == 2


def test_consistency_between_two_checkpoints(world: dict[str, Any]) -> None:
    s, keys = world["settings"], world["keys"]
    extra = sign_event(Ed25519PrivateKey.generate(), publisher_id="op.other", event_type="transfer.paid_out",
                       seq=1, event_time=T0, payload={"transfer_id": "tr-9", "paid": {"amount": 5, "currency": "MXN"},
                                                      "paid_at": "2025-05-01T12:00:00Z", "payout_ref": "p-9"})
    conn = psycopg2.connect(s.database_url, options=f"-c search_path={s.database_schema}")
    with conn.cursor() as cur:
        append(cur, [extra])
        make_checkpoint(cur, keys.log)
    conn.commit()
    conn.close()
    at = run("views/audit.py")
    at.number_input(key="au_s1").set_value(2)
    at.number_input(key="au_s2").set_value(3)
    at.button[0].click()
    at.run()
    assert any("Consistent" in x.value for x in at.success), text(at)


class ProcessorsStandIn:
    """What the processors' review-requests timer does, on a thread: apply pending requests with the
    writer's connection and the platform's key (which the dashboard never has)."""

    def __init__(self, settings: Settings, keys: PlatformKeys) -> None:
        import threading

        self.settings, self.keys = settings, keys
        self.stop = threading.Event()
        self.outcomes: list[str] = []
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        from stream_processors.review_requests import apply_pending

        conn = psycopg2.connect(self.settings.database_url, options=f"-c search_path={self.settings.database_schema}")
        try:
            while not self.stop.wait(0.1):
                with conn.cursor() as cur:
                    self.outcomes += [a.outcome for a in apply_pending(cur, self.keys)]
                conn.commit()
        finally:
            conn.close()

    def __enter__(self) -> ProcessorsStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def dashboard_without_keys_or_writer(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14.8: the dashboard as `cuentas up` starts it: the reader and reviewer-desk URLs only (no
    DATABASE_URL), no key file anywhere it can look, and any attempt to load a private key fails."""
    import shutil

    from infra import db, keystore
    from infra.identities import keys_dir

    s = world["settings"]
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DASHBOARD_DATABASE_URL", db.reader_url(s, s.database_url))
    monkeypatch.setenv("REVIEW_DATABASE_URL", db.review_url(s, s.database_url))
    shutil.rmtree(keys_dir(s))

    def no_private_keys(*_a: object, **_k: object) -> None:
        raise AssertionError("the dashboard tried to load a private key")

    monkeypatch.setattr(keystore, "read_private_key", no_private_keys)
    monkeypatch.setattr(keystore, "load_or_create", no_private_keys)


def test_reviewer_actions_need_sign_in(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                      request: pytest.FixtureRequest) -> None:
    """Issue 14.8: with no writer credential and no private key, a signed-in reviewer's decision is a
    request the processors apply with their own credential and key; it still takes effect, signed by
    the platform under the reviewer's pseudonym."""
    from dashboard import auth
    from infra import db

    s = world["settings"]
    conn = db.connect(s.database_url, s.database_schema)
    rev = auth.add_reviewer(conn, "ana@example.org", "correct horse battery")
    conn.close()
    en = strings("en")
    dashboard_without_keys_or_writer(world, monkeypatch)
    processors = ProcessorsStandIn(s, world["keys"]).__enter__()
    request.addfinalizer(lambda: processors.__exit__(None, None, None))

    at = run("views/watchdog.py")
    assert not [b for b in at.button if b.key in ("wd_ack", "wd_resolve", "wd_dismiss")]
    assert en["watchdog.sign_in_to_act"] in text(at)

    def sign_in(user: str, password: str) -> None:
        at.text_input(key="rev_user").input(user)
        at.text_input(key="rev_pass").input(password)
        next(b for b in at.button if b.label == en["auth.sign_in"]).click()
        at.run()
        assert not at.exception

    sign_in("ana@example.org", "wrong password!")
    assert any(en["auth.bad"] in e.value for e in at.error)
    for _ in range(5):
        sign_in("mallory", "guess guess guess")
        assert any(en["auth.bad"] in e.value for e in at.error)
    sign_in("mallory", "guess guess guess")  # the sixth try within 15 minutes
    assert any(en["auth.locked"] in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "wd_ack"]

    sign_in("ana@example.org", "correct horse battery")
    assert any(rev.reviewer_id in i.value for i in at.info)
    at.selectbox(key="wd_flag").select(FLAG).run()
    at.button(key="wd_ack").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("acknowledged" in x.value.lower() for x in at.success), text(at)

    assert sql(s, "SELECT status FROM flags WHERE flag_id = %s", (FLAG,))[0][0] == "acknowledged"
    hist = sql(s, "SELECT actor, reason_code, event_id, log_index FROM flag_history WHERE flag_id = %s", (FLAG,))
    assert hist == [(rev.reviewer_id, "reviewer_ack", hist[0][2], 2)]
    logged = sql(s, "SELECT event_type, publisher_id FROM log_entries WHERE event_id = %s", (hist[0][2],))
    assert logged == [("flag.changed", "platform.cuentasclaras")]
    assert sql(s, "SELECT status, n, amount FROM summary_flags WHERE flag_type = 'short_payout' ORDER BY status") == [
        ("acknowledged", 1, 6000), ("open", 0, 0)]

    # dismissing a project flag with a reason, then signing out removes the actions again
    at.selectbox(key="wd_flag").select(PFLAG).run()
    at.selectbox(key="wd_reason").select("reviewer_dismissed_explained").run()
    at.button(key="wd_dismiss").click()
    at.run()
    assert sql(s, "SELECT status FROM flags WHERE flag_id = %s", (PFLAG,))[0][0] == "dismissed"
    assert sql(s, "SELECT open_flags FROM projects WHERE project_id = %s", (PROJECT,))[0][0] == 0
    at.button(key="rev_logout").click()
    at.run()
    assert not [b for b in at.button if b.key in ("wd_ack", "wd_resolve", "wd_dismiss")]
    processors.__exit__(None, None, None)
    assert processors.outcomes == ["applied", "applied"]
    requests = sql(s, "SELECT flag_id, outcome, reviewer_id FROM review_requests ORDER BY id")
    assert requests == [(FLAG, "applied", rev.reviewer_id), (PFLAG, "applied", rev.reviewer_id)]


@pytest.mark.parametrize("verified", [True, False, None])
def test_oidc_sign_in_trusts_the_email_only_when_verified(world: dict[str, Any], verified: bool | None) -> None:
    """Issue 14.9: an identity provider's unverified ``email`` claim (anyone can type a reviewer's
    address at many providers) must not sign the visitor in as that reviewer."""
    from dashboard import auth
    from infra import db

    s = world["settings"]
    conn = db.connect(s.database_url, s.database_schema)
    rev = auth.add_reviewer(conn, "ana@example.org", "correct horse battery")
    conn.close()
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["lang"] = "en"
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "cuentas", "client_secret": "s",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    claims: dict[str, Any] = {"is_logged_in": True, "email": "ana@example.org"}
    if verified is not None:
        claims["email_verified"] = verified
    at.user = claims
    at.run()
    run("views/watchdog.py", at=at)
    signed_in = any(rev.reviewer_id in i.value for i in at.info)
    assert signed_in is (verified is True), text(at)
    assert bool([b for b in at.button if b.key == "wd_ack"]) is (verified is True)


PHONE = 5215512345678  # a phone number, as a JSON number: no quotes to mask in "... is not of type 'string'"
NAME = "Juan Pérez López"


def _refused_bytes() -> list[bytes]:
    """Three records anyone who can write to the topics could send, each refused by the gate."""
    op = Ed25519PrivateKey.generate()
    good = sign_event(op, publisher_id=OPERATOR, event_type="transfer.paid_out", seq=9, event_time=T0, payload={
        "transfer_id": TRANSFER, "paid": {"amount": 5, "currency": "MXN"}, "paid_at": "2025-05-01T12:00:00Z",
        "payout_ref": "p-9"})
    base = json.loads(good.leaf_bytes())
    phone = json.loads(json.dumps(base))
    phone["payload"]["payout_ref"] = PHONE  # a value where an id belongs
    named = json.loads(json.dumps(base))
    named["payload"][NAME] = "+52 55 1234 5678"  # a person's name as a property name
    stranger = json.loads(json.dumps(base))
    stranger["header"]["publisher_id"] = "juan.perez.5215512345678"  # a registered-looking id nobody registered
    return [json.dumps(x, ensure_ascii=False).encode() for x in (phone, named, stranger)]


def test_publishers_page_and_downloads_show_only_reason_codes_and_schema_paths(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14.7: refusals reach the public as a reason code and a schema path with unknown names as
    '*', never a value (a phone number), a property name (a person's name) or a sender's free text; the
    dashboard's role cannot even read the gate's messages."""
    import pandas as pd

    from dashboard import ui
    from infra import db
    from schemas.registry import TrustRegistry
    from stream_processors.gate.decision import GateLimits, Incoming, decide_batch, parse_item
    from stream_processors.gate.knowledge import LogKnowledge
    from stream_processors.gate.store import record

    registry = TrustRegistry(PlatformKeys.load(env).authority.verifier)  # nobody registered
    limits = GateLimits(65536, timedelta(minutes=5), timedelta(days=30))
    parsed = [parse_item(Incoming(raw, f"cc.publish.transfers/0/{i}"), 65536) for i, raw in enumerate(_refused_bytes())]
    batch = decide_batch(parsed, LogKnowledge(), registry, T0, limits)
    assert [d.outcome for d in batch.decisions] == ["rejected"] * 3
    conn = psycopg2.connect(env.database_url, options=f"-c search_path={env.database_schema}")
    with conn.cursor() as cur:
        record(cur, batch)
    conn.commit()
    conn.close()
    private = "\n".join(r[0] for r in sql(env, "SELECT message FROM quarantine"))
    assert str(PHONE) in private and NAME in private  # the private quarantine keeps the full story
    assert sql(env, "SELECT reason, public_path, public_event_type, public_publisher FROM quarantine ORDER BY id") == [
        ("schema", "/payload/payout_ref", None, None),  # not parsed: no envelope, no type to trust
        ("schema", "/payload/*", None, None),
        ("unknown_publisher", "", "transfer.paid_out", None),
    ]

    seen: list[bytes] = []
    real = ui.downloads

    def downloads(df: pd.DataFrame, name: str, key: str) -> None:
        seen.extend([ui._csv(df), ui._json(df)])
        real(df, name, key)

    monkeypatch.setattr(ui, "downloads", downloads)
    at = run("views/publishers.py")
    at.selectbox(key="pub_choose").select("").run()
    page = text(at) + "\n".join(b.decode("utf-8") for b in seen)
    assert "/payload/payout_ref" in page and "/payload/*" in page
    for leaked in (str(PHONE), "5512345678", "Juan", "Pérez", "López", "juan.perez", "+52"):
        assert leaked not in page, leaked
    # The reader role itself cannot read what the sender wrote.
    reader = db.connect(db.reader_url(env, env.database_url), env.database_schema)
    try:
        for col in ("message", "publisher_id", "event_type", "event_id", "raw"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), reader.cursor() as cur:
                cur.execute(f"SELECT {col} FROM quarantine")
            reader.rollback()
    finally:
        reader.close()


def test_unreachable_database_gives_one_friendly_message(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    msg = strings("en")["error.db"]
    at = run(query={"code": "CC-0000-0000-0000-0000"})
    assert [e.value for e in at.error] == [msg]
    for page in PAGES[1:]:
        run(page, at=at)
        if page == "views/track.py":
            at.button[0].click()
            at.run()
        assert [e.value for e in at.error] == [msg], page


def test_track_in_spanish_in_mexico_plural_zone_and_complete_timeline(world: dict[str, Any]) -> None:
    """Regression (issue 17): "3 discrepancia abierta en este envío", times only in UTC for a family in
    Zacatecas, and a timeline ending with "Se prometió disponible para" and no time."""
    sql(world["settings"], "INSERT INTO flags (flag_id, flag_type, subject_kind, subject_id, accountable, severity,"
        " amount_at_stake, currency, status, raised_at, evidence) VALUES"
        " ('flg_cccccccccccccccccccccccccc', 'late_payout', 'transfer', %s, %s, 'low', NULL, NULL, 'acknowledged',"
        " %s, '[]')", (TRANSFER, OPERATOR, T0 + timedelta(minutes=42)))
    es = strings("es")
    at = AppTest.from_file(APP, default_timeout=30)
    at.context = {"locale": "es-MX", "timezone": "America/Mexico_City", "timezone_offset": 360}
    at.query_params["lang"] = "es"
    at.query_params["code"] = world["code"]
    at.run()
    run("views/track.py", at=at)
    page = text(at)
    assert any("2 discrepancias abiertas en este envío" in w.value for w in at.warning), page
    assert "2 discrepancia abierta" not in page
    timeline = next(m.value for m in at.markdown if "cc-timeline" in m.value)
    lines = re.findall(r"<li>(.*?)</li>", timeline)
    # every line: the time in Mexico City's zone, named, with UTC on hover; then what happened
    assert len(lines) == 5, timeline
    for line in lines:
        assert re.match(r'<strong><time datetime="2025-05-01T\d\d:\d\d:00Z" title="En UTC: 2025-05-01T[^"]+Z">'
                        r"1 may 2025, \d{1,2}:\d\d\u202f[ap]\.m\. hora estándar central</time></strong> — \S", line), line
    joined = "\n".join(lines)
    assert "6:00\u202fa.m. hora estándar central</time></strong> — Enviado: USD\u00a0400.00, comisión USD\u00a08.00" in joined
    assert ("6:40\u202fa.m. hora estándar central</time></strong> — Pagado en destino: MXN\u00a06,800.00 · "
            "MXN\u00a060.00 menos de lo prometido") in joined
    assert ("Discrepancia detectada: Se pagó menos de lo prometido · Abierta · MXN\u00a060.00 en juego") in joined
    assert "Discrepancia detectada: Pagado tarde · En revisión" in joined
    assert ("7:00\u202fa.m. hora estándar central</time></strong> — Plazo prometido para tener disponibles "
            "MXN\u00a06,860.00 · cumplido") in joined
    assert es["track.verified"]["one"].split("{index}")[0] in page  # one witness: singular
    assert "1 testigo independiente firmó" in page


def test_downloads_carry_utc_iso_8601() -> None:
    import pandas as pd

    from dashboard import ui

    df = pd.DataFrame({"raised_at": [pd.Timestamp("2025-05-01T14:05:00-06:00"), pd.NaT],
                       "due": [datetime(2025, 5, 1, tzinfo=UTC).date(), None], "amount": [6000, 7]})
    out = ui.utc_frame(df)
    assert out["raised_at"][0] == "2025-05-01T20:05:00Z" and pd.isna(out["raised_at"][1])
    assert out["due"][0] == "2025-05-01" and pd.isna(out["due"][1])
    assert list(out["amount"]) == [6000, 7]
    assert '"raised_at":"2025-05-01T20:05:00Z"' in ui._json(df).decode().replace(" ", "")
    assert "2025-05-01T20:05:00Z" in ui._csv(df).decode()


@pytest.mark.parametrize(("lang", "locale", "zone", "zone_name"), [
    ("es", "es-US", "America/Los_Angeles", "hora de verano del Pacífico"),
    ("en", "en-US", "America/Chicago", "Central Daylight Time"),
    ("fr", "fr-FR", "Europe/Paris", "heure d’été d’Europe centrale"),
    ("pt", "pt-BR", "America/Sao_Paulo", "Horário Padrão de Brasília"),
])
def test_track_timeline_is_complete_in_every_language(world: dict[str, Any], lang: str, locale: str, zone: str,
                                                     zone_name: str) -> None:
    """Every line of the timeline has its time (named zone), what happened, its amounts and how it stands."""
    s = strings(lang)
    at = AppTest.from_file(APP, default_timeout=30)
    at.context = {"locale": locale, "timezone": zone}
    at.query_params["lang"] = lang
    at.query_params["code"] = world["code"]
    at.run()
    run("views/track.py", at=at)
    timeline = next(m.value for m in at.markdown if "cc-timeline" in m.value)
    lines = re.findall(r"<li>(.*?)</li>", timeline)
    assert len(lines) == 4, timeline  # sent, paid, the discrepancy, the promised deadline
    for line in lines:
        when, _, what = line.partition("</time></strong> — ")
        assert when.endswith(zone_name), line
        assert what.strip() and "{" not in what, line
    sent, paid, flag, promise = (html.unescape(x.partition("</time></strong> — ")[2]) for x in lines)
    assert sent.startswith(s["track.ev_sent"].split("{")[0]) and "USD" in sent and sent.count("USD") == 2
    assert paid.startswith(s["track.ev_paid"].split("{")[0]) and paid.endswith(s["track.paid_short"].split("}")[1])
    assert flag.startswith(s["track.ev_flag"].split("{")[0]) and s["flag_status.open"] in flag and "MXN" in flag
    assert promise.startswith(s["track.ev_promised_by"].split("{")[0]) and promise.endswith(s["track.promise_met"])
    assert "MXN" in promise


@pytest.mark.parametrize("lang", ["es", "en"])
def test_track_and_watchdog_explain_each_flag_under_its_label(world: dict[str, Any], lang: str) -> None:
    """Issue 15: a flag is not only a label. The track page shows each flag's explanation right
    under its label (what happened, when it is raised, who answers for it, what closes it), with
    the configured thresholds; the watchdog page under the chosen flag's title and, for the
    queue's types, in an expander; the projects page for its flags."""
    from dashboard import i18n

    s = strings(lang)
    values = i18n.flag_help_values(world["settings"], lang)
    short = i18n.flag_help("short_payout", values, lang)
    share = i18n.flag_help("share_unpaid", values, lang)
    assert short and share and "{" not in short

    at = run("views/track.py", lang=lang, query={"code": world["code"]})
    md = [m.value for m in at.markdown]
    label = f"**{s['flag.short_payout']}** · {s['flag_status.open']}"
    assert label in md, md
    assert md[md.index(label) + 1] == short  # under its label
    assert share not in md  # the project's flag is not this transfer's
    facts = next(m for m in md if "cc-flag-facts" in m)
    assert OPERATOR in facts and "MXN" in facts and "<time datetime=" in facts

    run("views/watchdog.py", at=at)
    page = text(at)
    assert short in page and share in page  # the queue's types, explained (expander)
    at.selectbox(key="wd_flag").select(FLAG).run()
    subheaders = [h.value for h in at.subheader]
    assert s["flag.short_payout"] in subheaders
    md = [m.value for m in at.markdown]
    assert md.index(short) < next(i for i, m in enumerate(md) if OPERATOR in m)  # before the flag's facts

    run("views/projects.py", at=at)
    assert share in text(at)

    # the overview explains the flag types it counts; the publishers page those about a publisher
    assert short in text(run(lang=lang)) and share in text(run(lang=lang))
    page = text(run("views/publishers.py", lang=lang))
    assert i18n.flag_help("sequence_gap", values, lang) in page and short not in page
