"""synco-source never needs the client's packages: it publishes a database and a file set with
typer, rich and httpx made impossible to import, and synco downloads it."""

from __future__ import annotations

import sys

from dbfixtures import mysql_fingerprint, url_text
from e2e import tree, make_files
from sourceproc import Source, synco

BLOCK = ("import sys\n"
         "class Block:\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         "        if name.split('.')[0] in ('typer', 'rich', 'httpx', 'click', 'platformdirs'):\n"
         "            raise ImportError('blocked for the test: ' + name)\n"
         "sys.meta_path.insert(0, Block())\n"
         "import runpy; runpy.run_module('synco_source.cli', run_name='__main__')\n")


def test_source_runs_without_client_packages(shop, mysql_db, tmp_path):
    files = make_files(tmp_path / "files")
    dst = mysql_db("dst", create=False)
    python = [sys.executable, "-c", BLOCK]
    with Source(["--files", f"f={files}", "--listen", "127.0.0.1:0"],
                db_url=url_text(shop),
                python=python) as src:
        result = synco("download", src.token, "--yes", "--files-dir", f"f={tmp_path / 'out'}",
                       db_url=url_text(dst))
        assert result.code == 0, result.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert tree(tmp_path / "out") == tree(files)
    assert "blocked" not in src.stderr
