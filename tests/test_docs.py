"""The docs say what the code does: exit codes, commands, options."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from synco_source import errors
from synco_source.errors import exit_code_table

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_exit_code_table_matches_the_error_classes():
    rows = "\n".join(f"| {code} | {name} | {meaning} |" for code, name, meaning in exit_code_table())
    assert rows in README


PROGRAMS = {"synco": [sys.executable, "-c", "from synco.cli import run; run()"],
            "synco-source": [sys.executable, "-m", "synco_source.cli"]}


@functools.cache
def help_of(*args: str, program: str = "synco", flag: str = "--help") -> str:
    """The help of ``program args``; a help that fails fails the test that asked for it."""
    run = subprocess.run([*PROGRAMS[program], *args, flag], capture_output=True, text=True,
                         env={"COLUMNS": "200", "PATH": ""})
    assert run.returncode == 0, f"{program} {' '.join(args)} {flag}: {run.stderr}"
    assert run.stdout.lower().startswith("usage:"), run.stdout
    return run.stdout


def _client_commands(*path: str) -> list[tuple[str, ...]]:
    """Every command of synco as its words, ('download',), ('cache', 'clear'), ...: from the
    "Commands:" section of each group's help."""
    text = help_of(*path)
    if "\nCommands:\n" not in text:
        return []
    section = text.split("\nCommands:\n")[1].split("\n\n")[0]
    found = []
    for name in re.findall(r"^  ([a-z][a-z-]*)  ", section, re.M):
        found.append((*path, name))
        found += _client_commands(*path, name)
    return found


def _source_commands() -> list[tuple[str, ...]]:
    """synco-source's commands, from its argparse help ("    serve      dump, ...")."""
    text = help_of(program="synco-source")
    return [(name,) for name in re.findall(r"^    ([a-z][a-z-]*) ", text, re.M)]


def all_commands() -> list[tuple[str, tuple[str, ...]]]:
    return ([("synco", ())] + [("synco", c) for c in _client_commands()]
            + [("synco-source", ())] + [("synco-source", c) for c in _source_commands()])


def test_every_help_of_both_programs_runs_with_h_and_help():
    commands = all_commands()
    assert {("synco", ("download",)), ("synco", ("cache", "clear")), ("synco", ("restore",)),
            ("synco-source", ("serve",)), ("synco-source", ("detect",))} <= set(commands)
    for program, command in commands:
        assert help_of(*command, program=program, flag="-h") == help_of(*command, program=program)


def test_every_client_command_has_examples_and_no_type_noise():
    for command in [()] + _client_commands():
        text = help_of(*command)
        assert re.search(r"^  Examples?:$", text, re.M), f"synco {' '.join(command)}: no examples"
        noise = re.findall(r"<(?:bool|str|int|float|path|list\[.*?\])>|\{\w+\}", text)
        assert not noise, f"synco {' '.join(command)} --help shows {noise}"


def test_every_client_command_and_option_is_documented():
    commands = _client_commands()
    assert {("download",), ("restore",), ("version",)} <= set(commands)
    for command in commands:
        words = " ".join(command)
        assert f"synco {words}" in README or command == ("version",), words
        options = re.findall(r"(--[a-z][a-z0-9-]+)", help_of(*command))
        assert "--help" in options, f"synco {words} --help lists no options"
        for option in options:
            assert option in README or option == "--help", f"synco {words} {option}"
    for option in re.findall(r"(--[a-z][a-z0-9-]+)", help_of()):
        assert option in README or option == "--help", f"synco {option}"


def _readme_commands() -> list[str]:
    """The command lines of the README: inline code spans and the lines of indented code blocks
    (a line ending in a backslash joined with the next), split at pipes and '&&'."""
    blocks = re.findall(r"(?m)^(?:    .*(?:\n|$))+", README)
    lines = []
    for block in blocks:
        lines += re.sub(r"\\\n\s*", " ", block).splitlines()
    spans = re.findall(r"`([^`\n]+)`", README)
    return [part.strip() for text in lines + spans for part in re.split(r"\|\||\||&&|;", text)]


PREFIXES = ("nohup", "sudo", "exec", "env")


def test_each_option_in_the_readme_exists_in_its_programs_help():
    """An option after ``synco CMD`` or ``synco-source CMD`` must be in that command's help (or
    the program's own); an option alone in a span, in the help of either program. Other tools'
    command lines (ssh, curl, pg_dump, ...) are theirs."""
    every = {program: " ".join(help_of(*command, program=program) for p, command in all_commands()
                               if p == program) for program in PROGRAMS}
    groups = {("cache",)}
    checked = 0
    for text in _readme_commands():
        try:
            words = shlex.split(text.replace("[", " ").replace("]", " "))
        except ValueError:
            words = text.split()
        while words and (words[0] in PREFIXES or re.match(r"^[A-Z_]+=", words[0])):
            words = words[1:]
        if not words:
            continue
        if words[0].startswith("--"):  # an option named in prose
            option = re.match(r"--[a-z][a-z0-9-]*", words[0]).group()
            assert option in every["synco"] or option in every["synco-source"], option
            checked += 1
            continue
        if words[0] not in PROGRAMS:
            continue
        program, rest = words[0], words[1:]
        names = {c for p, c in all_commands() if p == program}
        command: tuple[str, ...] = ()
        for word in rest:
            if word.startswith("-"):
                continue
            if command + (word,) in names:
                command += (word,)
            elif not command or command not in groups:
                break
        allowed = help_of(*command, program=program) + help_of(program=program)
        for word in rest:
            option = re.match(r"--[a-z][a-z0-9-]*", word)
            if option:
                assert re.search(rf"{option.group()}\b", allowed), \
                    f"README: {text!r}: {program} {' '.join(command)} has no {option.group()}"
                checked += 1
    assert checked > 40, f"only {checked} options found in the README: the parser is broken"


def _readme_exit_codes() -> dict[int, str]:
    section = README.split("## Exit codes")[1].split("\n## ")[0]
    return {int(code): name for code, name in re.findall(r"^\| (\d+) \| (\S+) \|", section, re.M)}


def test_the_one_exit_code_table_agrees_with_the_code():
    """Each documented code is the one the error class, or synco's constant, exits with; each
    code the code has is documented; no other page has a table of its own."""
    from synco import cli

    table = _readme_exit_codes()
    constants = {"(bug)": errors.EXIT_BUG, "Interrupted": errors.EXIT_INTERRUPTED}
    for code, name in table.items():
        cls = getattr(errors, name, None)
        want = constants[name] if name in constants else cls.exit_code
        assert code == want, f"README says {name} exits with {code}, the code says {want}"
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.SyncoError)]
    assert {c.exit_code for c in classes} | {cli.EXIT_BUG, cli.EXIT_INTERRUPTED} == set(table)
    # a usage error of the command line itself exits as UsageError does
    assert "sys.exit(UsageError.exit_code)" in Path(cli.__file__).read_text()
    for page in (REPO / "docs").glob("*.md"):
        assert not re.search(r"^\| *(exit )?code *\|", page.read_text(), re.M | re.I), \
            f"{page.name} has an exit code table of its own: the README's is the one"


@pytest.mark.parametrize("args, code", [
    (["download", "--no-such-option"], 2),
    (["no-such-command"], 2),
    (["download", "AAAA"], 3),
])
def test_documented_exit_codes_are_what_the_client_exits_with(args, code, tmp_path):
    table = _readme_exit_codes()
    run = subprocess.run([*PROGRAMS["synco"], *args], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == code, run.stderr
    name = table[code]
    assert name == {2: "UsageError", 3: "TokenError"}[code]


def test_every_source_option_is_documented():
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", "--help"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    options = set(re.findall(r"(--[a-z][a-z0-9-]+)", run.stdout)) - {"--help"}
    assert "--db-url" in options, f"synco-source serve --help lists no --db-url: {run.stdout}"
    for option in options:
        assert option in README, f"synco-source serve {option}"


def test_linked_docs_exist():
    for link in re.findall(r"\]\(([^)#]+)", README):
        assert (REPO / link).exists(), link
