"""Simulated Proxmox VE nodes for ``pvegit demo`` and the test bed (PVE 8 and PVE 9 trees)."""
