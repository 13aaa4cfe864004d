"""Stream files from SFTP straight into S3."""

__version__ = "0.1.0"
