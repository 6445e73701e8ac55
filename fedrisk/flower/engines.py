"""Engines that drive the same Flower ServerApp/ClientApp pair.

- ``inprocess`` (default): :class:`InProcessGrid`, a ``flwr.serverapp.Grid`` that hands
  each message to the ClientApp in this process, after a real protobuf round trip (so
  payloads are exactly what would cross the wire). Deterministic node ids make runs
  reproducible bit for bit.
- ``simulation``: Flower's Simulation Engine (Ray), via ``flwr.simulation.run_simulation``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from fedrisk.errors import InputError

FIRST_NODE_ID = 1001  # node i gets id 1001 + i, and partition-id i
ENGINES = ("inprocess", "simulation")

# Flower and Ray phone home unless told not to; fedrisk runs offline.
QUIET_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",  # silences a Ray FutureWarning
}


def quiet_flower(verbose: bool = False) -> None:
    """Set the offline environment and keep Flower's per-round INFO logs off the console."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    logging.getLogger("flwr").setLevel(logging.INFO if verbose else logging.ERROR)


def wire_copy(message: Message) -> Message:
    """Serialise to protobuf and back: what a real transport would deliver."""
    return message_from_proto(message_to_proto(message))


class InProcessGrid(Grid):
    """A Grid whose nodes are ClientApp calls in this process.

    Each node keeps its own :class:`Context` (as a SuperNode would) with
    ``partition-id`` and ``num-partitions`` in its node config.
    """

    def __init__(
        self,
        client_app: ClientApp,
        num_nodes: int,
        run_id: int = 1,
        workers: int | None = None,
        node_states: dict[int, RecordDict] | None = None,
    ) -> None:
        self._client_app = client_app
        # One party at a time by default: Flower's Array.numpy() parses array headers
        # with ast.literal_eval, which is not thread-safe on Python 3.11 (CPython
        # gh-106905: "AST constructor recursion depth mismatch"). Paillier work still
        # overlaps through the obfuscator thread, which parses nothing.
        self._pool = ThreadPoolExecutor(
            max_workers=workers or 1, thread_name_prefix="fedrisk-party"
        )
        self._run = Run.create_empty(run_id)
        self._contexts = {
            FIRST_NODE_ID + i: Context(
                run_id=run_id,
                node_id=FIRST_NODE_ID + i,
                node_config={"partition-id": i, "num-partitions": num_nodes},
                # a node's state persists across its messages, as on a SuperNode; the
                # caller may hand in the dict (checkpoints read and restore it)
                state=node_states.setdefault(FIRST_NODE_ID + i, RecordDict())
                if node_states is not None
                else RecordDict(),
                run_config={},
            )
            for i in range(num_nodes)
        }
        self._replies: dict[str, Message] = {}
        self._counter = 0

    def set_run(self, run: Run) -> None:
        self._run = run

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def _next_id(self) -> str:
        # Deterministic ids: same scenario, same transcript.
        self._counter += 1
        return f"m{self._counter:08d}"

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._push(messages, None)

    def _push(self, messages: Iterable[Message], timeout: float | None) -> list[str]:
        batch = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = self._next_id()
            if msg.metadata.dst_node_id not in self._contexts:
                raise ValueError(f"no node with id {msg.metadata.dst_node_id}")
            batch.append(msg)
        # With workers > 1 parties work at the same time, as separate banks would;
        # results cannot depend on the interleaving: each party has its own context and
        # generator, and the server aggregates in party order.
        replies = (
            list(self._pool.map(self._deliver, batch))
            if len(batch) > 1
            else [self._deliver(m) for m in batch]
        )
        for msg, (reply, seconds) in zip(batch, replies):
            reply.metadata.__dict__["_message_id"] = self._next_id()
            # Parties work side by side in a real federation: each reply is late or not
            # by its own handling time. A late one never reaches the server.
            if timeout is None or seconds <= timeout:
                self._replies[msg.metadata.message_id] = reply
        return [m.metadata.message_id for m in batch]

    def _deliver(self, msg: Message) -> tuple[Message, float]:
        started = time.perf_counter()
        delivered = wire_copy(msg)
        try:
            reply = self._client_app(delivered, self._contexts[msg.metadata.dst_node_id])
        except Exception as exc:  # a failing party must not crash the server
            reply = Message(
                Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=delivered
            )
        return wire_copy(reply), time.perf_counter() - started

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in list(message_ids) if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self._push(messages, timeout))


def run_inprocess(
    server_app: ServerApp,
    client_app: ClientApp,
    num_nodes: int,
    node_states: dict[int, RecordDict] | None = None,
) -> None:
    """Drive the apps with :class:`InProcessGrid`."""
    grid = InProcessGrid(client_app, num_nodes, node_states=node_states)
    try:
        run_server(server_app, grid)
    finally:
        grid.close()


def run_server(server_app: ServerApp, grid: InProcessGrid) -> None:
    # Message() reads the sender's identity from TaskIdentity, as under run_simulation.
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = grid.run.run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    context = Context(
        run_id=grid.run.run_id,
        node_id=SUPERLINK_NODE_ID,
        node_config={},
        state=RecordDict(),
        run_config={},
    )
    server_app(grid, context)


def run_ray_simulation(server_app: ServerApp, client_app: ClientApp, num_nodes: int) -> None:
    """Drive the apps with Flower's Simulation Engine (needs the ``simulation`` extra)."""
    try:  # optional extra: Ray is not installed with fedrisk's core
        import ray  # noqa: F401
    except ImportError:
        raise InputError(
            "federation.engine: 'simulation' needs Ray; install it with "
            "pip install -e '.[simulation]'"
        ) from None
    from flwr.simulation import run_simulation  # optional extra: it needs Ray

    backend_config = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": max(1, min(2, os.cpu_count() or 1)),
            "include_dashboard": False,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
        },
    }
    from flwr.server.superlink.fleet.vce.backend import raybackend  # start-up: needs Ray

    # Flower shuts Ray down after every run and starts it again for the next (~8 s on 2
    # cores); a process that runs several simulations (a sweep, the test suite) keeps it
    # up: Ray's own exit handler stops it with the process
    shutdown = raybackend.ray.shutdown
    raybackend.ray.shutdown = _keep_ray
    try:
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=num_nodes,
            backend_config=backend_config,
        )
    finally:
        raybackend.ray.shutdown = shutdown


def _keep_ray() -> None:
    """Flower's end-of-run ``ray.shutdown()``, skipped (see :func:`run_ray_simulation`)."""


def run_engine(
    engine: str,
    server_app: ServerApp,
    client_app: ClientApp,
    num_nodes: int,
    node_states: dict[int, RecordDict] | None = None,
) -> float:
    """Run the apps on ``engine``; return wall seconds.

    ``node_states`` (in-process only): the parties' Flower context states, by node id,
    shared with the caller so it can checkpoint and restore them.
    """
    started = time.perf_counter()
    if engine == "inprocess":
        run_inprocess(server_app, client_app, num_nodes, node_states)
    elif engine == "simulation":
        run_ray_simulation(server_app, client_app, num_nodes)
    else:
        raise InputError(
            f"federation.engine: {engine!r} is not allowed; allowed: " + ", ".join(ENGINES)
        )
    return time.perf_counter() - started


__all__ = ["ENGINES", "FIRST_NODE_ID", "InProcessGrid", "quiet_flower", "run_engine", "wire_copy"]
