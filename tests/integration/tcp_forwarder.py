"""A small TCP forwarder that plays RDS Proxy at a blue/green switchover, for the watch-mode tests.

``cut()`` drops every forwarded connection and closes the listening socket, so new connections are
refused; ``restore(port)`` listens again on the same port and forwards to ``port`` (server A or B).
Loopback only; bytes are relayed untouched (TLS is end to end between the probe and MariaDB).
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.integration.mariadb_server import HOST, free_port


class TcpForwarder:
    def __init__(self, backend_port: int, host: str = HOST) -> None:
        self.host = host
        self.port = free_port()
        self.backend_port = backend_port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._generation = 0  # bumped by cut(): a connection set up across a cut is dropped
        self.accepted = 0
        self.open()

    # control ---------------------------------------------------------------
    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Our own closed connections sit in TIME_WAIT on this port; listening again must not wait for them.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name="fwd-accept").start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (the listening socket is closed)."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
            self._generation += 1
        if listener is not None:
            listener.close()
        for conn in conns:
            _kill(conn)

    def restore(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self.open()

    def close(self) -> None:
        self.cut()

    # relaying --------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True, name="fwd-conn").start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            generation = self._generation
            backend_port = self.backend_port
        try:
            backend = socket.create_connection((self.host, backend_port), timeout=2)
            backend.settimeout(None)
        except OSError:
            _kill(client)
            return
        with self._lock:
            if generation != self._generation:  # cut while we were connecting
                _kill(client)
                _kill(backend)
                return
            self._conns.update((client, backend))
        for src, dst in ((client, backend), (backend, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True, name="fwd-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            _kill(src)
            _kill(dst)


def _kill(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
