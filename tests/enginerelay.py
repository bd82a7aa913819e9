"""A TCP relay in front of the Docker Engine, in a process of its own, so a test can cut every
connection to the engine at once (kill it) and bring the engine back (start it again on the
same port): what a flaky network or a restarted proxy does to singkit.

    relay = EngineRelay(docker_host)     # started; relay.url is a DOCKER_HOST value
    relay.kill(); relay.start(); relay.stop()

Run as a script: python enginerelay.py PORT UPSTREAM (unix:///path or tcp://host:port).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path


def connect_upstream(address: str) -> socket.socket:
    """A connection to "unix:///path" or "tcp://host:port" (faultnet.Relay uses it too)."""
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address[len("unix://"):])
        return sock
    host, port = address.split("://", 1)[-1].rsplit(":", 1)
    return socket.create_connection((host, int(port)))


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        shut_both(src, dst)


def shut_both(*socks: socket.socket) -> None:
    """Shut both directions of each socket, whatever state it is in (the other pipe may have)."""
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(port: int, upstream: str) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = listener.accept()
        try:
            server = connect_upstream(upstream)
        except OSError:
            client.close()
            continue
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


class EngineRelay:
    def __init__(self, upstream: str, port: int | None = None):
        self.upstream = upstream
        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self.url = f"tcp://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), str(self.port), self.upstream],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        """Cut every connection at once, as a dead relay or network does."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    stop = kill


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
