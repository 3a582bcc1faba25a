"""PyInstaller entry point of the synco binary (build/synco.spec)."""
from synco.cli import run

run()
