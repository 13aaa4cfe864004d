"""Level 1, the S3 side: every request the engine sends to S3 and how its errors read, and
what each store honours. Imports level 0 only; never ``sftp``.

- :mod:`.operations` — the client factory and every S3 request, errors mapped to one line
- :mod:`.checksums` — the store probe and the checksums each part and object carries
"""
