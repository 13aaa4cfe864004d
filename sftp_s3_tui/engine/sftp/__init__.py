"""Level 1, the SFTP side: SSH connections per host (pooled, staggered, re-opened after a
drop), host-key checks, listings and pipelined reads. Imports level 0 only; never ``s3``.

- :mod:`.pool` — connections, host keys, listings, the remote reader (first to open)
"""
