"""How much of a node's output pvegit reads: limits that pvegit.toml can raise.

Defined here, below the node layer that applies them, so that the settings
file (``file.py``) can name them without reaching up into ``pvegit.node``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_COMMAND_BYTES = 4 * 1024 * 1024
DEFAULT_TOTAL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class InventoryLimits:
    """How much inventory output one run reads: per command, and all commands together.

    The names are those of the pvegit.toml keys, for messages that say what to raise.
    """

    command_bytes: int = DEFAULT_COMMAND_BYTES  # server.inventory_command_limit_kb
    total_bytes: int = DEFAULT_TOTAL_BYTES  # server.inventory_total_limit_kb
