"""The simulated test bed, shared by the tests (tests/) and the benchmarks (bench/).

``nodes`` runs simulated Proxmox VE nodes as real OpenSSH servers in Linux
namespaces (``TestBed``, ``Node``, ``register_node``), with ``pve9``'s stand-ins
for a PVE 9 node; ``appserver`` runs ``pvegit serve`` as a real process;
``faults``, ``load`` and ``soak`` are the reliability drills (SIGKILLs, many
web users, scheduled runs for long); ``tarfuzz`` makes hostile tar streams;
``webhook`` and ``smtp`` receive notifications. Installed with pvegit (an
editable install) so that neither side edits ``sys.path``.
"""
