"""``fugu serve``: expose a vec env over gRPC for remote rollouts (``backend="remote"``)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu serve``."""
    parser.add_argument(
        "env",
        help="env id (fugu or Gymnasium, e.g. cartpole-v1, CartPole-v1) or an entry point "
        "'package.module:factory' (fugu, Gymnasium or PettingZoo parallel env)",
    )
    parser.add_argument("--port", type=int, default=50051, help="TCP port (0: any free port)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1, this machine only; 0.0.0.0: every one)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="require 'authorization: Bearer TOKEN' on every call (default: $FUGU_SERVE_TOKEN)",
    )
    parser.add_argument(
        "--tls-cert", default=None, help="PEM certificate: speak TLS only (needs --tls-key)"
    )
    parser.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    parser.add_argument("--num-envs", type=int, default=1, help="env instances per client")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "serial", "multiprocessing", "native"),
        help="how the server steps each client's envs (see fugu.vector.make)",
    )
    parser.add_argument("--num-workers", type=int, default=None, help="worker processes/threads")
    parser.add_argument("--max-clients", type=int, default=4, help="sessions open at once")
    parser.add_argument(
        "--max-message-mb", type=float, default=64.0, help="largest request or answer (MiB)"
    )
    parser.add_argument(
        "--session-timeout", type=float, default=300.0, help="close sessions idle this long (s)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    import os
    import signal
    import sys
    import threading

    from fugu.bridges.entry import EntryPointEnv, is_entry_point
    from fugu.core.errors import FuguError
    from fugu.vector.serve import EnvServer

    make_kwargs: dict[str, object] = {"backend": args.backend}
    if args.num_workers is not None:
        make_kwargs["num_workers"] = args.num_workers
    try:
        server = EnvServer(
            EntryPointEnv(args.env) if is_entry_point(args.env) else args.env,
            args.num_envs,
            host=args.host,
            port=args.port,
            token=args.token or os.environ.get("FUGU_SERVE_TOKEN") or None,
            max_clients=args.max_clients,
            max_message_bytes=int(args.max_message_mb * (1 << 20)),
            session_timeout_s=args.session_timeout,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            make_kwargs=make_kwargs,
        )
        port = server.start()
    except FuguError as error:
        print(f"fugu serve: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    tls = " with TLS" if server.tls else ""
    print(f"fugu serve: serving {args.env}{tls} on {args.host}:{port}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        print("fugu serve: stopped", flush=True)
    return 0
