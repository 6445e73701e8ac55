"""Cryptography with no Flower, no network and no model.

- :mod:`.encoding`: fixed-point encoding with computed headroom, and slot packing;
- :mod:`.paillier`: Paillier vectors on phe keys (gmpy2 batches, obfuscator pools, DJN);
- :mod:`.hetero`: the encrypted feature sums of vertical training (multi-exponentiation);
- :mod:`.psi`: ECDH private set intersection over X25519.
"""

__all__ = ["encoding", "hetero", "paillier", "psi"]
