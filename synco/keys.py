"""Recipient keys: the client's X25519 identity, to which synco-source wraps a session's key.

A session started with ``--recipient <public key>`` has a token (version 2) without a key; its key
travels wrapped to that public key in the session's ``key`` object (docs/FORMAT.md §9), so the
token and every byte that passes a bastion, a proxy or a log are useless without the private key.

- ``synco keygen`` makes one long-lived identity, kept in the user's state folder
  (``$XDG_STATE_HOME/synco/identity`` on Linux; folder 0700, file 0600), for sessions started by
  hand with ``synco-source serve --recipient KEY``;
- ``synco pull`` makes an ephemeral identity per session (``Identity.generate()``, never written
  anywhere) and passes only its public key to the remote command.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

from synco_source import crypto, format
from synco_source.errors import LocalIOError, UsageError

FILE_NAME = "identity"


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir("synco", appauthor=False))


def default_path() -> Path:
    return state_dir() / FILE_NAME


class Identity:
    """An X25519 key pair; ``unwrap`` opens a session's key object made for it."""

    def __init__(self, private: bytes) -> None:
        if len(private) != 32:
            raise ValueError("an X25519 private key has 32 bytes")
        self._private = private
        self.public = crypto.public_key(private)

    @classmethod
    def generate(cls) -> "Identity":
        """A new key pair, in memory only (``save`` writes it)."""
        return cls(crypto.new_private_key())

    @property
    def public_text(self) -> str:
        """The public key as ``syncopk1...``: what ``--recipient`` takes."""
        return format.public_key_text(self.public)

    @property
    def tag(self) -> bytes:
        return crypto.recipient_tag(self.public)

    def unwrap(self, blob: bytes, session_id: bytes) -> bytes:
        """The session key from the session's key object (IntegrityError if it is not ours)."""
        return crypto.unwrap_session_key(blob, session_id, self._private)

    def matches(self, token: format.Token) -> bool:
        return token.recipient == self.tag

    # ------------------------------------------------------------ the file

    @classmethod
    def load(cls, path: Path | None = None) -> "Identity":
        path = path or default_path()
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise UsageError(f"no key pair in {path}: this token was made for a recipient key",
                             hint="run 'synco keygen' here and start synco-source with "
                                  "--recipient <its output>") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LocalIOError(f"cannot read the key pair in {path}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        lines = [line.strip() for line in text.splitlines()
                 if line.strip() and not line.startswith("#")]
        if len(lines) != 1:
            raise UsageError(f"{path} holds no synco key pair",
                             hint="move it away and run 'synco keygen' again")
        return cls(format.parse_private_key(lines[0]))

    def save(self, path: Path | None = None) -> Path:
        """Write the private key (mode 0600, in a folder of mode 0700), atomically."""
        path = path or default_path()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".identity-")  # mode 0600
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(f"# synco key pair: keep this file secret\n"
                         f"# public key: {self.public_text}\n"
                         f"{format.private_key_text(self._private)}\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except OSError as exc:
            raise LocalIOError(f"cannot write the key pair to {path}: {exc.strerror}") from None
        return path


def token_crypto(token: format.Token, remote) -> format.SessionCrypto:
    """The session keys for a token: its own key (version 1), or the key unwrapped from the
    session's ``key`` object with this machine's identity (version 2)."""
    if not token.recipient:
        return format.SessionCrypto(token.key, token.session_id)
    identity = Identity.load()
    if not identity.matches(token):
        raise UsageError(f"this token was made for another recipient key; this machine's key "
                         f"is {identity.public_text}",
                         hint="start synco-source with --recipient set to the output of "
                              "'synco keygen' on this machine")
    key = identity.unwrap(remote.get(format.KEY_PATH), token.session_id)
    return format.SessionCrypto(key, token.session_id)
