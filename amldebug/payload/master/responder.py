"""The master's HTTP 503 answers while no worker can serve."""

import os

from ..common import protocol, state


class FailureResponder(object):
    """While no worker can serve (the entry script failed in import or init()), answer on
    the server's own sockets at once with HTTP 503 and the error, instead of leaving
    requests queued with nobody to accept them. Runs as a thread of the master; stops at
    the next reload."""

    current = None

    def __init__(self, arbiter):
        import threading

        self.sockets = [getattr(listener, "sock", listener) for listener in arbiter.LISTENERS]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="amldebug: HTTP 503 while no worker serves")
        self.thread.daemon = True

    @classmethod
    def start(cls, arbiter):
        cls.stop()
        cls.current = cls(arbiter)
        cls.current.thread.start()

    @classmethod
    def stop(cls):
        if cls.current is not None:
            cls.current.stopped.set()
            cls.current.thread.join(1)  # before new workers are forked: no accept() of ours competes
            cls.current = None

    def body(self):
        error = ""
        try:
            with open(os.path.join(state.folder() or "", protocol.FAILURE_FILE)) as f:
                error = f.read()
        except OSError:
            pass
        head = ("amldebug: no worker can serve: the entry script failed in import or init(); "
                "save a fix (or run 'amldebug reload') and the service serves again\n")
        return (head + ("\n" + error if error else "")).encode("utf-8", "replace")

    def run(self):
        import select

        while not self.stopped.is_set():
            try:
                ready = select.select(self.sockets, [], [], 0.2)[0]
            except (OSError, ValueError):
                return
            for sock in ready:
                if self.stopped.is_set():
                    return
                try:
                    conn = sock.accept()[0]
                except (OSError, IOError):  # taken by a new worker, or nothing there
                    continue
                self.answer(conn)

    def answer(self, conn):
        import time

        deadline = time.time() + 5  # one slow client must not hold the only thread that answers
        try:
            conn.setblocking(True)
            conn.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536 and time.time() < deadline:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            # Read the request body too: closing with unread data would reset the connection
            # before the client reads the answer.
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and value.strip().isdigit():
                    length = min(int(value.strip()), 64 * 1024 * 1024)
            received = len(rest)
            while received < length and time.time() < deadline:
                chunk = conn.recv(65536)  # read and drop
                if not chunk:
                    break
                received += len(chunk)
            body = self.body()
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        except (OSError, IOError):
            pass
        finally:
            try:
                conn.close()
            except (OSError, IOError):
                pass
