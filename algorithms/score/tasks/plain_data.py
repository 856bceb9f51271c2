"""Plain data across the sandbox wall: Python values ↔ JSON, for the code verifier (code_verifier.py).

Only values made of None, bool, int, float, complex, str, bytes, list, tuple, dict, set and frozenset cross, each
encoded by its exact type (JSON's own types for None/bool/int/float/str/list, a one-key object for the rest), so
the side that decodes gets back values of exactly those types, built by its own code: no object of the other
side's making, and no method of the other side's, is ever called. Stdlib-only and self-contained: the sandboxed
harness carries this file's source as its own (code_verifier.HARNESS), so both sides run the same codec.
"""

import json
import math

MAX_DEPTH = 64

# Dunders a class made by the program may define on a subclass of a plain type without being suspected of lying
# about its value (a namedtuple defines these); anything else (__eq__, __abs__, __sub__, __int__ …) is suspect.
_HARMLESS = frozenset({"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__slots__", "__init__",
                       "__new__", "__repr__", "__getnewargs__", "__match_args__", "__annotations__", "__firstlineno__",
                       "__static_attributes__", "__orig_bases__", "__parameters__"})
_PLAIN_BASES = (bool, int, float, complex, str, bytes, tuple, list, dict, frozenset, set)


class NotPlain(Exception):
    """A value that is not plain data; `own` when its class was made by the program (not the standard library)."""

    def __init__(self, type_name, own):
        super().__init__(type_name)
        self.type_name, self.own = type_name, own


def _dunders(cls):
    return {name for name in vars(cls) if name.startswith("__") and name.endswith("__")}


def _made_by(cls, module_name):
    return getattr(cls, "__module__", None) == module_name


def encode(value, own_module=None, depth=0):
    """A JSON-ready form of `value`. A subclass of a plain type is sent as its plain value, and is NotPlain(own=True)
    when a class of `own_module` in its MRO overrides a dunder that could change what it compares equal to."""
    if depth > MAX_DEPTH:
        raise NotPlain("nesting deeper than %d" % MAX_DEPTH, False)
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"f": repr(value)}
    if kind is list:
        return [encode(v, own_module, depth + 1) for v in value]
    if kind is tuple:
        return {"t": [encode(v, own_module, depth + 1) for v in value]}
    if kind is dict:
        return {"d": [[encode(k, own_module, depth + 1), encode(v, own_module, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"s" if kind is set else "fs": [encode(v, own_module, depth + 1) for v in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [repr(value.real), repr(value.imag)]}
    for base in _PLAIN_BASES:
        if isinstance(value, base):
            mro = kind.__mro__[: kind.__mro__.index(base)]
            if own_module is not None and any(_made_by(k, own_module) and _dunders(k) - _HARMLESS for k in mro):
                raise NotPlain(kind.__qualname__, True)
            return encode(base(value), own_module, depth + 1)
    raise NotPlain(getattr(kind, "__qualname__", "?"), own_module is not None and _made_by(kind, own_module))


class Malformed(ValueError):
    """Text that no honest encoder writes."""


def _float(text):
    if not isinstance(text, str) or text not in ("inf", "-inf", "nan") and not _is_number(text):
        raise Malformed("bad float %r" % (text,))
    return float(text)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return len(text) < 400


def decode(data, depth=0):
    """The value `encode` made, rebuilt from JSON-parsed data; Malformed for anything else."""
    if depth > MAX_DEPTH:
        raise Malformed("nesting deeper than %d" % MAX_DEPTH)
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is str:
        return data
    if kind is float:
        return data
    if kind is list:
        return [decode(v, depth + 1) for v in data]
    if kind is not dict or len(data) != 1:
        raise Malformed("unexpected %s" % kind.__name__)
    (tag, body), = data.items()
    if tag == "f":
        return _float(body)
    if tag == "b":
        if not isinstance(body, str):
            raise Malformed("bad bytes")
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise Malformed("bad bytes") from None
    if tag == "c":
        if not isinstance(body, list) or len(body) != 2:
            raise Malformed("bad complex")
        return complex(_float(body[0]), _float(body[1]))
    if not isinstance(body, list):
        raise Malformed("bad %r" % (tag,))
    items = [decode(v, depth + 1) for v in body]
    try:
        if tag == "t":
            return tuple(items)
        if tag == "s":
            return set(items)
        if tag == "fs":
            return frozenset(items)
        if tag == "d":
            if not all(isinstance(pair, list) and len(pair) == 2 for pair in items):
                raise Malformed("bad dict")
            return dict(items)
    except TypeError as e:  # an unhashable key or element
        raise Malformed(str(e)) from None
    raise Malformed("unknown tag %r" % (tag,))


def dumps(message):
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
