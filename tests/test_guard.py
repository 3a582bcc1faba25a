"""The destination guard (a database is replaced only on this machine) and the local database's
password kept out of the command line."""

from __future__ import annotations

import pytest

from dbfixtures import mysql_execute, mysql_fingerprint, url_text
from e2e import make_local, one_error_line
from sourceproc import Source, synco
from synco import guard
from synco.download import Download, DownloadOptions
from synco.ui import UI
from synco_source import engines
from synco_source.dburl import parse
from synco_source.errors import UsageError


@pytest.mark.parametrize("url", [
    "mysql://root@127.0.0.1/shop", "mysql://root@127.8.9.10:3307/shop", "mysql://root@localhost/shop",
    "mysql://root@LOCALHOST./shop", "mysql://root@[::1]/shop", "postgresql://u@[::ffff:127.0.0.1]/shop",
    "mysql://root@app.localhost/shop", "mysql://root@0.0.0.0/shop",
    "mysql://root@db.example.com/shop?socket=/run/mysqld/mysqld.sock",
])
def test_local_hosts(url):
    assert guard.is_local(parse(url))
    guard.check_target(parse(url))


@pytest.mark.parametrize("url", [
    "mysql://root@db.example.com/shop", "mysql://root@10.0.0.5/shop", "mysql://root@192.168.1.20/shop",
    "postgresql://u@[2001:db8::1]/shop", "mysql://root@localhost.example.com/shop",
    "mysql://root@127.0.0.1.example.com/shop", "mysql://root@db/shop",
])
def test_remote_hosts_are_refused_with_one_line(url):
    with pytest.raises(UsageError) as info:
        guard.check_target(parse(url))
    message = str(info.value)
    assert parse(url).host in message and "not this machine" in message and "\n" not in message
    assert "--allow-remote-target" in info.value.hint
    guard.check_target(parse(url), allow=True)


def test_the_projects_own_hosts(tmp_path):
    (tmp_path / "synco.yaml").write_text("local_hosts: [mariadb.internal]\n")
    (tmp_path / "docker-compose.yml").write_text("services:\n  db:\n    image: mariadb\n  web: {}\n")
    hosts = guard.project_hosts(tmp_path)
    assert sorted(hosts) == ["db", "mariadb.internal", "web"]
    for host in ("db", "DB", "mariadb.internal"):
        assert guard.is_local(parse(f"mysql://root@{host}/shop"), hosts)
    assert not guard.is_local(parse("mysql://root@db.example.com/shop"), hosts)
    (tmp_path / "docker-compose.yml").write_text(": not yaml [")
    assert guard.project_hosts(tmp_path) == ["mariadb.internal"]


def test_download_checks_before_it_connects(monkeypatch):
    """Download._open_target refuses before any connection; --allow-remote-target lets it on."""
    reached = []

    class FakeLoader:
        def __init__(self, url):
            reached.append(url)
            self.url = url

        def describe_target(self) -> int:
            return 0

    monkeypatch.setattr(engines, "loader", FakeLoader)

    def open_target(url: str, **options):
        download = Download.__new__(Download)
        download.opts, download.ui = DownloadOptions(db_url=parse(url), **options), UI(quiet=True)
        return download._open_target({"engine": "mysql"})

    with pytest.raises(UsageError, match="prod.example.com"):
        open_target("mysql://root@prod.example.com/shop")
    assert reached == []
    open_target("mysql://root@prod.example.com/shop", allow_remote_target=True)
    open_target("mysql://root@db/shop", local_hosts=["db"])
    assert [u.host for u in reached] == ["prod.example.com", "db"]


def test_cli_refuses_a_remote_destination(shop, tmp_path):
    with Source(["--listen", "127.0.0.1:0"], db_url=url_text(shop)) as source:
        result = synco("download", source.token, "--yes", "--db-url",
                       "mysql://root@prod-db.example.com/shop", cwd=tmp_path)
    assert result.code == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "prod-db.example.com" in line and "not this machine" in line
    assert "--allow-remote-target" in result.stderr


@pytest.fixture
def password_user(mysql_server, mysql_db):
    """A database and a user that needs a password to reach it."""
    dst = mysql_db("pw")
    make_local(dst)
    user, password = "synco_pw_user", "s3cret-pw"
    hosts = ("localhost", "127.0.0.1", "%")
    for host in hosts:
        mysql_execute(mysql_server, f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}'",
                      f"GRANT ALL ON `{dst.database}`.* TO '{user}'@'{host}'",
                      f"GRANT ALL ON `{dst.database}__synco_new`.* TO '{user}'@'{host}'",
                      f"GRANT ALL ON `{dst.database}__synco_prev`.* TO '{user}'@'{host}'", database="")
    yield dst, user, password
    for host in hosts:
        mysql_execute(mysql_server, f"DROP USER IF EXISTS '{user}'@'{host}'", database="")


def test_password_prompt_keeps_the_password_out_of_argv(shop, password_user, tmp_path):
    dst, user, password = password_user
    with Source(["--listen", "127.0.0.1:0"], db_url=url_text(shop)) as source:
        without = synco("download", source.token, "--yes", "--db-url", url_text(dst, user=user), cwd=tmp_path)
        assert without.code == 8, without.stderr
        result = synco("download", source.token, "--yes", "--db-url", url_text(dst, user=user),
                       "--password-prompt", cwd=tmp_path, stdin=password + "\n")
        assert result.code == 0, result.stderr
        assert "warning" not in result.stderr
        shown = synco("download", source.token, "--yes", "--db-url", url_text(dst, user=user, password=password),
                      cwd=tmp_path)
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert shown.code == 0, shown.stderr
    assert "warning: the password in --db-url can be seen" in shown.stderr
    assert password not in shown.stderr + result.stderr


def test_local_hosts_in_synco_yaml_must_be_a_list_of_names(tmp_path):
    from synco_frameworks import config

    (tmp_path / "synco.yaml").write_text("local_hosts: db\n")
    with pytest.raises(UsageError, match="local_hosts: must be a list of host names"):
        config.load(tmp_path, {})
