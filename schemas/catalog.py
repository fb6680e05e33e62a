"""The catalog of event types: their JSON Schemas and roles (routing: ``schemas.routing``).

The JSON Schema files in ``schemas/events/`` (draft 2020-12) are the single
source of truth for payloads.  They are read once, at import, through
``importlib.resources`` and compiled into one validator per (type, version);
``$ref``s to ``common.v1.json`` are resolved from a local
``referencing.Registry``, never over the network.

Three deliberate departures from stock JSON Schema 2020-12 semantics, all
stricter, all applied by the validator class built here:

* ``integer`` accepts only JSON integers, not ``1.0`` (the spec, Validation
  section 6.1.1, would accept a float with a zero fraction).  A float on the
  wire where money is expected is an error, whatever its value.
* ``pattern`` anchors ``$`` at the very end of the string.  Python's ``re``
  lets ``$`` match before a trailing newline, ECMA-262 (which the spec
  names, Core section 6.4) does not; without this ``"abc\\n"`` would pass as
  an id.
* ``format: date-time`` is asserted (the spec makes formats annotations by
  default), with a checker that accepts only what ``datetime`` can represent.

Rules JSON Schema cannot express (sums, uniqueness by field, relations between
fields) are checked in code by ``validate_payload`` after the schema passes,
and raise the same ``MalformedInput(reason="schema")``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from itertools import islice
from typing import Any, Final
from urllib.parse import urljoin

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from schemas.errors import MalformedInput
from schemas.flag_workflow import SYSTEM_ACTOR, reason_allowed
from schemas.keys import ALG_ED25519, parse_verifier_key
from schemas.times import parse_time

__all__ = [
    "DECLARED_NAMES",
    "EVENT_TYPES",
    "REGISTRY_EVENT_TYPES",
    "ROLES_BY_KIND",
    "SCHEMA_BASE_URI",
    "check_envelope_shape",
    "check_header",
    "iter_schema_errors",
    "load_schema",
    "schema_error",
    "validate_payload",
]

SCHEMA_BASE_URI: Final = "https://cuentasclaras.org/schemas/"
_SHARED_FILES: Final = ("common.v1.json", "envelope.v1.json")
_FILE_RE = re.compile(r"^(?P<type>[a-z]+(?:\.[a-z_]+)+)\.v(?P<version>[1-9][0-9]*)\.json$")


# --- the validator class ----------------------------------------------------


def _is_strict_integer(_checker: object, instance: object) -> bool:
    return type(instance) is int


@cache
def _compile_pattern(pattern: str) -> re.Pattern[str]:
    # ECMA-262 "$" means end of input; Python's means end or before a final "\n".
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(
    _validator: Validator, pattern: str, instance: object, _schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _compile_pattern(pattern).search(instance):
        yield ValidationError(f"{_show(instance)} does not match {pattern!r}")


_FORMAT_CHECKER = FormatChecker(formats=())


_StrictValidator: type[Validator] = validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer),
)


# --- loading ----------------------------------------------------------------


def _read_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in resources.files("schemas").joinpath("events").iterdir():
        if entry.name.endswith(".json"):
            out[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    return out


_SCHEMAS: Final = _read_schemas()
# The copies handed to jsonschema have no "$schema": jsonschema picks the
# validator class of a resource from its "$schema" (``validator_for``), which
# would swap our strict class for the stock one as soon as a "$ref" crosses
# into another file.  Every file is draft 2020-12, stated as the default here.
_REGISTRY: Final = Registry().with_resources(
    (
        s["$id"],
        Resource.from_contents(
            {k: v for k, v in s.items() if k != "$schema"}, default_specification=DRAFT202012
        ),
    )
    for s in _SCHEMAS.values()
)


def _declared_names(node: object, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            out.update(str(k) for k in props)
        for v in node.values():
            _declared_names(v, out)
    elif isinstance(node, list):
        for v in node:
            _declared_names(v, out)
    return out


#: Every property name some schema file declares (envelope, header, payloads, shared
#: definitions): the project's own words, so a schema path made of them carries
#: nothing from the input it was found in (``schemas.rejections``).
DECLARED_NAMES: Final[frozenset[str]] = frozenset(_declared_names(list(_SCHEMAS.values()), set()))


def _validator_for(schema: Mapping[str, Any]) -> Validator:
    return _StrictValidator(schema, registry=_REGISTRY, format_checker=_FORMAT_CHECKER)


# --- the fast path ----------------------------------------------------------
#
# jsonschema interprets the schema anew for every instance and takes about a
# millisecond for one transfer.sent payload, five times the whole budget of
# the ingest hot path.  So the same schema files are also compiled, once,
# into plain Python closures that only answer "valid or not".  The closures
# implement exactly the keyword subset these files use, with the strict
# semantics described above; a keyword outside the subset is a build error,
# so the schemas cannot drift out of what the fast path understands.  When a
# closure says "invalid", jsonschema runs to find the best error message, so
# messages are jsonschema's.  tests/unit/test_schemas_roundtrip.py checks the
# two agree on every sample and on thousands of mutations.

_Check = Callable[[object], bool]
_ANNOTATIONS: Final = frozenset({"$schema", "$id", "$defs", "title", "description"})
_SUPPORTED: Final = _ANNOTATIONS | {
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "oneOf",
    "anyOf",
}
_OBJECT_KEYWORDS: Final = frozenset({"type", "properties", "required", "additionalProperties"})
_TYPE_TESTS: Final[Mapping[str, _Check]] = {
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: type(x) is int,
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _valid_date_time(x: object) -> bool:
    if not isinstance(x, str):
        return True
    try:
        datetime.fromisoformat(x)
    except ValueError:
        return False
    return True


# RFC 3339 section 5.6 date-time; the schema pattern already pins the UTC "Z"
# form, this adds calendar validity (no 2025-02-30) for jsonschema too.
_FORMAT_CHECKER.checks("date-time")(_valid_date_time)


def _all_of(checks: list[_Check]) -> _Check:
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) and b(x)
    t = tuple(checks)

    return lambda x: all(c(x) for c in t)


class _FastCompiler:
    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = documents
        self._by_uri: dict[str, _Check] = {}

    def _node(self, schema: Mapping[str, Any], base: str) -> Mapping[str, Any]:
        """``schema`` with its ``$ref`` followed (RFC 6901 pointer in the fragment)."""
        if "$ref" not in schema:
            return schema
        doc_uri, _, fragment = urljoin(base, schema["$ref"]).partition("#")
        node: Any = self._documents[doc_uri]
        for token in fragment.split("/")[1:]:
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return self._node(node, doc_uri)

    def ref(self, base: str, ref: str) -> _Check:
        uri = urljoin(base, ref)
        if uri not in self._by_uri:
            doc_uri, _, fragment = uri.partition("#")
            node: Any = self._documents[doc_uri]
            for token in fragment.split("/")[1:]:
                node = node[token.replace("~1", "/").replace("~0", "~")]
            self._by_uri[uri] = self.compile(node, doc_uri)
        return self._by_uri[uri]

    def compile(self, schema: Mapping[str, Any], base: str) -> _Check:
        unknown = set(schema) - _SUPPORTED
        if unknown or (schema.get("format", "date-time") != "date-time"):
            raise RuntimeError(f"fast validator: unsupported keywords {sorted(unknown)} in {base}")
        fast = self._leaf(schema)
        if fast is not None:
            return fast
        if schema.get("type") == "object" and schema.keys() - _ANNOTATIONS <= _OBJECT_KEYWORDS:
            return self._object(schema, base, typed=True)
        checks: list[_Check] = []
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            tests = tuple(_TYPE_TESTS[t] for t in types)
            checks.append(tests[0] if len(tests) == 1 else (lambda x: any(t(x) for t in tests)))
        if "$ref" in schema:
            checks.append(self.ref(base, schema["$ref"]))
        if "enum" in schema:
            values = frozenset(schema["enum"])
            if not all(isinstance(v, str) for v in values):
                raise RuntimeError(f"fast validator: only string enums are supported ({base})")
            checks.append(lambda x: isinstance(x, str) and x in values)
        if "const" in schema:
            const = schema["const"]
            if not isinstance(const, str):
                raise RuntimeError(f"fast validator: only string consts are supported ({base})")
            checks.append(lambda x: isinstance(x, str) and x == const)
        if "pattern" in schema:
            search = _compile_pattern(schema["pattern"]).search
            checks.append(lambda x: not isinstance(x, str) or search(x) is not None)
        if "format" in schema:
            checks.append(_valid_date_time)
        if "maxLength" in schema:
            max_len = schema["maxLength"]
            checks.append(lambda x: not isinstance(x, str) or len(x) <= max_len)
        if "minimum" in schema:
            lo = schema["minimum"]
            checks.append(lambda x: not _is_number(x) or x >= lo)
        if "maximum" in schema:
            hi = schema["maximum"]
            checks.append(lambda x: not _is_number(x) or x <= hi)
        if {"properties", "required", "additionalProperties"} & schema.keys():
            checks.append(self._object(schema, base))
        if {"items", "minItems", "maxItems", "uniqueItems"} & schema.keys():
            checks.append(self._array(schema, base))
        if "oneOf" in schema:
            subs = tuple(self.compile(s, base) for s in schema["oneOf"])
            checks.append(lambda x: sum(1 for s in subs if s(x)) == 1)
        if "anyOf" in schema:
            alts = tuple(self.compile(s, base) for s in schema["anyOf"])
            checks.append(lambda x: any(s(x) for s in alts))
        return _all_of(checks)

    @staticmethod
    def _leaf(schema: Mapping[str, Any]) -> _Check | None:
        """One closure for the most common leaf shapes (fewer calls on the hot path)."""
        keys = schema.keys() - _ANNOTATIONS
        kind = schema.get("type")
        if keys == {"type", "pattern"} and kind == "string":
            search = _compile_pattern(schema["pattern"]).search
            return lambda x: isinstance(x, str) and search(x) is not None
        if keys == {"type", "pattern", "format"} and kind == "string":
            search = _compile_pattern(schema["pattern"]).search
            return lambda x: isinstance(x, str) and search(x) is not None and _valid_date_time(x)
        if keys == {"type", "enum"} and kind == "string":
            values = frozenset(schema["enum"])
            if all(isinstance(v, str) for v in values):
                return lambda x: isinstance(x, str) and x in values
        if keys == {"type", "minimum", "maximum"} and kind == "integer":
            lo, hi = schema["minimum"], schema["maximum"]
            return lambda x: type(x) is int and lo <= x <= hi
        return None

    def _object(self, schema: Mapping[str, Any], base: str, *, typed: bool = False) -> _Check:
        """``properties``/``required``/``additionalProperties``; with ``typed`` also
        ``type: object`` (one closure instead of two on the hot path)."""
        props = {k: self.compile(v, base) for k, v in schema.get("properties", {}).items()}
        required = frozenset(schema.get("required", ()))
        closed = schema.get("additionalProperties", True) is False
        if schema.get("additionalProperties", False) not in (True, False):
            raise RuntimeError(f"fast validator: additionalProperties must be a boolean ({base})")
        allowed = frozenset(props)

        def check(x: object) -> bool:
            if not isinstance(x, dict):
                return not typed
            keys = x.keys()
            if not required <= keys or (closed and not keys <= allowed):
                return False
            for k, v in x.items():
                c = props.get(k)
                if c is not None and not c(v):
                    return False
            return True

        return check

    def _array(self, schema: Mapping[str, Any], base: str) -> _Check:
        item = self.compile(schema["items"], base) if "items" in schema else None
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems")
        unique = schema.get("uniqueItems", False)

        def check(x: object) -> bool:
            if not isinstance(x, list):
                return True
            if len(x) < lo or (hi is not None and len(x) > hi):
                return False
            if item is not None and not all(item(v) for v in x):
                return False
            # Items are strings here whenever they passed ``items``; a list of
            # anything else has already failed (checked when compiling below).
            return not unique or len(set(x)) == len(x)

        if unique and self._node(schema["items"], base).get("type") != "string":
            raise RuntimeError(f"fast validator: uniqueItems needs string items ({base})")
        return check


_FAST: Final = _FastCompiler({s["$id"]: s for s in _SCHEMAS.values()})


# --- the compiled path (jsonschema-rs) ----------------------------------------
#
# jsonschema-rs compiles the same files into Rust: 4.7 µs for an envelope and
# its transfer payload here, against 11.1 µs for the closures above (issue 16).
# Its stock semantics differ from ours in one place that matters, so the
# copies it gets are rewritten: JSON Schema (Validation 6.1.1) counts 1.0 as
# an integer and so does jsonschema-rs; every ``integer`` node gets a custom
# keyword that refuses a Python float.  The other two departures hold
# as they are or are supplied: its regular expressions are ECMA-262, where
# ``$`` is the end of input as in ``_compile_pattern`` (every pattern here is
# plain ASCII classes, so ``\d``-style differences cannot arise), and
# ``date-time`` is checked by the same Python function as above.  The
# closures stay: they answer when jsonschema-rs cannot take a value at all
# (a lone surrogate or an integer beyond 64 bits from a hand-built payload),
# and the compiler keeps the schemas inside the keyword subset both
# understand.  tests/unit/test_schemas_roundtrip.py checks all three agree.

_STRICT_INTEGER: Final = "x-cuentas-strict-integer"


class _StrictInteger:
    """The custom keyword: an ``integer`` is a JSON integer, never ``1.0``."""

    def __init__(self, _parent: object, _value: object, _path: object) -> None:
        pass

    def validate(self, instance: object) -> None:
        if type(instance) is float:
            raise ValueError("a number with a fraction part where an integer is expected")


def _rs_copy(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _rs_copy(v) for k, v in node.items() if k != "$schema"}
        kind = node.get("type")
        if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
            out[_STRICT_INTEGER] = True
        return out
    if isinstance(node, list):
        return [_rs_copy(v) for v in node]
    return node


_RS_REGISTRY: Final = jsonschema_rs.Registry([(s["$id"], _rs_copy(s)) for s in _SCHEMAS.values()])


def _rs_check(uri: str, fallback: _Check) -> _Check:
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": uri}, registry=_RS_REGISTRY, validate_formats=True,
        formats={"date-time": _valid_date_time}, keywords={_STRICT_INTEGER: _StrictInteger},
    )
    rs_is_valid = validator.is_valid

    def check(x: object) -> bool:
        try:
            return bool(rs_is_valid(x))
        except (ValueError, TypeError, OverflowError):
            # Not representable in JSON as jsonschema-rs reads it: let the closures judge.
            return fallback(x)

    return check


class _Compiled:
    """One schema, three ways: the compiled yes/no check (jsonschema-rs), the closures
    (``fast_is_valid``, for what jsonschema-rs cannot take) and the jsonschema validator
    for messages."""

    __slots__ = ("fast_is_valid", "is_valid", "validator")

    def __init__(self, uri: str) -> None:
        self.fast_is_valid: _Check = _FAST.ref(uri, uri)
        self.is_valid: _Check = _rs_check(uri, self.fast_is_valid)
        # A schema that is only a reference resolves through the local registry,
        # which also lets it point inside a document (the envelope's header).
        self.validator: Validator = _validator_for({"$ref": uri})

    def first_error(self, instance: object) -> ValidationError | None:
        if self.is_valid(instance):
            return None
        err = iter_schema_errors(self.validator, _cut_arrays(instance))
        if err is None:  # the two validators disagree (or the cut hid the error): refuse anyway
            return ValidationError("is not valid (fast validator)", validator="fast")
        return err


def _max_items(node: object) -> int:
    if isinstance(node, dict):
        own = node.get("maxItems", 0)
        return max([own if isinstance(own, int) else 0, *(_max_items(v) for v in node.values())])
    if isinstance(node, list):
        return max((_max_items(v) for v in node), default=0)
    return 0


#: Arrays are cut to this many items before jsonschema looks for the message
#: of a refusal.  jsonschema reports every bad item and ``best_match`` reads
#: them all (a 40 KiB array of bad items took 1.5 s to refuse, and
#: ``uniqueItems`` over objects compares every pair); the fast validator has
#: already said no, this only picks the words.  Every array in the schemas has
#: a ``maxItems`` below this bound, so an array that is too long is still
#: reported as too long.
_MESSAGE_MAX_ITEMS: Final = 1 + max(100, _max_items(_SCHEMAS))
#: Most errors ``best_match`` chooses the message from.
_MESSAGE_MAX_ERRORS: Final = 32


def _cut_arrays(x: object) -> object:
    if isinstance(x, list):
        return [_cut_arrays(v) for v in x[:_MESSAGE_MAX_ITEMS]]
    if isinstance(x, dict):
        return {k: _cut_arrays(v) for k, v in x.items()}
    return x


def _index() -> dict[tuple[str, int], _Compiled]:
    out: dict[tuple[str, int], _Compiled] = {}
    for name in _SCHEMAS:
        if name in _SHARED_FILES:
            continue
        m = _FILE_RE.match(name)
        if m is None or _SCHEMAS[name].get("$id") != SCHEMA_BASE_URI + name:
            raise RuntimeError(f"schemas/events/{name}: name must be <type>.v<n>.json, $id match")
        out[(m["type"], int(m["version"]))] = _Compiled(SCHEMA_BASE_URI + name)
    return out


_COMPILED: Final = _index()
_ENVELOPE: Final = _Compiled(SCHEMA_BASE_URI + "envelope.v1.json")
_HEADER: Final = _Compiled(SCHEMA_BASE_URI + "envelope.v1.json#/properties/header")

#: Every known event type, sorted.
EVENT_TYPES: Final[tuple[str, ...]] = tuple(sorted({t for t, _ in _COMPILED}))
#: Event types only the registry authority may sign.
REGISTRY_EVENT_TYPES: Final[tuple[str, ...]] = tuple(
    t for t in EVENT_TYPES if t.startswith("publisher.")
)

#: Default roles for each publisher kind (publisher.registered may grant others).
#: A committee reports on its own projects and never verifies them: verification
#: is a verifier's (a mirror club's, an auditor's), named by the project.
ROLES_BY_KIND: Final[Mapping[str, tuple[str, ...]]] = {
    "operator": tuple(t for t in EVENT_TYPES if t.startswith("transfer.")),
    "committee": (
        "project.registered",
        "milestone.reported",
        "project.cancelled",
        "project.funds_returned",
    ),
    "government": ("disbursement.pledged", "disbursement.made"),
    "platform": ("flag.changed",),
    "reviewer": ("flag.changed",),
    "verifier": ("milestone.verified",),
    "payout_agent": ("transfer.paid_out",),
}


def load_schema(event_type: str, version: int = 1) -> Mapping[str, Any]:
    """The parsed JSON Schema of one event type (read-only by convention)."""
    if (event_type, version) not in _COMPILED:
        raise _unknown(event_type, version)
    return _SCHEMAS[f"{event_type}.v{version}.json"]


def check_envelope_shape(obj: object) -> None:
    """Check the envelope's wire shape (exact top-level keys, header, signature string).

    Raises ``MalformedInput(reason="envelope")`` naming the field; the payload
    is only required to be an object here (``validate_payload`` does the rest).
    """
    err = _ENVELOPE.first_error(obj)
    if err is not None:
        raise schema_error(err, root="", reason="envelope")


def check_header(header: object) -> None:
    """Check an envelope header alone; ``MalformedInput(reason="envelope", field="/header/...")``."""
    err = _HEADER.first_error(header)
    if err is not None:
        raise schema_error(err, root="/header", reason="envelope")


# --- errors -----------------------------------------------------------------


def _show(value: object) -> str:
    r = repr(value)
    return r if len(r) <= 64 else r[:60] + "..."


def _pointer_escape(token: str | int) -> str:
    # RFC 6901 section 3.
    return str(token).replace("~", "~0").replace("/", "~1")


def _unknown(event_type: str, version: int | None) -> MalformedInput:
    which = _show(event_type) if version is None else f"{_show(event_type)} version {version}"
    return MalformedInput(
        f"unknown event type {which}; known: {', '.join(EVENT_TYPES)}",
        reason="unknown_type",
        field="/header/type",
    )


def _discriminator(err: ValidationError) -> tuple[list[str | int], str] | None:
    """For a ``oneOf`` whose branches all fail on the same ``const`` (a tag such as
    ``kind``), point at the tag: "'x' is not one of 'beneficiary', 'project_fund'"
    says more than "is not valid under any of the given schemas"."""
    if err.validator != "oneOf" or not err.context:
        return None
    by_branch: dict[object, ValidationError] = {}
    for sub in err.context:
        if sub.validator == "const" and sub.relative_schema_path:
            by_branch.setdefault(sub.relative_schema_path[0], sub)
    if len(by_branch) != len(err.validator_value):
        return None
    paths = {tuple(sub.absolute_path) for sub in by_branch.values()}
    if len(paths) != 1:
        return None
    first = next(iter(by_branch.values()))
    consts = ", ".join(repr(sub.validator_value) for sub in by_branch.values())
    return list(first.absolute_path), f"{_show(first.instance)} is not one of {consts}"


def schema_error(err: ValidationError, *, root: str, reason: str = "schema") -> MalformedInput:
    """Turn a jsonschema error into ``MalformedInput`` naming the field and the rule.

    ``field`` is a JSON pointer (RFC 6901) below ``root`` (``/payload``); for a
    missing or an extra property it points at that property, not its parent.
    """
    path: list[str | int] = list(err.absolute_path)
    message = err.message
    discriminator = _discriminator(err)
    if discriminator is not None:
        path, message = discriminator
    elif err.validator == "required" and isinstance(err.instance, dict):
        missing = [k for k in err.validator_value if k not in err.instance]
        if missing:
            path.append(missing[0])
            message = "is required but missing"
    elif err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            path.append(extra[0])
            message = (
                f"is not allowed here (no free-form fields; allowed: {', '.join(sorted(allowed))})"
            )
    pointer = root + "".join("/" + _pointer_escape(p) for p in path)
    shown = pointer.lstrip("/")
    if len(message) > 300:
        message = message[:297] + "..."
    return MalformedInput(f"{shown}: {message}", reason=reason, field=pointer)


def iter_schema_errors(validator: Validator, instance: object) -> ValidationError | None:
    """The most relevant error of ``instance`` (jsonschema ``best_match``), or None."""
    errors = validator.iter_errors(instance)
    first = next(errors, None)
    if first is None:
        return None
    # A bounded number of candidates: the message needs one error, and an
    # input with thousands of them must not cost thousands of error objects.
    return best_match([first, *islice(errors, _MESSAGE_MAX_ERRORS - 1)])


# --- semantic rules JSON Schema cannot express ------------------------------


def _fail(field: str, message: str) -> MalformedInput:
    return MalformedInput(f"payload/{field}: {message}", reason="schema", field=f"/payload/{field}")


def _check_transfer_sent(p: Mapping[str, Any]) -> None:
    if p["fee"]["currency"] != p["send"]["currency"]:
        raise _fail(
            "fee/currency",
            f"fee is in {p['fee']['currency']} but send is in {p['send']['currency']}; "
            "a fee is charged in the send currency",
        )
    if Decimal(p["exchange_rate"]) == 0:
        raise _fail("exchange_rate", "must be greater than 0")


def _check_project_registered(p: Mapping[str, Any]) -> None:
    shares = p["shares"]
    total = shares["club"] + shares["municipal"] + shares["state"] + shares["federal"]
    if total != 10_000:
        raise _fail(
            "shares",
            f"club+municipal+state+federal must sum to 10000 basis points (100%), got {total}",
        )
    if not p["state"].startswith(p["country"] + "-"):
        raise _fail("state", f"{p['state']!r} is not a subdivision of {p['country']}")
    seen: set[str] = set()
    currency = p["budget"]["currency"]
    for i, m in enumerate(p["milestones"]):
        if m["milestone_id"] in seen:
            raise _fail(
                f"milestones/{i}/milestone_id", f"duplicate milestone id {m['milestone_id']!r}"
            )
        seen.add(m["milestone_id"])
        if m["amount"]["currency"] != currency:
            raise _fail(
                f"milestones/{i}/amount/currency",
                f"milestone is in {m['amount']['currency']} but the budget is in {currency}",
            )


def _check_project_cancelled(p: Mapping[str, Any]) -> None:
    seen: set[str] = set()
    currencies = {r["amount"]["currency"] for r in p["returns"]}
    for i, r in enumerate(p["returns"]):
        if r["party"] in seen:
            raise _fail(f"returns/{i}/party", f"party {r['party']!r} is listed twice")
        seen.add(r["party"])
    if len(currencies) > 1:
        raise _fail("returns", "every amount to return is in the budget currency (one currency)")


def _check_verifier_key(p: Mapping[str, Any], fld: str) -> None:
    try:
        vk = parse_verifier_key(p[fld], alg=ALG_ED25519)
    except MalformedInput as e:
        raise _fail(fld, str(e)) from e
    if vk.name != p["publisher_id"]:
        raise _fail(fld, f"key name {vk.name!r} must equal publisher_id {p['publisher_id']!r}")


def _check_publisher_registered(p: Mapping[str, Any]) -> None:
    _check_verifier_key(p, "public_key")
    if (p["kind"] == "government") != ("party" in p):
        raise _fail("party", "is required for a government publisher and only for one")
    if (p["kind"] == "committee") != ("club_id" in p):
        raise _fail("club_id", "is required for a committee and only for one")
    if "backfill_until" in p and parse_time(p["backfill_until"]) < parse_time(p["valid_from"]):
        raise _fail("backfill_until", "is before valid_from")


def _check_key_rotated(p: Mapping[str, Any]) -> None:
    _check_verifier_key(p, "new_public_key")


def _check_flag_changed(p: Mapping[str, Any]) -> None:
    if p["previous_status"] == p["status"]:
        raise _fail("status", f"equals previous_status {p['status']!r}; nothing changed")
    if not reason_allowed(p["actor"], p["reason_code"]):
        system = p["actor"] == SYSTEM_ACTOR
        raise _fail(
            "reason_code",
            f"{p['reason_code']!r} cannot be recorded by actor "
            f"{'system' if system else 'a reviewer'}",
        )


_SEMANTIC: Final[Mapping[str, Callable[[Mapping[str, Any]], None]]] = {
    "transfer.sent": _check_transfer_sent,
    "project.registered": _check_project_registered,
    "project.cancelled": _check_project_cancelled,
    "publisher.registered": _check_publisher_registered,
    "publisher.key_rotated": _check_key_rotated,
    "flag.changed": _check_flag_changed,
}


def validate_payload(event_type: str, version: int, payload: object) -> None:
    """Check ``payload`` against the schema of ``event_type`` ``version`` and the rules in code.

    Raises ``MalformedInput`` with reason ``unknown_type`` or ``schema``; for
    ``schema`` the ``field`` is ``/payload/<JSON pointer>`` and the message
    names the field and the rule, e.g.
    ``payload/send/amount: -5 is less than the minimum of 1``.
    """
    compiled = _COMPILED.get((event_type, version))
    if compiled is None:
        raise _unknown(event_type, version)
    err = compiled.first_error(payload)
    if err is not None:
        raise schema_error(err, root="/payload")
    check = _SEMANTIC.get(event_type)
    if check is not None:
        assert isinstance(payload, Mapping)
        check(payload)
