"""Beyond one machine: gRPC Remote vs local backends, the Ray backend, DDP 1 vs 2 processes.

Prints one JSON line per measurement (``bench``, ``impl``, ``env``, ``num_envs``, ``sps`` or
``updates_per_s``, the median over ``--rounds`` interleaved rounds) and one ``ratio`` line per
comparison:

- ``remote_vs_multiprocessing``: 8 Gymnasium CartPoles through ``fugu serve`` on loopback
  (the server steps them with ``--server-backend``) vs local Multiprocessing (2 workers);
  target >= 0.5;
- ``remote_native``: native cartpole-v1 with 4096 rows over gRPC (one message per batch) vs
  the same native env in process; target >= 10M steps/s;
- ``ray``: 8 Gymnasium CartPoles on 2 Ray actors (a local cluster) vs Multiprocessing;
- ``ddp``: PPO-sized updates (an MLP, 4096 rows per rank) with 1 and 2 gloo processes:
  updates/s and the scaling efficiency ``sps(2) / (2 * sps(1))``; with two or more GPUs the
  same with NCCL.

    python benchmarks/distributed.py --rounds 3 --seconds 2
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _rate(env: Any, seconds: float) -> float:
    """Rows stepped per second through async batches (zero actions)."""
    env.async_reset(seed=0)
    actions: np.ndarray | None = None
    for _ in range(20):  # warm up
        batch = env.recv()
        if actions is None:
            actions = np.zeros(len(batch.env_ids), np.int32)
        env.send(actions)
    rows, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = env.recv()
        env.send(actions)
        rows += len(batch.env_ids)
    return rows / (time.perf_counter() - start)


def _serve(env_id: str, num_envs: int, backend: str) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "fugu", "serve", env_id, "--port", "0",
               "--num-envs", str(num_envs), "--backend", backend]  # fmt: skip
    if backend == "multiprocessing":
        command += ["--num-workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "serving" not in line:
        process.kill()
        raise RuntimeError(f"fugu serve did not start: {line!r}")
    return process, "127.0.0.1:" + line.strip().rsplit(":", 1)[1]


def _interleaved(
    makers: dict[str, Callable[[], Any]], rounds: int, seconds: float
) -> dict[str, float]:
    envs = {name: make() for name, make in makers.items()}
    try:
        samples: dict[str, list[float]] = {name: [] for name in envs}
        for _ in range(rounds):
            for name, env in envs.items():
                samples[name].append(_rate(env, seconds))
    finally:
        for env in envs.values():
            env.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_gym(args: argparse.Namespace) -> None:
    import fugu.vector

    server, address = _serve("CartPole-v1", 8, args.server_backend)
    try:
        makers: dict[str, Callable[[], Any]] = {
            "multiprocessing": lambda: fugu.vector.make(
                "CartPole-v1", 8, backend="multiprocessing", num_workers=2, batch_size=4
            ),
            "remote": lambda: fugu.vector.make(
                "CartPole-v1", 8, backend="remote", address=address, batch_size=4
            ),
        }
        if not args.no_ray:
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            makers["ray"] = lambda: fugu.vector.make(
                "CartPole-v1", 8, backend="ray", num_workers=2, batch_size=4
            )
        result = _interleaved(makers, args.rounds, args.seconds)
    finally:
        server.terminate()
        server.wait()
    for impl, sps in result.items():
        _emit({"bench": "vector", "impl": impl, "env": "CartPole-v1", "num_envs": 8, "sps": sps})
    base = result["multiprocessing"]
    _emit({"bench": "ratio", "name": "remote_vs_multiprocessing", "ratio": result["remote"] / base,
           "target": 0.5, "server_backend": args.server_backend})  # fmt: skip
    if "ray" in result:
        _emit({"bench": "ratio", "name": "ray_vs_multiprocessing", "ratio": result["ray"] / base})


def _cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of this process (``pid=None``) or of process ``pid``."""
    if pid is None:
        usage = os.times()
        return usage.user + usage.system
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _echo_server(answer_bytes: int) -> None:
    """A bare gRPC bidirectional stream answering every request with ``answer_bytes`` bytes."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    answer = bytes(answer_bytes)

    def stream(requests: Any, context: Any) -> Any:
        for _ in requests:
            yield answer

    options = [
        ("grpc.max_receive_message_length", 1 << 26),
        ("grpc.max_send_message_length", 1 << 26),
    ]
    server = grpc.server(ThreadPoolExecutor(8), options=options)
    handler = grpc.method_handlers_generic_handler(
        "echo", {"Stream": grpc.stream_stream_rpc_method_handler(stream)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"serving echo on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


class _Echo:
    """A client of :func:`_echo_server` shaped like a one-batch vec env (for :func:`_rate`)."""

    def __init__(self, address: str, request_bytes: int, rows: int) -> None:
        import queue

        import grpc

        options = [("grpc.max_receive_message_length", 1 << 26)]
        self._channel = grpc.insecure_channel(address, options=options)
        grpc.channel_ready_future(self._channel).result(timeout=10)
        self._queue: Any = queue.SimpleQueue()
        self._call = self._channel.stream_stream("/echo/Stream")(iter(self._queue.get, None))
        self._request = bytes(request_bytes)
        self._ids = np.arange(rows)

    def async_reset(self, seed: int) -> None:
        self._queue.put(self._request)

    def recv(self) -> Any:
        next(self._call)
        return argparse.Namespace(env_ids=self._ids)

    def send(self, actions: np.ndarray) -> None:
        self._queue.put(self._request)

    def close(self) -> None:
        self._queue.put(None)
        self._call.cancel()
        self._channel.close()


def _serve_echo(answer_bytes: int) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, __file__, "--echo-server", str(answer_bytes)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, "127.0.0.1:" + line.strip().rsplit(":", 1)[1]


def bench_native(args: argparse.Namespace) -> None:
    """Native cartpole over gRPC vs in process, with the CPU cost of one round trip per side.

    Beside steps/s, each impl reports ``client_cpu_us`` and ``server_cpu_us``: CPU time spent
    per 4096 rows stepped, by this process and by the server process. The ``grpc_echo``
    impl is a bare gRPC stream moving the same bytes (16 KiB of actions out, the answer's
    ~160 KB back) with no env and no fugu code: the floor of the transport itself.
    ``remote_16384_rows`` steps 4x the rows per message, to show the per-message cost.
    """
    import fugu.vector
    from fugu.core.schema import schema

    probe = fugu.vector.make("cartpole-v1", 4096)
    fields = schema(probe.single_observation_space, probe.single_action_space, probe.extra_fields)
    answer = sum(f.allocate(4096).nbytes for n, f in fields.items() if n != "actions")
    request = fields["actions"].allocate(4096).nbytes
    probe.close()
    servers = {"remote": _serve("cartpole-v1", 4096, "native"),
               "big": _serve("cartpole-v1", 16384, "native"),
               "echo": _serve_echo(answer)}  # fmt: skip
    pids = {
        "native_local": None,
        "grpc_echo": servers["echo"][0].pid,
        "remote_1_batch": servers["remote"][0].pid,
        "remote_2_batches": servers["remote"][0].pid,
        "remote_4_batches": servers["remote"][0].pid,
        "remote_16384_rows": servers["big"][0].pid,
    }
    address, big = servers["remote"][1], servers["big"][1]
    makers: dict[str, Callable[[], Any]] = {
        "native_local": lambda: fugu.vector.make("cartpole-v1", 4096),
        "grpc_echo": lambda: _Echo(servers["echo"][1], request, 4096),
        "remote_1_batch": lambda: fugu.vector.make(
            "cartpole-v1", 4096, backend="remote", address=address
        ),
        "remote_2_batches": lambda: fugu.vector.make(
            "cartpole-v1", 4096, backend="remote", address=address, batch_size=2048
        ),
        "remote_4_batches": lambda: fugu.vector.make(
            "cartpole-v1", 4096, backend="remote", address=address, batch_size=1024
        ),
        "remote_16384_rows": lambda: fugu.vector.make(
            "cartpole-v1", 16384, backend="remote", address=big
        ),
    }
    envs = {name: make() for name, make in makers.items()}
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in envs}
    try:
        for _ in range(args.rounds):
            for name, env in envs.items():
                pid = pids[name]
                client, server = _cpu_seconds(), _cpu_seconds(pid) if pid else 0.0
                start = time.perf_counter()
                sps = _rate(env, args.seconds)
                rows = sps * (time.perf_counter() - start)
                per = 4096e6 / max(rows, 1.0)  # microseconds per 4096 rows
                server_cpu = (_cpu_seconds(pid) - server) * per if pid else 0.0
                samples[name].append((sps, (_cpu_seconds() - client) * per, server_cpu))
    finally:
        for env in envs.values():
            env.close()
        for process, _ in servers.values():
            process.terminate()
            process.wait()
    result: dict[str, float] = {}
    for impl, values in samples.items():
        sps, client_cpu, server_cpu = (statistics.median(v) for v in zip(*values))
        result[impl] = sps
        rows = 16384 if impl == "remote_16384_rows" else 4096
        _emit({"bench": "vector", "impl": impl, "env": "cartpole-v1", "num_envs": rows,
               "sps": sps, "client_cpu_us_per_4096_rows": round(client_cpu, 1),
               "server_cpu_us_per_4096_rows": round(server_cpu, 1)})  # fmt: skip
    best = max(result[k] for k in ("remote_1_batch", "remote_2_batches", "remote_4_batches"))
    _emit({"bench": "ratio", "name": "remote_native", "sps": best, "target_sps": 10e6,
           "ratio_vs_local": best / result["native_local"],
           "echo_floor_sps": result["grpc_echo"]})  # fmt: skip


# -- DDP ------------------------------------------------------------------------------------
def _ddp_rank(rank: int, world: int, port: int, seconds: float, device: str, out: str) -> None:
    import torch

    from fugu.models.optim import Optimizer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    cuda = device == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    if world > 1:
        torch.distributed.init_process_group(
            "nccl" if cuda else "gloo", rank=rank, world_size=world
        )
    dev = torch.device(f"cuda:{rank}" if cuda else "cpu")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.Tanh(), torch.nn.Linear(256, 256), torch.nn.Tanh(),
        torch.nn.Linear(256, 3),
    ).to(dev)  # fmt: skip
    opt = Optimizer(net.parameters(), learning_rate=3e-4, max_grad_norm=0.5, device=dev)
    x = torch.randn(4096, 64, device=dev)
    y = torch.randn(4096, 3, device=dev)

    def update() -> None:
        for lo in range(0, 4096, 1024):  # 4 minibatches per update, like a PPO epoch
            opt.backward((net(x[lo : lo + 1024]) - y[lo : lo + 1024]).pow(2).mean())
            opt.step()

    for _ in range(3):
        update()
    if cuda:
        torch.cuda.synchronize()
    count, start = 0, time.perf_counter()
    while True:
        update()
        count += 1
        done = time.perf_counter() - start >= seconds
        if world > 1:  # stop together
            flag = torch.tensor([float(done)], device=dev)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            done = bool(flag.item())
        if done:
            break
    if cuda:
        torch.cuda.synchronize()
    rate = count / (time.perf_counter() - start)
    if rank == 0:
        with open(out, "w") as handle:
            handle.write(str(rate))
    if world > 1:
        torch.distributed.destroy_process_group()


def _ddp_rate(world: int, seconds: float, device: str) -> float:
    import tempfile

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rate")
        mp.start_processes(_ddp_rank, (world, port, seconds, device, out), nprocs=world,
                           start_method="spawn")  # fmt: skip
        with open(out) as handle:
            return float(handle.read())


def bench_ddp(args: argparse.Namespace) -> None:
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available() and torch.cuda.device_count() >= 2:
        devices.append("cuda")
    for device in devices:
        samples: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.rounds):
            for world in (1, 2):
                samples[world].append(_ddp_rate(world, args.seconds, device))
        rates = {w: statistics.median(v) for w, v in samples.items()}
        backend = "nccl" if device == "cuda" else "gloo"
        for world, rate in rates.items():
            _emit({"bench": "ddp", "backend": backend, "processes": world,
                   "updates_per_s": rate, "rows_per_s": rate * 4096 * world})  # fmt: skip
        _emit({"bench": "ratio", "name": "ddp_scaling_efficiency", "backend": backend,
               "ratio": rates[2] / rates[1]})  # fmt: skip
    if "cuda" not in devices:
        _emit({"bench": "ddp", "backend": "nccl", "skipped": "needs 2 or more CUDA devices"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--server-backend", default="serial",
                        choices=("serial", "multiprocessing"))  # fmt: skip
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--only", choices=("gym", "native", "ddp"), default=None)
    parser.add_argument("--echo-server", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server is not None:
        _echo_server(args.echo_server)
        return
    _emit({"bench": "machine", "cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]})
    for name, bench in (("gym", bench_gym), ("native", bench_native), ("ddp", bench_ddp)):
        if args.only in (None, name):
            bench(args)


if __name__ == "__main__":
    main()
