"""The transfer engine: SFTP ⇄ S3 with bounded memory, verification and resume.

The folders are the layers. A module imports only from its own level and the levels above it
in this list (``tests/unit/test_layers.py`` holds the rule; imports under ``if TYPE_CHECKING:``
are annotations only and are not counted)::

    level 0  vocabulary        config, errors, events, object_options, addresses, digest,
                               durable, aio
    level 1  the two sides     sftp/   (SSH connections, host keys, listings, reads)
                               s3/     (every S3 request, checksums and the store probe)
                               sftp/ and s3/ never import each other
    level 2  deciding          plan/   (sources → file jobs, keys, conflicts, filters,
                                        readiness, selection, preview)
                               resume/ (the journal, resume state in S3, stale uploads)
    level 3  moving bytes      transfer/ (buffers, one file, multipart, verify, the queue)
    level 4  the workflow      nightly/  (run options, manifest, source actions, the run,
                                          watch)

Nothing here imports Textual or the fronts (``cli``, ``ui``, ``airflow``): they build
requests through :mod:`sftp_s3_tui.requests` and follow the run through :mod:`.events`.
The package files hold docstrings only, so importing one module never drags in its siblings
(``--help`` stays fast).
"""
