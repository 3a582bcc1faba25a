"""synco-source: the server side of synco. Standard library, cryptography and the database
drivers only; never the client's typer, rich or httpx."""

__version__ = "0.1.0"
