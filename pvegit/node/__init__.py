"""Reaching a Proxmox node: transports, the programs run there, and reading what comes back.

Everything that crosses the wire lives here and nothing above it sees a socket:
``transport`` (the local transport and the choice of one), ``ssh`` (paramiko,
pinned host keys; its errors become ``ConnectError``/``AuthError``/
``HostKeyError``), ``access`` (what pvegit's key may do on a node),
``program`` (``pvegit-collect``, the one read-only program, installed or sent
inline), ``allowlist`` (the node's list of what that program may read: the
host's selection, written when the host is hardened) and ``collector`` (every
request to it), ``restore_program``
(``pvegit-restore``, the one program that writes), ``probe`` (what a node says
about itself, pmxcfs's state), ``collect`` (one run's reading), ``tarstream``
(the tar stream parsed, never extracted), ``inventory`` and ``inventorystream``
(command outputs, normalised and read within their limits), ``metadata``
(owners and modes, ``.pvegit/metadata``), ``rescue`` (a dead node's config.db).
"""
