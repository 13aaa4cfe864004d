"""Level 4, the workflow around a copy: what a nightly run adds (manifest, moving or deleting
sources once verified), the run itself, and ``watch``. Imports levels 0–3.

- :mod:`.run` — one run (``run_nightly``: plan, select, preload, manifest, copy) and its
  last step (``CopyRun``: copy the selection, write each row, then act on each source)
- :mod:`.watch` — poll folders and ship each new file once (``Watcher``)
- :mod:`.manifest`, :mod:`.source_actions`, :mod:`.options`
"""
