"""The provider's RS256 signing keys: kept in the devstack data folder, served as JWKS."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey


def _new_key() -> RSAKey:
    return RSAKey.generate_key(
        2048,
        parameters={"kid": secrets.token_urlsafe(12), "use": "sig", "alg": "RS256"},
        private=True,
    )


def _write_private(path: Path, keys: list[RSAKey]) -> None:
    # Written to a 0600 file from the start, then renamed: never world-readable, never torn.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"keys": [k.as_dict(private=True) for k in keys]}, handle)
    os.replace(tmp, path)


class SigningKey:
    """RSA keys with `kid`s: the first one signs; all are published (so that tokens signed
    before a rotation still verify). Private halves on disk (0600), public halves as JWKS."""

    def __init__(self, keys: list[RSAKey], path: Path | None = None) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = keys
        self._path = path

    @property
    def key(self) -> RSAKey:
        """The active (signing) key."""
        return self._keys[0]

    @property
    def key_set(self) -> KeySet:
        """The active key as a set: joserfc then writes its `kid` into the JWT header."""
        return KeySet([self._keys[0]])

    @property
    def verify_set(self) -> KeySet:
        """Every published key: what a token of this provider may be signed with."""
        return KeySet(list(self._keys))

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Read the keys from `path`, or generate and store one (a restart keeps tokens valid)."""
        if path.exists():
            data = json.loads(path.read_text())
            entries = data["keys"] if "keys" in data else [data]
            return cls([RSAKey.import_key(entry) for entry in entries], path)
        keys = [_new_key()]
        _write_private(path, keys)
        return cls(keys, path)

    def rotate(self, keep: int = 2) -> str:
        """Sign with a new key from now on; keep publishing the last `keep - 1` old ones."""
        self._keys = [_new_key(), *self._keys][: max(1, keep)]
        if self._path is not None:
            _write_private(self._path, self._keys)
        return self.kid

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS document: public parameters only."""
        return {"keys": [k.as_dict(private=False) for k in self._keys]}
