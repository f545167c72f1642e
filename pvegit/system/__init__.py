"""The local machine: writes synced in order, processes, paths, locks, disk space.

The bottom layer: it knows nothing of Proxmox, git or the database. ``durable``
writes files and directories so that a power cut leaves the old or the new
version; ``pathwalk`` opens a local directory without following a link another
user could change; ``locks`` is the per-host thread lock plus ``flock``;
``processes`` names a process by pid, boot id and start time; ``diskspace``
says what a full disk looks like before it is one.
"""
