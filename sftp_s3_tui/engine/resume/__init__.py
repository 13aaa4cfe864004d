"""Level 2, resuming: what survives a crash, and what a crash left behind. Imports levels 0–1.

- :mod:`.journal` — the local, locked, append-only record of each multipart upload
- :mod:`.in_s3` — the same record kept beside the object, for a retry on another machine
- :mod:`.stale_uploads` — list and abort uploads that crashed runs left open
"""
