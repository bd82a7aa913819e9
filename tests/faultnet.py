"""Faults at the real network boundary, for the service-fault tests (tests/test_service_faults.py).

* `Relay`: a loopback TCP relay in front of a real service (a TCP port or a unix socket, such
  as the Docker Engine's); `kill()` drops every connection at once, as a restarted engine or a
  broken network does, while the service behind it goes on.
* `Silent`: a port that accepts connections and never answers (a hung service).
* `Canned`: a tiny HTTP server whose every answer is one fixed status, headers and body
  (a registry answering 429, or an HTML login page with 200), counting the requests it got.
"""

from __future__ import annotations

import http.server
import socket
import struct
import threading
from typing import Any

from enginerelay import connect_upstream, shut_both


class Relay:
    """127.0.0.1:<port> → `target` ("unix:///path" or "tcp://host:port"), byte for byte."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.sent = bytearray()  # what clients sent, for waiting on a request
        self.request_seen = threading.Condition()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._dead = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._dead:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = connect_upstream(self.target)
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client:
                    with self.request_seen:
                        self.sent += data
                        self.request_seen.notify_all()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            shut_both(src, dst)

    def wait_for(self, needle: bytes, timeout: float) -> bool:
        """Has a client sent `needle` (within `timeout` seconds)?"""
        with self.request_seen:
            return self.request_seen.wait_for(lambda: needle in self.sent, timeout)

    def kill(self) -> None:
        """Every connection reset, and nothing listening any more."""
        self._dead = True
        self.listener.close()
        with self._lock:
            for sock in self._socks:
                try:
                    # linger 0: the peer gets a reset, not an orderly end; shutdown wakes the pumps
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass


class Silent:
    """Accepts every connection and never says a word (holds them open until stop())."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def stop(self) -> None:
        self.listener.close()
        for conn in self._held:
            conn.close()


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


class Canned:
    """A threaded HTTP server answering each request with the next of `answers` (the last one
    repeats forever); `requests` lists (method, path) as they came."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str]] = []
        canned = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                canned.requests.append((self.command, self.path))
                status, headers, body = canned.answers[min(len(canned.requests), len(canned.answers)) - 1]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
