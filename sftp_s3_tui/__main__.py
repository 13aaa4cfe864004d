"""``python -m sftp_s3_tui``."""

import sys

from .cli import main

sys.exit(main())
