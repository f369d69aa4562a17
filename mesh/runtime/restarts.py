"""When the supervisor restarts a child that exited: kubelet's CrashLoopBackOff, scaled down.

kubelet restarts a container of a `restartPolicy: Always` pod after 10 s, doubling up to
5 min, and forgets the back-off once the container has run for 10 min. A local shop is
smaller and a user is watching, so the same curve runs ten times faster: 1 s, doubling up to
30 s, forgotten after 60 s up. The first restart is quick (a killed app is back within a
second); a child that crashes at once is not restarted in a busy loop.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
FORGET_AFTER_SECONDS = 60.0


@dataclass
class Restarts:
    count: int = 0
    last_exit: str | None = None
    next_delay: float = FIRST_DELAY_SECONDS
    due: float | None = None  # monotonic time of the pending restart; None while running

    def exited(self, exit_text: str, *, now: float, up_since: float) -> float:
        """Record an exit at `now` of a child running since `up_since`; returns the delay."""
        if now - up_since >= FORGET_AFTER_SECONDS:
            self.next_delay = FIRST_DELAY_SECONDS
        delay = self.next_delay
        self.next_delay = min(delay * 2, MAX_DELAY_SECONDS)
        self.last_exit = exit_text
        self.due = now + delay
        return delay

    def restarted(self) -> None:
        self.count += 1
        self.due = None
