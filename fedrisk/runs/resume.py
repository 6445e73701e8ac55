"""``fedrisk run --resume DIR``: continue an interrupted in-process run."""

from __future__ import annotations

import tomllib
from pathlib import Path

from fedrisk.errors import InputError
from fedrisk.flower.checkpoint import read_checkpoint
from fedrisk.runs.horizontal import run_horizontal
from fedrisk.runs.outputs import RunOutcome
from fedrisk.runs.rundir import incomplete_dir
from fedrisk.scenario import apply_override, parse_override, scenario_from_dict

RESUME_OVERRIDES = (
    "federation.min_parties",
    "federation.dropout",
    "federation.stragglers",
    "federation.straggler_delay",
    "federation.round_timeout",
)


def resume_run(
    out: Path,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
) -> RunOutcome:
    """Continue the interrupted run that was to write ``out``, from its checkpoint.

    ``overrides`` (``--set``) may change only :data:`RESUME_OVERRIDES`, e.g. to go on
    with fewer banks after a run stopped for lack of them; without overrides the
    resumed run ends exactly where an uninterrupted one would.
    """
    stage = out if out.name.endswith(".incomplete") else incomplete_dir(out)
    if stage is out:
        out = out.parent / out.name[1 : -len(".incomplete")]
    ckpt = read_checkpoint(stage / "checkpoint", f"--resume {out}")
    raw = tomllib.loads(ckpt.scenario_toml)
    for item in overrides:
        key = ".".join(parse_override(item)[0])
        if key not in RESUME_OVERRIDES:
            raise InputError(
                f"--set {item}: a resumed run may change only " + ", ".join(RESUME_OVERRIDES)
            )
        apply_override(raw, item, f"--resume {out}")
    s = scenario_from_dict(raw, ckpt.server["scenario_path"])
    return run_horizontal(
        s, out, show_progress=show_progress, verbose=verbose, client_mods=client_mods, resume=ckpt
    )


__all__ = ["RESUME_OVERRIDES", "resume_run"]
