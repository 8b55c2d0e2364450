"""`triton-launch`: a `tritonserver` on a model repository in the foreground, until Ctrl-C.

triton-launch --model-repository model_repository
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from local_runtime.foreground import interrupt_on_sigint_and_sigterm, report_to_stderr
from local_runtime.triton_server import TritonLaunchError, TritonServer

logger = logging.getLogger("local_runtime.triton_launch")  # also when run as __main__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="triton-launch", description=__doc__.split("\n")[0])
    parser.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--model", action="append", default=[], help="load only these models")
    parser.add_argument("--log-file", type=Path)
    args = parser.parse_args(argv)
    server = TritonServer(
        args.model_repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        models=args.model,
        log_path=args.log_file,
    )
    report_to_stderr()
    interrupt_on_sigint_and_sigterm()
    try:
        server.start()
        logger.info(
            "tritonserver ready (pid %s): http %s, grpc %s, metrics %s, log %s",
            server.pid,
            server.http_url,
            server.grpc_url,
            server.metrics_url,
            server.log_path,
        )
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.stop()
        return 0
    except TritonLaunchError as error:
        logger.error("%s", error)
        return 1
    return server.stop() or 1


if __name__ == "__main__":
    sys.exit(main())
