"""synco/searchreplace.py: the site-URL rewrite after a WordPress import, over PHP-serialized
values (nested arrays and objects, multibyte strings, serialized inside serialized), JSON and
plain text, then over WordPress-shaped tables on the real MariaDB.

The expected serialized values are written by ``ser`` below from Python values (PHP's format,
lengths in UTF-8 bytes), so a wrong length in the rewrite cannot hide behind the same code."""

from __future__ import annotations

import json

import pytest

from dbfixtures import mysql_connect
from synco.searchreplace import Rules, option, rewrite_database, wordpress_step

OLD, NEW = "https://shop.example.com", "http://localhost:8080/shöp"


class Obj:
    def __init__(self, cls: str, **props) -> None:
        self.cls, self.props = cls, props


def ser(value) -> str:
    """PHP's serialize() for the values the tests use."""
    if value is None:
        return "N;"
    if isinstance(value, bool):
        return f"b:{int(value)};"
    if isinstance(value, int):
        return f"i:{value};"
    if isinstance(value, float):
        return f"d:{value!r};"
    if isinstance(value, str):
        return f's:{len(value.encode())}:"{value}";'
    if isinstance(value, dict):
        return f"a:{len(value)}:{{" + "".join(ser(k) + ser(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return ser(dict(enumerate(value)))
    if isinstance(value, Obj):
        return (f'O:{len(value.cls)}:"{value.cls}":{len(value.props)}:{{'
                + "".join(ser(k) + ser(v) for k, v in value.props.items()) + "}")
    raise TypeError(value)


def swap(value, old=OLD, new=NEW):
    """``value`` with the URL replaced in every string (what the rewrite must give)."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: swap(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [swap(v, old, new) for v in value]
    if isinstance(value, Obj):
        return Obj(value.cls, **swap(value.props, old, new))
    return value


WIDGET = {"title": "Über uns – 日本語", "url": f"{OLD}/über-uns", "count": 3, "on": True,
          "ratio": 0.5, "none": None,
          "nested": {"logo": {"src": f"{OLD}/wp-content/uploads/ü.png", "w": 120},
                     "list": [f"{OLD}/a", "plain", f"{OLD}"]}}
THEME_MODS = Obj("stdClass", header_image=f"{OLD}/wp-content/uploads/header.jpg",
                 sub=Obj("WP_Theme_Mods", colors=["#fff", "é"], link=f"{OLD}/kontakt"))


@pytest.mark.parametrize("value", [WIDGET, THEME_MODS, [WIDGET, THEME_MODS], f"{OLD}/ö"])
def test_serialized_values_get_their_byte_lengths_again(value):
    rules = Rules(OLD, NEW)
    assert rules.apply(ser(value)) == ser(swap(value))


def test_serialized_inside_serialized():
    inner = ser({"home": OLD, "name": "Café"})
    outer = {"option": inner, "other": [inner, f"{OLD}/x"]}
    expected = ser({"option": ser({"home": NEW, "name": "Café"}),
                    "other": [ser({"home": NEW, "name": "Café"}), f"{NEW}/x"]})
    assert Rules(OLD, NEW).apply(ser(outer)) == expected


def test_a_longer_host_is_never_touched():
    rules = Rules(OLD, NEW)
    for value in (ser({"a": f"{OLD}.evil/x", "b": f"{OLD}-shop.net", "c": f"{OLD}:8443/"}),
                  f"see {OLD}.evil and {OLD}evil and {OLD}_x",
                  json.dumps({"u": f"{OLD}.evil"}).replace("/", "\\/")):
        assert rules.apply(value) is value
    # the end of a sentence, a path, a query and a fragment are the URL's end
    assert rules.apply(f"Visit {OLD}. Or {OLD}/x?y=1 or {OLD}#top or {OLD}") == (
        f"Visit {NEW}. Or {NEW}/x?y=1 or {NEW}#top or {NEW}")


def test_json_with_escaped_slashes_in_block_comments():
    block = ('<!-- wp:cover {"url":"https:\\/\\/shop.example.com\\/wp-content\\/uploads\\/é.jpg",'
             '"id":7} --><div style="background:url(https://shop.example.com/x.jpg)"></div>')
    got = Rules(OLD, NEW).apply(block)
    assert got == ('<!-- wp:cover {"url":"http:\\/\\/localhost:8080\\/shöp\\/wp-content\\/uploads'
                   '\\/é.jpg","id":7} --><div style="background:url(http://localhost:8080/shöp/'
                   'x.jpg)"></div>')
    payload = json.loads(Rules(OLD, NEW).apply(json.dumps({"u": f"{OLD}/a"}).replace("/", "\\/")))
    assert payload == {"u": f"{NEW}/a"}


def test_http_twin_url_encoded_and_trailing_slashes():
    rules = Rules(OLD + "/", NEW + "/")
    assert rules.apply("http://shop.example.com/p") == f"{NEW}/p"
    assert rules.apply("share?u=https%3A%2F%2Fshop.example.com%2Fp") == (
        "share?u=http%3A%2F%2Flocalhost%3A8080%2Fsh%C3%B6p%2Fp")


def test_broken_serialized_values_are_left_and_counted():
    rules = Rules(OLD, NEW)
    broken = f's:5:"{OLD}";'  # a length PHP could not read either
    assert rules.apply(broken) is broken and rules.broken == 1
    assert rules.apply(f'a:1:{{i:0;s:99:"{OLD}";}}').startswith("a:1:") and rules.broken == 2


def test_custom_serialized_objects_and_scalars_pass_through():
    payload = ser({"u": OLD})
    value = f'a:3:{{i:0;C:6:"ArrObj":{len(payload)}:{{{payload}}}i:1;d:-1.5E-3;i:2;E:9:"Suit:Club";}}'
    new_payload = ser({"u": NEW})
    assert Rules(OLD, NEW).apply(value) == (
        f'a:3:{{i:0;C:6:"ArrObj":{len(new_payload.encode())}:{{{new_payload}}}i:1;d:-1.5E-3;'
        f'i:2;E:9:"Suit:Club";}}')


# --- on the real MariaDB: WordPress-shaped rows ---------------------------------------------------

TABLES = [
    "CREATE TABLE wp_options (option_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
    "option_name VARCHAR(191) NOT NULL UNIQUE, option_value LONGTEXT NOT NULL, "
    "autoload VARCHAR(20) NOT NULL DEFAULT 'yes') DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE wp_postmeta (meta_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
    "post_id BIGINT UNSIGNED NOT NULL, meta_key VARCHAR(255), meta_value LONGTEXT) "
    "DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE wp_posts (ID BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, post_content LONGTEXT "
    "NOT NULL, post_title TEXT NOT NULL, guid VARCHAR(255) NOT NULL DEFAULT '') DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE wp_term_relationships (object_id BIGINT UNSIGNED NOT NULL, term_taxonomy_id "
    "BIGINT UNSIGNED NOT NULL, note VARCHAR(255), PRIMARY KEY (object_id, term_taxonomy_id))",
    "CREATE TABLE wp_nokey (note TEXT)",
]


def wordpress_rows(url) -> dict:
    conn = mysql_connect(url, url.database)
    options = {"siteurl": OLD, "home": OLD, "widget_text": ser(WIDGET),
               "theme_mods_x": ser(THEME_MODS), "blogname": "Ünïcödé shop",
               "evil": ser({"u": f"{OLD}.evil/x"})}
    with conn.cursor() as cur:
        for statement in TABLES:
            cur.execute(statement)
        cur.executemany("INSERT INTO wp_options (option_name, option_value) VALUES (%s, %s)",
                        list(options.items()))
        meta = [(n % 4 + 1, f"_meta_{n}", ser({"n": n, "img": f"{OLD}/up/{n}-ü.jpg"}))
                for n in range(25)]
        cur.executemany("INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (%s, %s, %s)",
                        meta)
        cur.execute("INSERT INTO wp_posts (post_content, post_title, guid) VALUES (%s, %s, %s)",
                    ('<!-- wp:image {"url":"https:\\/\\/shop.example.com\\/a.jpg"} -->'
                     f'<img src="{OLD}/a.jpg">', "Grüße", f"{OLD}/?p=1"))
        cur.executemany("INSERT INTO wp_term_relationships VALUES (%s, %s, %s)",
                        [(1, t, f"{OLD}/t/{t}") for t in range(5)])
        cur.execute("INSERT INTO wp_nokey VALUES (%s)", (f"{OLD}/nokey",))
    conn.close()
    return options


def fetch(url, sql) -> list[tuple]:
    conn = mysql_connect(url, url.database)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = list(cur.fetchall())
    conn.close()
    return rows


def test_rewrite_over_wordpress_tables_on_mariadb(mysql_db):
    url = mysql_db("wpsr")
    options = wordpress_rows(url)
    result = rewrite_database(url, Rules(OLD, NEW), batch=4)
    got = dict(fetch(url, "SELECT option_name, option_value FROM wp_options"))
    assert got["widget_text"] == ser(swap(WIDGET)) and got["theme_mods_x"] == ser(swap(THEME_MODS))
    assert got["home"] == NEW and got["siteurl"] == NEW
    assert got["evil"] == options["evil"] and got["blogname"] == "Ünïcödé shop"
    metas = fetch(url, "SELECT meta_id, meta_value FROM wp_postmeta ORDER BY meta_id")
    assert [v for _, v in metas] == [ser({"n": n, "img": f"{NEW}/up/{n}-ü.jpg"}) for n in range(25)]
    content, title, guid = fetch(url, "SELECT post_content, post_title, guid FROM wp_posts")[0]
    assert content == ('<!-- wp:image {"url":"http:\\/\\/localhost:8080\\/shöp\\/a.jpg"} -->'
                       f'<img src="{NEW}/a.jpg">') and guid == f"{NEW}/?p=1" and title == "Grüße"
    assert [n for (n,) in fetch(url, "SELECT note FROM wp_term_relationships ORDER BY 1")] == [
        f"{NEW}/t/{t}" for t in range(5)]
    assert result.no_key == ["wp_nokey"] and fetch(url, "SELECT note FROM wp_nokey")[0][0] == f"{OLD}/nokey"
    assert result.rows == 4 + 25 + 1 + 5 and sorted(result.tables) == [
        "wp_options", "wp_postmeta", "wp_posts", "wp_term_relationships"]
    again = rewrite_database(url, Rules(OLD, NEW))  # nothing left: idempotent
    assert again.rows == 0


def test_wordpress_step_takes_the_local_url_in_order(mysql_db):
    url = mysql_db("wpstep")
    wordpress_rows(url)
    said: list[str] = []
    params = {"prefix": "wp_", "local_url": "", "multisite": ""}
    assert option(url, "wp_", "home") == OLD
    left = wordpress_step(url, params, None, None, said.append)
    assert OLD in left and "--local-url" in left and option(url, "wp_", "home") == OLD
    assert wordpress_step(url, params, None, "http://previous.test", said.append) is None
    assert option(url, "wp_", "home") == "http://previous.test"
    params["local_url"] = "http://from-wp-config.test"
    wordpress_step(url, params, None, "http://previous.test", said.append)
    assert option(url, "wp_", "home") == "http://from-wp-config.test"
    wordpress_step(url, params, "http://option.test", None, said.append)
    assert option(url, "wp_", "home") == "http://option.test"
    assert any("values in" in line and "rows of" in line for line in said)
    assert option(url, "nope_", "home") is None
