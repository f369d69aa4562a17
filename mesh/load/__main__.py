"""`python -m mesh.load --rps R --users U --duration S [--ingress URL] [--mesh SERVICE=URL]...`:
what `meshmart load` becomes once it has read its options (it execs this module), and what the
cluster's loadgen Deployment runs (mesh.load.plan reads the arguments). A process of its own
because Locust patches the standard library for gevent as it is imported, which must happen
before anything imports ssl."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from mesh.load.plan import parse  # noqa: E402
from mesh.load.runner import run_load  # noqa: E402


def main(argv: list[str]) -> int:
    return run_load(parse(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
