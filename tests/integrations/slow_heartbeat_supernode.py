"""`flower-supernode` that tells the SuperLink it sends a heartbeat every SECONDS: `python THIS SECONDS ARGS...`.

The SuperLink takes a SuperNode for offline, and answers its pending messages with an error, once two
heartbeat intervals pass without a heartbeat (30 s each in flwr 1.42, so 36-60 s after the node dies).
A test of a node that stays silent for a whole round-timeout needs that to come later than the
round-timeout, and the round-timeout longer than a healthy node's slowest step on a loaded machine:
with Flower's default interval that leaves no room. With a longer interval here (the SuperLink accepts
10-1800 s) the round-timeout can be as generous as it needs to be. Nothing else about the node changes.
"""

from __future__ import annotations

import sys

import flwr.common.constant as constant

constant.HEARTBEAT_DEFAULT_INTERVAL = float(sys.argv.pop(1))  # before the SuperNode's modules import it

from flwr.supercore import heartbeat  # noqa: E402
from flwr.supernode import fleet_http_connection  # noqa: E402
from flwr.supernode.cli import flower_supernode  # noqa: E402

for module in (fleet_http_connection, heartbeat):
    assert module.HEARTBEAT_DEFAULT_INTERVAL == constant.HEARTBEAT_DEFAULT_INTERVAL, module.__name__

if __name__ == "__main__":
    sys.argv[0] = "flower-supernode"
    sys.exit(flower_supernode())
