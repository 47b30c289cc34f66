"""The ``serve`` command: the local web dashboard. FastAPI and uvicorn are imported only when it runs."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from socialcredit.errors import UserError

err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the CLI app."""
    app.command("serve")(serve_command)


def serve_command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Run directories to show (named by basename).")],
    host: Annotated[str, typer.Option("--host", help="Address to bind; loopback unless you mean to share the "
                                      "dashboard on a network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=1, max=65535)] = 8000,
) -> None:
    """Start the local web dashboard over RUN directories (read-only): overview, citizens, shame board, lists, audit."""
    try:
        import uvicorn

        from socialcredit.web.app import create_app
    except ImportError as exc:
        raise UserError(f"serve needs fastapi and uvicorn ({exc})") from None
    application = create_app(runs)
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"serving {len(runs)} run{'s' if len(runs) != 1 else ''} at http://{shown}:{port}/ (Ctrl-C to stop)",
              markup=False, highlight=False)
    if not _loopback(host):
        err.print(f"warning: bound to {host}: anyone who can reach this address can browse the runs",
                  markup=False, highlight=False)
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """One-line error when the port is taken, before uvicorn starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
