"""What each kind of joint model asks of a data party when the bank scores an applicant,
and how the bank combines the answers (a small registry by model kind).

Each data party computes one fixed-size payload per customer from its own part of the
model and its own columns (:meth:`PartySide.payload`): the bank fetches the applicants'
payloads by anonymous query and combines them with its own part
(:meth:`QueryModel.combine`):

* ``logistic`` (Paillier or secret-shared): the party's partial score, 8 bytes; an
  applicant some party does not hold gets the bank-only model.
* ``scorecard`` (WOE): the party's partial log-odds and partial points, 16 bytes; an
  applicant some party does not hold has that party's characteristics in their missing
  bins, as a scorecard scores any applicant with no data for a characteristic.
* ``secureboost``: the party's left/right decision at each of its split ids, one bit each;
  an applicant some party does not hold gets the bank-only trees.

Loading joins every party's part (the simulator's view, as :func:`fedrisk.load_model`);
each side is then handed only its own part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy.special import expit

from fedrisk.errors import InputError
from fedrisk.model_io import (
    SCORECARD_FILE,
    TREES_DIR,
    TREES_FILE,
    FederatedBoostedTrees,
    FederatedVerticalLogistic,
    FederatedWoeScorecard,
    LogisticPart,
    load_model,
    load_vertical_logistic,
    read_secureboost,
    vertical_bank_file,
)

__all__ = ["PartySide", "QueryModel", "Scored", "query_model"]


class PartySide(Protocol):
    """A data party's side: its model columns and its payload per customer."""

    columns: tuple[str, ...]

    def payload(self, columns: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class Scored:
    pd: np.ndarray
    model: np.ndarray  # per applicant: "joint", "bank_only" or "missing_bins"
    points: np.ndarray | None = None  # scorecards: integer points (higher = lower risk)


def _matrix(columns: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    return np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in names])


def _all_found(found: dict[str, np.ndarray], parties: tuple[str, ...], n: int) -> np.ndarray:
    return np.logical_and.reduce([found[k] for k in parties]) if parties else np.ones(n, bool)


class QueryModel:
    """The bank's side of one kind of joint model (subclasses below)."""

    kind = ""
    text_columns = False  # whether the bank's applicant columns may hold text or missing

    def __init__(self, label_holder: str, parties: tuple[str, ...], bank_columns) -> None:
        self.label_holder = label_holder
        self.parties = tuple(parties)
        self.bank_columns = tuple(bank_columns)

    def party_side(self, name: str) -> PartySide:
        raise NotImplementedError

    def combine(
        self,
        bank: dict[str, np.ndarray],
        payloads: dict[str, np.ndarray],
        found: dict[str, np.ndarray],
    ) -> Scored:
        """Scores from the bank's columns, each party's payloads (uint8 rows, garbage
        where not found) and who found whom."""
        raise NotImplementedError


# --- logistic ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LogisticSide:
    part: LogisticPart

    @property
    def columns(self) -> tuple[str, ...]:
        return self.part.columns

    def payload(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        u = np.ascontiguousarray(self.part.partial_scores(_matrix(columns, self.columns)), "<f8")
        return u.view(np.uint8).reshape(len(u), 8)


class LogisticQuery(QueryModel):
    kind = "logistic"

    def __init__(self, model: FederatedVerticalLogistic) -> None:
        super().__init__(model.label_holder, tuple(model.parts), model.bank.columns)
        self.model = model

    def party_side(self, name: str) -> PartySide:
        return _LogisticSide(self.model.parts[name])

    def combine(self, bank, payloads, found) -> Scored:
        X = _matrix(bank, self.bank_columns)
        joint = _all_found(found, self.parties, len(X))
        pd = self.model.fallback_proba(X)
        if joint.any():
            partial = {
                k: np.ascontiguousarray(payloads[k][joint]).view("<f8").reshape(-1)
                for k in self.parties
            }
            pd[joint] = expit(self.model.joint_scores(X[joint], partial))
        return Scored(pd, np.where(joint, "joint", "bank_only"))


# --- WOE scorecard ------------------------------------------------------------------------


def _card(
    card: FederatedWoeScorecard, owner: str | None, intercept: float
) -> FederatedWoeScorecard:
    """The characteristics of ``owner`` (or of every party but the data parties, None)."""
    chars = [c for c in card.characteristics_ if c.owner == owner]
    return FederatedWoeScorecard(
        chars, intercept, base_score=card.base_score_, base_odds=card.base_odds_, pdo=card.pdo_
    )


@dataclass(frozen=True)
class _ScorecardSide:
    card: FederatedWoeScorecard  # the party's characteristics, intercept 0

    @property
    def columns(self) -> tuple[str, ...]:
        return self.card.feature_names_

    def payload(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        z = np.ascontiguousarray(self.card.decision_function(columns), "<f8")
        points = self.card.score(columns) - self.card.base_points_rounded_
        pts = np.ascontiguousarray(points, "<i8")
        return np.hstack([z.view(np.uint8).reshape(-1, 8), pts.view(np.uint8).reshape(-1, 8)])


class ScorecardQuery(QueryModel):
    kind = "scorecard"
    text_columns = True

    def __init__(self, card: FederatedWoeScorecard, label_holder: str) -> None:
        parties = tuple(p for p in card.parties_ if p != label_holder)
        self.bank_card = _card(card, label_holder, card.intercept_)
        super().__init__(label_holder, parties, self.bank_card.feature_names_)
        self.card = card
        # no data at a party: each of its characteristics where the card puts a missing
        # value (its missing bin, or the bin a small missing bin was merged into)
        self.missing = {}
        for k in parties:
            z, points = 0.0, 0
            for c, p in zip(card.characteristics_, card.points_):
                if c.owner == k:
                    b = int(c.assign(np.array([None], dtype=object))[0])
                    z, points = z + c.coefficient * c.woe[b], points + int(p[b])
            self.missing[k] = (z, points)

    def party_side(self, name: str) -> PartySide:
        return _ScorecardSide(_card(self.card, name, 0.0))

    def combine(self, bank, payloads, found) -> Scored:
        z = self.bank_card.decision_function(bank)
        points = self.bank_card.score(bank)
        for k in self.parties:
            rows = np.ascontiguousarray(payloads[k])
            got = found[k]
            z = z + np.where(got, rows[:, :8].copy().view("<f8").reshape(-1), self.missing[k][0])
            points = points + np.where(
                got, rows[:, 8:].copy().view("<i8").reshape(-1), self.missing[k][1]
            )
        joint = _all_found(found, self.parties, len(z))
        return Scored(expit(z), np.where(joint, "joint", "missing_bins"), points)


# --- SecureBoost -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _TreesSide:
    splits: tuple[tuple[int, str, float], ...]  # (split id, column, threshold), by id

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for _, c, _ in self.splits))

    def payload(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(columns.values()))) if columns else 0
        bits = np.zeros((n, max(1, len(self.splits))), dtype=bool)
        for j, (_, column, cut) in enumerate(self.splits):
            bits[:, j] = np.asarray(columns[column], dtype=np.float64) <= cut
        return np.packbits(bits, axis=1, bitorder="little")


class TreesQuery(QueryModel):
    kind = "secureboost"

    def __init__(self, folder: Path) -> None:
        files = read_secureboost(folder / TREES_DIR / TREES_FILE)  # read and checked once
        sources = files.sources
        self.sides = {
            name: _TreesSide(tuple(sorted((sid, c, t) for sid, (c, t) in splits.items())))
            for name, splits in zip(sources[1:], files.splits[1:])
        }
        self.bank_splits = files.splits[0]
        fallback = files.parts[0].get("fallback")
        if not isinstance(fallback, dict):
            raise InputError(
                f"{folder / TREES_DIR / (sources[0] + '.json')}: no bank-only fallback "
                "model (runs of this version keep one); rerun the scenario to score"
            )
        self.fallback = FederatedBoostedTrees(
            fallback["columns"], fallback["trees"], fallback["base_score"]
        )
        # the bank-only trees may split on any of the bank's columns
        super().__init__(sources[0], sources[1:], self.fallback.feature_names_)
        self.trees = files.record["trees"]
        self.base = float(files.record["base_score"])
        # where each party's split id sits in its payload
        self.bit_of = {
            k: {sid: j for j, (sid, _, _) in enumerate(self.sides[name].splits)}
            for k, name in enumerate(sources[1:], start=1)
        }

    def party_side(self, name: str) -> PartySide:
        return self.sides[name]

    def combine(self, bank, payloads, found) -> Scored:
        n = len(next(iter(bank.values())))
        joint = _all_found(found, self.parties, n)
        pd = self.fallback.predict_proba(_matrix(bank, self.fallback.feature_names_))[:, 1]
        if joint.any():
            bits = {
                k: np.unpackbits(payloads[name][joint], axis=1, bitorder="little").astype(bool)
                for k, name in enumerate(self.parties, start=1)
            }
            cols = {c: np.asarray(v, dtype=np.float64)[joint] for c, v in bank.items()}
            raw = np.full(int(joint.sum()), self.base)
            for tree in self.trees:
                raw += self._walk(tree, cols, bits, int(joint.sum()))
            pd[joint] = expit(raw)
        return Scored(pd, np.where(joint, "joint", "bank_only"))

    def _walk(self, tree, cols, bits, n) -> np.ndarray:
        source, split = tree["source"], tree["split"]
        left, right, value = tree["left"], tree["right"], np.asarray(tree["value"], float)
        at = np.zeros(n, dtype=np.int64)
        is_split = np.asarray(source) >= 0
        for _ in range(len(source)):  # at most one step per level
            live = np.flatnonzero(is_split[at])
            if not live.size:
                break
            for node in np.unique(at[live]):
                rows = live[at[live] == node]
                k, sid = source[node], split[node]
                if k == 0:
                    column, cut = self.bank_splits[sid]
                    go_left = cols[column][rows] <= cut
                else:
                    go_left = bits[k][rows, self.bit_of[k][sid]]
                at[rows] = np.where(go_left, left[node], right[node])
        return value[at]


# --- the registry ---------------------------------------------------------------------------


def query_model(folder: Path, label_holder: str) -> QueryModel:
    """The query model of a vertical run folder, by what its ``model/`` holds; InputError
    when it holds none."""
    if (folder / TREES_DIR / TREES_FILE).is_file():
        return TreesQuery(folder)
    if (folder / SCORECARD_FILE).is_file():
        card = load_model(folder)
        if isinstance(card, FederatedWoeScorecard):
            return ScorecardQuery(card, label_holder)
    bank_file = vertical_bank_file(folder)
    if bank_file is not None:
        return LogisticQuery(load_vertical_logistic(bank_file))
    raise InputError(f"{folder}/{TREES_DIR}: no model parts to score with")
