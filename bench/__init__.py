"""Benchmark harness: sftp-s3-tui against the raw SFTP/S3 limits, rclone and spool-then-upload."""
