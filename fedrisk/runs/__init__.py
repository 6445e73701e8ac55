"""The run harness: one scenario to one run folder.

- :mod:`.run`: ``run_scenario``, dispatched on kind x engine;
- :mod:`.horizontal`, :mod:`.vertical`, :mod:`.deployed`: the pipelines (prepare ->
  federate -> evaluate -> write) for banks, for a bank and data parties, and for the
  Deployment Engine;
- :mod:`.resume`, :mod:`.checkpointing`: per-round checkpoints and ``--resume``;
- :mod:`.summary`, :mod:`.outputs`, :mod:`.progress`, :mod:`.rundir`: summary.json, the
  other files, the progress bar, folders that appear whole or not at all;
- :mod:`.sweep`, :mod:`.demo`: many runs for a privacy/accuracy curve; the narrated demo.

The package imports nothing itself: ``fedrisk`` and the command line load what they use.
"""

__all__ = [
    "checkpointing",
    "demo",
    "deployed",
    "horizontal",
    "outputs",
    "progress",
    "resume",
    "rundir",
    "run",
    "summary",
    "sweep",
    "vertical",
]
