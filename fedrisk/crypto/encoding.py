"""Fixed-point encoding and slot packing, kept apart from encryption (as python-paillier does).

A float vector becomes non-negative integers that can be *added* inside ciphertexts:

1. clip to ``[-clip, clip]`` (counted, never wrapped), scale by ``2**frac_bits`` and round;
2. shift by ``magnitude = round(clip * 2**frac_bits)`` so every value is in ``[0, 2*magnitude]``;
3. optionally multiply by an integer weight ``w <= max_weight`` (weighted FedAvg);
4. lay the values side by side as ``slot_bytes``-wide big-endian slots of one big integer.

The headroom is computed, not guessed: a slot must hold the sum of ``max_summands``
weighted values, ``max_summands * max_weight * 2 * magnitude``, so a packed sum of up to
``max_summands`` vectors never carries from one slot into the next. The codec refuses to
exist if that bound does not fit, and :meth:`SlotPacker.unpack` rejects integers that
could not have come from a legal sum. Everything is numpy plus ``int.from_bytes`` /
``int.to_bytes`` over whole buffers: no Python loop per value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_SLOT_BITS = 63  # sums are handled as int64 in numpy; 63 bits keep them exact


class PackingError(ValueError):
    """A value or sum does not fit the packing layout (it would have wrapped)."""


@dataclass(frozen=True)
class FixedPointCodec:
    """Signed fixed-point values with headroom for ``max_summands`` weighted summands."""

    clip: float
    frac_bits: int
    max_summands: int
    max_weight: int = 1

    def __post_init__(self) -> None:
        if not (self.clip > 0 and math.isfinite(self.clip)):
            raise PackingError(f"clip must be a positive finite number, got {self.clip}")
        if self.frac_bits < 0:
            raise PackingError(f"frac_bits must be >= 0, got {self.frac_bits}")
        if self.max_summands < 1 or self.max_weight < 1:
            raise PackingError("max_summands and max_weight must be >= 1")
        if self.sum_bound.bit_length() > MAX_SLOT_BITS:
            raise PackingError(
                f"{self.max_summands} summands × weight {self.max_weight} × range "
                f"±{self.clip} at {self.frac_bits} fractional bits needs "
                f"{self.sum_bound.bit_length()} bits per slot; at most {MAX_SLOT_BITS}"
            )

    @classmethod
    def finest(
        cls, clip: float, max_summands: int, max_weight: int = 1, slot_bits: int = MAX_SLOT_BITS
    ) -> FixedPointCodec:
        """The codec with the most fractional bits whose sums fit in ``slot_bits``."""
        for frac_bits in range(slot_bits, -1, -1):
            bound = max_summands * max_weight * 2 * round(clip * 2**frac_bits)
            if bound.bit_length() <= slot_bits:
                return cls(clip, frac_bits, max_summands, max_weight)
        raise PackingError(
            f"no precision left: {max_summands} summands × weight "
            f"{max_weight} × range ±{clip} do not fit {slot_bits} bits"
        )

    @property
    def magnitude(self) -> int:
        """Largest quantised absolute value (the offset that makes values non-negative)."""
        return round(self.clip * 2**self.frac_bits)

    @property
    def sum_bound(self) -> int:
        """Largest possible slot value after adding ``max_summands`` encoded vectors."""
        return self.max_summands * self.max_weight * 2 * self.magnitude

    @property
    def slot_bytes(self) -> int:
        return max(1, math.ceil(self.sum_bound.bit_length() / 8))

    @property
    def resolution(self) -> float:
        return 2.0**-self.frac_bits

    def quantize(self, x: np.ndarray, on_overflow: str = "clip") -> tuple[np.ndarray, int]:
        """Signed integers ``round(x * 2**frac_bits)``; returns (values, number clipped)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise PackingError("cannot encode NaN or infinite values")
        outside = int(np.count_nonzero(np.abs(x) > self.clip))
        if outside and on_overflow == "raise":
            raise PackingError(f"{outside} value(s) outside ±{self.clip}")
        if on_overflow not in ("clip", "raise"):
            raise ValueError("on_overflow must be 'clip' or 'raise'")
        q = np.rint(np.clip(x, -self.clip, self.clip) * 2.0**self.frac_bits).astype(np.int64)
        # rounding can step one unit past the magnitude only through float error
        np.clip(q, -self.magnitude, self.magnitude, out=q)
        return q, outside

    def encode(
        self, x: np.ndarray, weight: int = 1, on_overflow: str = "clip"
    ) -> tuple[np.ndarray, int]:
        """Non-negative ``weight * (q + magnitude)`` as uint64; returns (values, clipped)."""
        if not 1 <= weight <= self.max_weight:
            raise PackingError(f"weight {weight} outside [1, {self.max_weight}]")
        q, clipped = self.quantize(x, on_overflow)
        return ((q + self.magnitude) * weight).astype(np.uint64), clipped

    def decode_sum(self, sums: np.ndarray, total_weight: int) -> np.ndarray:
        """The sum of the weighted floats, from the slot-wise sum of encoded vectors."""
        centred = np.asarray(sums, dtype=np.uint64).astype(np.int64) - np.int64(
            self.magnitude * total_weight
        )
        return centred.astype(np.float64) * self.resolution

    def decode_mean(self, sums: np.ndarray, total_weight: int) -> np.ndarray:
        """Weighted mean: exact integer sum first, one division last."""
        return self.decode_sum(sums, total_weight) / total_weight


@dataclass(frozen=True)
class SlotPacker:
    """Lays ``slot_bytes``-wide slots side by side in integers below ``2**(8*int_bytes)``."""

    slot_bytes: int
    slots_per_int: int

    @classmethod
    def for_modulus(cls, modulus_bits: int, slot_bytes: int) -> SlotPacker:
        """As many slots as fit strictly below a plaintext modulus of ``modulus_bits``."""
        if not 1 <= slot_bytes <= 8:
            raise PackingError(f"slot_bytes must be 1..8, got {slot_bytes}")
        slots = (modulus_bits - 1) // (8 * slot_bytes)
        if slots < 1:
            raise PackingError(f"a {modulus_bits}-bit modulus holds no {slot_bytes}-byte slot")
        return cls(slot_bytes, slots)

    @property
    def int_bytes(self) -> int:
        return self.slot_bytes * self.slots_per_int

    def n_ints(self, length: int) -> int:
        return -(-length // self.slots_per_int)

    def pack(self, values: np.ndarray) -> list[int]:
        """uint64 values (each below ``2**(8*slot_bytes)``) -> packed Python integers."""
        values = np.ascontiguousarray(values, dtype=np.uint64)
        limit = np.uint64(2 ** (8 * self.slot_bytes) - 1) if self.slot_bytes < 8 else None
        if limit is not None and values.size and values.max() > limit:
            raise PackingError(f"a value exceeds {8 * self.slot_bytes}-bit slots")
        padded = np.zeros(self.n_ints(values.size) * self.slots_per_int, dtype=">u8")
        padded[: values.size] = values
        raw = padded.view(np.uint8).reshape(-1, 8)[:, 8 - self.slot_bytes :].tobytes()
        step = self.int_bytes
        return [int.from_bytes(raw[i : i + step], "big") for i in range(0, len(raw), step)]

    def unpack(self, ints: list[int], length: int) -> np.ndarray:
        """Packed integers -> uint64 slot values; rejects anything a legal pack can't give."""
        if len(ints) != self.n_ints(length):
            raise PackingError(
                f"expected {self.n_ints(length)} packed integers for "
                f"{length} values, got {len(ints)}"
            )
        try:
            raw = b"".join(int(v).to_bytes(self.int_bytes, "big") for v in ints)
        except OverflowError:
            raise PackingError(
                "a packed integer is larger than the packing layout allows "
                "(decrypted under the wrong key, or corrupted)"
            ) from None
        slots = np.frombuffer(raw, dtype=np.uint8).reshape(-1, self.slot_bytes)
        full = np.zeros((slots.shape[0], 8), dtype=np.uint8)
        full[:, 8 - self.slot_bytes :] = slots
        values = full.view(">u8").ravel().astype(np.uint64)
        if np.any(values[length:]):
            raise PackingError(
                "padding slots are not zero (decrypted under the wrong key, or corrupted)"
            )
        return values[:length]
