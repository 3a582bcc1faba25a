"""``.env`` files as Symfony's Dotenv component reads them (no commands are run).

One ``NAME=value`` per line, optionally after ``export``; ``#`` starts a comment at the start of a
line or after whitespace. A value is a run of pieces: ``'single quoted'`` (taken as it is, may span
lines), ``"double quoted"`` (may span lines; ``\\"``, ``\\\\``, ``\\n``, ``\\r`` and variables), or
unquoted (up to the end of the line or a `` #`` comment; variables; spaces need quotes).
Variables: ``$NAME``, ``${NAME}``, ``${NAME:-default}`` (the default when unset or empty) and
``${NAME:=default}`` (also defines NAME); ``\\$`` is a literal dollar. A name is looked up in the
real environment first, then in this file's earlier lines, then in the files loaded before.
``$(command)`` is left as it is: synco never runs commands found in configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from synco_source.errors import UsageError

NAME = re.compile(r"(?:export[ \t]+)?([A-Za-z][A-Za-z0-9_]*)")
SKIP = re.compile(r"(?:\s*(?:#[^\n]*)?)*")
VARIABLE = re.compile(r"(?P<slashes>\\*)\$(?!\()(?P<open>\{)?(?P<name>[A-Za-z][A-Za-z0-9_]*)?"
                      r"(?P<default>:[-=][^}]*)?(?P<close>\})?")


class _Parser:
    def __init__(self, text: str, name: str, lookup: Callable[[str], str | None]) -> None:
        self.data = text.replace("\r\n", "\n").replace("\r", "\n")
        self.name, self.lookup = name, lookup
        self.pos = 0
        self.values: dict[str, str] = {}

    def fail(self, problem: str) -> UsageError:
        line = self.data.count("\n", 0, self.pos) + 1
        return UsageError(f"{self.name}, line {line}: {problem}",
                          hint=f"fix {self.name} (the syntax of Symfony's .env files)")

    def parse(self) -> dict[str, str]:
        self.skip()
        while self.pos < len(self.data):
            key = self.var_name()
            self.values[key] = self.value()
            self.skip()
        return self.values

    def skip(self) -> None:
        self.pos = SKIP.match(self.data, self.pos).end()

    def var_name(self) -> str:
        match = NAME.match(self.data, self.pos)
        if not match:
            raise self.fail("invalid character in variable name")
        self.pos = match.end()
        nxt = self.data[self.pos:self.pos + 1]
        if nxt in (" ", "\t"):
            raise self.fail(f"whitespace after the variable name {match.group(1)}")
        if nxt != "=":
            raise self.fail(f"missing = after {match.group(1)}")
        self.pos += 1
        return match.group(1)

    def value(self) -> str:
        out = []
        while self.pos < len(self.data) and self.data[self.pos] != "\n":
            char = self.data[self.pos]
            if char == "'":
                out.append(self.single())
            elif char == '"':
                out.append(self.double())
            elif char in " \t" and not out:
                rest = self.data[self.pos:].split("\n", 1)[0].strip()
                if rest and not rest.startswith("#"):
                    raise self.fail("whitespace before the value")
                self.pos += len(self.data[self.pos:].split("\n", 1)[0])
            else:
                piece = self.unquoted()
                out.append(piece)
                if self.pos < len(self.data) and self.data[self.pos] == "#":
                    break
        return "".join(out)

    def single(self) -> str:
        end = self.data.find("'", self.pos + 1)
        if end < 0:
            raise self.fail("missing quote to end the value")
        text, self.pos = self.data[self.pos + 1:end], end + 1
        return text

    def double(self) -> str:
        start, i = self.pos + 1, self.pos + 1
        while True:
            if i >= len(self.data):
                raise self.fail("missing quote to end the value")
            if self.data[i] == '"' and not _escaped(self.data, i):
                break
            i += 1
        raw, self.pos = self.data[start:i], i + 1
        raw = raw.replace('\\"', '"').replace("\\r", "\r").replace("\\n", "\n")
        return self.resolve(raw).replace("\\\\", "\\")

    def unquoted(self) -> str:
        chars, prev = [], self.data[self.pos - 1]
        while self.pos < len(self.data):
            char = self.data[self.pos]
            if char in "\n\"'" or (char == "#" and prev in " \t"):
                break
            if char == "\\" and self.data[self.pos + 1:self.pos + 2] in ('"', "'"):
                self.pos += 1
                char = self.data[self.pos]
            chars.append(char)
            prev = char
            self.pos += 1
        raw = "".join(chars).rstrip()
        resolved = self.resolve(raw).replace("\\\\", "\\")
        if resolved == raw and re.search(r"\s", raw):
            raise self.fail("a value containing spaces must be surrounded by quotes")
        return resolved

    def resolve(self, text: str) -> str:
        if "$" not in text:
            return text
        return VARIABLE.sub(self.variable, text)

    def variable(self, match: re.Match) -> str:
        slashes = match.group("slashes")
        if len(slashes) % 2:  # an escaped dollar
            return slashes[:-1] + match.group(0)[len(slashes):]
        if match.group("open") and not match.group("close"):
            raise self.fail("unclosed braces on variable expansion")
        name = match.group("name")
        if not name:
            return match.group(0)
        value = self.lookup(name)
        if value is None:
            value = self.values.get(name, "")
        default = match.group("default")
        if default and value == "":
            value = default[2:]
            if default[1] == "=":
                self.values[name] = value
        if not match.group("open") and match.group("close"):
            value += "}"
        return slashes + value


def _escaped(data: str, i: int) -> bool:
    slashes = 0
    while i - slashes - 1 >= 0 and data[i - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1


def parse(text: str, name: str, *, real_env: Mapping[str, str] | None = None,
          loaded: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of one file. ``real_env`` wins over definitions in files; ``loaded`` holds
    what earlier files defined (used for names this file has not defined itself)."""
    real_env, loaded = real_env or {}, loaded or {}
    parser: _Parser

    def lookup(key: str) -> str | None:
        if key in real_env:
            return real_env[key]
        if key in parser.values:
            return None  # this file's own, newer definition
        return loaded.get(key)

    parser = _Parser(text, name, lookup)
    return parser.parse()


# --- vlucas/phpdotenv (version 5), as Laravel reads its .env ----------------------------------------
#
# The rules differ from Symfony's in many details, so this is a reader of its own:
# * ``NAME=value`` with spaces allowed around ``=``; ``export NAME``; a name may be quoted and may
#   hold dots; a line without ``=`` unsets a name the file set before;
# * a value is ONE unquoted, ``'single'`` or ``"double"`` quoted piece: text after a closing quote
#   or after whitespace (other than a comment) is an error, and so is an unclosed quote;
# * ``#`` starts a comment at the start of a value or anywhere in an unquoted one (no whitespace
#   needed before it); inside quotes it is text;
# * a double quote opened after ``=`` and never closed hides the rest of the file (phpdotenv
#   drops those lines without a word);
# * only a double-quoted value may span lines; its escapes are ``\\"``, ``\\\\``, ``\\$``, ``\\f``,
#   ``\\n``, ``\\r``, ``\\t``, ``\\v``, anything else is an error; a single-quoted one is literal;
# * ``${NAME}`` (not ``$NAME``, no ``:-`` defaults) in unquoted and double-quoted values: the real
#   environment first, then what the file defined before; an unknown name is left as it is;
# * the real environment wins: a name it has is not taken from the file.

PHP_LEXER = re.compile(r"[\r\n]+|[^\S\r\n]+|\\|'|\"|#|\$|(?:[^(\s\\'\"#$)]|\(|\))+")
PHP_NAME = re.compile(r"[\w.]+")
PHP_VARIABLE = re.compile(r"\$\{([a-zA-Z0-9_.]+)\}")
PHP_ESCAPES = {"f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
(_INITIAL, _UNQUOTED, _SINGLE, _DOUBLE, _ESCAPE, _WHITESPACE, _COMMENT) = range(7)


def _php_multiline_stop(line: str, started: bool) -> bool:
    if line == '"':
        return True
    count = len(re.findall(r'(?=[^\\]")', line.replace("\\\\", "")))
    return count > 1 if started else count >= 1


def _php_entries(text: str) -> list[tuple[int, str]]:
    """(first line number, raw entry) as phpdotenv's Lines::process joins them."""
    out, buffer, multiline = [], [], False
    for number, line in enumerate(re.split(r"\r\n|\n|\r", text), 1):
        starts = not multiline and '="' in line and not _php_multiline_stop(line, True)
        multiline = multiline or starts
        if multiline:
            buffer.append((number, line))
            if _php_multiline_stop(line, starts):
                multiline = False
                number, line = buffer[0][0], "\n".join(piece for _, piece in buffer)
                buffer = []
        stripped = line.strip()
        if not multiline and stripped and not stripped.startswith("#"):
            out.append((number, line))
    return out  # lines after a double quote never closed are dropped, as phpdotenv drops them


def _php_value(raw: str) -> tuple[str, list[int]] | str:
    """(characters, positions of '$') of a value, or the error as phpdotenv words it."""
    chars, variables, state = "", [], _INITIAL
    for token in PHP_LEXER.findall(raw):
        space = token.isspace()
        if state in (_INITIAL, _UNQUOTED):
            if token == "'" and state == _INITIAL:
                state = _SINGLE
            elif token == '"' and state == _INITIAL:
                state = _DOUBLE
            elif token == "#":
                state = _COMMENT
            elif space and state == _UNQUOTED:
                state = _WHITESPACE
            else:
                if token == "$":
                    variables.append(len(chars))
                chars, state = chars + token, _UNQUOTED
        elif state == _SINGLE:
            if token == "'":
                state = _WHITESPACE
            else:
                chars += token
        elif state == _DOUBLE:
            if token == '"':
                state = _WHITESPACE
            elif token == "\\":
                state = _ESCAPE
            else:
                if token == "$":
                    variables.append(len(chars))
                chars += token
        elif state == _ESCAPE:
            if token in ('"', "\\", "$"):
                chars, state = chars + token, _DOUBLE
            elif token[0] in PHP_ESCAPES:
                chars, state = chars + PHP_ESCAPES[token[0]] + token[1:], _DOUBLE
            else:
                return "an unexpected escape sequence"
        elif state == _WHITESPACE:
            if token == "#":
                state = _COMMENT
            elif not space:
                return "unexpected whitespace"
    if state in (_SINGLE, _DOUBLE, _ESCAPE):
        return "a missing closing quote"
    return chars, variables


def parse_php(text: str, name: str, *, real_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables one file sets as Laravel's phpdotenv (immutable, so ``real_env`` wins: its
    names are not taken from the file) sets them."""
    real_env = real_env or {}
    values: dict[str, str] = {}

    def fail(line: int, problem: str, subject: str) -> UsageError:
        return UsageError(f"{name}, line {line}: encountered {problem} at [{subject.split(chr(10))[0]}]",
                          hint=f"fix {name} (the syntax of Laravel's .env files: quote values "
                               "with spaces, one quoted piece per value)")

    for line, entry in _php_entries(text):
        key, sep, raw = entry.partition("=")
        key = key.strip(" \t\n\r\0\x0b")
        if sep and not key:
            raise fail(line, "an unexpected equals", entry)
        if len(key) > 8 and key.startswith("export") and key[6].isspace():
            key = key[6:].lstrip()
        if len(key) > 2 and key[0] == key[-1] and key[0] in "'\"":
            key = key[1:-1]
        if not PHP_NAME.fullmatch(key):
            raise fail(line, "an invalid name", key)
        if not sep:
            if key not in real_env:
                values.pop(key, None)
            continue
        raw = raw.strip(" \t\n\r\0\x0b")
        parsed = _php_value(raw) if raw else ("", [])
        if isinstance(parsed, str):
            raise fail(line, parsed, raw)
        chars, variables = parsed
        for i in sorted(variables, reverse=True):  # from the right: earlier positions stay
            match = PHP_VARIABLE.match(chars, i)
            if match:
                found = real_env.get(match.group(1), values.get(match.group(1)))
                chars = chars[:i] + (match.group(0) if found is None else found) + chars[match.end():]
        if key not in real_env:
            values[key] = chars
    return values
