"""`python -m mesh.load URL RPS USERS DURATION`: what `meshmart load` becomes once it has read
its options (it execs this module). A process of its own because Locust patches the standard
library for gevent as it is imported, which must happen before anything imports ssl."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from mesh.load.runner import run_load  # noqa: E402


def main(argv: list[str]) -> int:
    url, rps, users, duration = argv
    return run_load(url, rps=float(rps), users=int(users), duration=float(duration))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
