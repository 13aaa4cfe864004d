"""Stream files from SFTP straight into S3."""

import warnings

__version__ = "0.1.0"

# asyncssh names cryptography's DSA key classes at import; cryptography 51 deprecated DSA and
# warns on each name, so every command printed ten CryptographyDeprecationWarning lines. We
# never offer DSA (asyncssh does not either by default); the warning is about asyncssh's
# import, not about anything a user can change. Narrowed to that message from asyncssh, set
# here because the package is imported before asyncssh by every front (CLI, TUI, Airflow).
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")
