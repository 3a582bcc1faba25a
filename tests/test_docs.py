"""The docs say what the code does: exit codes, commands, options."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from synco_source.errors import exit_code_table

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_exit_code_table_matches_the_error_classes():
    rows = "\n".join(f"| {code} | {name} | {meaning} |" for code, name, meaning in exit_code_table())
    assert rows in README


def help_of(*args: str) -> str:
    run = subprocess.run([sys.executable, "-c", "from synco.cli import run; run()", *args, "--help"],
                         capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_every_client_command_and_option_is_documented():
    commands = re.findall(r"^│ (\w+)\s", help_of().split("Commands")[1], re.M)
    assert {"download", "restore", "version"} <= set(commands)
    for command in commands:
        assert f"synco {command}" in README or command == "version", command
        options = re.findall(r"(--[a-z][a-z-]+)", help_of(command))
        assert "--help" in options, f"synco {command} --help lists no options"
        for option in options:
            assert option in README or option == "--help", f"synco {command} {option}"


def test_every_source_option_is_documented():
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", "--help"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    options = set(re.findall(r"(--[a-z][a-z-]+)", run.stdout)) - {"--help"}
    assert "--db-url" in options, f"synco-source serve --help lists no --db-url: {run.stdout}"
    for option in options:
        assert option in README, f"synco-source serve {option}"


def test_linked_docs_exist():
    for link in re.findall(r"\]\(([^)#]+)", README):
        assert (REPO / link).exists(), link
