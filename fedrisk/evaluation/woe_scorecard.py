"""The points table of a WOE scorecard: integer points per bin of every selected
characteristic.

The logistic model is trained on WOE-coded columns, P(default) = σ(b + Σ_j β_j·WOE_j(x)),
so with the credit convention of :mod:`fedrisk.evaluation.scorecard`
(``factor = PDO / ln 2``, ``offset = base_score − factor · ln(base_odds)``)

    score(x) = base_points + Σ_j points_j(bin of x_j)
    base_points = offset − factor · b          points_j(bin) = −factor · β_j · WOE_j(bin)

Printed scorecards round each bin's points to an integer (and the base points too); the
integer score then ranks customers almost exactly as the model does (the run reports the
Spearman correlation on the held-out customers). ``scorecard.csv`` has one row per bin
(the missing bin included): characteristic, owner, bin, label, customers, defaulters,
WOE, points; ``scorecard.json`` the same with the convention and the coefficients.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.evaluation.scorecard import CSV_FILE, JSON_FILE, scaling
from fedrisk.models.binning import (
    GRID_CELLS,
    GRID_LIMIT,
    Binning,
    CategoricalBinning,
    NumericBinning,
)

WOE_FORMAT = "fedrisk-woe-scorecard-v1"
CSV_FIELDS = (
    "characteristic",
    "owner",
    "bin",
    "label",
    "customers",
    "defaulters",
    "woe",
    "coefficient",
    "points",
)


@dataclass(frozen=True)
class Characteristic:
    """One selected characteristic: its bins (``binning`` None where the bins are
    another party's: labels are then bin numbers only), WOE and points per bin."""

    name: str
    owner: str
    coefficient: float  # β on the raw WOE value
    woe: np.ndarray
    good: np.ndarray
    bad: np.ndarray
    labels: tuple[str, ...]
    binning: Binning | None = None

    @property
    def exact_points(self) -> np.ndarray:
        return -self.coefficient * self.woe  # times factor in WoeScorecard

    def rows(self, factor: float) -> list[dict[str, Any]]:
        points = np.rint(-factor * self.coefficient * self.woe).astype(int)
        return [
            {
                "characteristic": self.name,
                "owner": self.owner,
                "bin": k + 1,
                "label": self.labels[k],
                "customers": int(self.good[k] + self.bad[k]),
                "defaulters": int(self.bad[k]),
                "woe": round(float(self.woe[k]), 6),
                "coefficient": round(self.coefficient, 6),
                "points": int(points[k]),
            }
            for k in range(len(self.woe))
        ]


@dataclass(frozen=True)
class WoeScorecard:
    base_score: float
    base_odds: float
    pdo: float
    intercept: float  # b, on raw WOE values
    characteristics: tuple[Characteristic, ...]

    @property
    def factor(self) -> float:
        return scaling(self.base_score, self.base_odds, self.pdo)[0]

    @property
    def base_points(self) -> float:
        factor, offset = scaling(self.base_score, self.base_odds, self.pdo)
        return offset - factor * self.intercept

    def points(self, bins: np.ndarray) -> np.ndarray:
        """Integer scores of customers given their bin index per characteristic
        (``bins``: (rows, characteristics), 0-based, in ``characteristics`` order)."""
        f = self.factor
        total = np.full(bins.shape[0], int(round(self.base_points)), dtype=np.int64)
        for j, c in enumerate(self.characteristics):
            total += np.rint(-f * c.coefficient * c.woe).astype(np.int64)[bins[:, j]]
        return total

    def logit(self, bins: np.ndarray) -> np.ndarray:
        """The model's log-odds of default for the same customers (exact, unrounded)."""
        z = np.full(bins.shape[0], self.intercept)
        for j, c in enumerate(self.characteristics):
            z += c.coefficient * c.woe[bins[:, j]]
        return z

    def rows(self) -> list[dict[str, Any]]:
        return [r for c in self.characteristics for r in c.rows(self.factor)]

    def hiding(self, owners: set[str]) -> WoeScorecard:
        """The card as its holder sees it when ``owners`` keep their own bins: their
        characteristics' bins by number only (no cut points, no categories)."""
        return replace(
            self,
            characteristics=tuple(
                replace(
                    c,
                    binning=None,
                    labels=tuple(f"bin {k + 1} (kept by {c.owner})" for k in range(len(c.woe))),
                )
                if c.owner in owners
                else c
                for c in self.characteristics
            ),
        )

    def part_of(self, owner: str) -> dict[str, Any]:
        """``owner``'s own characteristics with their bins (its private part)."""
        mine = replace(
            self, characteristics=tuple(c for c in self.characteristics if c.owner == owner)
        )
        return {**mine.to_json(), "owner": owner}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": WOE_FORMAT,
            "convention": "score = base_points + sum of the points of each characteristic's "
            "bin; points = -factor * coefficient * WOE (rounded); factor = pdo / ln 2; "
            "offset = base_score - factor * ln(base_odds); base_points = offset - factor * "
            "intercept; WOE = ln(share of goods / share of defaulters) in the bin",
            "base_score": self.base_score,
            "base_odds": self.base_odds,
            "pdo": self.pdo,
            "factor": self.factor,
            "intercept": self.intercept,
            "base_points": self.base_points,
            "base_points_rounded": int(round(self.base_points)),
            "characteristics": [
                {
                    "name": c.name,
                    "owner": c.owner,
                    "coefficient": c.coefficient,
                    "binning": binning_record(c.binning),
                    "bins": [
                        {k: r[k] for k in CSV_FIELDS if k not in ("characteristic", "owner")}
                        for r in c.rows(self.factor)
                    ],
                }
                for c in self.characteristics
            ],
        }


def binning_record(binning: Binning | None) -> dict[str, Any] | None:
    """How raw values find their bin (None: the bins are another party's, kept there):
    numeric columns by grid cell (:func:`fedrisk.models.binning.grid_cells`), bin k
    holding ``cuts[k-1] <= cell < cuts[k]``; text columns by category, unseen ones in
    bin ``unseen``; missing values in the last bin, or in bin ``missing_to`` when they
    were too few for one."""
    if binning is None:
        return None
    if isinstance(binning, NumericBinning):
        return {
            "kind": "numeric",
            "grid": {"limit": GRID_LIMIT, "cells": GRID_CELLS},
            "cuts": list(binning.cuts),
            "edges": binning.edges(),
            "missing_to": binning.missing_to,
        }
    return {
        "kind": "text",
        "groups": [list(g) for g in binning.groups],
        "unseen": binning.unseen,
        "missing_to": binning.missing_to,
    }


def binning_from_record(name: str, record: dict[str, Any]) -> Binning:
    """The inverse of :func:`binning_record` (ValueError on a record it cannot use)."""
    if record.get("kind") == "numeric":
        grid = record.get("grid", {})
        if grid.get("limit") != GRID_LIMIT or grid.get("cells") != GRID_CELLS:
            raise ValueError(
                f"{name}: bins on another grid ({grid}); this fedrisk uses "
                f"limit {GRID_LIMIT}, {GRID_CELLS} cells"
            )
        to = record.get("missing_to")
        return NumericBinning(name, tuple(int(c) for c in record["cuts"]), to)
    if record.get("kind") == "text":
        groups = tuple(tuple(str(c) for c in g) for g in record["groups"])
        return CategoricalBinning(name, groups, int(record["unseen"]), record.get("missing_to"))
    raise ValueError(f"{name}: binning kind must be 'numeric' or 'text'")


def write_woe_scorecard(card: WoeScorecard, folder: Path) -> tuple[Path, Path]:
    """``scorecard.json`` and ``scorecard.csv`` (one row per bin) in ``folder``."""
    folder = Path(folder)
    j, c = folder / JSON_FILE, folder / CSV_FILE
    j.write_text(json.dumps(card.to_json(), indent=2) + "\n")
    with open(c, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(card.rows())
    return j, c


__all__ = [
    "CSV_FIELDS",
    "WOE_FORMAT",
    "Characteristic",
    "WoeScorecard",
    "binning_from_record",
    "binning_record",
    "write_woe_scorecard",
]
