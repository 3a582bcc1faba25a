"""Privacy rules without a dump: how rules are laid over a catalog (filters along foreign keys,
rule precedence, fits), the heuristics of strict mode, and the framework presets (docs/privacy.md),
the presets also against real databases through synco-source detect and a dump."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from dbfixtures import mysql_execute, url_text
from fw_trees import neos_tree, source, symfony_tree, write
from pgfixtures import pg_execute
from sourceproc import env_with
from synco_frameworks import detect, symfony
from synco_source import anonymize, engines
from synco_source.anonymize import Catalog, Column, ForeignKey, Rules, column_rule, table_rule
from synco_source.errors import UsageError

SECRET = "a-secret-long-enough-for-the-rules"


def text(name: str, length: int | None = 100, nullable: bool = True) -> Column:
    return Column(name, "varchar", length, nullable)


def shop(engine: str = "mysql") -> Catalog:
    """customer <- orders <- line; orders -> shipper; tag (no key)."""
    return Catalog(engine, {
        "customer": [Column("id", "int", None, False), text("email"), text("name", 20)],
        "orders": [Column("id", "int", None, False), Column("customer_id", "int", None, True), text("email")],
        "line": [Column("id", "int", None, False), Column("order_id", "int", None, False)],
        "shipper": [Column("id", "int", None, False), text("phone", 10)],
        "tag": [text("label")],
    }, keys={"customer": ["id"], "orders": ["id"], "line": ["id"], "shipper": ["id"]},
        unique={"customer": {"id", "email"}, "orders": {"id"}, "line": {"id"}, "shipper": {"id"}},
        fks=[ForeignKey("orders", ["customer_id"], "customer", ["id"]),
             ForeignKey("line", ["order_id"], "orders", ["id"])])


def rules(tables=(), columns=(), **kw) -> Rules:
    return Rules(tables=[table_rule(k, v) for k, v in tables], columns=[column_rule(k, v) for k, v in columns],
                 secret=SECRET, **kw)


TABLES = ["customer", "orders", "line", "shipper", "tag"]


def test_a_filter_reaches_the_rows_that_reference_it_and_only_those():
    got = anonymize.resolve(rules([("customer", {"where": "id > 5"})]), shop(), TABLES)
    assert got.shapes["customer"].where == "(id > 5)"
    orders = got.shapes["orders"].where
    assert orders == ("(`orders`.`customer_id` IS NULL OR EXISTS (SELECT 1 FROM `customer` WHERE "
                      "`customer`.`id` = `orders`.`customer_id` AND (id > 5)))")
    assert got.shapes["line"].where.startswith("(`line`.`order_id` IS NULL OR EXISTS (SELECT 1 FROM `orders` "
                                               "WHERE `orders`.`id` = `line`.`order_id` AND (`orders`.")
    assert "shipper" not in got.shapes and "tag" not in got.shapes
    assert got.filters["line"] == "follows the foreign key to orders"


def test_rows_referencing_a_skipped_table_keep_only_their_null_references():
    got = anonymize.resolve(rules(), shop(), TABLES, skipped=lambda t: t == "customer")
    assert got.shapes["orders"].where == "(`orders`.`customer_id` IS NULL)"
    assert "customer" not in got.shapes


def test_limit_takes_the_key_as_tie_breaker_and_postgresql_names():
    got = anonymize.resolve(rules([("customer", {"limit": 3, "order": "name desc"})]), shop("postgresql"),
                            TABLES)
    assert got.shapes["customer"].where == (
        '(customer."id") IN (SELECT "id" FROM (SELECT "id" FROM ONLY customer ORDER BY name desc, "id" '
        'LIMIT 3) AS synco_limit)')
    with pytest.raises(UsageError, match="limit needs a primary key"):
        anonymize.resolve(rules([("tag", {"limit": 3})]), shop(), TABLES)


def test_a_filter_that_reaches_a_cycle_is_refused():
    catalog = shop()
    catalog.fks.append(ForeignKey("customer", ["id"], "line", ["id"]))
    with pytest.raises(UsageError, match=r"cycle of foreign keys \(.*customer.*\)"):
        anonymize.resolve(rules([("orders", {"where": "id > 1"})]), catalog, TABLES)
    # a cycle no filter reaches is no problem
    assert anonymize.resolve(rules([("shipper", {"where": "id > 1"})]), catalog, TABLES).shapes


def test_exact_rules_win_over_globs_and_presets():
    found = rules(columns=[("*.email", "text"), ("customer.email", "email")],
                  presets=[column_rule("orders.email", {"null": True}, "preset")])
    got = {(d.table, d.column): d.rule.kind for d in anonymize.resolve(found, shop(), TABLES).decisions}
    assert got == {("customer", "email"): "email", ("orders", "email"): "text"}


def test_a_column_that_references_an_anonymized_one_gets_the_same_fake():
    catalog = shop()
    catalog.fks.append(ForeignKey("orders", ["email"], "customer", ["email"]))
    got = anonymize.resolve(rules(columns=[("customer.email", "email")]), catalog, TABLES)
    (follow,) = [d for d in got.decisions if d.table == "orders"]
    assert follow.rule.kind == "email" and follow.note == "follows the foreign key to customer.email"
    with pytest.raises(UsageError, match="the foreign key would break"):
        anonymize.resolve(rules(columns=[("customer.email", "email"), ("orders.email", "text")]), catalog, TABLES)


def test_fits_and_names():
    for columns, message in (
            ([("customer.name", "email")], "needs 21 characters, the column holds 20"),
            ([("shipper.phone", "phone")], "needs 16 characters, the column holds 10"),
            ([("customer.id", "email")], "the fake email gives text; the column is int"),
            ([("customer.email", {"value": "x"})], "one fixed value in a unique column would repeat"),
            ([("custmer.email", "email")], "no table custmer"),
            ([("customer.mail", "email")], "table customer has no column mail")):
        with pytest.raises(UsageError, match=re.escape(message)):
            anonymize.resolve(rules(columns=columns), shop(), TABLES)
    narrow = shop()
    narrow.tables["customer"][1] = text("email", 25)
    with pytest.raises(UsageError, match="holds 25 characters: the fake email needs 29 to stay unique"):
        anonymize.resolve(rules(columns=[("customer.email", "email")]), narrow, TABLES)
    with pytest.raises(UsageError, match="tables: ordres: no such table") as info:
        anonymize.resolve(rules([("ordres", "skip")]), shop(), TABLES)
    assert "closest: orders" in info.value.hint
    # globs that match nothing are fine
    anonymize.resolve(rules(columns=[("*.ip_address", "ipv4")]), shop(), TABLES)


def test_the_secret_is_needed_by_fakes_and_strict_mode_only():
    catalog = shop()
    bare = Rules(columns=[column_rule("customer.name", {"value": "x"})])
    assert anonymize.resolve(bare, catalog, TABLES).key is None
    for needy in (Rules(columns=[column_rule("customer.name", "first_name")]), Rules(strict=True)):
        with pytest.raises(UsageError, match="a secret, and none is set"):
            anonymize.resolve(needy, catalog, TABLES)
    with pytest.raises(UsageError, match="shorter than 16"):
        anonymize.resolve(Rules(columns=[column_rule("customer.name", "text")], secret="short"), catalog, TABLES)


@pytest.mark.parametrize("name, kind", [
    ("email", "email"), ("customer_email", "email"), ("E_Mail", "email"), ("telefon", "phone"),
    ("mobileNumber", "phone"), ("vorname", "first_name"), ("firstName", "first_name"),
    ("nachname", "last_name"), ("last_name", "last_name"), ("strasse", "text"), ("street_address", "text"),
    ("plz", "text"), ("zip_code", "text"), ("ip", "ipv4"), ("last_login_ip", "ipv4"), ("iban", "iban"),
    ("geburtsdatum", "date_shift"), ("date_of_birth", "date_shift"), ("password", ""), ("passwort", ""),
    ("api_token", ""), ("client_secret", ""), ("ssn", "")])
def test_strict_mode_heuristics(name, kind):
    assert anonymize.personal(name, "varchar") == kind


@pytest.mark.parametrize("name", ["id", "created_at", "total", "description", "shipping", "zipper_count"])
def test_strict_mode_leaves_other_columns(name):
    assert anonymize.personal(name, "int") is None


def test_json_and_inet_columns_look_personal():
    assert anonymize.personal("payload", "jsonb") == ""
    assert anonymize.personal("origin", "inet") == "ipv4"


def test_the_derived_key_and_the_shift_are_functions_of_the_secret():
    assert anonymize.derived_key(SECRET) == anonymize.derived_key(SECRET) != anonymize.derived_key(SECRET + "x")
    assert SECRET not in anonymize.derived_key(SECRET)
    shifts = {anonymize.shift_days(f"secret number {i} ......") for i in range(50)}
    assert all(1 <= abs(d) <= 365 for d in shifts) and len(shifts) > 30


# --- presets --------------------------------------------------------------------------------

NEOS_SCHEMA = [
    "CREATE TABLE neos_flow_security_account (persistence_object_identifier VARCHAR(40) PRIMARY KEY, "
    "accountidentifier VARCHAR(255) NOT NULL, authenticationprovidername VARCHAR(255) NOT NULL, "
    "credentialssource VARCHAR(255) DEFAULT NULL)",
    "CREATE TABLE neos_party_domain_model_personname (persistence_object_identifier VARCHAR(40) PRIMARY KEY, "
    "title VARCHAR(255) NOT NULL, firstname VARCHAR(255) NOT NULL, middlename VARCHAR(255) NOT NULL, "
    "lastname VARCHAR(255) NOT NULL, othername VARCHAR(255) NOT NULL, alias VARCHAR(255) NOT NULL, "
    "fullname VARCHAR(255) NOT NULL)",
    "CREATE TABLE neos_party_domain_model_electronicaddress (persistence_object_identifier VARCHAR(40) "
    "PRIMARY KEY, identifier VARCHAR(255) NOT NULL, type VARCHAR(20) NOT NULL, usagetype VARCHAR(20))",
    "INSERT INTO neos_flow_security_account VALUES ('a1', 'editor.jane', 'Neos.Neos:Backend', "
    "'bcrypt=>$2a$14$realrealrealrealrealrealrealrealrealrealrealrealrealre')",
    "INSERT INTO neos_party_domain_model_personname VALUES ('p1', 'Dr.', 'Jane', 'Q', 'Editor', '', 'JJ', "
    "'Dr. Jane Q Editor')",
    "INSERT INTO neos_party_domain_model_electronicaddress VALUES ('e1', 'jane@agency.example', 'Email', 'Work')",
]


def run_detect(folder, db_url: str, *args: str) -> str:
    env = env_with(SYNCO_DB_URL=db_url, SYNCO_ANONYMIZE_SECRET=SECRET)
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "detect", *args], cwd=folder, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def dumped_rows(url, project, presets: bool = True, secret: str | None = SECRET) -> dict[str, list[bytes]]:
    from synco_source.produce import bare_name

    privacy = detect.privacy(project, presets=presets, env={anonymize.SECRET_ENV: secret} if secret else {})
    with engines.dumper(url) as dumper:
        anonymize.prepare(dumper, url.engine, url.database, privacy, lambda t: False)
        return {bare_name(t): list(dumper.rows(t)) for t in dumper.tables()}


def test_neos_presets_on_mariadb(mysql_db, tmp_path):
    db = mysql_db("neos")
    mysql_execute(db, *NEOS_SCHEMA, database=db.database)
    root = neos_tree(tmp_path / "neos")
    out = run_detect(root, url_text(db))
    assert "column neos_flow_security_account.credentialssource: value (a fixed value) (neos preset)" in out
    assert "column neos_party_domain_model_personname.firstname: first_name (neos preset)" in out
    assert "column neos_party_domain_model_electronicaddress.identifier: email (neos preset)" in out
    assert "column" not in run_detect(root, url_text(db), "--no-presets")
    project = source(root)
    rows = dumped_rows(db, project)
    plain = b"".join(r for rs in rows.values() for r in rs)
    for value in (b"editor.jane", b"realreal", b"Jane", b"Editor", b"jane@agency", b"Dr."):
        assert value not in plain
    assert b"bcrypt=>$2y$10$ZeXx" in plain
    assert b"Neos.Neos:Backend" in plain  # no rule: as it was
    untouched = b"".join(r for rs in dumped_rows(db, project, presets=False).values() for r in rs)
    assert b"jane@agency.example" in untouched
    # stable with a secret; without one the presets still apply, with a key of each session
    assert dumped_rows(db, project) == rows
    once, twice = dumped_rows(db, project, secret=None), dumped_rows(db, project, secret=None)
    for one in (once, twice):
        assert b"jane@agency" not in b"".join(r for rs in one.values() for r in rs)
    assert once != twice != rows


def test_presets_without_a_secret_use_a_key_of_the_session_but_own_rules_need_one():
    preset = Rules(presets=[column_rule("customer.email", "email", "neos preset")])
    got = anonymize.resolve(preset, shop(), TABLES)
    assert got.key and "change with every pull" in got.notes[0]
    assert anonymize.resolve(preset, shop(), TABLES).key != got.key
    mine = Rules(presets=preset.presets, columns=[column_rule("customer.name", "first_name")])
    with pytest.raises(UsageError, match="a secret, and none is set"):
        anonymize.resolve(mine, shop(), TABLES)


def test_symfony_user_table_from_security_yaml(tmp_path):
    root = symfony_tree(tmp_path / "sf", {
        "config/packages/security.yaml": """\
            security:
              providers:
                app_user_provider:
                  entity: {class: App\\Entity\\AdminUser, property: email}
            """})
    assert symfony.user_table(root) == "admin_user"
    write(root, {"src/Entity/AdminUser.php": "<?php\n#[ORM\\Entity]\n#[ORM\\Table(name: '`app_users`')]\n"
                                             "class AdminUser {}\n"})
    assert symfony.user_table(root) == "app_users"
    write(root, {"config/packages/security.yaml": "security:\n  providers:\n    users_in_memory: {memory: null}\n"})
    assert symfony.user_table(root) is None


def test_symfony_presets_on_postgresql(pg_db, tmp_path):
    db = pg_db("sf")
    pg_execute(db, 'CREATE TABLE "user" (id int PRIMARY KEY, email varchar(180) NOT NULL UNIQUE, '
                   'roles json NOT NULL, password varchar(255) NOT NULL, first_name varchar(50))',
               "INSERT INTO \"user\" VALUES (1, 'boss@shop.example', '[]', '$2y$13$realhash', 'Bossy')")
    root = symfony_tree(tmp_path / "sf", {
        "config/packages/security.yaml": "security:\n  providers:\n    app:\n      entity: {class: App\\Entity\\User}\n"})
    out = run_detect(root, url_text(db))
    assert "column user.email: email (symfony preset)" in out
    assert "column user.password: value (a fixed value) (symfony preset)" in out
    rows = dumped_rows(db, source(root))
    plain = b"".join(r for rs in rows.values() for r in rs)
    assert b"boss@" not in plain and b"realhash" not in plain and b"Bossy" not in plain
    assert symfony.PASSWORD_HASH.encode() in plain and b"@example.org" in plain
