"""The command line: ``sftp-s3-tui`` starts the TUI, ``copy``/``watch``/``cleanup`` run
headless on the same engine.

- :mod:`.main` — the entry point: parse, then hand the request to its runner
- :mod:`.parser` — every flag declared once, and the parsed flags as requests
- :mod:`.run` — ``copy`` (SFTP → S3), ``watch``, ``cleanup`` on the engine
- :mod:`.delivery` — ``copy s3://… sftp://…`` (S3 → SFTP)
- :mod:`.console` — what they show: progress, a line per file, notices, the summary

Nothing is imported here, so ``--help`` loads only :mod:`.main` and :mod:`.parser`.
"""
