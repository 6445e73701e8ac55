"""Sealed messages between two parties that only meet through a relay.

Flower's topology is a star: every message between two ClientApps crosses the
ServerApp (the bank). What one party must tell another without the bank reading it
(the dealer's seeds, a share meant for a third party) is sealed: X25519 key agreement
(keys exchanged through the relay, which is semi-honest: it relays what it is given),
HKDF-SHA256 to a per-pair key, AES-256-GCM with a random nonce and the pair's names as
associated data. The relay sees ciphertext and the public keys only.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class ChannelKey:
    """One party's X25519 key for sealed channels (fresh from os entropy: it protects
    only the transport, so results never depend on it)."""

    def __init__(self, name: str, private: X25519PrivateKey | None = None) -> None:
        self.name = name
        self._private = private or X25519PrivateKey.generate()

    @property
    def public_bytes(self) -> bytes:
        return self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def private_bytes(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> ChannelKey:
        return cls(name, X25519PrivateKey.from_private_bytes(raw))

    def _aead(self, peer_name: str, peer_public: bytes) -> tuple[AESGCM, bytes]:
        shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        pair = "|".join(sorted((self.name, peer_name))).encode()
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"fedrisk-seal" + pair)
        return AESGCM(key.derive(shared)), pair

    def seal(self, peer_name: str, peer_public: bytes, payload: bytes) -> bytes:
        aead, pair = self._aead(peer_name, peer_public)
        nonce = os.urandom(NONCE_BYTES)
        return nonce + aead.encrypt(nonce, payload, pair)

    def open(self, peer_name: str, peer_public: bytes, sealed: bytes) -> bytes:
        """The payload; raises ``cryptography.exceptions.InvalidTag`` if the sealed
        bytes were changed or were sealed for another pair."""
        aead, pair = self._aead(peer_name, peer_public)
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], pair)


__all__ = ["NONCE_BYTES", "ChannelKey"]
