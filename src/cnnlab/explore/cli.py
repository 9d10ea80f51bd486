"""cnnlab-explore RUN_DIR [RUN_DIR ...]: any trained run, live in the browser, stage by stage.

Serves a page on 127.0.0.1 and prints its address. Draw a digit or pick a validation image, shift, rotate or
erase part of it, and every stage of each run's network answers; click a unit for its receptive field, filter,
top dataset examples and its value as the input shifts. Sweep dirs give all their jobs (the page picks which
to show side by side)."""

from __future__ import annotations

import argparse
import errno
import sys

from rich.console import Console

from cnnlab.errors import CnnlabError


def main(argv: list[str] | None = None) -> int:
    from cnnlab.summary import fail

    parser = argparse.ArgumentParser(prog="cnnlab-explore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run dir or sweep dir (its jobs)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 opens it to "
                             "every network this machine is on)")
    parser.add_argument("--images", type=int, default=500,
                        help="validation images to pick from and to find top examples in (default 500)")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        server = start(args.run_dirs, args.host, args.port, args.images, console)
    except CnnlabError as err:
        return fail(err)
    host, port = server.server_address[:2]
    print(f"cnnlab-explore: serving {len(server.explorer.runs)} run(s) at http://{host}:{port}/ "
          "(Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def start(run_dirs: list[str], host: str, port: int, images: int, console: Console):
    """Check the arguments, load the runs and bind the server (it is not serving yet)."""
    from cnnlab.explore.runs import open_runs
    from cnnlab.explore.server import Explorer, make_server

    if not 0 <= port <= 65535:
        raise CnnlabError(f"--port must be in 0..65535 (0: any free port), got {port}.")
    if images < 1:
        raise CnnlabError(f"--images must be at least 1 (the validation images the page offers), got {images}.")
    with console.status(f"cnnlab-explore: loading {len(run_dirs)} run dir(s) ..."):
        runs = open_runs(run_dirs)
        explorer = Explorer(runs, images)
        for run in runs:
            run.load_images(images)
    try:
        server = make_server(explorer, host, port, quiet=True)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise CnnlabError(f"--port {port} on {host} is already in use (another cnnlab-explore, or another "
                              "server). Valid: a free port, e.g. --port 0 to let the system pick one.") from None
        raise CnnlabError(f"cannot listen on {host}:{port}: {err.strerror or err}. Valid: --host 127.0.0.1 (this "
                          "machine) or an address of this machine, and a free --port.") from None
    server.explorer = explorer
    return server


if __name__ == "__main__":
    sys.exit(main())
