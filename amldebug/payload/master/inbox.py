"""The inbox relay. Where the host cannot open the pipes (Docker Desktop's VM shares none with
the host, or they live in the container's own folder), it leaves each line as a file in the
state folder's ``inbox`` -- named ``<seq>.<pipe>`` -- and sends SIGURG through the Docker API
(its default action is to do nothing, so a stray one harms no process). The master passes
each line on to its pipe, which works inside the container."""

import os
import signal

from ..common import pipes, protocol, state


def relay(inbox):
    """Deliver every complete line in ``inbox`` to its pipe; a line nobody can take is
    answered in ``undelivered.json`` (the host need not wait for it)."""
    try:
        names = sorted(os.listdir(inbox))
    except OSError:
        return
    for name in names:
        entry = protocol.parse_inbox_entry(name)
        if entry is None:
            continue  # a line still being written
        seq, target = entry
        path = os.path.join(inbox, name)
        try:
            with open(path) as f:
                line = f.read()
        except OSError:
            if not os.path.exists(path):
                continue  # taken by another process
            line = None  # unreadable (the host's umask): answered, not tried again
        try:
            os.unlink(path)  # whoever removes it delivers it (a worker inherits this handler)
        except OSError:
            continue
        if line is None or not pipes.deliver(target, line):
            state.write_answer(protocol.UNDELIVERED, protocol.UndeliveredRecord.new(seq=seq, pipe=target))


def start():
    """Make the inbox and relay it on SIGURG. The inbox's name is what tells the host that
    this server has one."""
    where = state.folder()
    if not where:
        return None
    inbox = os.path.join(where, protocol.INBOX)
    try:
        if not os.path.isdir(inbox):
            os.mkdir(inbox)
    except OSError:
        return None
    try:
        os.chmod(inbox, 0o777)  # the host writes here, whoever the container's user is
    except OSError:
        pass  # not ours to change (made by an earlier start): it may be writable all the same
    signal.signal(getattr(signal, protocol.INBOX_SIGNAL), lambda signum, frame: relay(inbox))
    return inbox
