"""Private set intersection (PSI) of customer ids, ECDH-style over X25519.

Vertical federated learning needs the bank (the label holder) and the data-source
companies (telecom, e-commerce, tax, ...) to agree on the customers they share, without
handing each other their customer lists. This is the Diffie–Hellman PSI of Meadows (1986)
and Huberman, Franklin & Hogg (1999), the one FATE and SecretFlow ship:

* every id is hashed, with a domain tag and a run salt, by SHA-256 to a 32-byte X25519
  u-coordinate ``H(x)``;
* each party holds a secret X25519 scalar; masking is ``X25519PrivateKey.exchange``, and
  the X25519 function commutes: ``a·(b·H(x)) == b·(a·H(x))``. Equal ids therefore give
  equal double-masked values, while a singly- or double-masked value of an id one does not
  hold looks random (decisional Diffie–Hellman). A hash lands on the curve or on its
  twist; both work (the X25519 ladder commutes on either, clamped scalars clear the
  cofactor, and Curve25519 is twist-secure), as in SecretFlow's ECDH-PSI.

Two-party exchange between the bank B (scalar b) and a data party D (scalar a)
------------------------------------------------------------------------------
=====  ==========  ==============================================================
 step   direction   payload (every message is ``list[bytes]`` of 32-byte values)
=====  ==========  ==============================================================
 1      D → B       ``a·H(x)`` for D's ids, shuffled
 2      B → D       ``b·H(y)`` for B's ids, shuffled
 3      B → D       ``b·(a·H(x))``: step 1 masked again, **in the order received**
 4      D → B       ``a·(b·H(y))``: step 2 masked again, in the order received
=====  ==========  ==============================================================

Because steps 3 and 4 keep the order, each side can map the double-masked values of its
*own* ids back to those ids (it knows its own shuffle); the other side's double-masked
values stay in a shuffled order that neither side can link to ids. Each side then
intersects the two double-masked lists itself — neither has to trust the other to report
the result.

Who learns what (semi-honest parties, i.e. they follow the protocol)
--------------------------------------------------------------------
* **Both** learn the intersection ``B ∩ D`` (the bank needs it to align labels, D to
  select its rows) and **both set sizes** ``|B|`` and ``|D|`` (the list lengths).
* Neither learns anything about the other's non-shared ids: those appear only masked by a
  key it does not hold. No message contains an id or an unkeyed hash of one.
* So a data-source party learns *which of its customers are bank customers* — that is the
  intersection itself; hiding it would need a circuit-PSI/"PSI with payload" variant,
  which this module does not implement.
* Not covered: a malicious party can put guessed ids into its own list to test whether the
  other holds them (inherent to any PSI that outputs the intersection), or send garbage to
  make the other side's result smaller. A seeded shuffle is predictable to whoever knows
  the seed; that is fine for experiments, but in a deployment each party's shuffle seed
  must stay private (otherwise the other side learns the *input positions* of shared ids).

Several data parties (:func:`align_parties`): a chain through the bank
-----------------------------------------------------------------------
The bank runs the two-party exchange with D1 on all its ids, then with D2 on
``B ∩ D1`` only, then with D3 on ``B ∩ D1 ∩ D2``, ... (a fresh bank key per exchange).
Finally the bank sends each party the double-masked values (under that exchange's keys)
of the final ids; the party holds those values for its own ids, so every party learns the
final set without a raw id on the wire. Compared with intersecting the bank with each
party separately and taking the common part, the chain leaks less: D_i learns
``B ∩ D1 ∩ … ∩ D_i`` (and the size ``|B ∩ D1 ∩ … ∩ D_{i-1}|``) instead of ``B ∩ D_i``,
so later parties learn less about who banks with the bank. The price: the order of
``others`` decides who learns what (the first party learns the most), and the exchanges
are sequential. The bank learns every step's intersection.

Cost: one ``exchange`` (~40-50 µs) per id per masking; each party masks its own ids and
the other's, so a two-party run is about ``2·(|B| + |D|)`` exchanges. The X25519 API
takes one point at a time, so this is a Python loop; everything else is dict/set lookups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from fedrisk.errors import ProtocolError

DEFAULT_SALT = b"fedrisk-psi-v1"
POINT_BYTES = 32
_HASH_TAG = b"fedrisk/psi/hash-to-x25519\x00"
_P = 2**255 - 19
# The u-coordinates (mod p) of the points of order 1, 2, 4 and 8 on Curve25519 and its
# twist. Clamped X25519 scalars are multiples of 8, so these, and only these, map to zero,
# for every key; `exchange` refuses them. (tests check the list against `cryptography`.)
LOW_ORDER_U = frozenset(
    {
        0,
        1,
        _P - 1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
    }
)


def hash_to_point(item: str, salt: bytes = DEFAULT_SALT) -> bytes:
    """SHA-256 of a tagged id, as a usable X25519 u-coordinate (32 bytes, little-endian).

    The tag length-prefixes the salt, so (salt, id) pairs cannot run into each other. The
    top bit is cleared because X25519 ignores it anyway. A hash that lands on a low-order
    point (probability ~2^-252) is re-hashed with the next counter value; the check depends
    only on the hash, so both parties map every id to the same point.
    """
    data = item.encode("utf-8", "surrogatepass")  # injective, even for lone surrogates
    prefix = _HASH_TAG + len(salt).to_bytes(2, "big") + salt
    for counter in range(1 << 32):
        digest = bytearray(hashlib.sha256(prefix + counter.to_bytes(4, "big") + data).digest())
        digest[31] &= 0x7F
        if int.from_bytes(digest, "little") % _P not in LOW_ORDER_U:
            return bytes(digest)
    raise AssertionError("unreachable: 2^32 low-order hashes in a row")  # pragma: no cover


def mask_point(key: X25519PrivateKey, point: bytes) -> bytes:
    """key·point. A point from the other party may be malformed or low-order: that is a
    protocol violation, not a bug, so it becomes a ProtocolError."""
    if not isinstance(point, bytes) or len(point) != POINT_BYTES:
        raise ProtocolError(f"PSI point must be {POINT_BYTES} bytes, got {point!r:.60}")
    try:
        return key.exchange(X25519PublicKey.from_public_bytes(point))
    except ValueError as exc:  # all-zero shared secret: a low-order point
        raise ProtocolError("PSI point is a low-order X25519 point") from exc


def _checked_ids(name: str, ids: Sequence[str]) -> tuple[str, ...]:
    ids = tuple(ids)
    if not all(isinstance(i, str) for i in ids):
        raise TypeError(f"{name}: PSI ids must be strings")
    if len(set(ids)) != len(ids):
        # A duplicate would be sent twice as the same masked value, telling the other side
        # that one of our ids is repeated; and it makes "my ids in the intersection" ambiguous.
        raise ValueError(f"{name}: PSI ids must be unique ({len(ids) - len(set(ids))} duplicates)")
    return ids


class PsiParty:
    """One side of the exchange: its ids, a secret X25519 key and a shuffle order.

    The key comes from the OS (``X25519PrivateKey.generate``) and is never exported; ``rng``
    only decides the shuffle order (seeded => reproducible order, see the module docstring
    for why that seed must stay private outside experiments).
    """

    def __init__(
        self,
        name: str,
        ids: Sequence[str],
        rng: np.random.Generator | None = None,
        *,
        salt: bytes = DEFAULT_SALT,
    ):
        self.name = name
        self.ids = _checked_ids(name, ids)
        self.salt = salt
        self._key = X25519PrivateKey.generate()
        self._rng = rng if rng is not None else np.random.default_rng()
        self._order: np.ndarray | None = None  # position k of what we sent = ids[_order[k]]
        self._masked: list[bytes] | None = None

    def masked_ids(self) -> list[bytes]:
        """``key·H(x)`` for every id, shuffled. Computed once; later calls return the same
        list, so the remembered order always matches what was sent."""
        if self._masked is None:
            self._order = self._rng.permutation(len(self.ids))
            self._masked = [
                mask_point(self._key, hash_to_point(self.ids[i], self.salt)) for i in self._order
            ]
        return list(self._masked)

    @property
    def shuffle_order(self) -> np.ndarray:
        """Position k of ``masked_ids()`` is ``ids[shuffle_order[k]]``. A party that answers
        in separate messages (Flower keeps only its records between them) stores this to
        map the double-masked values back without keeping the key."""
        if self._order is None:
            raise RuntimeError(f"{self.name}: call masked_ids() first")
        return self._order.copy()

    def mask_again(self, points: Sequence[bytes]) -> list[bytes]:
        """``key·P`` for each received point, in the order received (the sender maps them
        back to its ids by position)."""
        return [mask_point(self._key, p) for p in points]

    def intersect(self, my_double: Sequence[bytes], their_double: Sequence[bytes]) -> list[str]:
        """My ids in the intersection, in my input order.

        ``my_double[k]`` is the other party's mask over my ``masked_ids()[k]``;
        ``their_double`` is my mask over their masked ids (any order). One set build and
        one pass: O(|mine| + |theirs|).
        """
        theirs = set(their_double)
        return [i for i, v in self.double_by_id(my_double).items() if v in theirs]

    def double_by_id(self, my_double: Sequence[bytes]) -> dict[str, bytes]:
        """My ids (in input order) -> their double-masked values, undoing my shuffle."""
        if self._order is None:
            raise RuntimeError(f"{self.name}: call masked_ids() before using double-masked ids")
        if len(my_double) != len(self.ids):
            raise ProtocolError(
                f"{self.name}: expected {len(self.ids)} double-masked ids "
                f"back, got {len(my_double)}"
            )
        by_index = dict(zip(self._order.tolist(), my_double))
        return {self.ids[i]: by_index[i] for i in range(len(self.ids))}


def _log(
    transcript: list | None,
    sender: str,
    receiver: str,
    what: str,
    payload: list[bytes],
    keep_payloads: bool,
) -> None:
    if transcript is None:
        return
    row = {
        "sender": sender,
        "receiver": receiver,
        "what": what,
        "bytes": sum(len(p) for p in payload),
        "items": len(payload),
    }
    if keep_payloads:  # off by default: rows stay JSON-friendly for run summaries
        row["payload"] = list(payload)
    transcript.append(row)


def _exchange(
    bank: PsiParty, other: PsiParty, transcript: list | None, keep_payloads: bool
) -> tuple[list[bytes], list[bytes]]:
    """The four messages of the module docstring: returns (the bank's ids double-masked,
    in the bank's sent order; the other's, in its sent order)."""
    d_masked = other.masked_ids()
    _log(transcript, other.name, bank.name, "masked_ids", d_masked, keep_payloads)
    b_masked = bank.masked_ids()
    _log(transcript, bank.name, other.name, "masked_ids", b_masked, keep_payloads)
    d_double = bank.mask_again(d_masked)
    _log(transcript, bank.name, other.name, "double_masked_ids", d_double, keep_payloads)
    b_double = other.mask_again(b_masked)
    _log(transcript, other.name, bank.name, "double_masked_ids", b_double, keep_payloads)
    return b_double, d_double


def psi_two_party(
    bank: PsiParty, other: PsiParty, transcript: list | None = None, *, keep_payloads: bool = False
) -> tuple[list[str], list[str]]:
    """Run the exchange in memory: (the bank's intersection, the other party's), each in
    that party's input order; the two are the same set.

    Each message appends ``{"sender", "receiver", "what", "bytes", "items"}`` to
    ``transcript`` (plus ``"payload"``, the bytes sent, if ``keep_payloads``).
    """
    if bank.salt != other.salt:
        raise ValueError("PSI parties must hash with the same salt")
    b_double, d_double = _exchange(bank, other, transcript, keep_payloads)
    return bank.intersect(b_double, d_double), other.intersect(d_double, b_double)


@dataclass(frozen=True)
class AlignmentResult:
    """The outcome of :func:`align_parties`.

    shared_ids: ids held by the bank and every party, sorted.
    per_party_sizes: each party's input size (the bank included); these sizes, or the
        bank's shrinking set sizes, are visible to the other side of each exchange.
    messages: transcript rows, in order (see :func:`psi_two_party`).
    views: the final set as each party computed it from its own messages (all equal).
    steps: one row per exchange: party, the bank's set size at that step, the party's
        size, and the size of the intersection both sides learned there.
    """

    shared_ids: tuple[str, ...]
    per_party_sizes: dict[str, int]
    messages: list[dict] = field(repr=False)
    views: dict[str, tuple[str, ...]] = field(repr=False)
    steps: tuple[dict, ...] = ()


def align_parties(
    bank_ids: Sequence[str],
    others: Mapping[str, Sequence[str]],
    seed: int,
    *,
    salt: bytes = DEFAULT_SALT,
    bank_name: str = "bank",
    keep_payloads: bool = False,
) -> AlignmentResult:
    """Align the bank with several data parties by chaining two-party PSI through the bank
    (in the order of ``others``; see the module docstring for who learns what).

    ``seed`` fixes only the shuffle orders (one independent stream per exchange); keys are
    fresh each call, so masked bytes differ between runs while the result does not.
    """
    if not others:
        raise ValueError("align_parties needs at least one data party")
    if bank_name in others:
        raise ValueError(f"data party name {bank_name!r} clashes with the bank's")
    seeds = np.random.SeedSequence(seed).spawn(2 * len(others))
    streams = iter(np.random.default_rng(s) for s in seeds)
    parties = {name: PsiParty(name, ids, next(streams), salt=salt) for name, ids in others.items()}
    sizes = {bank_name: len(_checked_ids(bank_name, bank_ids))}
    sizes.update({name: len(p.ids) for name, p in parties.items()})

    messages: list[dict] = []
    current = list(bank_ids)
    steps, bank_doubles, party_doubles = [], {}, {}
    for name, party in parties.items():
        # A fresh bank key per exchange: values one party saw cannot be matched with
        # values another party saw, even if the two collude.
        bank = PsiParty(bank_name, current, next(streams), salt=salt)
        b_double, d_double = _exchange(bank, party, messages, keep_payloads)
        bank_doubles[name] = bank.double_by_id(b_double)
        party_doubles[name] = party.double_by_id(d_double)
        bank_view = bank.intersect(b_double, d_double)
        steps.append(
            {
                "party": name,
                "bank_size": len(current),
                "party_size": len(party.ids),
                "intersection_size": len(bank_view),
            }
        )
        current = bank_view  # the next party only meets the ids shared so far

    # The bank announces the final set to each party as the double-masked values (under
    # that exchange's keys) of the final ids: the party holds these values for its own ids,
    # so it maps them back, and no raw id crosses the wire. Sorted, because the values look
    # random anyway and a sorted list carries no order information.
    final = sorted(current)
    views = {bank_name: tuple(final)}
    for name in parties:
        announced = sorted(bank_doubles[name][i] for i in final)
        _log(messages, bank_name, name, "final_double_masked_ids", announced, keep_payloads)
        wanted = set(announced)
        view = [i for i, v in party_doubles[name].items() if v in wanted]
        if len(view) != len(wanted):  # the bank named a value this party never held
            raise ProtocolError(f"{name}: the bank announced ids outside the intersection")
        views[name] = tuple(sorted(view))
    return AlignmentResult(
        shared_ids=tuple(final),
        per_party_sizes=sizes,
        messages=messages,
        views=views,
        steps=tuple(steps),
    )
