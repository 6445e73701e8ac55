"""Cryptography with no Flower, no network and no model.

- :mod:`.encoding`: fixed-point encoding with computed headroom, and slot packing;
- :mod:`.fixed_base`: fixed-base tables, CRT powers and worker processes for obfuscators;
- :mod:`.paillier`: Paillier vectors on phe keys (gmpy2 batches, obfuscator pools, DJN);
- :mod:`.hetero`: the encrypted feature sums of vertical training (multi-exponentiation);
- :mod:`.psi`: ECDH private set intersection over X25519.
"""

__all__ = ["encoding", "fixed_base", "hetero", "paillier", "psi"]
