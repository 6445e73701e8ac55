"""Write the German-credit-STYLE scorecard files next to this script.

SYNTHETIC DATA: every value is drawn here by numpy (default_rng(2024)); nothing comes from
the UCI "Statlog (German Credit Data)" set, whose column names and value kinds it only
imitates, so there is no licence to honour. Running it again writes identical files.

Files (1,000 customers, ids 1..1000, about 30 % defaults):

* ``german-style-credit.csv`` — id, y and every characteristic (a horizontal scorecard);
* ``german-style-bank.csv`` — the vertical label holder: id, y, checking_status,
  credit_history, duration, credit_amount, savings_status, existing_credits for 950 of
  the customers;
* ``german-style-bureau.csv`` — a credit bureau: id, purpose, employment, personal_status,
  housing, job, installment_rate, age for 900 of the customers plus 60 the bank does not
  have (ids 1001..1060).

Text columns carry categories (two ``purpose`` values are rare, < 1 %); missing cells are
left as a csv reader sees them in the wild: ~5 % empty ``credit_amount``, ~3 % "NA" ``age``,
~4 % empty ``savings_status``, a few "?" ``employment``. The default probability depends on
text and numeric columns (some monotone, some not) and mildly on missingness itself, so a
WOE scorecard reaches an AUC of about 0.75-0.8.

    python scenarios/data/make_german_style.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
N = 1000
N_BANK = 950
N_BUREAU = 900
N_BUREAU_ONLY = 60
DEFAULT_RATE = 0.30
SIGNAL = 1.4  # scales every effect below: a WOE scorecard's held-out AUC is about 0.78

# (value, share, effect on the log-odds of default)
CHECKING = [
    ("<0", 0.27, 0.9),
    ("0<=X<200", 0.27, 0.5),
    (">=200", 0.06, -0.2),
    ("no checking", 0.40, -0.9),
]
HISTORY = [
    ("no credits", 0.04, 1.1),
    ("all paid", 0.05, 0.9),
    ("paid", 0.53, 0.1),
    ("delayed", 0.09, 0.2),
    ("critical", 0.29, -0.6),
]
PURPOSE = [
    ("new car", 0.23, 0.35),
    ("used car", 0.10, -0.6),
    ("furniture", 0.18, 0.0),
    ("tv", 0.28, -0.25),
    ("appliance", 0.012, 0.3),
    ("repairs", 0.022, 0.3),
    ("education", 0.05, 0.5),
    ("retraining", 0.007, -0.5),  # rare
    ("vacation", 0.006, 0.6),  # rare
    ("business", 0.103, 0.1),
]
SAVINGS = [
    ("<100", 0.60, 0.3),
    ("100-500", 0.10, 0.15),
    ("500-1000", 0.06, -0.3),
    (">=1000", 0.05, -0.6),
    ("unknown", 0.19, -0.45),
]
EMPLOYMENT = [
    ("unemployed", 0.06, 0.25),
    ("<1", 0.17, 0.35),
    ("1-4", 0.34, 0.05),
    ("4-7", 0.17, -0.25),
    (">=7", 0.26, -0.15),
]
PERSONAL = [
    ("single", 0.55, -0.1),
    ("female", 0.31, 0.15),
    ("married", 0.09, -0.05),
    ("divorced", 0.05, 0.2),
]
HOUSING = [("own", 0.71, -0.2), ("rent", 0.18, 0.3), ("free", 0.11, 0.3)]
JOB = [
    ("unskilled nonres", 0.02, 0.1),
    ("unskilled", 0.20, 0.0),
    ("skilled", 0.63, 0.0),
    ("manager", 0.15, 0.1),
]

BANK_COLUMNS = ["id", "y", "checking_status", "credit_history", "duration", "credit_amount",
                "savings_status", "existing_credits"]  # fmt: skip
BUREAU_COLUMNS = ["id", "purpose", "employment", "personal_status", "housing", "job",
                  "installment_rate", "age"]  # fmt: skip
ALL_COLUMNS = ["id", "y", "checking_status", "credit_history", "purpose", "savings_status",
               "employment", "personal_status", "housing", "job", "duration", "credit_amount",
               "installment_rate", "age", "existing_credits"]  # fmt: skip


def categorical(rng, levels, n):
    """Drawn values and their log-odds effects."""
    values = np.array([v for v, _, _ in levels])
    share = np.array([p for _, p, _ in levels])
    effect = np.array([e for _, _, e in levels])
    k = rng.choice(len(levels), size=n, p=share / share.sum())
    return values[k], effect[k]


def customers(rng, n):
    """n customers' characteristics (strings, as written) and their log-odds of default
    without the intercept."""
    checking, e_checking = categorical(rng, CHECKING, n)
    history, e_history = categorical(rng, HISTORY, n)
    purpose, e_purpose = categorical(rng, PURPOSE, n)
    savings, e_savings = categorical(rng, SAVINGS, n)
    employment, e_employment = categorical(rng, EMPLOYMENT, n)
    personal, e_personal = categorical(rng, PERSONAL, n)
    housing, e_housing = categorical(rng, HOUSING, n)
    job, e_job = categorical(rng, JOB, n)

    # duration in months: mostly multiples of 6, longer for cars and businesses
    base = rng.gamma(3.0, 6.5, n) + np.isin(purpose, ["new car", "used car", "business"]) * 4
    duration = np.clip(np.where(rng.random(n) < 0.7, np.round(base / 6) * 6, np.round(base)), 4, 72)
    # credit amount: log-normal, growing with the duration; rounded to 10
    log_amount = 6.9 + 0.028 * duration + rng.normal(0, 0.55, n) + (job == "manager") * 0.3
    amount = np.clip(np.round(np.exp(log_amount), -1), 250, 18_420)
    # instalment as % of disposable income (1-4): smaller loans often take a higher rate
    installment = rng.choice([1, 2, 3, 4], size=n, p=[0.14, 0.23, 0.16, 0.47])
    installment = np.where(amount > 8000, np.minimum(installment, 2), installment)
    age = np.clip(np.round(19 + rng.gamma(2.2, 7.5, n)), 19, 75)
    existing = 1 + rng.binomial(3, np.where(history == "critical", 0.35, 0.08))

    logit = (
        e_checking
        + e_history
        + e_purpose
        + e_savings
        + e_employment
        + e_personal
        + e_housing
        + e_job
        + 0.035 * (duration - 20)  # monotone: longer loans default more
        + 0.25 * (np.log(amount) - 7.9) ** 2  # U-shaped in the amount
        + 0.18 * (installment - 2.5)  # monotone
        - 0.022 * (np.minimum(age, 60) - 35)  # monotone, flat after 60
        + 0.1 * (existing - 1)
    )

    # missing cells; missingness itself mildly informative
    no_amount, no_age, no_savings, no_employment = (
        np.isin(np.arange(n), rng.choice(n, size=round(share * n), replace=False))
        for share in (0.05, 0.03, 0.04, 0.012)
    )
    logit = SIGNAL * (logit + 0.35 * no_amount + 0.2 * no_age + 0.4 * no_savings)
    cells = {
        "checking_status": checking,
        "credit_history": history,
        "purpose": purpose,
        "savings_status": np.where(no_savings, "", savings),
        "employment": np.where(no_employment, "?", employment),
        "personal_status": personal,
        "housing": housing,
        "job": job,
        "duration": duration.astype(int).astype(str),
        "credit_amount": np.where(no_amount, "", amount.astype(int).astype(str)),
        "installment_rate": installment.astype(int).astype(str),
        "age": np.where(no_age, "NA", age.astype(int).astype(str)),
        "existing_credits": existing.astype(str),
    }
    return cells, logit


def intercept(logit, rate):
    """The intercept giving an expected default rate ``rate`` (bisection)."""
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def write(path, header, cells, rows):
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        for r in rows:
            out.writerow([cells[c][r] for c in header])


def main():
    rng = np.random.default_rng(2024)
    n_all = N + N_BUREAU_ONLY  # the last 60 are known to the bureau only
    cells, logit = customers(rng, n_all)
    p = 1 / (1 + np.exp(-(logit + intercept(logit[:N], DEFAULT_RATE))))
    cells["y"] = (rng.random(n_all) < p).astype(int).astype(str)
    cells["id"] = np.arange(1, n_all + 1).astype(str)

    write(HERE / "german-style-credit.csv", ALL_COLUMNS, cells, range(N))
    bank = rng.choice(N, size=N_BANK, replace=False)
    write(HERE / "german-style-bank.csv", BANK_COLUMNS, cells, bank)  # random order
    bureau = np.concatenate([rng.choice(N, size=N_BUREAU, replace=False), np.arange(N, n_all)])
    write(HERE / "german-style-bureau.csv", BUREAU_COLUMNS, cells, rng.permutation(bureau))


if __name__ == "__main__":
    main()
