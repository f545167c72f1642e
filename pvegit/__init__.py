"""pvegit: Git-backed configuration versioning for Proxmox VE hosts."""

__version__ = "0.1.0"
