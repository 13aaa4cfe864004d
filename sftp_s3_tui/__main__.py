"""``python -m sftp_s3_tui``."""

import sys

try:
    from .cli.main import main
except KeyboardInterrupt:  # Ctrl-C while starting: one line, never a traceback
    sys.stderr.write("sftp-s3-tui: interrupted\n")
    sys.exit(130)

sys.exit(main())
