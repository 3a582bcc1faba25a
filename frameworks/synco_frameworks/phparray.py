"""``.env.local.php`` without PHP: the array that ``composer dump-env`` writes.

The file is ``<?php`` and comments, then ``return array ( 'KEY' => 'value', … );`` (``var_export``)
or ``return [ … ];``. Keys and values are PHP literals: single-quoted strings (``\\'`` and ``\\\\``
are the only escapes), double-quoted strings without ``$`` (``\\n``, ``\\t``, ``\\"``, ``\\\\``,
``\\$``), integers, floats, ``true``, ``false`` and ``null``. Anything else (a function call, a
constant, a variable) is refused with the line where it stands: synco does not run PHP here.
"""

from __future__ import annotations

import re

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
