"""The aggregator's side of a FedAvg-based mode: Flower's round loop over a strategy."""

from __future__ import annotations

from collections.abc import Callable

from flwr.app import ArrayRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from fedrisk.flower.checkpoint import Checkpoint, ResumedStrategy
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.recording_grid import RecordingGrid
from fedrisk.horizontal.job import ServerJob
from fedrisk.horizontal.schedule import ScheduleDone

# (message, whether it goes to the server) -> (what it is, its form, receiver can read it)
Classifier = Callable[[Message, bool], tuple[str, str, bool]]


def fedavg_server_app(
    server_job: ServerJob,
    recorder: ServerRecorder,
    resume: Checkpoint | None,
    make_strategy: Callable[[], Strategy],
    classify: Classifier,
    initial: ArrayRecord,
    model_is_opaque: bool,
) -> ServerApp:
    """Run the strategy ``make_strategy`` builds for the scenario's rounds, recording every message.

    ``model_is_opaque``: the aggregator never holds the model in the clear (Paillier);
    the final arrays are kept for the banks' side of the harness to decode.
    ``resume`` continues an interrupted run after its last completed round.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        s = server_job.scenario
        strategy = make_strategy()
        recorder.strategy = strategy  # checkpoints, and tests that read what it released
        # Paillier: the banks hold the private key, the aggregator does not
        holders = server_job.party_names if server_job.paillier is not None else ()
        grid = RecordingGrid(grid, recorder.transcript, classify, key_holders=holders)
        recorder.party_of = grid.party_of
        done, start, evaluate, runner = 0, initial, recorder.evaluate, strategy
        try:
            if resume is None:
                grid.identify(
                    len(server_job.party_names),
                    quorum=s.quorum,
                    reply_timeout=s.federation.round_timeout,
                )
            else:
                done, start = resume.round, resume.arrays
                grid.party_of.update(resume.party_of)
                strategy.load_state(resume.server["strategy"])
                evaluate, runner = shifted(recorder, done), ResumedStrategy(strategy, done)
            try:
                result = runner.start(
                    grid=grid,
                    initial_arrays=start,
                    num_rounds=s.max_rounds - done,
                    timeout=s.federation.round_timeout,
                    evaluate_fn=evaluate,
                )
                final = result.arrays if s.max_rounds > done else start
            except ScheduleDone:  # stopped early, and the calibration rounds are over
                final = strategy.latest_arrays
        except Exception as exc:  # keep it for the harness: Ray swallows ServerApp errors
            recorder.error = exc
            raise
        stopper = getattr(strategy, "stopper", None)
        if stopper is not None:  # the aggregator read the pooled validation losses
            recorder.early_stopping = stopper.summary(
                s.rounds, strategy.schedule.last_training_round
            )
        if model_is_opaque:
            recorder.final_opaque = final
        else:
            recorder.final_params = final["params"].numpy()

    return app


def shifted(recorder: ServerRecorder, done: int):
    """evaluate_fn for a resumed run: Flower's round r is the run's round done + r."""

    def evaluate(rnd: int, arrays: ArrayRecord) -> MetricRecord | None:
        if rnd == 0:  # already scored before the interruption
            recorder.start_clock()
            return None
        return recorder.evaluate(rnd + done, arrays)

    return evaluate


__all__ = ["Classifier", "fedavg_server_app", "shifted"]
