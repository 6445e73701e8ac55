"""Run folders get the user's umask like any file they make; a folder holding the banks'
checkpoint stays owner-only until the run is done."""

import os
import stat

from fedrisk.runs.rundir import incomplete_dir, resumable_run_dir, staged_run_dir


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_run_folders_follow_the_umask_and_checkpoints_stay_owner_only(tmp_path):
    old = os.umask(0o027)
    try:
        with staged_run_dir(tmp_path / "a") as stage:
            (stage / "summary.json").write_text("{}")
        assert mode(tmp_path / "a") == 0o750
        assert mode(tmp_path / "a" / "summary.json") == 0o640
        out = tmp_path / "b"
        with resumable_run_dir(out, resume=False, checkpoint_file="server.json") as stage:
            (stage / "checkpoint").mkdir(mode=0o700)
            assert mode(incomplete_dir(out)) == 0o700  # holds the banks' checkpoint
            (stage / "summary.json").write_text("{}")
        assert mode(out) == 0o750 and not (out / "checkpoint").exists()
    finally:
        os.umask(old)


def test_a_sigterm_whose_exception_was_swallowed_still_stops_the_run(tmp_path):
    """numpy's text parsing can clear the exception a signal handler raised; the run
    folder must not appear anyway, and the command must end as terminated."""
    import signal

    import pytest

    from fedrisk.errors import Terminated
    from fedrisk.runs.signals import stop_on_termination

    with pytest.raises(Terminated), stop_on_termination():
        with staged_run_dir(tmp_path / "out") as stage:
            (stage / "summary.json").write_text("{}")
            try:  # C code that swallows whatever was raised in it
                os.kill(os.getpid(), signal.SIGTERM)
                signal.sigtimedwait([], 0) if hasattr(signal, "sigtimedwait") else None
            except Terminated:
                pass
    assert list(tmp_path.iterdir()) == []
