"""``python -m sftp_s3_tui.demo``: the child processes of the embedded servers."""

from .children import main

main()
