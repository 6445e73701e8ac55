"""The public layout of Paillier aggregation: the public key, the fixed-point precision
and how many values share one ciphertext, and the public bound on a bank's weight.
Every party knows it; it holds nothing secret."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from phe.paillier import PaillierPublicKey

from fedrisk.crypto.encoding import FixedPointCodec, SlotPacker
from fedrisk.crypto.paillier import ciphertext_bytes
from fedrisk.models.logistic import n_params


def public_max_weight(max_rows: int) -> int:
    """The next power of two at or above the largest bank: a public bound on example
    counts that reveals only their order of magnitude."""
    return 1 << max(0, (max_rows - 1).bit_length())


@dataclass(frozen=True)
class PaillierSetup:
    """Public parameters every party knows: the public key and the packing layout."""

    public_key: PaillierPublicKey
    codec: FixedPointCodec
    packer: SlotPacker
    n_params: int
    fixed_denominator: float | None = None  # client DP: q·K; else the weighted mean
    n_extra: int = 0  # values after the delta (early stopping's validation slots)

    def step(self, sums: np.ndarray, total_weight: int) -> np.ndarray:
        """The model change an aggregate stands for."""
        if self.fixed_denominator is None:
            return self.codec.decode_mean(sums, total_weight)
        return self.codec.decode_sum(sums, total_weight) / self.fixed_denominator

    @property
    def n_values(self) -> int:  # the delta, extra values, the example count, then a 1
        return self.n_params + self.n_extra + 2

    @property
    def n_ciphertexts(self) -> int:
        return self.packer.n_ints(self.n_values)

    @property
    def width(self) -> int:
        return ciphertext_bytes(self.public_key)


def paillier_setup(
    public_key: PaillierPublicKey,
    n_features: int,
    n_banks: int,
    max_bank_rows: int,
    clip: float,
    client_dp_rate: float | None = None,
    extra_slots: int = 0,
) -> PaillierSetup:
    """Choose the finest fixed-point precision whose k-party weighted sums still fit.

    With client-level DP (``client_dp_rate`` = q) banks weigh 1 each and the decoded sum
    is divided by q·K."""
    max_weight = 1 if client_dp_rate else public_max_weight(max_bank_rows)
    codec = FixedPointCodec.finest(clip, max_summands=n_banks, max_weight=max_weight)
    packer = SlotPacker.for_modulus(public_key.n.bit_length() - 1, codec.slot_bytes)
    return PaillierSetup(
        public_key,
        codec,
        packer,
        n_params(n_features),
        client_dp_rate * n_banks if client_dp_rate else None,
        extra_slots,
    )


__all__ = ["PaillierSetup", "paillier_setup", "public_max_weight"]
