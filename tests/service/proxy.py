"""A loopback TCP proxy a test can make refuse, hang or cut connections (dependency outages).

``pass``: forward to the target. ``refuse``: the listening socket is closed, so connects
get ECONNREFUSED (a stopped server). ``hang``: connections are accepted and never answered
(a blackholed server). ``cut()`` closes every live connection (a server restart).
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.port = 0
        self._listen()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.conns.append(client)
            if self.mode == "hang":
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every live connection (as a server restart does)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()

    def refuse(self) -> None:
        """Stop listening and cut live connections: new connects are refused."""
        self.mode = "refuse"
        if self.listener is not None:
            with contextlib.suppress(OSError):  # wakes the blocked accept() and stops listening
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        self.cut()

    def hang(self) -> None:
        """Accept connections but never answer (existing ones are cut)."""
        if self.listener is None:
            self._listen()
        self.mode = "hang"
        self.cut()

    def restore(self) -> None:
        self.mode = "pass"
        if self.listener is None:
            self._listen()

    def close(self) -> None:
        self.refuse()
