"""PyInstaller entry point of the synco-source binary (build/synco-source.spec)."""
from synco_source.cli import run

run()
