"""Split rows among horizontal-federation parties: IID, label skew or quantity skew."""

from __future__ import annotations

import numpy as np

from fedrisk.errors import DataError

SCHEMES = ("iid", "dirichlet", "quantity")
MAX_ATTEMPTS = 1000  # Dirichlet redraws before giving up; one draw costs microseconds


def partition_rows(
    y: np.ndarray,
    n_parties: int,
    scheme: str,
    seed: int,
    alpha: float = 0.5,
    min_rows: int = 10,
) -> list[np.ndarray]:
    """Row indices for each party: sorted, disjoint, together covering ``range(len(y))``.

    * ``"iid"``: shuffle, then split into near-equal parts.
    * ``"dirichlet"``: label skew (Hsu et al. 2019): for each class, the share of its rows
      each party gets is drawn from Dirichlet(alpha). Small alpha = strong skew. Draws are
      repeated (same generator) until every party has ``min_rows`` rows; a party that got no
      row of a class receives one from the party with the most of that class, when the
      class has at least ``n_parties`` rows, so every party can train a classifier.
    * ``"quantity"``: party sizes are ``min_rows`` plus a Dirichlet(alpha) share of the
      remaining rows; labels are IID within a party.

    Every party gets at least ``max(min_rows, 1)`` rows. Deterministic for a seed. Raises
    DataError when the rows cannot satisfy that.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D label array, got shape {y.shape}")
    _check_args(n_parties, scheme, alpha, min_rows)
    n = y.size
    min_rows = max(min_rows, 1)  # an empty party would break every local model
    if n_parties * min_rows > n:
        raise DataError(
            f"cannot give each of {n_parties} parties at least {min_rows} rows from {n} rows; "
            "lower the number of parties or min_rows"
        )
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        parts = np.array_split(rng.permutation(n), n_parties)
    elif scheme == "quantity":
        sizes = min_rows + _integer_shares(
            rng.dirichlet(np.full(n_parties, alpha)), n - n_parties * min_rows
        )
        parts = np.split(rng.permutation(n), np.cumsum(sizes)[:-1])
    else:
        parts = _dirichlet_label_skew(y, n_parties, alpha, min_rows, rng)
    return [np.sort(p).astype(np.intp) for p in parts]


def _dirichlet_label_skew(y, n_parties, alpha, min_rows, rng) -> list[np.ndarray]:
    classes = np.unique(y)
    rows_by_class = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    class_sizes = np.array([r.size for r in rows_by_class])
    for _ in range(MAX_ATTEMPTS):
        shares = rng.dirichlet(np.full(n_parties, alpha), size=classes.size)  # (classes, parties)
        counts = np.stack([_integer_shares(p, m) for p, m in zip(shares, class_sizes)])
        _give_every_party_each_class(counts)
        if counts.sum(axis=0).min() >= min_rows:
            break
    else:
        raise DataError(
            f"dirichlet partition: {MAX_ATTEMPTS} draws with alpha={alpha} never gave all "
            f"{n_parties} parties at least {min_rows} rows each; raise alpha or lower the number of parties"
        )
    pieces = [np.split(rows, np.cumsum(c)[:-1]) for rows, c in zip(rows_by_class, counts)]
    return [np.concatenate([pieces[k][p] for k in range(classes.size)]) for p in range(n_parties)]


def _give_every_party_each_class(counts: np.ndarray) -> None:
    """In place: a party with no row of a class takes one from the party with the most.

    Loops over classes and parties (not rows); skipped for classes rarer than the parties.
    """
    for c in range(counts.shape[0]):
        if counts[c].sum() < counts.shape[1]:
            continue
        for p in np.flatnonzero(counts[c] == 0):
            donor = int(np.argmax(counts[c]))
            counts[c, donor] -= 1
            counts[c, p] += 1


def _integer_shares(p: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``p`` (cut points of the cumsum)."""
    cuts = np.floor(np.cumsum(p) * total).astype(np.int64)
    cuts[-1] = total  # floating cumsum may end just below 1
    return np.diff(cuts, prepend=0)


def _check_args(n_parties, scheme, alpha, min_rows) -> None:
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)) or n_parties < 1:
        raise ValueError(f"n_parties must be an integer >= 1, got {n_parties!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown partition scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not (0 < alpha < float("inf"))
    ):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    if isinstance(min_rows, bool) or not isinstance(min_rows, (int, np.integer)) or min_rows < 0:
        raise ValueError(f"min_rows must be an integer >= 0, got {min_rows!r}")
