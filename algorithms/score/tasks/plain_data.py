"""Plain data across the sandbox wall: Python values ↔ JSON text, for the code verifier (code_verifier.py).

Only values made of None, bool, int, float, complex, str, bytes, list, tuple, dict, set and frozenset cross, each
encoded by its exact type — JSON's null/true/false/numbers/arrays for None/bool/int/finite float/list, a JSON string
for a str (its UTF-8 bytes in hex, so any text, lone surrogates included, is plain ASCII on the wire), and a
one-key object for the rest — so the side that decodes gets back values of exactly those types, built by its own
code: no object of the other side's making, and no method of the other side's, is ever called.

Stdlib-only, self-contained, and importing nothing costly: the sandboxed harness carries this file's source as its
own (code_verifier.harness) and writes JSON text itself, since `import json` (through `re`) would cost a sandboxed
interpreter more than its start-up on a loaded machine; the trusted side reads it with `json.loads`.
"""

MAX_DEPTH = 64
_INFINITY = float("inf")

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


def _text(value):
    return '"' + value.encode("utf-8", "surrogatepass").hex() + '"'


def _items(values, own_module, depth):
    return "[" + ",".join(encode(v, own_module, depth + 1) for v in values) + "]"


def encode(value, own_module=None, depth=0):
    """JSON text for `value`. A subclass of a plain type is sent as its plain value, and is NotPlain(own=True) when a
    class of `own_module` in its MRO overrides a dunder that could change what it compares equal to."""
    if depth > MAX_DEPTH:
        raise NotPlain("nesting deeper than %d" % MAX_DEPTH, False)
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value or value in (_INFINITY, -_INFINITY):
            return '{"f":"%s"}' % float.__repr__(value)
        return float.__repr__(value)
    if kind is str:
        return _text(value)
    if kind is list:
        return _items(value, own_module, depth)
    if kind is tuple:
        return '{"t":' + _items(value, own_module, depth) + "}"
    if kind is dict:
        pairs = ("[" + encode(k, own_module, depth + 1) + "," + encode(v, own_module, depth + 1) + "]" for k, v in value.items())
        return '{"d":[' + ",".join(pairs) + "]}"
    if kind is set or kind is frozenset:
        return '{"%s":' % ("s" if kind is set else "fs") + _items(value, own_module, depth) + "}"
    if kind is bytes:
        return '{"b":"' + value.hex() + '"}'
    if kind is complex:
        return '{"c":["%s","%s"]}' % (float.__repr__(value.real), float.__repr__(value.imag))
    for base in _PLAIN_BASES:
        if isinstance(value, base):
            mro = kind.__mro__[: kind.__mro__.index(base)]
            if own_module is not None and any(_made_by(k, own_module) and _dunders(k) - _HARMLESS for k in mro):
                raise NotPlain(kind.__qualname__, True)
            return encode(base(value), own_module, depth + 1)
    raise NotPlain(getattr(kind, "__qualname__", "?"), own_module is not None and _made_by(kind, own_module))


def name_text(name):
    """A type or exception name as JSON text (hex, like any str)."""
    return _text(str(name)[:200])


class Malformed(ValueError):
    """Data that no honest encoder writes."""


def _float(text):
    if not isinstance(text, str) or len(text) > 400:
        raise Malformed("bad float %r" % (text,))
    try:
        return float(text)
    except ValueError:
        raise Malformed("bad float %r" % (text,)) from None


def decode_text(data):
    if not isinstance(data, str):
        raise Malformed("not a string")
    try:
        return bytes.fromhex(data).decode("utf-8", "surrogatepass")
    except ValueError:
        raise Malformed("bad string") from None


def decode(data, depth=0):
    """The value `encode` made, rebuilt from parsed JSON; Malformed for anything else."""
    if depth > MAX_DEPTH:
        raise Malformed("nesting deeper than %d" % MAX_DEPTH)
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is float:
        return data
    if kind is str:
        return decode_text(data)
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


def parse_trusted(text):
    """Parse JSON text that the trusted side wrote (the sandboxed harness reads its calls with this, without the
    json module): our JSON is a Python expression once null/true/false are names."""
    return eval(text, {"__builtins__": {}, "null": None, "true": True, "false": False})
