"""Small project trees for the framework tests, written into tmp_path (nothing copied from real
projects), and a PHP-free stand-in for Flow's ./flow."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from synco_frameworks.detect import detect
from synco_source.errors import UsageError

# What the stand-in answers, like Flow's Yaml::dump after a 'Configuration "…":' header line.
# The heredoc is unquoted, so $DB_PASSWORD comes from the environment synco passes to ./flow.
FLOW_STAND_IN = """#!/bin/sh
# Stand-in for Flow's ./flow, run as "$PHP ./flow configuration:show ..." like the real one.
echo "FLOW_CONTEXT=$FLOW_CONTEXT $*" >> flow.calls
[ "$*" = "configuration:show --type Settings --path Neos.Flow" ] || { echo "bad call: $*" >&2; exit 1; }
[ -n "$FLOW_FAIL" ] && { echo "Flow could not boot" >&2; exit 1; }
echo 'Configuration "Settings: Neos.Flow":'
echo
cat <<YAML
persistence:
  backendOptions:
    driver: pdo_pgsql
    host: flow-db
    port: 5433
    dbname: from_flow_${FLOW_CONTEXT%%/*}
    user: flow
    password: '$DB_PASSWORD'
http:
  baseUri: 'https://flow.example/'
resource:
  storages:
    s:
      storage: 'Neos\\Flow\\ResourceManagement\\Storage\\WritableFileSystemStorage'
      storageOptions: { path: '$PWD/Data/Persistent/Resources/' }
  collections:
    persistent: { storage: s, target: t }
  targets:
    t:
      target: 'Neos\\Flow\\ResourceManagement\\Target\\FileSystemSymlinkTarget'
      targetOptions: { path: '$PWD/Web/_Resources/Persistent/' }
YAML
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def backend(**options) -> str:
    """A Settings.yaml text setting Neos.Flow.persistence.backendOptions."""
    lines = "".join(f"        {key}: {value}\n" for key, value in options.items())
    return f"Neos:\n  Flow:\n    persistence:\n      backendOptions:\n{lines}"


def neos_tree(root: Path, settings: dict[str, str] | None = None, stand_in: bool = False) -> Path:
    if settings is None:
        settings = {"Configuration/Settings.yaml": backend(dbname="neos")}
    write(root, {"flow": FLOW_STAND_IN if stand_in else "#!/usr/bin/env php\n",
                 "Web/index.php": "<?php\n", "Data/Persistent/Resources/a/b/c/d/abcd": "x" * 10,
                 **settings})
    (root / "Configuration").mkdir(exist_ok=True)
    (root / "flow").chmod(0o755)
    return root


def symfony_tree(root: Path, files: dict[str, str] | None = None, bundles: bool = True) -> Path:
    write(root, {"bin/console": "#!/usr/bin/env php\n", **(files or {})})
    if bundles:
        write(root, {"config/bundles.php": "<?php return [];\n"})
    return root


def source(root: Path, env: dict | None = None, **kw):
    return detect(root, side="source", env=env or {}, **kw)


def local(root: Path, env: dict | None = None, **kw):
    return detect(root, side="local", env=env or {}, **kw)


def error(fn, *args, **kw) -> UsageError:
    with pytest.raises(UsageError) as info:
        fn(*args, **kw)
    return info.value


def url(db: str) -> str:
    return f"DATABASE_URL=mysql://app:pw@127.0.0.1:3306/{db}\n"


SYNCO_YAML = """\
    database:
      url: mysql://dev:${DB_PASSWORD}@${DB_HOST:-127.0.0.1}/override
    base_url: https://override.example/
    files:
      media: {path: var/media, public: true}
      resources: {public: false}
    skip_table_data: [cache_items]
    exclude: [audit_*]
    """
