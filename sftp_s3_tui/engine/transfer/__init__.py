"""Level 3, moving bytes: buffers from the global pool, one file from reads to a verified
object, and the queue of many files. Imports levels 0–2.

- :mod:`.queue` — many files under one memory budget, with pause / cancel / retry
- :mod:`.file` — one file: reads → parts → uploads → complete → verify (first to open)
- :mod:`.parts` — a part's read, hashes in byte order, upload, retries and events
- :mod:`.finish` — after publishing: the SHA-256 recorded on the object, the verification
- :mod:`.multipart` — one multipart upload: start or resume, parts, complete or abort
- :mod:`.verify` — what S3 holds against what was read
- :mod:`.buffers`, :mod:`.context`, :mod:`.source_file` — what the transfers share
- :mod:`.delivery` — the other direction, S3 → SFTP: one object's story
  (``ObjectDelivery.run``) and a run of many (first to open for deliveries)
- :mod:`.delivery_stream` — its data path: ranged GETs → writes at offsets, checks in order
- :mod:`.delivery_resume` — continuing what a killed delivery left, once its prefix checks
"""
