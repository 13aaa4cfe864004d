"""Level 2, deciding before a byte moves: what to copy, where, and what happens at each key.
Imports levels 0–1.

- :mod:`.sources` — part sizes within S3's limits; sources (files, folders, globs) → file jobs
- :mod:`.conflicts` — the conflict policy per file, from one listing of the destination
- :mod:`.filters` — include / exclude rules, size and age
- :mod:`.readiness` — done files, minimum age, stability: is the partner still writing?
- :mod:`.selection` — a listing through the filters and the readiness gate
- :mod:`.preview` — the plan shown before a copy (``--dry-run``, the TUI's plan dialog)
"""
