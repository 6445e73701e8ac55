"""One exchange of a bespoke protocol: a message to each party, every reply back.

The vertical protocols (hetero LR, SecureBoost, binning) and the banks' binning drive
their parties with requests a strategy does not model; each request goes through here,
so a party that fails or does not answer stops the run with one line naming it.
"""

from __future__ import annotations

from flwr.app import Message, RecordDict

from fedrisk.errors import ProtocolError
from fedrisk.flower.recording_grid import RecordingGrid


def exchange(
    grid: RecordingGrid,
    nodes: list[int],
    contents: list[RecordDict],
    message_type: str,
    what: str,
    when: str,
) -> list[Message]:
    """Send ``contents[i]`` to ``nodes[i]``; the replies in ``nodes`` order, or a
    ProtocolError "``when``: <party> failed in ``what``: <reason>"."""
    msgs = [
        Message(content, dst_node_id=node, message_type=message_type)
        for node, content in zip(nodes, contents)
    ]
    replies = {r.metadata.src_node_id: r for r in grid.send_and_receive(msgs)}
    out = []
    for node in nodes:
        reply = replies.get(node)
        if reply is None or reply.has_error():
            reason = reply.error.reason if reply is not None else "no reply"
            raise ProtocolError(f"{when}: {grid.name(node)} failed in {what}: {reason}")
        out.append(reply)
    return out


__all__ = ["exchange"]
