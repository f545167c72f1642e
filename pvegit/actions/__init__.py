"""What a user runs: snapshot, restore, export, verify, repair, rebuild, mirror, hosts, keys.

Each action is a function that takes the home, the state and a host and
returns a result dataclass; it never prints and never decides how a face shows
what it returns. Actions use the layers below (node, git, state, content,
config, system) and never ``service``, ``cli`` or ``web``.

``release`` is not an action but the facts about Proxmox VE major versions
that restore and RECOVERY.md (``runbook``) apply to a revision.
"""
