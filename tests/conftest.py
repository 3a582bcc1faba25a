from dbfixtures import *  # noqa
from e2e import shop  # noqa
from pgfixtures import *  # noqa
from binaries import built  # noqa

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _own_chunk_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty chunk cache (XDG_CACHE_HOME), inherited by the programs it
    runs: no test sees chunks another test (or the person running them) cached."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(autouse=True)
def _own_client_state(tmp_path_factory, monkeypatch):
    """Every test gets its own client state folder (XDG_STATE_HOME: the recorded file hashes of
    synco/state.py), inherited by the programs it runs."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
