"""Level 1, the SFTP side: SSH connections per host (pooled, staggered, re-opened after a
drop), host-key checks, listings and pipelined reads. Imports level 0 only; never ``s3``.

- :mod:`.pool` — the connection pool: connections per host, leases, RTT, bandwidth limit
  (first to open)
- :mod:`.connect` — opening one SSH connection: ciphers, keys, agent, jump host
- :mod:`.host_keys` — known_hosts, fingerprints, accept-new, the host-key error
- :mod:`.errors` — asyncssh/OS errors mapped to engine errors; dead connection or file error
- :mod:`.entries` — what listings and stats yield (:class:`RemoteEntry`, :class:`Kind`)
- :mod:`.reader` — one remote file read in pipelined parts, over one or several connections
- :mod:`.server_profile` — what a server grants (read size, extensions), probed once
- :mod:`.writer` — one file written to an SFTP destination under a temporary name
"""
