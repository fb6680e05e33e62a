"""The simulated world: corridors, places, the roster of publishers and their deterministic keys.

Everything here depends only on the seed: the same seed gives the same
operators, clubs, governments and Ed25519 keys on every run and every
machine, so a platform can check a re-run against the first one.  Ids name
organisations and places no smaller than a municipality (privacy: nothing in
the public record identifies a person).
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.catalog import ROLES_BY_KIND
from schemas.keys import format_verifier_key, key_id, public_key_bytes
from schemas.times import format_time

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "REGISTRATION_VALID_FROM",
    "AUTHORITY",
    "FEDERAL",
    "CORRIDORS",
    "INFRA_TYPES",
    "PROJECT_TYPES",
    "b32",
    "hash_parts",
    "derive_key",
    "operator_secret",
    "seeded_rng",
    "SimPublisher",
    "Club",
    "Roster",
    "build_roster",
    "roster",
]

DAY: Final = timedelta(days=1)
HOUR: Final = timedelta(hours=1)
MINUTE: Final = timedelta(minutes=1)
#: Keys are valid from here, so any later window (and a re-run) is covered.
REGISTRATION_VALID_FROM: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: The registry authority's publisher id in tests (the CLI signs with the platform's own).
AUTHORITY: Final = "registry.cuentasclaras"
_KEY_DOMAIN: Final = b"cuentas-claras/sim-key/v1\x00"
_SECRET_DOMAIN: Final = b"cuentas-claras/sim-secret/v1\x00"
_RNG_DOMAIN: Final = b"cuentas-claras/sim-rng/v1\x00"

#: (from, to) -> (send currency, receive currency, mid rate around 2024-25, share of sends %)
CORRIDORS: Final[Mapping[tuple[str, str], tuple[str, str, str, float]]] = {
    ("US", "MX"): ("USD", "MXN", "18.20", 70.0),
    ("US", "GT"): ("USD", "GTQ", "7.74", 11.0),
    ("US", "SV"): ("USD", "USD", "1", 7.0),
    ("US", "HN"): ("USD", "HNL", "25.30", 7.0),
    ("CA", "MX"): ("CAD", "MXN", "13.40", 3.0),
    ("ES", "MX"): ("EUR", "MXN", "19.60", 2.0),
}
_OPERATOR_POOL: Final[tuple[str, ...]] = (
    "mto-remesas-norte",
    "mto-envios-sol",
    "mto-giros-pacifico",
    "mto-enlace-familiar",
    "mto-dinero-puente",
    "mto-paisano-express",
)
#: State code -> municipalities (ids only: no place smaller than a municipality).
_STATES: Final[Mapping[str, tuple[str, ...]]] = {
    "MX-ZAC": ("jerez", "tlaltenango", "nochistlan", "juchipila", "valparaiso", "fresnillo"),
    "MX-JAL": ("jalostotitlan", "tepatitlan", "ameca", "autlan", "yahualica", "teocaltiche"),
    "MX-MIC": ("zamora", "jiquilpan", "sahuayo", "puruandiro", "huandacareo", "cotija"),
    "MX-GUA": ("acambaro", "penjamo", "yuriria", "salvatierra", "jerecuaro", "moroleon"),
    "MX-OAX": ("tlacolula", "miahuatlan", "tlaxiaco", "ixtlan", "juxtlahuaca", "zimatlan"),
}
_FEDERATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "MX-ZAC": ("fed-zac-sur-ca", "fed-zac-il"),
    "MX-JAL": ("fed-jal-il", "fed-jal-sur-ca"),
    "MX-MIC": ("fed-mic-il", "fed-mic-tx"),
    "MX-GUA": ("fed-gua-tx", "fed-gua-il"),
    "MX-OAX": ("fed-oax-ca", "fed-oax-ny"),
}
_US_CITIES: Final = ("la", "chi", "dal", "hou", "phx", "den", "sj", "atl", "ny", "sea")
#: Paying correspondents in Mexico: some operators' payouts are published by them.
_PAYOUT_AGENTS: Final = ("agente-pago-bajio", "agente-pago-occidente")
FEDERAL: Final = "gob-fed-bienestar"
INFRA_TYPES: Final = (
    "water_sanitation",
    "electricity",
    "roads_paving",
    "health_building",
    "school_building",
    "community_centre",
)
PROJECT_TYPES: Final = (*INFRA_TYPES, "scholarships", "productive", "agriculture")


def b32(raw: bytes, n: int) -> str:
    """The first ``n`` characters of ``raw`` in lowercase base32 (ids and tags)."""
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()[:n]


def hash_parts(*parts: object) -> bytes:
    """SHA-256 of the parts joined with ``|``: the source of every derived id."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def derive_key(seed: int, name: str) -> Ed25519PrivateKey:
    """The Ed25519 key of publisher ``name`` in every simulation of ``seed``."""
    raw = hashlib.sha256(_KEY_DOMAIN + str(seed).encode() + b"\x00" + name.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(raw)


def operator_secret(seed: int, operator: str) -> bytes:
    """The operator's off-record secret for pseudonyms and receipt codes."""
    return hashlib.sha256(
        _SECRET_DOMAIN + str(seed).encode() + b"\x00" + operator.encode()
    ).digest()


def seeded_rng(seed: int, *parts: object) -> random.Random:
    """An independent random stream per purpose, so one draw more here moves nothing there."""
    digest = hashlib.sha256(_RNG_DOMAIN + "|".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


# --- publishers ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SimPublisher:
    """One simulated publisher: id, kind, roles, government party and its private key."""

    publisher_id: str
    kind: str
    roles: tuple[str, ...]
    party: Mapping[str, str] | None
    key: Ed25519PrivateKey = field(repr=False)
    role: str = ""  # what it is in the story: operator, club committee, mirror club...
    club_id: str | None = None  # a committee's club
    backfill_until: datetime | None = None  # declared end of its backfill, when before its registration

    @property
    def public_key(self) -> bytes:
        return public_key_bytes(self.key)

    @property
    def key_id(self) -> str:
        return key_id(self.publisher_id, self.public_key).hex()

    @property
    def verifier_key(self) -> str:
        return format_verifier_key(self.publisher_id, self.public_key)

    def registration_payload(self) -> dict[str, Any]:
        """The ``publisher.registered`` payload the registry authority signs."""
        p: dict[str, Any] = {
            "publisher_id": self.publisher_id,
            "kind": self.kind,
            "roles": list(self.roles),
            "public_key": self.verifier_key,
            "valid_from": format_time(REGISTRATION_VALID_FROM),
        }
        if self.party is not None:
            p["party"] = dict(self.party)
        if self.club_id is not None:
            p["club_id"] = self.club_id
        if self.backfill_until is not None:
            p["backfill_until"] = format_time(self.backfill_until)
        return p


@dataclass(frozen=True)
class Club:
    """A hometown club abroad, its project committee, mirror club and hometown governments."""

    club_id: str
    committee: str
    mirror: str
    municipal: str
    state_gov: str
    state: str
    municipality: str
    federation: str


@dataclass(frozen=True)
class Roster:
    """Who takes part in every simulation of a seed.

    ``payout_agents``: operator -> the paying correspondent in Mexico it names
    in its transfers to Mexico (some operators have none).
    """

    publishers: tuple[SimPublisher, ...]
    operators: tuple[str, ...]
    corridors_by_operator: Mapping[str, tuple[tuple[str, str], ...]]
    clubs: tuple[Club, ...]
    payout_agents: Mapping[str, str] = field(default_factory=dict)


def build_roster(seed: int) -> Roster:
    """Operators and the corridors they serve, clubs and their governments, for ``seed``."""
    rng = seeded_rng(seed, "roster")
    n_ops = rng.randint(4, 6)
    operators = tuple(sorted(rng.sample(_OPERATOR_POOL, n_ops)))
    corridors: dict[str, list[tuple[str, str]]] = {op: [("US", "MX")] for op in operators}
    for corridor in CORRIDORS:
        if corridor == ("US", "MX"):
            continue
        for op in rng.sample(operators, 1 if corridor[0] != "US" else 2):
            corridors[op].append(corridor)
    pubs: list[SimPublisher] = []

    def add(
        pid: str,
        kind: str,
        role: str,
        *,
        roles: Sequence[str] | None = None,
        party: Mapping[str, str] | None = None,
        club_id: str | None = None,
    ) -> None:
        pubs.append(
            SimPublisher(
                pid,
                kind,
                tuple(roles or ROLES_BY_KIND[kind]),
                party,
                derive_key(seed, pid),
                role,
                club_id,
            )
        )

    for op in operators:
        add(op, "operator", "money transfer operator")
    clubs: list[Club] = []
    for state, munis in _STATES.items():
        st = state.split("-")[1].lower()
        state_gov = f"gob-est-{st}"
        add(state_gov, "government", "state government", party={"level": "state", "id": state_gov})
        for muni in sorted(rng.sample(munis, 3)):
            city = rng.choice(_US_CITIES)
            club = Club(
                club_id=f"club-{muni}-{city}",
                committee=f"comite-{muni}-{city}",
                mirror=f"espejo-{muni}",
                municipal=f"gob-mun-{st}-{muni}",
                state_gov=state_gov,
                state=state,
                municipality=f"mx-{st}-{muni}",
                federation=rng.choice(_FEDERATIONS[state]),
            )
            clubs.append(club)
            add(club.committee, "committee", "club project committee", club_id=club.club_id)
            add(club.mirror, "verifier", "hometown mirror club")
            add(
                club.municipal,
                "government",
                "municipal government",
                party={"level": "municipal", "id": club.municipal},
            )
    add(FEDERAL, "government", "federal government", party={"level": "federal", "id": FEDERAL})
    # Every other operator pays out in Mexico through a correspondent, named in
    # its transfers (no random draw: the rest of the roster stays as it was).
    agents = {op: _PAYOUT_AGENTS[i // 2 % len(_PAYOUT_AGENTS)] for i, op in enumerate(operators) if i % 2 == 1}
    for agent in sorted(set(agents.values())):
        add(agent, "payout_agent", "paying correspondent in Mexico")
    pubs.sort(key=lambda p: p.publisher_id)
    return Roster(
        tuple(pubs), operators, {k: tuple(v) for k, v in corridors.items()}, tuple(clubs), agents
    )


def roster(seed: int) -> tuple[SimPublisher, ...]:
    """The publishers every simulation of ``seed`` uses (ids depend only on the seed).

    A run with anomalies adds one more operator, whose key is compromised and
    revoked during the window; its id carries the run tag so that a later run
    never meets an earlier revocation.
    """
    return build_roster(seed).publishers
