"""Framework plugins, used by both sides of synco.

The folder ``frameworks/`` at the top of the repository holds this package; it is installed under
the synco-owned name ``synco_frameworks`` (never a bare ``frameworks``, which could clash with
another distribution). One module per framework; each offers the protocol in ``base``.
"""
