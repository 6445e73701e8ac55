"""Build ``uci_default_credit.csv.gz`` from the raw UCI CSV shipped with FATE's examples.

Not imported by the package: run it by hand when the bundle has to be rebuilt::

    python fedrisk/data/bundled/make_bundle.py [SOURCE_CSV] [OUTPUT_GZ]

SOURCE_CSV defaults to ``../shared/data/fate/UCI_Credit_Card.csv`` next to the repository,
OUTPUT_GZ to ``uci_default_credit.csv.gz`` next to this script.

What it changes (see ATTRIBUTION.md): the id column ``ID`` becomes ``id``, the label
``default.payment.next.month`` becomes ``default``, header quotes are dropped, and every
value is checked to be an exact integer and written as a plain integer (the raw file writes
4,224 round amounts such as LIMIT_BAL ``5e+05`` in scientific notation). Rows and column
order are kept. The output is gzip level 9 with no file name and mtime 0 in its header, so
it is byte-for-byte reproducible from the same source.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
from pathlib import Path

# SHA-256 of FATE's examples/data/UCI_Credit_Card.csv at commit 5a06d9e4 (see the shared README).
SOURCE_SHA256 = "a0f0ab49d6326671d6cd83be5c88dcf18007025fe9a53ecd699119c871176ca1"

RENAME = {"ID": "id", "default.payment.next.month": "default"}
FEATURES = (
    ["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0"]
    + [f"PAY_{i}" for i in range(2, 7)]
    + [f"BILL_AMT{i}" for i in range(1, 7)]
    + [f"PAY_AMT{i}" for i in range(1, 7)]
)
EXPECTED_HEADER = ["ID", *FEATURES, "default.payment.next.month"]

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2].parent / "shared" / "data" / "fate" / "UCI_Credit_Card.csv"
DEFAULT_OUTPUT = HERE / "uci_default_credit.csv.gz"


def _exact_int(text: str) -> int:
    """'20000' -> 20000 and '5e+05' -> 500000 (the raw file writes some round amounts in
    scientific notation); anything that is not an exact integer is an error, never truncated."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not value.is_integer() or abs(value) >= 2**53:
            raise ValueError(f"{text!r} is not an exact integer") from None
        return int(value)


def build(source: Path, output: Path) -> None:
    raw = source.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"warning: {source} has sha256 {digest}, expected {SOURCE_SHA256}", file=sys.stderr)

    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    header, body = rows[0], [r for r in rows[1:] if r]
    if header != EXPECTED_HEADER:
        raise SystemExit(f"{source}: unexpected header {header}")

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([RENAME.get(name, name) for name in header])
    for line_no, row in enumerate(body, start=2):
        try:
            writer.writerow([_exact_int(value) for value in row])
        except ValueError as exc:
            raise SystemExit(f"{source}: line {line_no}: {exc}") from None

    with output.open("wb") as fh, gzip.GzipFile(
        filename="", mode="wb", fileobj=fh, compresslevel=9, mtime=0
    ) as gz:
        gz.write(out.getvalue().encode("ascii"))
    print(f"wrote {output} ({output.stat().st_size:,} bytes, {len(body):,} rows)")


if __name__ == "__main__":
    args = sys.argv[1:]
    build(
        Path(args[0]) if args else DEFAULT_SOURCE,
        Path(args[1]) if len(args) > 1 else DEFAULT_OUTPUT,
    )
