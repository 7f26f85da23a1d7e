"""A worker listens only once it can answer, and stops listening only once its successor listens.

With `reuse_port` every worker has a listening socket of its own, and the kernel hands each new
connection to one of them by a hash of its addresses. gunicorn makes a worker's socket right after
the fork, before the worker has loaded the app: for the whole load (the word lists: seconds, with
pinyin) the kernel kept queueing connections on a worker that could not answer them. Those
callbacks then waited the load out and were shed, or answered after more than the IM's 2 s (seen
at every start, crash restart and HUP reload: 1.6 s with a 1.5 s load; issue 16).

So here:

- **A worker binds after it has loaded the app**, as its loop starts (`Handover.run`), when
  another worker accepts meanwhile: gunicorn's socket-making call is skipped in a freshly forked
  imhook worker (`_create_sockets`, installed when gunicorn imports this module in the master), and
  until the worker binds, the kernel sends every connection to the workers that already listen.
  With nobody else accepting (the first start, a lone worker's restart) it binds at once.
- **A stopping worker waits for its successor.** On a HUP gunicorn forks the new workers and at
  once tells the old ones to stop: with the new ones still loading, nobody would accept. An old
  worker told to stop (SIGTERM) while a younger one is still booting keeps serving until that one
  listens (at most HANDOVER_MAX_SECONDS). The workers know each other's state from the table they
  share (receiver/worker_table.py): a row is written by the master when it creates a worker
  (booting), then by the worker itself (listening, gone).
- **A stopping worker closes its listening socket at once**, not after its last connection ended:
  while the socket stays open the kernel keeps queueing new connections on it, and closing it later
  resets them. What is queued when it stops is accepted first and answered (`Connection: close`).
  A connection whose handshake completes in the microseconds between that last accept and the close
  is still reset, unless the host sets `net.ipv4.tcp_migrate_req=1` (docs/performance.md).

Without `reuse_port` the workers share the master's socket: nothing is bound late or closed early,
but an old worker still waits for its successor, so the shared queue is never left unserved.

Standard library and gunicorn only: gunicorn imports this module in the master (receiver/worker.py).
"""

from __future__ import annotations

import os
import select
import time

from gunicorn import sock as gunicorn_sock
from gunicorn import util

from .worker_table import TABLE

HANDOVER_MAX_SECONDS = 10.0  # how long a stopping worker waits for a booting successor to listen
CHECK_SECONDS = 0.05  # how often a waiting worker looks at the table
QUEUED_MAX = 4096  # connections accepted from a closing listener's queue, at most

ACCEPTING = "accepting connections"  # in the log line a worker writes when it starts to accept

_gunicorn_create_sockets = gunicorn_sock.create_sockets
_binds_late = False  # true in a freshly forked worker, until gunicorn's fork-time bind has been skipped


def _create_sockets(conf, log, fds=None):
    """gunicorn's create_sockets, except the one call it makes in a freshly forked worker with
    `reuse_port` while another worker accepts: that worker binds when it has loaded the app
    (Handover.run). With nobody accepting (the first start, or a lone worker's restart) it binds at
    once, as gunicorn does: a connection that waits for the load is better than a refused one."""
    global _binds_late
    if _binds_late and conf.reuse_port:
        _binds_late = False
        if TABLE.anyone_listening():
            return []
    return _gunicorn_create_sockets(conf, log, fds)


def _forked() -> None:
    global _binds_late
    _binds_late = True


# gunicorn's arbiter calls `sock.create_sockets` by its module attribute, right after the fork.
gunicorn_sock.create_sockets = _create_sockets
os.register_at_fork(after_in_child=_forked)


class Handover:
    """The worker's side (a mixin of receiver/worker.py's ImhookWorker, before gunicorn's class)."""

    _stop_asked_at: float | None = None
    _started_at = 0.0
    _next_look = 0.0
    _binds_on_run = False  # gunicorn's fork-time bind was skipped
    _own_listeners = False  # reuse_port: the listening sockets are this worker's alone

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # in the master, just before the fork
        TABLE.booting(self.age)

    def init_process(self) -> None:
        global _binds_late
        self._own_listeners = bool(self.cfg.reuse_port)
        self._binds_on_run = self._own_listeners and not self.sockets
        _binds_late = False  # skipped or not, only gunicorn's fork-time call was meant
        TABLE.started(self.age, os.getpid())
        self._started_at = time.monotonic()
        super().init_process()

    def run(self) -> None:
        if self._binds_on_run and self.alive:  # the app is loaded: now the kernel may send connections here
            self.sockets = _gunicorn_create_sockets(self.cfg, self.log)
            for listener in self.sockets:
                util.close_on_exec(listener)
            self.wait_fds = self.sockets + [self.PIPE[0]]
        TABLE.listening(self.age)
        # Tests and benchmarks wait for this line from every worker (ACCEPTING) before they measure.
        self.log.info("imhook worker %s: %s, %.2f s after it started (the app is loaded)", self.pid, ACCEPTING,
                      time.monotonic() - self._started_at)
        try:
            super().run()
        finally:
            TABLE.gone(self.age)

    def handle_exit(self, sig, frame) -> None:
        """SIGTERM: stop, but not while a younger worker is still loading (a HUP) and nobody else
        would accept."""
        if (self.alive and self._stop_asked_at is None
                and TABLE.successor_booting(self.age, time.monotonic(), HANDOVER_MAX_SECONDS)):
            self._stop_asked_at = time.monotonic()  # notify() says so, outside the signal handler
            return
        super().handle_exit(sig, frame)

    def notify(self) -> None:
        super().notify()
        asked = self._stop_asked_at
        if asked is None or not self.alive:
            return
        now = time.monotonic()
        if now < self._next_look:
            return
        if not self._next_look:
            self.log.info("imhook worker %s: serving on until the new worker listens", self.pid)
        self._next_look = now + CHECK_SECONDS
        if now - asked >= HANDOVER_MAX_SECONDS or not TABLE.successor_booting(self.age, now,
                                                                              HANDOVER_MAX_SECONDS):
            super().handle_exit(None, None)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive and self._own_listeners and self.sockets:
            self.stop_listening()

    def stop_listening(self) -> None:
        """Accept what is queued, then close the listening sockets: the kernel sends new
        connections to the other workers from now on, instead of queueing them here to be reset."""
        for listener in self.sockets:
            queued = select.poll()
            queued.register(listener.fileno(), select.POLLIN)
            try:
                for _ in range(QUEUED_MAX):  # the listen queue's length bounds it (gunicorn's backlog)
                    if not queued.poll(0):
                        break
                    self.accept(listener)
            except OSError as exc:  # out of descriptors or memory: what is left is reset, say so
                self.log.warning("imhook worker %s: could not accept every queued connection before "
                            "closing: %s", self.pid, exc)
            listener.close()
        self.sockets = []
        TABLE.gone(self.age)  # accepts no more: a worker starting now must not count on this one
