"""WordPress: ``wp-config.php`` in the project folder, or one level up as WordPress allows.

The settings are read from the PHP source without running it: constants given with ``define()``
or ``const``, and ``$table_prefix``. A value may be a string (either quote style, with PHP's
escapes), a number, ``true``/``false``/``null``, an earlier constant, ``__DIR__``,
``dirname(__FILE__)``, ``getenv('X')``, ``$_ENV['X']``, ``$_SERVER['X']``, joined with ``.``, ``?:``,
``??`` or ``a ? b : c``; the environment's value is used when it is set, and the note says which
route a value took. Anything else is code synco does not run: a constant it needs then gets one
line naming it, its line, and how to give the value instead.

Database ``DB_NAME``, ``DB_USER``, ``DB_PASSWORD``, ``DB_HOST`` (``host``, ``host:port``,
``host:/socket``, ``localhost`` being the local socket as mysqli reads it), ``DB_CHARSET``. File set
``uploads`` (``wp-content/uploads``, ``WP_CONTENT_DIR`` or ``UPLOADS``), public: the client fetches
its files from the site (``WP_CONTENT_URL``, else the ``siteurl`` option read in the dump's snapshot,
or ``WP_SITEURL``). After an import the site's URL is rewritten to the local one (an internal step
the client carries out, synco/searchreplace.py), then ``wp cache flush`` when WP-CLI is there.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from synco_source import dburl
from synco_source.dburl import DatabaseUrl
from synco_source.errors import UsageError

from .base import Context, FileSelection, Project, Select, Step

NAME = "wordpress"
CONFIG = "wp-config.php"
UPLOADS = "uploads"
URL_STEP = "wordpress-site-url"  # the internal step's name (synco/searchreplace.py carries it out)
PREFIX_RE = re.compile(r"^[A-Za-z0-9_]+$")
DB_KEYS = ("DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST")

# Smart exclusions (per site of a multisite too): the table, and why
SKIP_TABLE_DATA = {
    "actionscheduler_logs": "Action Scheduler's log",
    "woocommerce_sessions": "WooCommerce's sessions",
}
# the options rows kept: not the transients (cached values with an expiry, made again on demand);
# '!' escapes LIKE's wildcards the same way in MySQL and MariaDB
TRANSIENTS = ("option_name NOT LIKE '!_transient!_%' ESCAPE '!' "
              "AND option_name NOT LIKE '!_site!_transient!_%' ESCAPE '!'")
# files of the uploads folder that web servers do not hand out: they travel encrypted
NOT_SERVED = re.compile(r"(^|/)\.|\.(php\d?|phtml|phar)$", re.I)

TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|\#(?!\[)[^\n]*|/\*.*?\*/)
  | (?P<close>\?>.*?(?:<\?php|\Z))
  | (?P<single>'(?:[^'\\]|\\.)*')
  | (?P<double>"(?:[^"\\]|\\.)*")
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<var>\$[A-Za-z_]\w*)
  | (?P<word>\\?[A-Za-z_][\w\\]*)
  | (?P<op>\?\?|\?:|::|->|=>|===|!==|==|!=|<=|>=|&&|\|\||\.=|[-+*/%=<>!?:.,;()\[\]{}@&|^~])
  | (?P<other>.)
""", re.X | re.S)
DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "e": "\x1b", "\\": "\\",
                  "$": "$", '"': '"'}


@dataclass
class Tok:
    kind: str
    text: str
    line: int


class Computed(Exception):
    """A value synco cannot know without running PHP."""


@dataclass
class Unset:
    """``$_ENV['X']`` or ``$_SERVER['X']`` of a variable that is not set: fine before ``??``, ``?:``
    or as a condition; anywhere else the value depends on what the server's PHP gets (a request's
    HTTP_HOST, say), which synco cannot know."""

    expr: str

    def __str__(self) -> str:
        raise Computed(f"{self.expr} is not set here")


@dataclass
class Value:
    value: object  # str, int, float, bool or None
    how: str = ""  # the route it took, when not a plain literal (for the notes)


@dataclass
class Definition:
    name: str
    line: int
    source: str  # the expression as written
    value: Value | None = None  # None: computed
    problem: str = ""


@dataclass
class WpConfig:
    path: Path
    name: str  # for messages: wp-config.php or ../wp-config.php
    constants: dict[str, list[Definition]] = field(default_factory=dict)
    prefix: list[Definition] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)  # other files it requires

    def one(self, key: str, required: bool, what: str) -> Value | None:
        """The value of constant ``key`` (``$table_prefix`` for "$table_prefix"); None when it is
        not defined and not ``required``; a UsageError when synco cannot know it."""
        found = self.prefix if key == "$table_prefix" else self.constants.get(key, [])
        if not found:
            if not required:
                return None
            elsewhere = (f" (it may be in {', '.join(self.includes)}, which {self.name} includes)"
                         if self.includes else "")
            raise UsageError(f"{self.name}: {key} is not defined{elsewhere}", hint=self.hint(what))
        if len(found) > 1:
            lines = ", ".join(str(d.line) for d in found)
            raise UsageError(f"{self.name}: {key} is set {len(found)} times (lines {lines}); which "
                             f"one counts depends on code synco does not run", hint=self.hint(what))
        definition = found[0]
        if definition.value is None:
            raise UsageError(f"{self.name}, line {definition.line}: {key} is computed by code synco "
                             f"does not run ({_short(definition.source)}: {definition.problem})",
                             hint=self.hint(what))
        return definition.value

    def soft(self, key: str, notes: list[str]) -> Value | None:
        """Like ``one`` for a constant synco can do without: a note instead of an error."""
        try:
            return self.one(key, False, "")
        except UsageError as exc:
            notes.append(f"{exc} (not used)")
            return None

    def hint(self, what: str) -> str:
        if what == "database":
            return "set database.url in synco.yaml, or pass --db-url (synco never runs wp-config.php)"
        return what or "write it as a plain string"


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def tokens(text: str) -> list[Tok]:
    """PHP tokens of the code parts of ``text`` (what lies outside <?php … ?> is skipped)."""
    start = text.find("<?php")
    if start < 0:
        return []
    out, pos, line = [], start + 5, text.count("\n", 0, start + 5) + 1
    while pos < len(text):
        match = TOKEN.match(text, pos)
        kind = match.lastgroup
        if kind not in ("space", "close"):
            out.append(Tok(kind, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return out


def _string(tok: Tok) -> str:
    inner = tok.text[1:-1]
    if tok.kind == "single":
        return re.sub(r"\\([\\'])", r"\1", inner)
    if re.search(r"(?<!\\)(?:\\\\)*\$[A-Za-z_{]|\{\$", inner):
        raise Computed("a double-quoted string with a variable in it")

    def escape(match: re.Match) -> str:
        text = match.group(1)
        if text in DOUBLE_ESCAPES:
            return DOUBLE_ESCAPES[text]
        if text[0] in "01234567":
            return chr(int(text, 8) & 0xFF)
        if text[0] == "x":
            return chr(int(text[1:], 16))
        if text[0] == "u":
            return chr(int(text[2:-1], 16))
        return match.group(0)
    return re.sub(r"\\([0-7]{1,3}|x[0-9A-Fa-f]{1,2}|u\{[0-9A-Fa-f]+\}|.)", escape, inner)


def _truthy(value: object) -> bool:
    return not isinstance(value, Unset) and value not in (None, False, "", "0", 0, 0.0)


def _text(value: object) -> str:
    """A value as PHP turns it into a string."""
    if isinstance(value, Unset):
        return str(value)
    if value is True:
        return "1"
    if value is None or value is False:
        return ""
    return str(value)


class _Expr:
    """One expression of the file, evaluated as PHP would, or Computed."""

    def __init__(self, toks: list[Tok], env, constants: dict[str, Value], here: Path) -> None:
        self.toks, self.env, self.constants, self.here, self.i = toks, env, constants, here, 0
        self.how: list[str] = []

    def peek(self, offset: int = 0) -> str:
        i = self.i + offset
        return self.toks[i].text if i < len(self.toks) else ""

    def take(self, text: str | None = None) -> Tok:
        if self.i >= len(self.toks) or (text is not None and self.toks[self.i].text.lower() != text):
            raise Computed(f"'{self.peek() or 'the end'}' where synco expected "
                           f"{text or 'a value'}")
        self.i += 1
        return self.toks[self.i - 1]

    def value(self) -> Value:
        result = self.ternary()
        if self.i != len(self.toks):
            raise Computed(f"'{self.peek()}' is code synco does not run")
        if isinstance(result, Unset):
            str(result)
        return Value(result, "; ".join(self.how))

    def ternary(self) -> object:
        cond = self.coalesce()
        if self.peek() == "?:":
            self.take()
            other = self.ternary()
            return cond if _truthy(cond) else other
        if self.peek() == "?":
            self.take()
            then = self.ternary()
            self.take(":")
            other = self.ternary()
            return then if _truthy(cond) else other
        return cond

    def coalesce(self) -> object:
        left = self.concat()
        if self.peek() == "??":
            self.take()
            right = self.coalesce()
            return right if left is None or isinstance(left, Unset) else left
        return left

    def concat(self) -> object:
        left = self.primary()
        while self.peek() == ".":
            self.take()
            left = _text(left) + _text(self.primary())
        return left

    def primary(self) -> object:
        tok = self.take()
        low = tok.text.lower()
        if tok.kind in ("single", "double"):
            return _string(tok)
        if tok.kind == "number":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.text == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        if tok.kind == "word" and low in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[low]
        if tok.text == "__DIR__":
            return str(self.here.parent)
        if tok.text == "__FILE__":
            return str(self.here)
        if tok.kind == "word" and low in ("getenv", "\\getenv") and self.peek() == "(":
            self.take("(")
            name = self.literal()
            self.take(")")
            return self.lookup(f"getenv('{name}')", name, False)
        if tok.kind == "word" and low in ("dirname", "\\dirname") and self.peek() == "(":
            self.take("(")
            path = _text(self.ternary())
            self.take(")")
            return os.path.dirname(path)
        if tok.kind == "var" and tok.text in ("$_ENV", "$_SERVER") and self.peek() == "[":
            self.take("[")
            name = self.literal()
            self.take("]")
            expr = f"{tok.text}['{name}']"
            return self.lookup(expr, name, Unset(expr))
        if tok.kind == "word" and self.peek() != "(" and tok.text.lstrip("\\") in self.constants:
            return self.constants[tok.text.lstrip("\\")].value
        raise Computed(f"'{tok.text}' is code synco does not run")

    def literal(self) -> str:
        tok = self.take()
        if tok.kind not in ("single", "double"):
            raise Computed(f"'{tok.text}' is not a plain string")
        return _string(tok)

    def lookup(self, expr: str, name: str, unset: object) -> object:
        if name in self.env:
            self.how.append(f"{expr} from the environment")
            return self.env[name]
        self.how.append(f"{expr} is not set")
        return unset


def _until(toks: list[Tok], i: int, stops: tuple[str, ...]) -> int:
    """The index of the first token in ``stops`` at depth 0 from ``i`` (len(toks) if none)."""
    depth = 0
    while i < len(toks):
        text = toks[i].text
        if depth == 0 and text in stops:
            return i
        depth += text in ("(", "[", "{")
        depth -= text in (")", "]", "}")
        if depth < 0:
            return i
        i += 1
    return i


def read_config(path: Path, name: str, env) -> WpConfig:
    """The constants and ``$table_prefix`` that ``path`` sets, each evaluated or marked computed."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}", hint="check its permissions") from None
    toks = tokens(text)
    config = WpConfig(path=path, name=name)
    known: dict[str, Value] = {}
    i = 0

    def record(target: list[Definition], key: str, first: int, end: int) -> None:
        part = toks[first:end]
        source = " ".join(t.text for t in part)
        definition = Definition(key, toks[first - 1].line if first else 1, source)
        try:
            definition.value = _Expr(part, env, known, path).value()
            if key != "$table_prefix" and key not in known:
                known[key] = definition.value
        except Computed as exc:
            definition.problem = str(exc)
        target.append(definition)

    while i < len(toks):
        tok, before = toks[i], toks[i - 1].text if i else ""
        low = tok.text.lower()
        if (tok.kind == "word" and low in ("define", "\\define") and before not in ("->", "::", "function")
                and i + 3 < len(toks) and toks[i + 1].text == "("
                and toks[i + 2].kind in ("single", "double") and toks[i + 3].text == ","):
            try:
                key = _string(toks[i + 2])
            except Computed:
                i += 1
                continue
            end = _until(toks, i + 4, (",", ")"))
            record(config.constants.setdefault(key, []), key, i + 4, end)
            i = end
        elif (tok.kind == "word" and low == "const" and i + 2 < len(toks)
              and toks[i + 1].kind == "word" and toks[i + 2].text == "="):
            key = toks[i + 1].text
            end = _until(toks, i + 3, (";", ","))
            record(config.constants.setdefault(key, []), key, i + 3, end)
            i = end
        elif tok.text == "$table_prefix" and i + 1 < len(toks) and toks[i + 1].text == "=":
            end = _until(toks, i + 2, (";",))
            record(config.prefix, "$table_prefix", i + 2, end)
            i = end
        elif tok.kind == "word" and low in ("require", "require_once", "include", "include_once"):
            end = _until(toks, i + 1, (";",))
            included = " ".join(t.text for t in toks[i + 1:end])
            if "wp-settings.php" not in included:
                config.includes.append(_short(included, 40))
            i = end
        else:
            i += 1
    return config


def find_config(root: Path) -> tuple[Path, str] | None:
    """``wp-config.php`` where WordPress looks for it: in its folder, else one level up when
    that folder is not another WordPress (has no wp-settings.php)."""
    if (root / CONFIG).is_file():
        return root / CONFIG, CONFIG
    up = root.parent
    if ((root / "wp-settings.php").is_file() and (up / CONFIG).is_file()
            and not (up / "wp-settings.php").is_file()):
        return up / CONFIG, f"../{CONFIG}"
    return None


def parse_host(text: str, origin: str) -> tuple[str, int, str]:
    """DB_HOST as wpdb::parse_db_host reads it: (host, port, socket)."""
    host, port, socket = text.strip(), dburl.DEFAULT_PORTS["mysql"], ""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?(?::(/.*))?", host)
    if match:  # [IPv6]:port
        host = match.group(1)
        port = int(match.group(2) or port)
        socket = match.group(3) or ""
        return host, port, socket
    head, sep, tail = host.partition(":")
    if sep:
        host = head
        if tail.startswith("/"):
            socket = tail
        else:
            rest, sep2, sock = tail.partition(":")
            if not rest.isdigit():
                raise UsageError(f"{origin}: DB_HOST {text!r}: {rest!r} is not a port number",
                                 hint="write host, host:port or host:/path/to/socket")
            port, socket = int(rest), sock if sep2 else ""
    return host or "localhost", port, socket


class WordPress:
    name = NAME

    def matches(self, root: Path) -> str | None:
        found = find_config(root)
        return found[1] if found else None

    def project(self, ctx: Context) -> Project:
        path, name = find_config(ctx.root) or (ctx.root / CONFIG, CONFIG)
        config = read_config(path, name, ctx.env)
        project = Project(framework=NAME, root=ctx.root, web_root=ctx.root)
        project.notes.append(f"WordPress, settings from {name} (read without running PHP)")
        prefix = _prefix(config, project.notes)
        multisite = config.soft("MULTISITE", project.notes)
        if multisite is not None and _truthy(multisite.value):
            sub = config.soft("SUBDOMAIN_INSTALL", project.notes)
            kind = "subdomains" if sub is not None and _truthy(sub.value) else "subfolders"
            project.context = f"multisite, {kind}"
            project.notes.append(f"multisite ({kind}): the tables of every site ({prefix}N_…) are copied")
        if ctx.want_database:
            project.database = database(config, project.notes)
        home = _url(config, "WP_HOME", project.notes)
        siteurl = _url(config, "WP_SITEURL", project.notes)
        project.base_url = home or siteurl
        _uploads(project, config, ctx, prefix, siteurl)
        if not ctx.all_data:
            patterns = [f"{prefix}{table}" for table in SKIP_TABLE_DATA]
            if project.context.startswith("multisite"):
                patterns += [f"{prefix}[0-9]*_{table}" for table in SKIP_TABLE_DATA]
            project.skip_table_data = patterns
            options = [f"{prefix}options"] + ([f"{prefix}[0-9]*_options"]
                                              if project.context.startswith("multisite") else [])
            project.row_filters = [(table, TRANSIENTS) for table in options]
            project.notes.append("left out (--all copies them): rows of " + ", ".join(
                f"{prefix}{table} ({why})" for table, why in SKIP_TABLE_DATA.items())
                + f", and the transients in {prefix}options (cached values WordPress makes again)")
        if ctx.side == "local":
            _post_import(project, ctx, prefix, home, siteurl)
        return project


def _prefix(config: WpConfig, notes: list[str]) -> str:
    value = config.one("$table_prefix", True, "write it as $table_prefix = 'wp_';")
    prefix = _text(value.value)
    if not PREFIX_RE.match(prefix):
        raise UsageError(f"{config.name}: $table_prefix {prefix!r} is not letters, digits and '_'",
                         hint="WordPress itself refuses it: fix $table_prefix")
    notes.append(f"table prefix {prefix}" + (f" ({value.how})" if value.how else ""))
    return prefix


def database(config: WpConfig, notes: list[str]) -> DatabaseUrl:
    values = {key: config.one(key, True, "database") for key in DB_KEYS}
    charset = config.one("DB_CHARSET", False, "database")
    for key, value in values.items():
        if value.how:
            notes.append(f"{key}: {value.how}")  # the route, never the value
    name = _text(values["DB_NAME"].value)
    if not name:
        raise UsageError(f"{config.name}: DB_NAME is empty", hint=config.hint("database"))
    host, port, socket = parse_host(_text(values["DB_HOST"].value), config.name)
    charset_text = _text(charset.value) if charset else ""
    flags = config.constants.get("MYSQL_CLIENT_FLAGS")
    if flags:
        notes.append("MYSQL_CLIENT_FLAGS is set: synco uses TLS when the server offers it; give "
                     "ssl-mode and ssl-ca in database.url (synco.yaml) to require it")
    return DatabaseUrl(engine="mysql", host=host, port=port, user=_text(values["DB_USER"].value),
                       password=_text(values["DB_PASSWORD"].value), database=name, socket=socket,
                       params=(("charset", charset_text),) if charset_text else ())


def _url(config: WpConfig, key: str, notes: list[str]) -> str | None:
    value = config.soft(key, notes)
    if value is None or not _text(value.value):
        return None
    text = _text(value.value).rstrip("/")
    notes.append(f"{key} {text}" + (f" ({value.how})" if value.how else ""))
    return text


def _uploads(project: Project, config: WpConfig, ctx: Context, prefix: str,
             siteurl: str | None) -> None:
    """The uploads folder and the URL it is served at (as wp_upload_dir works them out)."""
    uploads = config.soft("UPLOADS", project.notes)
    content_dir = config.soft("WP_CONTENT_DIR", project.notes)
    content_url = config.soft("WP_CONTENT_URL", project.notes)
    if uploads is not None and _text(uploads.value):
        rel = _text(uploads.value).strip("/")
        folder, url_tail = ctx.path(rel), rel
    else:
        given = _text(content_dir.value) if content_dir is not None else ""
        base = Path(given) if given else ctx.root / "wp-content"
        folder, url_tail = (ctx.root / base / UPLOADS).resolve(), None
    if ctx.side == "source" and not folder.is_dir():
        project.notes.append(f"no uploads: {ctx.rel(folder)} is not there")
        return
    project.file_sets[UPLOADS] = folder
    project.public_sets.add(UPLOADS)
    project.notes.append(f"file set {UPLOADS}: {ctx.rel(folder)} (public, fetched from the site)")
    if ctx.side != "source":
        return
    fixed = None
    if content_url is not None and _text(content_url.value) and url_tail is None:
        fixed = _text(content_url.value).rstrip("/") + "/" + UPLOADS + "/"
    project.file_selectors[UPLOADS] = uploads_selector(folder, prefix, siteurl, url_tail, fixed)


def uploads_selector(folder: Path, prefix: str, siteurl: str | None, url_tail: str | None,
                     fixed_url: str | None):
    """Every file of the uploads folder is public at the uploads URL, except those web servers do
    not hand out (dot files, PHP); the URL is ``upload_url_path`` or ``siteurl`` (the options, read
    in the dump's snapshot) unless the configuration fixes it."""
    def select(query: Select, tables: set[str]) -> FileSelection:
        options = {}
        if f"{prefix}options" in tables:
            options = {str(k): _text(v) for k, v in query(
                f"SELECT option_name, option_value FROM {prefix}options "
                f"WHERE option_name IN ('siteurl', 'upload_url_path')")}
        site = siteurl or options.get("siteurl", "").rstrip("/")
        url = (options.get("upload_url_path", "").rstrip("/") + "/" if options.get("upload_url_path")
               else fixed_url or (f"{site}/{url_tail or 'wp-content/' + UPLOADS}/" if site else None))
        if not url or not re.match(r"^https?://", url):
            return FileSelection(notes=[f"uploads: no site URL ({prefix}options has no siteurl): "
                                        f"every file travels encrypted"])
        selection = FileSelection(public_url=url)
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for filename in filenames:
                full = os.path.join(dirpath, filename)
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                if not NOT_SERVED.search(rel) and os.path.isfile(full) and not os.path.islink(full):
                    selection.public[rel] = quote(rel)
        selection.notes.append(f"uploads: {len(selection.public)} files fetched from {url} by the client")
        return selection
    return select


def _post_import(project: Project, ctx: Context, prefix: str, home: str | None,
                 siteurl: str | None) -> None:
    local_url = home or siteurl or ""
    line = ("rewrite the site's URL to " + (local_url or "the local one (--local-url, WP_HOME, or "
                                            "the local database's home option)")
            + " in every table, serialized and JSON values included")
    project.actions.append(Step(line=line, action=URL_STEP,
                                params={"prefix": prefix, "local_url": local_url,
                                        "multisite": "1" if project.context.startswith("multisite") else ""}))
    wp = shutil.which("wp", path=ctx.env.get("PATH") or os.defpath) if ctx.env.get("PATH") else None
    if wp:
        project.post_import = [[wp, "cache", "flush"]]
        project.post_import_runnable = True
    else:
        project.notes.append("no WP-CLI (wp) on PATH: no 'wp cache flush' after the import")


FRAMEWORK = WordPress()
