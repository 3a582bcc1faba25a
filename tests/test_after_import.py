"""The steps after an import (docs/frameworks.md, "After the import"): synco.yaml's after_import
lines run in the project folder with their output shown, a failing one is a warning that keeps
the import and ends the command with exit code 1, --no-after skips them; the framework's steps
(Symfony's cache:clear) and how detect lists them."""

from __future__ import annotations

import json

from dbfixtures import mysql_fingerprint
from e2e import one_error_line
from fw_trees import error, local, source, symfony_tree, write
from sourceproc import Source, synco
from synco_frameworks.detect import describe

SH = "/bin/sh"


def laptop(tmp_path, dst, steps: list[str]):
    lines = "".join(f"  - {json.dumps(step)}\n" for step in steps)
    return write(tmp_path / "laptop", {"synco.yaml": f"database:\n  url: mysql://root@127.0.0.1:3306/"
                                                     f"{dst.database}\nafter_import:\n{lines}"})


def server(tmp_path, shop):
    return symfony_tree(tmp_path / "server", {
        ".env": f"DATABASE_URL=mysql://root@127.0.0.1:3306/{shop.database}\n"})


def test_failing_step_is_a_warning_the_import_stays_and_the_others_run(shop, mysql_db, tmp_path):
    dst = mysql_db("dst", create=False)
    here = laptop(tmp_path, dst, ["echo first > one.txt; echo shown-output", "exit 3",
                                  "pwd > three.txt"])
    with Source(["--listen", "127.0.0.1:0"], cwd=server(tmp_path, shop)) as src:
        result = synco("download", src.token, "--yes", cwd=here)
    assert result.code == 1, result.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)  # the import is kept
    assert (here / "one.txt").read_text() == "first\n"
    assert (here / "three.txt").read_text().strip() == str(here.resolve())  # in the project folder
    assert "shown-output" in result.stderr and "shown-output" not in result.stdout
    assert "synco: warning: exit 3 exited with 3; the import itself is complete" in result.stderr
    assert one_error_line(result.stderr) == ("synco: error: 1 step after the import failed: "
                                             "exit 3 exited with 3")
    assert "running echo first > one.txt; echo shown-output (from synco.yaml)" in result.stderr


def test_steps_run_with_json_on_stdout_and_no_after_skips_them(shop, mysql_db, tmp_path):
    dst = mysql_db("dst", create=False)
    here = laptop(tmp_path, dst, ["echo on-stdout; touch ran.txt", "touch ran-too.txt"])
    src_root = server(tmp_path, shop)
    with Source(["--listen", "127.0.0.1:0"], cwd=src_root) as src:
        result = synco("download", src.token, "--yes", "--json", cwd=here)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["command"] == "downloaded"  # step output went to stderr
    assert (here / "ran.txt").exists() and (here / "ran-too.txt").exists()
    (here / "ran.txt").unlink()
    (here / "ran-too.txt").unlink()
    with Source(["--listen", "127.0.0.1:0"], cwd=src_root) as src:
        skipped = synco("download", src.token, "--yes", "--no-after", "--reload", cwd=here)
    assert skipped.code == 0, skipped.stderr
    assert "--no-after: 2 steps after the import not run" in skipped.stderr
    assert not (here / "ran.txt").exists() and not (here / "ran-too.txt").exists()


def test_after_import_in_synco_yaml_is_checked_and_local_only(tmp_path):
    write(tmp_path, {"synco.yaml": "after_import: echo hi\n"})
    assert str(error(local, tmp_path)).startswith("synco.yaml: after_import: must be a list of commands")
    write(tmp_path, {"synco.yaml": "after_import: [echo hi, './bin/reindex --all']\n"})
    symfony_tree(tmp_path)
    project = local(tmp_path, php=SH)
    assert project.post_import_lines() == ["/bin/sh bin/console cache:clear", "echo hi",
                                           "./bin/reindex --all"]
    lines = describe(project)
    assert "after import, runs: /bin/sh bin/console cache:clear" in lines
    assert "after import, runs: echo hi (synco.yaml)" in lines
    assert source(tmp_path, php=SH).steps() == []  # the server runs nothing after an import


def test_symfony_cache_clear_is_printed_without_php(tmp_path):
    project = local(symfony_tree(tmp_path), {"PATH": "/nonexistent"})
    steps = project.steps()
    assert [s.line for s in steps] == ["bin/console cache:clear"] and not steps[0].runnable
    assert "after import, run by hand: bin/console cache:clear" in describe(project)


def test_local_url_must_be_a_url(tmp_path):
    from synco.after import After, before_import

    project = local(symfony_tree(tmp_path))
    exc = error(before_import, project, After(local_url="localhost:8080"))
    assert str(exc) == "--local-url 'localhost:8080' is not an http:// or https:// URL"
    before_import(project, After(local_url="http://localhost:8080"))  # fine
