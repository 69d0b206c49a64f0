"""Named pipes in the state folder, and the untraced threads that read them."""

import os

from . import protocol, state


class _Where(object):
    folder = None  # decided once, in the master; the workers inherit it


def pipe_dir():
    """The state folder, where amldebug on the host opens the pipes itself; else (no named
    pipe can be made there, or AMLDEBUG_PIPES=local) a folder of the container's own, which
    the host reaches through the inbox relay. None without a state folder."""
    if _Where.folder is None and state.folder():
        where = state.folder()
        probe = os.path.join(where, protocol.fifo_probe(os.getpid()))
        try:
            if os.environ.get(protocol.ENV_PIPES) == protocol.PIPES_LOCAL:
                raise OSError("local pipes asked for")
            os.mkfifo(probe)
            os.unlink(probe)
            _Where.folder = where
        except OSError:
            import tempfile

            try:
                _Where.folder = tempfile.mkdtemp(prefix="amldebug-pipes-")
            except OSError:  # no pipes at all: reloads still come as SIGHUP through the engine
                _Where.folder = ""
    return _Where.folder or None


def open_fifo(name):
    """Make the named pipe ``name`` and open it for reading (and writing, so it never reads an
    end of file between writers): ``(path, file)``, or None where there is no state folder."""
    where = pipe_dir()
    if not where:
        return None
    path = os.path.join(where, name)
    try:
        if os.path.exists(path):
            os.unlink(path)
        os.mkfifo(path)
        os.chmod(path, 0o666)  # amldebug on the host writes it (its folder's parents are private)
        return path, os.fdopen(os.open(path, os.O_RDWR), "r")
    except OSError:
        return None


def deliver(name, line):
    """Write ``line`` to the pipe ``name`` without waiting; False when nobody reads it (a
    worker that died) or it is full (its reader is stuck)."""
    try:
        fd = os.open(os.path.join(pipe_dir() or "", name), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def untraced_thread(target, name):
    """A daemon thread the debugger neither traces nor pauses ("pause all" leaves it running)."""
    import threading

    def run():
        try:
            import debugpy

            debugpy.trace_this_thread(False)
        except Exception:
            pass
        target()

    thread = threading.Thread(target=run, name=name)
    thread.daemon = True
    thread.pydev_do_not_trace = True
    thread.is_pydev_daemon_thread = True
    thread.start()
    return thread
