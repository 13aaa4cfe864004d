"""Airflow connections pointing at the test servers, as a user would define them."""

from __future__ import annotations

from typing import Any

from sftp_s3_tui.demo import EmbeddedS3Server
from tests.support.servers import SftpServerInfo, unavailable


def sftp_connection(server: SftpServerInfo, auth: str = "private_key") -> dict[str, Any]:
    """An Airflow SFTP connection (as AIRFLOW_CONN_* JSON) for the test sshd."""
    extra: dict[str, Any] = {"known_hosts": str(server.known_hosts), "look_for_keys": False}
    connection: dict[str, Any] = {"conn_type": "sftp", "host": server.host, "port": server.port}
    if auth == "password":
        if server.password_user is None:
            unavailable("the password user for sshd could not be created")
        connection.update(login=server.password_user, password=server.password)
    elif auth == "key_file":
        connection["login"] = server.username
        extra["key_file"] = str(server.identity_file)
    else:
        connection["login"] = server.username
        extra["private_key"] = server.identity_file.read_text()
    connection["extra"] = extra
    return connection


def aws_connection(moto: EmbeddedS3Server) -> dict[str, Any]:
    """An Airflow AWS connection for moto: keys as login/password, endpoint in the extras."""
    endpoint = moto.endpoint()
    return {
        "conn_type": "aws",
        "login": endpoint.access_key_id,
        "password": endpoint.secret_access_key,
        "extra": {
            "endpoint_url": moto.endpoint_url,
            "region_name": endpoint.region,
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        },
    }
