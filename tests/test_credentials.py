"""Passwords, database names and TLS options as they are written in URLs, Flow's Settings.yaml and
Symfony's .env files, read without a server (tests/test_tls.py connects with them)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from fw_trees import backend, error, neos_tree, source, symfony_tree
from synco_frameworks import doctrine
from synco_source.dburl import parse
from synco_source.engines.mysql.sql import tls_mode
from synco_source.errors import UsageError

PASSWORDS = ["p@ss", "a:b:c", "sl/ash", "100%", "%41", "with space", "ünï €", "🐬", "q'u\"o`te", "h#sh?&="]
NAMES = ["my db", "shop-live", "Größe", "it's", "back`tick", "dot.ted", "UPPER"]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_percent_encoded_password_round_trips(engine, password):
    url = parse(f"{engine}://us%20er:{quote(password, safe='')}@db.example:1234/shop")
    assert (url.user, url.password, url.host, url.port, url.database) == ("us er", password, "db.example", 1234, "shop")


def test_raw_at_and_colon_in_the_password_are_read_as_php_reads_them():
    """parse_url takes the last '@' as the end of the credentials and the first ':' as the end
    of the user name; '/', '#', '?' and a '%' followed by two hex digits need percent-encoding."""
    url = parse("mysql://app:p@ss:w@rd@127.0.0.1/shop")
    assert (url.user, url.password, url.host) == ("app", "p@ss:w@rd", "127.0.0.1")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_database_names_are_percent_decoded(engine, name):
    url = parse(f"{engine}://u@h/{quote(name, safe='')}")
    assert url.database == name
    assert url.with_database(name + "__synco_new").database == name + "__synco_new"


def test_redacted_shows_neither_password_nor_options():
    url = parse("mysql://app:s3cret@db:3306/shop?ssl-mode=VERIFY_IDENTITY&ssl-key=/k/client-key.pem")
    assert url.redacted == "mysql://app@db:3306/shop"
    assert "s3cret" not in repr(url)


@pytest.mark.parametrize("query, expected", [
    ("ssl-mode=required", {"ssl-mode": "REQUIRED"}),
    ("ssl_mode=Verify_Identity&ssl_ca=/ca.pem", {"ssl-mode": "VERIFY_IDENTITY", "ssl-ca": "/ca.pem"}),
    ("sslmode=verify-ca&sslca=/ca.pem&sslcert=/c.pem&sslkey=/k.pem",
     {"ssl-mode": "VERIFY_CA", "ssl-ca": "/ca.pem", "ssl-cert": "/c.pem", "ssl-key": "/k.pem"}),
    ("SSL-CAPATH=/etc/ssl/certs&ssl-cipher=ECDHE-RSA-AES128-GCM-SHA256&serverVersion=8.0",
     {"ssl-capath": "/etc/ssl/certs", "ssl-cipher": "ECDHE-RSA-AES128-GCM-SHA256", "serverVersion": "8.0"}),
])
def test_mysql_tls_options_in_every_usual_spelling(query, expected):
    assert dict(parse(f"mysql://u@h/db?{query}").params) == expected


@pytest.mark.parametrize("query, mode", [
    ("", "PREFERRED"), ("ssl-ca=/ca.pem", "VERIFY_CA"), ("ssl-capath=/certs", "VERIFY_CA"),
    ("ssl-ca=/ca.pem&ssl-mode=REQUIRED", "REQUIRED"), ("ssl-mode=DISABLED", "DISABLED"),
    ("socket=/run/mysqld/mysqld.sock&ssl-mode=VERIFY_IDENTITY", "DISABLED"),
])
def test_mysql_ssl_mode_is_decided_as_the_mysql_client_decides_it(query, mode):
    assert tls_mode(parse(f"mysql://u@h/db?{query}")) == mode


@pytest.mark.parametrize("text, message", [
    ("mysql://u@h/db?ssl-mode=VERIFY_FULL", "ssl-mode 'VERIFY_FULL' in the database URL is not one of MySQL's"),
    ("mysql://u@h/db?ssl-verify=1", "unknown TLS option 'ssl-verify' in the database URL"),
    ("postgresql://u@h/db?sslmode=required", "sslmode 'required' in the database URL is not one of libpq's"),
    ("postgresql://u@h/db?ssl_mode=require", "unknown TLS option 'ssl_mode' in the database URL"),
])
def test_a_bad_tls_option_is_one_clear_line(text, message):
    with pytest.raises(UsageError) as info:
        parse(text)
    assert str(info.value) == message and info.value.hint.startswith(("use ", "MySQL", "PostgreSQL"))


def test_postgresql_libpq_host_parameter_is_the_socket_folder():
    url = parse("postgresql://app@/shop?host=/run/postgresql&sslmode=disable&application_name=x")
    assert (url.socket, url.option("sslmode"), url.option("application_name")) == ("/run/postgresql", "disable", "x")
    assert parse("postgresql://app@/shop?host=db.internal").host == "db.internal"


def test_mysql_unix_socket_parameter_wins_over_socket():
    url = parse("mysql://app@localhost/shop?socket=/a.sock&unix_socket=/b.sock")
    assert url.socket == "/b.sock" and url.params == ()


# --- framework configuration ----------------------------------------------------------------------

def _yaml(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize("password", PASSWORDS)
def test_flow_password_and_database_name(tmp_path, password):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(
        dbname=_yaml("shop-live db"), user="app", password=_yaml(password))})
    db = source(tmp_path).database
    assert (db.user, db.password, db.database) == ("app", password, "shop-live db")


@pytest.mark.parametrize("password", PASSWORDS)
def test_symfony_password_percent_encoded_in_every_quoting(tmp_path, password):
    """Symfony documents that DATABASE_URL's special characters be percent-encoded; the line may
    then be unquoted, single-quoted (literal) or double-quoted (\\" \\\\ \\$ escapes)."""
    text = f"mysql://app:{quote(password, safe='')}@127.0.0.1:3306/{quote('shop-live db', safe='')}"
    double = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    for i, line in enumerate([f"DATABASE_URL={text}", f"DATABASE_URL='{text}'", f'DATABASE_URL="{double}"']):
        root = symfony_tree(tmp_path / str(i), {".env": f"APP_ENV=prod\n{line}\n"})
        db = source(root).database
        assert (db.password, db.database) == (password, "shop-live db"), line


def test_symfony_password_with_dollar_and_quotes_written_as_dotenv_needs(tmp_path):
    env = ('DB_PASS="a\\$b\\"c\\\\d"\n'  # a$b"c\d
           "DATABASE_URL=mysql://app:${DB_PASS}@127.0.0.1/shop\n")
    db = source(symfony_tree(tmp_path, {".env": env})).database
    assert db.password == 'a$b"c\\d'


def _driver_options(lines: str, driver: str = "pdo_mysql", extra: str = "") -> str:
    return (backend(driver=driver, dbname="shop", user="app") + extra
            + "        driverOptions:\n" + "".join(f"          {line}\n" for line in lines.splitlines()))


@pytest.mark.parametrize("lines, expected", [
    ("1009: /ca.pem", {"ssl-ca": "/ca.pem", "ssl-mode": "VERIFY_IDENTITY"}),
    ("'%PDO::MYSQL_ATTR_SSL_CA%': /ca.pem\n1014: false", {"ssl-ca": "/ca.pem", "ssl-mode": "REQUIRED"}),
    ("'\\PDO::MYSQL_ATTR_SSL_CA': /ca.pem\n'PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT': '1'",
     {"ssl-ca": "/ca.pem", "ssl-mode": "VERIFY_IDENTITY"}),
    ("'Pdo\\Mysql::ATTR_SSL_CERT': /c.pem\n'Pdo\\Mysql::ATTR_SSL_KEY': /k.pem\n1014: 0",
     {"ssl-cert": "/c.pem", "ssl-key": "/k.pem", "ssl-mode": "REQUIRED"}),
    ("1014: false", {"ssl-mode": "REQUIRED"}),
    ("1009: ''\n1002: 'SET NAMES utf8mb4'", {}),  # empty: absent; other attributes: not TLS
])
def test_flow_pdo_mysql_driver_options(tmp_path, lines, expected):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": _driver_options(lines)})
    assert dict(source(tmp_path).database.params) == {"charset": "utf8mb4", **expected}


def test_flow_mysqli_ssl_parameters_and_options_key(tmp_path):
    settings = backend(driver="mysqli", dbname="shop", ssl_ca="/ca.pem", ssl_cert="/c.pem", ssl_key="/k.pem")
    neos_tree(tmp_path / "a", {"Configuration/Settings.yaml": settings})
    assert source(tmp_path / "a").database.option("ssl-mode") == "VERIFY_IDENTITY"
    options = backend(dbname="shop") + "        options:\n          1009: /ca.pem\n          1014: false\n"
    neos_tree(tmp_path / "b", {"Configuration/Settings.yaml": options})
    db = source(tmp_path / "b").database
    assert (db.option("ssl-ca"), db.option("ssl-mode")) == ("/ca.pem", "REQUIRED")


def test_flow_url_with_driver_options(tmp_path):
    settings = backend(url=_yaml("mysql://app:p%40ss@db/shop?ssl-mode=VERIFY_CA")) + \
        "        driverOptions:\n          1009: /ca.pem\n"
    neos_tree(tmp_path, {"Configuration/Settings.yaml": settings})
    db = source(tmp_path).database
    assert (db.password, db.option("ssl-ca"), db.option("ssl-mode")) == ("p@ss", "/ca.pem", "VERIFY_CA")


def test_flow_postgresql_ssl_parameters(tmp_path):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(
        driver="pdo_pgsql", dbname="shop", sslmode="verify-full", sslrootcert="/ca.pem", sslcert="/c.pem",
        sslkey="/k.pem", application_name="neos", unknownOption="x")})
    db = source(tmp_path).database
    assert dict(db.params) == {"charset": "utf8mb4", "sslmode": "verify-full", "sslrootcert": "/ca.pem",
                               "sslcert": "/c.pem", "sslkey": "/k.pem", "application_name": "neos"}


def test_flow_bad_sslmode_names_the_file(tmp_path):
    neos_tree(tmp_path, {"Configuration/Settings.yaml": backend(driver="pdo_pgsql", dbname="shop", sslmode="on")})
    exc = error(source, tmp_path)
    assert str(exc).startswith("Configuration/Settings.yaml: Neos.Flow.persistence.backendOptions: sslmode 'on'")


def test_symfony_doctrine_driver_options_and_mysqli_scheme(tmp_path):
    env = "DATABASE_URL=mysqli://app:pw@db/shop?driverOptions%5B1009%5D=/ca.pem&driverOptions[1014]=0\n"
    db = source(symfony_tree(tmp_path, {".env": env})).database
    assert (db.engine, db.option("ssl-ca"), db.option("ssl-mode")) == ("mysql", "/ca.pem", "REQUIRED")


def test_pdo_attribute_names():
    assert [doctrine.pdo_attribute(k) for k in (1009, "1009", "PDO::MYSQL_ATTR_SSL_CA", "MYSQL_ATTR_SSL_CA",
                                                "%PDO::MYSQL_ATTR_SSL_KEY%", "Pdo\\Mysql::ATTR_SSL_VERIFY_SERVER_CERT",
                                                "PDO::ATTR_TIMEOUT")] == [1009, 1009, 1009, 1009, 1007, 1014, None]
