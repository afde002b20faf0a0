"""Label and field selectors, parsed and matched as apimachinery's `labels.Parse` and `fields.ParseSelector` do.

Errors are ValueErrors carrying Kubernetes' own message, which the server returns in a 400 `Status`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)

# Operators as Kubernetes names them in selection.Operator.
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, EXISTS, DOES_NOT_EXIST, GT, LT = "in", "notin", "exists", "!", "gt", "lt"


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term; `values` is empty for exists / does-not-exist."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in (EQUALS, DOUBLE_EQUALS, IN):
            return present and value in self.values
        if self.operator in (NOT_EQUALS, NOT_IN):
            return not present or value not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        try:  # gt / lt compare integers; a non-integer label never matches
            number, bound = int(value), int(self.values[0])
        except (TypeError, ValueError):
            return False
        return number > bound if self.operator == GT else number < bound


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: dict | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        """apimachinery's ``Selector.String()``: the terms sorted by key, as a Scale's ``status.selector`` says."""
        return ",".join(_term(r) for r in sorted(self.requirements, key=lambda r: r.key))


def _term(r: Requirement) -> str:
    if r.operator == EXISTS:
        return r.key
    if r.operator == DOES_NOT_EXIST:
        return f"!{r.key}"
    if r.operator in (IN, NOT_IN):
        return f"{r.key} {r.operator} ({','.join(sorted(r.values))})"
    return f"{r.key}{r.operator}{r.values[0]}"


_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def from_label_selector(selector: dict | None) -> LabelSelector | None:
    """metav1's ``LabelSelectorAsSelector`` of a ``LabelSelector`` object: None (selects nothing) for None, every
    object for an empty one. A malformed expression raises ValueError (validation refuses it before it is stored)."""
    if selector is None:
        return None
    terms = [Requirement(key, EQUALS, (str(value),)) for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        operator = _EXPRESSION_OPERATORS.get(expression.get("operator", ""))
        if operator is None:
            raise ValueError(f"{expression.get('operator')!r} is not a valid label selector operator")
        values = tuple(expression.get("values") or ())
        if operator in (IN, NOT_IN) and not values:
            raise ValueError("values: Required value: must be specified when `operator` is 'In' or 'NotIn'")
        if operator in (EXISTS, DOES_NOT_EXIST) and values:
            raise ValueError("values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        terms.append(Requirement(expression.get("key", ""), operator, values))
    return LabelSelector(tuple(terms))


# --- label selector lexer and parser (apimachinery labels/selector.go) ---

_SPECIAL = ("!=", "==", "=", "!", ",", "(", ")", ">", "<")
_TOKEN = re.compile(r"\s*(?:(!=|==|=|!|,|\(|\)|>|<)|([^\s!=,()<>]+))")


def _tokens(s: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None:  # only trailing whitespace is left
            break
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    return tokens


class _LabelParser:
    def __init__(self, s: str) -> None:
        self.tokens = _tokens(s)
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def next(self) -> str:
        token = self.peek()
        self.pos += 1
        return token

    def parse(self) -> LabelSelector:
        requirements = []
        while self.peek():
            try:
                requirements.append(self.requirement())
            except ValueError as exc:
                raise ValueError(f"unable to parse requirement: {exc}") from None
            token = self.next()
            if token not in ("", ","):
                raise ValueError(f"found '{token}', expected: ',' or 'end of string'")
            if token == "," and not self.peek():
                raise ValueError("found '', expected: identifier after ','")
        return LabelSelector(tuple(requirements))

    def identifier(self) -> str:
        """A key: `in` and `notin` are keywords there, as in apimachinery's lexer."""
        token = self.next()
        if not token or token in _SPECIAL or token in (IN, NOT_IN):
            raise ValueError(f"found '{token}', expected: identifier")
        return token

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.next()
            key = self.identifier()
            _validate_key(key)
            return Requirement(key, DOES_NOT_EXIST)
        key = self.identifier()
        _validate_key(key)
        if self.peek() in ("", ","):
            return Requirement(key, EXISTS)
        op = self.next()
        ops = {"=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, "in": IN, "notin": NOT_IN, ">": GT, "<": LT}
        if op not in ops:
            raise ValueError(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        operator = ops[op]
        if operator in (IN, NOT_IN):
            values = self.value_set()
            if not values:
                raise ValueError("for 'in', 'notin' operators, values set can't be empty")
        else:
            token = self.peek()
            values = (self.next(),) if token not in ("", ",") and token not in _SPECIAL else ("",)
            if operator in (GT, LT) and not re.fullmatch(r"-?\d+", values[0]):
                raise ValueError("for 'Gt', 'Lt' operators, the value must be an integer")
        for i, value in enumerate(values):
            if not _LABEL_VALUE.fullmatch(value) or len(value) > 63:
                raise ValueError(f"values[{i}][{key}]: Invalid value: \"{value}\": {_LABEL_VALUE_MSG}")
        return Requirement(key, operator, values)

    def value_set(self) -> tuple[str, ...]:
        token = self.next()
        if token != "(":
            raise ValueError(f"found '{token}', expected: '('")
        values: list[str] = []
        while True:
            token = self.next()
            if token == ")":
                return tuple(values)
            if token == ",":
                if not values:
                    values.append("")
                if self.peek() in (",", ")"):
                    values.append("")
                continue
            if not token or token in _SPECIAL:
                raise ValueError(f"found '{token}', expected: ',', ')' or identifier")
            values.append(token)


def _validate_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or not _DNS1123_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253):
        raise ValueError(f"key: Invalid value: \"{key}\": prefix part a lowercase RFC 1123 subdomain must consist "
                         "of lower case alphanumeric characters, '-' or '.', and must start and end with an "
                         "alphanumeric character")
    if not name or len(name) > 63 or not _NAME_PART.fullmatch(name):
        raise ValueError(f"key: Invalid value: \"{key}\": {_NAME_PART_MSG}")


def parse_label_selector(s: str) -> LabelSelector:
    """Parse `a=b,c!=d,e in (f,g),!h,i` into a selector; the empty string selects everything."""
    return _LabelParser(s).parse()


# --- field selectors (apimachinery fields/selector.go) ---


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for "==") or "!="
    value: str

    def matches(self, obj: dict) -> bool:
        equal = field_value(obj, self.field) == self.value
        return equal if self.operator == EQUALS else not equal


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...]

    def matches(self, obj: dict) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def value_of(self, field: str) -> str | None:
        """The value an `=` term requires of `field` (e.g. `metadata.name`), if there is one."""
        return next((r.value for r in self.requirements if r.field == field and r.operator == EQUALS), None)


# Field labels each resource's field selectors may use, besides metadata.name and metadata.namespace
# (kubernetes pkg/registry/*/strategy.go `...ToSelectableFields` and the conversion funcs of core/v1).
SELECTABLE_FIELDS: dict[str, frozenset[str]] = {
    "pods": frozenset({
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName",
    }),
    "events": frozenset({
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type",
    }),
    "secrets": frozenset({"type"}),
    "nodes": frozenset({"spec.unschedulable"}),
    "namespaces": frozenset({"status.phase"}),
}


def check_selectable(resource: str, selector: FieldSelector) -> None:
    """Refuse a field the API server cannot select `resource` by, with its 400 message."""
    allowed = SELECTABLE_FIELDS.get(resource, frozenset()) | {"metadata.name", "metadata.namespace"}
    for requirement in selector.requirements:
        if requirement.field not in allowed:
            raise ValueError(f"field label not supported: {requirement.field}")


# Field labels that name another path of the object (an event's `source` is its `source.component`).
_FIELD_PATHS = {"source": "source.component"}


def field_value(obj: dict, path: str) -> str:
    """The dotted `path` of `obj` as a field selector compares it: a missing field is ""."""
    value: object = obj
    for part in _FIELD_PATHS.get(path, path).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _split_terms(s: str) -> list[str]:
    """Split on unescaped commas, keeping escapes for the next step."""
    terms, current, escaped = [], [], False
    for ch in s:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    terms.append("".join(current))
    return terms


def _unescape(value: str, selector: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence in '{selector}'")
            out.append(value[i + 1])
            i += 2
            continue
        if ch in ",=":
            raise ValueError(f"invalid field selector: unescaped character in '{selector}'")
        out.append(ch)
        i += 1
    return "".join(out)


def _split_term(term: str) -> tuple[str, str, str] | None:
    """`field op value` at the first operator, as apimachinery's splitTerm; None when there is none."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(s: str) -> FieldSelector:
    """Parse `metadata.name=x,status.phase!=Failed`; the empty string selects everything."""
    requirements = []
    for term in _split_terms(s) if s else []:
        if not term:
            continue
        parts = _split_term(term)
        if parts is None or not parts[0].strip():
            raise ValueError(f"invalid selector: '{s}'; can't understand '{term}'")
        field, op, value = parts
        requirements.append(FieldRequirement(field.strip(), NOT_EQUALS if op == "!=" else EQUALS, _unescape(value, s)))
    return FieldSelector(tuple(requirements))
