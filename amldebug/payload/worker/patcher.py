"""A worker's hot-patch channel: amldebug on the host writes one JSON line per save to the
pipe ``patch-<pid>``; the answer goes to ``patch.json``. Runs untraced: the AST diff takes
about 80 ms under the debugger's tracer, 3 ms without."""

import os
import sys

from ..common import pipes, protocol, state
from ..common.state import Shared
from . import hotpatch

# The entry script as this worker loaded it (worker/boot.py notes it): its globals (the server
# keeps the module out of sys.modules), the file name its code carries, the source it ran,
# init()'s time.
ENTRY = {}


class Patcher(object):
    @classmethod
    def start(cls):
        if "globals" not in ENTRY:
            return None
        opened = pipes.open_fifo(protocol.patch_pipe(os.getpid()))
        if opened is None:
            return None
        path, pipe = opened
        import atexit

        atexit.register(lambda: os.path.exists(path) and os.unlink(path))
        return pipes.untraced_thread(lambda: cls.serve(pipe), "amldebug: hot patch")

    @classmethod
    def serve(cls, pipe):
        for line in pipe:
            request = protocol.PatchRequest.decode(line)
            if request is not None:
                state.write_answer(protocol.PATCH_ANSWER, cls.handle(request))

    @staticmethod
    def handle(request):
        """Patch the entry script from its file on disk: a :class:`protocol.PatchAnswer`."""
        import time

        started = time.time()
        answer = dict(seq=request.seq, pid=os.getpid())
        try:
            if Shared.workers > 1:  # the others would go on serving the old code
                raise ValueError("WORKER_COUNT=%d: only one worker could be patched" % Shared.workers)
            filename = ENTRY["filename"]
            with open(filename) as f:
                source = f.read()
            changed, codes = hotpatch.plan(ENTRY["source"], source, filename)
            hotpatch.apply(ENTRY["globals"], codes, filename)
            ENTRY["source"] = source
            answer.update(ok=True, functions=changed)
        except Exception as exc:  # Declined, or an unreadable file: a full reload serves it
            answer.update(ok=False, reason=str(exc) or type(exc).__name__)
        # untraced: the debugger's tracer would make the AST diff take 80 ms instead of 3
        answer.update(ms=round((time.time() - started) * 1000, 1), traced=sys.gettrace() is not None)
        return protocol.PatchAnswer.new(**answer)
