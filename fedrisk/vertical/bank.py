"""The bank (FATE's *guest*): label holder, Paillier key holder, the Flower ServerApp.

It drives the whole exchange (:mod:`fedrisk.vertical.protocol`): PSI with each data party
in turn, the held-out split, then per mini-batch partial scores, encrypted residuals and
masked gradients, the joint prediction on the held-out customers and, unless
``model.calibration = "none"``, the calibration of the joint model on the training
customers (:mod:`fedrisk.vertical.calibration`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp
from scipy.special import expit

from fedrisk.crypto import workers
from fedrisk.crypto.hetero import FEATURE_FRAC_BITS, RESIDUAL_FRAC_BITS, encode_signed
from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher, VectorDecryptor
from fedrisk.crypto.psi import PsiParty
from fedrisk.data.scaling import fit_party_scaler
from fedrisk.data.split import split_indices
from fedrisk.errors import InputError, ProtocolError
from fedrisk.evaluation.metrics import score_metrics
from fedrisk.flower.exchange import exchange
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.recording_grid import RecordingGrid
from fedrisk.privacy.mechanisms import clip_rows
from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import PartySecret
from fedrisk.vertical.calibration import Calibration, fit_calibration
from fedrisk.vertical.protocol import QUERY, BankJob, VerticalOutcome, classify_vertical


def make_bank_app(job: BankJob, recorder: ServerRecorder, outcome: VerticalOutcome) -> ServerApp:
    return bank_server_app(
        job,
        recorder,
        classify_vertical,
        lambda grid, nodes: _run_bank(job, grid, nodes, recorder, outcome),
    )


def bank_server_app(
    job: BankJob,
    recorder: ServerRecorder,
    classify: Callable[[Message, bool], tuple[str, str, bool]],
    run: Callable[[RecordingGrid, list[int]], None],
    *,
    helpers: tuple[str, ...] = (),
    key_holders: tuple[str, ...] | None = None,
) -> ServerApp:
    """The bank's ServerApp for any vertical model: the recording grid (``classify``
    names each message in the transcript), the identify handshake, then ``run(grid,
    the data parties' node ids in job order, then the ``helpers``' (e.g. a dealer))``;
    an error is kept for the harness. ``key_holders``: who can read the run's
    ciphertexts (the bank, unless the protocol says otherwise)."""
    app = ServerApp()
    holders = [job.name] if key_holders is None else list(key_holders)

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        grid = RecordingGrid(grid, recorder.transcript, classify, job.name, key_holders=holders)
        try:
            grid.identify(len(job.party_names) + len(helpers))
            nodes = {name: node for node, name in grid.party_of.items()}
            run(grid, [nodes[n] for n in (*job.party_names, *helpers)])
        except Exception as exc:
            recorder.error = exc
            raise

    return app


def ask(
    grid: RecordingGrid,
    nodes: list[int],
    message_type: str,
    configs: list[dict],
    what: str,
    rnd: int,
) -> list[Message]:
    contents = [
        RecordDict({"config": ConfigRecord({**cfg, "server-round": rnd})}) for cfg in configs
    ]
    return exchange(grid, nodes, contents, message_type, what, f"round {rnd}")


def align_customers(
    job: BankJob, grid: RecordingGrid, nodes: list[int], outcome: VerticalOutcome
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSI with each data party in turn (chained through the bank), then the held-out
    split, told to every party. Returns (the bank's rows of the shared customers, the
    training positions among them, the held-out positions); fills ``outcome``'s
    alignment fields."""
    s = job.scenario
    # 1. PSI, chained through the bank (fresh bank key per exchange; its shuffle from the
    # bank's own secret, so no party can undo it)
    shared = [str(i) for i in job.ids]
    for k, node in enumerate(nodes):
        bank_psi = PsiParty(job.name, shared, job.secret.rng("vertical/psi", k))
        (reply,) = ask(
            grid,
            [node],
            QUERY,
            [{"stage": "psi-mask", "bank-masked": bank_psi.masked_ids()}],
            "private set intersection",
            0,
        )
        cfg = reply.content["config"]
        their_masked = list(cfg["masked"])
        outcome.party_sizes[job.party_names[k]] = len(their_masked)
        their_double = bank_psi.mask_again(their_masked)
        (reply2,) = ask(
            grid,
            [node],
            QUERY,
            [{"stage": "psi-finish", "my-double": their_double}],
            "private set intersection",
            0,
        )
        shared = bank_psi.intersect(list(cfg["bank-double"]), their_double)
        if int(reply2.content["config"]["count"]) < len(shared):
            raise ProtocolError(f"round 0: {job.party_names[k]} found fewer shared ids")
        if not shared:
            raise InputError(
                f"{s.source_file}: federation.parties: the bank and "
                f"{job.party_names[k]} (with the parties before it) share no "
                "customer ids; check the id columns"
            )
    shared = sorted(shared)
    outcome.aligned = len(shared)
    # 2. held-out split by the bank (it holds the labels), told to every party; drawn from
    # the bank's secret (from the public seed, a party could rerun it and read labels off
    # which rows were held out)
    pos = {str(i): k for k, i in enumerate(job.ids)}
    rows = np.array([pos[i] for i in shared], dtype=np.int64)
    y_all = job.y[rows]
    # under label DP the split is not stratified: every party is told it, so it (and the
    # bank's z-scoring of its training rows) may not depend on the labels; it is drawn from
    # the bank's own secret
    tr, te = split_indices(
        y_all if job.dp is None else np.zeros_like(y_all),
        s.data.test_fraction,
        job.secret.seed_int("vertical/split"),
    )
    train_ids = [shared[i] for i in tr]
    test_ids = [shared[i] for i in te]
    ask(
        grid,
        nodes,
        QUERY,
        [{"stage": "align", "train-ids": train_ids, "test-ids": test_ids}] * len(nodes),
        "alignment",
        0,
    )
    outcome.train_ids, outcome.test_ids = np.array(train_ids), np.array(test_ids)
    return rows, tr, te


def aligned_bank_rows(
    job: BankJob, grid: RecordingGrid, nodes: list[int], outcome: VerticalOutcome
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`align_customers`, then the bank's own rows of the training and held-out
    customers, scaled on its training rows alone: (X_train, y_train as floats, X_test,
    y_test); fills ``outcome``'s bank fields."""
    rows, tr, te = align_customers(job, grid, nodes, outcome)
    scaler = fit_party_scaler(job.X[rows[tr]], job.scenario.data.scaling)
    Xb, yb = scaler.transform(job.X[rows[tr]]), job.y[rows[tr]].astype(np.float64)
    Xb_test, y_test = scaler.transform(job.X[rows[te]]), job.y[rows[te]]
    outcome.bank_train_X, outcome.bank_test_X, outcome.test_y = Xb, Xb_test, y_test
    outcome.bank_scaler = scaler
    return Xb, yb, Xb_test, y_test


def _run_bank(
    job: BankJob,
    grid: RecordingGrid,
    nodes: list[int],
    recorder: ServerRecorder,
    outcome: VerticalOutcome,
) -> None:
    s = job.scenario
    Xb, yb, Xb_test, y_test = aligned_bank_rows(job, grid, nodes, outcome)

    # 3. training
    # the bank holds the private key: its obfuscators come from the CRT halves (DJN:
    # fixed-base tables mod p² and q², powmod's very values; textbook: the lifted pair,
    # r^n's distribution with half-length exponents), at a fraction of the cost
    pool = ObfuscatorPool(job.public_key, s.privacy.obfuscation, private_key=job.private_key)
    cipher = VectorCipher(job.public_key, pool)
    workers.start()  # this process lives the whole run (in-process, the parties' too)
    decryptor = VectorDecryptor(job.private_key)
    n = job.public_key.n
    w, b = np.zeros(Xb.shape[1]), 0.0
    m = s.model
    pending: list[list[bytes]] | None = None
    recorder.server_name = job.name
    recorder.update_kinds = None
    recorder.start_clock()  # rounds.csv times epochs from here
    for epoch in range(1, s.rounds + 1):
        recorder.on_step(epoch, 0.0)
        order = epoch_order(s.seed, epoch, len(yb))
        for start in range(0, len(yb), m.batch_size):
            batch = order[start : start + m.batch_size]
            cfgs = [
                {
                    "stage": "scores",
                    "rows": batch.tolist(),
                    **({"unmasked-pending": pending[k]} if pending else {}),
                }
                for k in range(len(nodes))
            ]
            replies = ask(grid, nodes, MessageType.TRAIN, cfgs, "partial scores", epoch)
            u = Xb[batch] @ w + b + sum(r.content["scores"]["u"].numpy() for r in replies)
            d = 0.25 * u - 0.5 * (2 * yb[batch] - 1)
            noise = None
            if job.dp is not None:  # label DP: the bank's own update is a noisy release too
                noise = label_noise(job.dp, job.secret, epoch, start, len(nodes), Xb.shape[1] + 1)
            w, b = bank_step(Xb[batch], d, w, b, m.learning_rate, m.l2, job.dp, noise)
            t0 = time.perf_counter()
            enc = cipher.to_bytes(cipher.encrypt(encode_signed(d, RESIDUAL_FRAC_BITS, n)))
            outcome.encrypt_s += time.perf_counter() - t0
            outcome.encryptions += len(enc)
            # offline half of the next batch's encryption: its obfuscators are computed on
            # the other cores while this batch is with the parties
            pool.prepare(_next_batch_rows(len(yb), m.batch_size, start, epoch < s.rounds))
            recorder.on_step(epoch, min(1.0, (start + m.batch_size) / len(yb)))
            replies = ask(
                grid,
                nodes,
                MessageType.TRAIN,
                [{"stage": "gradient", "rows": batch.tolist(), "residuals": enc}] * len(nodes),
                "encrypted gradient",
                epoch,
            )
            pending = []
            t0 = time.perf_counter()
            for k, r in enumerate(replies):
                blobs = list(r.content["config"]["masked-gradient"])
                try:
                    cts = cipher.from_bytes(blobs, len(blobs))
                except ValueError as exc:
                    raise ProtocolError(f"round {epoch}: {job.party_names[k]}: {exc}") from None
                values = decryptor.decrypt(cts)
                if job.dp is not None:  # label DP: noise the party's gradient sum
                    values = _noised(values, job.dp, job.secret, epoch, start, k, n)
                pending.append([int(v).to_bytes(cipher.width, "big") for v in values])
            outcome.decrypt_s += time.perf_counter() - t0
        # end of epoch: parties apply the last update, then score the test rows jointly
        z_test = _joint_test_scores(grid, nodes, pending, Xb_test, w, b, epoch, epoch == s.rounds)
        pending = None
        calibration = Calibration()
        if epoch == s.rounds and m.calibration != "none":
            # after the last epoch: the bank calibrates on the training customers' joint
            # scores (one more partial score per training customer from each party)
            z_train = _joint_train_scores(grid, nodes, Xb, w, b, epoch)
            calibration = fit_calibration(z_train, yb, m.calibration)
            outcome.calibration = calibration_record(calibration, z_train, yb)
        outcome.test_scores = calibration.apply(z_test)
        recorder.log_round(epoch, score_metrics(y_test, outcome.test_scores))
    # the bank's own part, calibration folded in; parties keep theirs (under 'platt' the
    # bank multiplies their partial scores by the scale when it scores)
    w, b = calibration.bank_part(w, b)
    recorder.final_params = np.r_[w, b]
    pool.wait()
    outcome.precompute_s = pool.precompute_seconds


def epoch_order(seed: int, epoch: int, rows: int) -> np.ndarray:
    """The training customers' order in one epoch, cut into mini-batches by the bank.
    From the public scenario seed: a simulation choice that protects no one (which rows
    share a batch), and the same for every vertical logistic protocol, so their runs
    see the same batches and compare."""
    return np.random.default_rng([seed, 8, epoch]).permutation(rows)


def _next_batch_rows(rows: int, batch_size: int, start: int, more_epochs: bool) -> int:
    """Rows in the batch after the one starting at ``start`` (0 after the last one)."""
    if start + batch_size < rows:
        return min(batch_size, rows - start - batch_size)
    return min(batch_size, rows) if more_epochs else 0


def bank_step(
    Xb: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    b: float,
    learning_rate: float,
    l2: float,
    dp: DPPlan | None = None,
    noise: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """The bank's own SGD step on a batch (rows ``Xb``, Taylor residuals ``d``).

    Under label DP the bank treats its own update like a data party's gradient: each row
    ``[x_i, 1]`` (the intercept's constant included) is clipped to C and ``noise``
    (N(0, (z·C)²) per coordinate) is added to the batch sum Σ d_i [x_i, 1], so flipping
    one label moves the released sum by at most C and the weights are post-processing of
    noisy releases: a label cannot steer later residuals except through them.
    """
    if dp is None:
        return w - learning_rate * (Xb.T @ d / len(d) + l2 * w), b - learning_rate * float(d.mean())
    rows = clip_rows(np.c_[Xb, np.ones(len(d))], dp.clip_norm)
    g = rows.T @ d + noise
    return w - learning_rate * (g[:-1] / len(d) + l2 * w), b - learning_rate * float(g[-1] / len(d))


def label_noise(
    dp: DPPlan, secret: PartySecret, epoch: int, batch_start: int, party: int, size: int
) -> np.ndarray:
    """N(0, (z·C)²) per gradient coordinate: one label moves Σ_i d_i x_i by at most C.
    ``party`` = number of data parties draws the bank's noise on its own update. From the
    bank's own ``secret``: the data party receiving it cannot regenerate it."""
    rng = secret.rng("vertical/label-noise", epoch, batch_start, party)
    return rng.normal(0.0, dp.noise_multiplier * dp.clip_norm, size)


def _noised(
    values: list[int], dp: DPPlan, secret: PartySecret, epoch: int, start: int, party: int, n: int
) -> list[int]:
    noise = label_noise(dp, secret, epoch, start, party, len(values))
    fixed = encode_signed(noise, RESIDUAL_FRAC_BITS + FEATURE_FRAC_BITS, n)
    return [(v + e) % n for v, e in zip(values, fixed)]


def _joint_test_scores(
    grid: RecordingGrid,
    nodes: list[int],
    pending: list[list[bytes]] | None,
    Xb_test: np.ndarray,
    w: np.ndarray,
    b: float,
    epoch: int,
    final: bool,
) -> np.ndarray:
    """The joint score z of the held-out customers (the parties first apply their last
    update; after the last epoch they also keep their final parts of the model)."""
    cfgs = [
        {
            "stage": "scores",
            "split": "test",
            **({"unmasked-pending": pending[k]} if pending else {}),
            **({"final": 1} if final else {}),  # the parties keep their final parts
        }
        for k in range(len(nodes))
    ]
    replies = ask(grid, nodes, MessageType.TRAIN, cfgs, "joint prediction", epoch)
    return Xb_test @ w + b + sum(r.content["scores"]["u"].numpy() for r in replies)


def _joint_train_scores(
    grid: RecordingGrid, nodes: list[int], Xb: np.ndarray, w: np.ndarray, b: float, epoch: int
) -> np.ndarray:
    """The joint score z of every training customer at the final weights: each party's
    partial scores on its training rows (the request names no customer and carries
    nothing derived from the labels) plus the bank's own."""
    cfg = {"stage": "scores", "split": "train", "purpose": "calibration"}
    replies = ask(grid, nodes, MessageType.TRAIN, [cfg] * len(nodes), "calibration", epoch)
    return Xb @ w + b + sum(r.content["scores"]["u"].numpy() for r in replies)


def calibration_record(calibration: Calibration, z_train: np.ndarray, y: np.ndarray) -> dict:
    """What summary.json says of the calibration (all of it the bank's own knowledge)."""
    return {
        "method": calibration.method,
        "scale": calibration.scale,
        "offset": calibration.offset,
        "train_default_rate": float(np.mean(y)),
        "train_mean_pd_before": float(np.mean(expit(z_train))),
        "train_mean_pd_after": float(np.mean(calibration.apply(z_train))),
    }


__all__ = [
    "align_customers",
    "aligned_bank_rows",
    "ask",
    "bank_step",
    "calibration_record",
    "epoch_order",
    "label_noise",
    "make_bank_app",
]
