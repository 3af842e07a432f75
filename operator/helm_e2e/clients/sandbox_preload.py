"""Imported by the sandbox's fork server only (multiprocessing's forkserver preload), never elsewhere: the
fork server dies with the operator that started it (clients/orphans.py)."""

from __future__ import annotations

from helm_e2e.clients.orphans import die_with_parent

die_with_parent()
