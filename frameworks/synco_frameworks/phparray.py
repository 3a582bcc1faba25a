"""``.env.local.php`` without PHP: the array that ``composer dump-env`` writes.

The file is ``<?php`` and comments, then ``return array ( 'KEY' => 'value', … );`` (``var_export``)
or ``return [ … ];``. Keys and values are PHP literals: single-quoted strings (``\\'`` and ``\\\\``
are the only escapes), double-quoted strings without ``$`` (``\\n``, ``\\t``, ``\\"``, ``\\\\``,
``\\$``), integers, floats, ``true``, ``false`` and ``null``. Anything else (a function call, a
constant, a variable) is refused with the line where it stands: synco does not run PHP here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synco_source.errors import UsageError

TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<single>'(?:[^'\\]|\\.)*')
  | (?P<double>"(?:[^"\\$]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_]\w*)
  | (?P<arrow>=>)
  | (?P<punct>[\[\](),;])
""", re.X | re.S)
DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "0": "\0", "e": "\x1b",
                  "\\": "\\", "$": "$", '"': '"'}


def tokens(text: str, name: str) -> list[tuple[str, str, int]]:
    body = re.sub(r"\A\s*<\?php", "", text)
    offset = len(text) - len(body)
    out, pos = [], 0
    while pos < len(body):
        match = TOKEN.match(body, pos)
        if not match:
            line = text.count("\n", 0, offset + pos) + 1
            raise _fail(name, line, f"cannot read {body[pos:pos + 20]!r} without PHP")
        if match.lastgroup != "space":
            out.append((match.lastgroup, match.group(), text.count("\n", 0, offset + pos) + 1))
        pos = match.end()
    return out


def _fail(name: str, line: int, problem: str) -> UsageError:
    return UsageError(f"{name}, line {line}: {problem}",
                      hint="write it with 'composer dump-env', or remove it to use the .env files")


def _string(kind: str, text: str) -> str:
    inner = text[1:-1]
    if kind == "single":
        return re.sub(r"\\([\\'])", r"\1", inner)
    return re.sub(r"\\(.)", lambda m: DOUBLE_ESCAPES.get(m.group(1), m.group(0)), inner)


class _Reader:
    def __init__(self, toks: list[tuple[str, str, int]], name: str) -> None:
        self.toks, self.name, self.i = toks, name, 0

    def peek(self) -> tuple[str, str, int]:
        if self.i < len(self.toks):
            return self.toks[self.i]
        return ("end", "", self.toks[-1][2] if self.toks else 1)

    def take(self, *expected: str) -> tuple[str, str, int]:
        tok = self.peek()
        if expected and tok[1].lower() not in expected:
            raise _fail(self.name, tok[2], f"expected {' or '.join(expected)}, found {tok[1] or 'the end'!r}")
        self.i += 1
        return tok

    def array(self) -> dict[str, str]:
        close = "]" if self.take("array", "[")[1] == "[" else ")"
        if close == ")":
            self.take("(")
        out: dict[str, str] = {}
        while self.peek()[1] != close:
            key = self.scalar()
            self.take("=>")
            out[str(key)] = self.scalar()
            if self.peek()[1] != close:
                self.take(",")
        self.take(close)
        return out

    def scalar(self) -> str:
        kind, text, line = self.take()
        if kind in ("single", "double"):
            return _string(kind, text)
        if kind == "number":
            return text
        if kind == "word" and text.lower() in ("true", "false", "null"):
            return {"true": "1", "false": "", "null": ""}[text.lower()]
        raise _fail(self.name, line, f"cannot read {text or 'the end'!r} without PHP")


def parse_return_array(text: str, name: str) -> dict[str, str]:
    """The string values of the array the file returns (as PHP would turn them into strings)."""
    reader = _Reader(tokens(text, name), name)
    reader.take("return")
    values = reader.array()
    reader.take(";")
    if reader.peek()[0] != "end":
        raise _fail(name, reader.peek()[2], "more than one return statement")
    return values


# --- PHP configuration files (Laravel's config/*.php, its bootstrap/cache/config.php) ------------
#
# ``parse_return_value`` reads the expression a file returns, nested arrays included, and keeps
# what it cannot evaluate without PHP as nodes for the caller: a function call (``Call``, e.g.
# ``env('DB_HOST', '127.0.0.1')``), a concatenation (``Concat``) or anything else (``Opaque``: a
# ternary, a cast, a class constant …, with its line). Nothing is run.

LOOSE_TOKEN = re.compile(TOKEN.pattern + r"""
  | (?P<interpolated>"(?:[^"\\]|\\.)*")
  | (?P<other>::|\?\?|&&|\|\||[^\s])
""", re.X | re.S)


@dataclass(frozen=True)
class Call:
    """``name(args…)``: the name lower-cased, without a leading backslash."""

    name: str
    args: tuple
    line: int


@dataclass(frozen=True)
class Concat:
    """``a . b . …``"""

    parts: tuple
    line: int


@dataclass(frozen=True)
class Opaque:
    """An expression only PHP could evaluate: its tokens (for messages) and its line."""

    text: str
    line: int


class _Unreadable(Exception):
    pass


def _loose_tokens(text: str) -> list[tuple[str, str, int]]:
    body = re.sub(r"\A\s*<\?php", "", text)
    offset = len(text) - len(body)
    out, pos, line = [], 0, text.count("\n", 0, offset) + 1
    while pos < len(body):
        match = LOOSE_TOKEN.match(body, pos)  # every character matches 'other'
        if match.lastgroup != "space":
            out.append((match.lastgroup, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return out


class _ExprReader(_Reader):
    def value(self, stop: tuple[str, ...]) -> object:
        """One expression ending before one of ``stop`` at this nesting level."""
        start = self.i
        try:
            result = self._concat()
            if self.peek()[1] in stop:
                return result
        except _Unreadable:
            pass
        self.i = start
        depth = 0
        while self.peek()[0] != "end" and (depth or self.peek()[1] not in stop):
            text = self.take()[1]
            depth += (text in "([{") - (text in ")]}") if len(text) == 1 else 0
        if self.i == start:
            raise _fail(self.name, self.peek()[2], f"expected a value, found {self.peek()[1] or 'the end'!r}")
        return Opaque(" ".join(tok[1] for tok in self.toks[start:self.i]), self.toks[start][2])

    def _concat(self) -> object:
        line = self.peek()[2]
        parts = [self._term()]
        while self.peek()[1] == ".":
            self.take()
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else Concat(tuple(parts), line)

    def _term(self) -> object:
        kind, text, line = self.take()
        if kind in ("single", "double"):
            return _string(kind, text)
        if kind == "number":
            return float(text) if "." in text else int(text)
        if text == "[":
            return self._array("]")
        if kind == "other" and text == "\\" and self.peek()[0] == "word":
            kind, text, line = self.take()
        if kind == "word":
            low = text.lower()
            if low in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[low]
            if self.peek()[1] == "(":
                self.take()
                if low == "array":
                    return self._array(")")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.value((",", ")")))
                    if self.peek()[1] == ",":
                        self.take()
                self.take(")")
                return Call(low, tuple(args), line)
        raise _Unreadable

    def _array(self, close: str) -> dict:
        out: dict = {}
        while self.peek()[1] != close:
            if self.peek()[0] == "end":
                raise _Unreadable
            first = self.value((",", close, "=>"))
            if self.peek()[1] == "=>":
                self.take()
                key, item = first, self.value((",", close))
            else:
                ints = [k for k in out if isinstance(k, int)]
                key, item = (max(ints) + 1 if ints else 0), first
            if isinstance(key, (bool, float)):
                key = int(key)
            elif key is None:
                key = ""
            elif not isinstance(key, (str, int)):  # a constant, a call …: kept as its text
                key = Opaque(key.text if isinstance(key, Opaque) else repr(key), 0)
            out[key] = item
            if self.peek()[1] == ",":
                self.take()
        self.take(close)
        return out


def parse_return_value(text: str, name: str) -> object:
    """The expression after the file's ``return`` (``use …;`` statements may come first): plain
    values for literals and arrays (dicts), ``Call``/``Concat``/``Opaque`` nodes for the rest.
    UsageError when the file is not ``<?php``, ``use`` statements and one ``return …;``."""
    reader = _ExprReader(_loose_tokens(text), name)
    while reader.peek()[1].lower() in ("use", "declare", "namespace"):
        while reader.peek()[1] != ";":
            if reader.peek()[0] == "end":
                raise _fail(name, reader.peek()[2], "a statement without ';'")
            reader.take()
        reader.take(";")
    if reader.peek()[1].lower() != "return":
        raise _fail(name, reader.peek()[2], f"cannot read {reader.peek()[1] or 'the end'!r} without PHP "
                                            "(only 'return' of an array is read)")
    reader.take()
    value = reader.value((";",))
    reader.take(";")
    if reader.peek()[0] != "end":
        raise _fail(name, reader.peek()[2], "more after the return statement")
    return value
