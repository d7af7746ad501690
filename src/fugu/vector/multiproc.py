"""Multiprocessing backend: worker processes write straight into shared-memory buffers.

All rows live in one shared-memory block (a ``multiprocessing.RawArray``, whose backing file
is unlinked at creation, so nothing is ever left in ``/dev/shm``): one buffer per field of the
env's schema, the standard ones and every extra field the probe env declares
(:mod:`fugu.core.schema`). Each worker builds ``envs_per_worker`` instances adopting its rows
of every buffer, so a batch, extras included, is a zero-copy view in the main process.

Signalling. A small control block in shared memory holds, per worker, the command and a
sequence counter written by the main process, and the status and a counter written by the
worker. The waiting side polls the other side's counter for ``spin_us`` microseconds, yielding
the CPU between polls (no system call on the fast path but the yield, which keeps an
oversubscribed core from being starved), then raises its "sleeping" flag and blocks in ``poll``
on a wake-up pipe that the other side writes only when it sees that flag. A wake-up lost to a
race costs at most one poll timeout (10 ms). In the main process the poll also watches the
worker's process sentinel, so a worker killed by a signal is noticed at once instead of
hanging. Non-empty infos are pickled into a per-worker shared-memory area (through a pipe
when they do not fit); worker tracebacks travel through the pipe.

Batches. With ``batch_size < num_envs`` the workers form ``num_envs // batch_size`` batches of
consecutive workers; :meth:`recv` returns them in a fixed round-robin order while the other
batches keep stepping, which makes asynchronous runs deterministic.

Pinning. When the workers cover the usable CPUs evenly (``num_workers`` a multiple of their
number), each worker pins itself to one of them: a worker then never migrates, and the main
process, which stays free to move, meets each worker on that worker's core. On a 2-core VM this
took asynchronous CartPole batches from ~160k to ~180k steps/s, because a wake-up across cores
costs there several times a same-core hand-over (see docs/design.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import select
import time
import traceback
from collections.abc import Callable
from multiprocessing import connection as mp_connection
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from fugu.core.env import EnvBuffers, Infos, PufferEnv
from fugu.core.errors import APIUsageError, WorkerError
from fugu.core.schema import Field, schema
from fugu.vector.base import Seed, VecEnvBase, instance_seed, probe_env

__all__ = ["Multiprocessing", "worker_cpus"]

# Control block: 16 int64 slots per worker. Slots 0-7 are written by the main process, 8-15 by
# the worker (two cache lines, so the two sides never write the same line).
_STRIDE = 16
_CMD_SEQ, _CMD, _SEED, _HAS_SEED, _MAIN_SLEEPING = 0, 1, 2, 3, 4
_DONE_SEQ, _STATUS, _WORKER_SLEEPING, _INFO_BYTES = 8, 9, 10, 11
_STEP, _RESET, _CLOSE = 1, 2, 3
_OK, _INFOS, _ERROR, _INFOS_PIPED = 0, 1, 2, 3
# Pickled infos up to this size go through a per-worker shared-memory area (no system call on
# either side); larger ones through the worker's pipe.
_INFO_AREA = 1 << 16
# A blocked side re-checks the counters this often, so a wake-up lost to a race costs at most
# this long; a blocked worker also checks then whether the main process still lives.
_WORKER_POLL_MS = 10
# After _SPIN_MISSES spins in a row timed out (the other side is slow, or the CPU is busy with
# other programs), the next _SPIN_BACKOFF waits sleep at once before spinning is tried again.
_SPIN_MISSES = 3
_SPIN_BACKOFF = 16
_MAIN_POLL_MS = 10
_yield = getattr(os, "sched_yield", lambda: None)
_clock = time.perf_counter
_HAVE_POLL = hasattr(select, "poll")  # POSIX; elsewhere multiprocessing.connection.wait
_TIMEOUT, _RUNG, _GONE = 0, 1, 2


def _ring(conn: Connection) -> None:
    """Wake the side sleeping on the other end of ``conn``."""
    if _HAVE_POLL:
        os.write(conn.fileno(), b"w")
    else:
        conn.send_bytes(b"w")


class _Bell:
    """The sleeping end of a wake-up pipe, optionally watching a process sentinel too."""

    def __init__(self, conn: Connection, sentinel: int | None = None) -> None:
        self.conn, self.sentinel = conn, sentinel
        self._fd = conn.fileno()
        if _HAVE_POLL:
            self._poller = select.poll()
            self._poller.register(self._fd, select.POLLIN)
            if sentinel is not None:
                self._poller.register(sentinel, select.POLLIN)

    def wait(self, timeout_ms: int) -> int:
        """Sleep until rung (``_RUNG``), the peer is gone (``_GONE``) or ``_TIMEOUT``."""
        if not _HAVE_POLL:
            return self._wait_portable(timeout_ms)
        events = self._poller.poll(timeout_ms)
        if not events:
            return _TIMEOUT
        gone = False
        for fd, _ in events:
            if fd != self._fd:
                gone = True
            elif os.read(fd, 4096):
                return _RUNG
            else:
                gone = True  # end of file: the other side closed its end
        return _GONE if gone else _TIMEOUT

    def _wait_portable(self, timeout_ms: int) -> int:
        watched: list[Any] = [self.conn] if self.sentinel is None else [self.conn, self.sentinel]
        ready = mp_connection.wait(watched, timeout_ms / 1000)
        if self.conn in ready:
            try:
                while self.conn.poll(0):
                    self.conn.recv_bytes()
            except (EOFError, OSError):
                return _GONE
            return _RUNG
        return _GONE if ready else _TIMEOUT


_Layout = list[tuple[Field, int]]
"""Every field of the shared block with its byte offset."""


def _buffer_layout(fields: dict[str, Field], num_rows: int) -> tuple[_Layout, int]:
    """Byte offset of every field's buffer inside one block, 64-byte aligned, and its size."""
    entries, offset = [], 0
    for f in fields.values():
        entries.append((f, offset))
        nbytes = int(np.prod(f.row_shape(num_rows), dtype=np.int64)) * f.dtype.itemsize
        offset += (nbytes + 63) // 64 * 64
    return entries, max(offset, 64)


def _buffer_views(raw: Any, layout: _Layout, num_rows: int) -> EnvBuffers:
    """:class:`EnvBuffers` (extras included) whose arrays are views of the shared block."""
    block = np.frombuffer(raw, dtype=np.uint8)
    arrays = {}
    for f, offset in layout:
        shape = f.row_shape(num_rows)
        nbytes = int(np.prod(shape, dtype=np.int64)) * f.dtype.itemsize
        arrays[f.name] = block[offset : offset + nbytes].view(f.dtype).reshape(shape)
    return EnvBuffers.from_arrays([f for f, _ in layout], arrays)


def _answer(
    ctrl: Any,
    base: int,
    seen: int,
    status: int,
    piped: bytes,
    done_conn: Connection,
    done_wake_conn: Connection,
) -> None:
    """Publish the answer to command ``seen``: its status, the counter, then any piped message.

    The counter goes up before a piped message is sent: a message larger than the pipe's buffer
    blocks the sender until the main process reads it, which it only does once it sees the
    counter.
    """
    ctrl[base + _STATUS] = status
    ctrl[base + _DONE_SEQ] = seen
    if ctrl[base + _MAIN_SLEEPING]:
        _ring(done_wake_conn)
    if piped:
        done_conn.send_bytes(piped)


def _worker_main(
    index: int,
    factory: Callable[..., PufferEnv],
    raw: Any,
    layout: _Layout,
    num_rows: int,
    ctrl: Any,
    info_raw: Any,
    row_seeds: Any,
    first_row: int,
    agents_per_env: int,
    num_envs: int,
    wake_conn: Connection,
    done_conn: Connection,
    done_wake_conn: Connection,
    spin: float,
    cpu: int | None,
) -> None:
    """Body of worker ``index``: build its envs on its rows, then serve commands until close."""
    if cpu is not None:
        with contextlib.suppress(OSError):  # a CPU taken away since: run unpinned
            os.sched_setaffinity(0, {cpu})
    parent, clock = os.getppid(), _clock
    base = index * _STRIDE
    cmd_seq, sleeping = base + _CMD_SEQ, base + _WORKER_SLEEPING
    bell = _Bell(wake_conn)
    seen = 1  # command 1 is "build your envs"
    skip_spin = misses = 0  # waits left that sleep at once; spins in a row that timed out
    try:
        buffers = _buffer_views(raw, layout, num_rows)
        info_area = memoryview(info_raw).cast("B")[index * _INFO_AREA : (index + 1) * _INFO_AREA]
        offsets = [first_row + i * agents_per_env for i in range(num_envs)]
        envs = [factory(buffers=buffers.rows(lo, lo + agents_per_env)) for lo in offsets]
        last = offsets[-1] + agents_per_env
        rewards = buffers.rewards[first_row:last]
        terminals = buffers.terminals[first_row:last]
        truncations = buffers.truncations[first_row:last]
        _answer(ctrl, base, seen, _OK, b"", done_conn, done_wake_conn)
        while True:
            if ctrl[cmd_seq] <= seen:
                if skip_spin:
                    skip_spin -= 1
                else:
                    deadline = clock() + spin
                    while ctrl[cmd_seq] <= seen and clock() < deadline:
                        _yield()
                    misses = misses + 1 if ctrl[cmd_seq] <= seen else 0
                    if misses >= _SPIN_MISSES:
                        skip_spin, misses = _SPIN_BACKOFF, 0
                while ctrl[cmd_seq] <= seen:
                    ctrl[sleeping] = 1
                    if ctrl[cmd_seq] <= seen:
                        woke = bell.wait(_WORKER_POLL_MS)
                        if woke == _GONE or (woke == _TIMEOUT and os.getppid() != parent):
                            return  # the main process is gone
                    ctrl[sleeping] = 0
            seen += 1
            command = ctrl[base + _CMD]
            infos: Infos = []
            if command == _STEP:
                for env in envs:
                    info = env.step(env.actions)[4]
                    if info:
                        infos.extend(info)
            elif command == _RESET:
                has_seed = ctrl[base + _HAS_SEED]
                seed: Seed = None
                if has_seed == 1:
                    seed = ctrl[base + _SEED]
                elif has_seed == 2:
                    seed = [0] * first_row + list(row_seeds[first_row:last])
                for env, offset in zip(envs, offsets):
                    infos.extend(env.reset(instance_seed(seed, offset, offset + agents_per_env))[1])
                rewards[:] = 0.0
                terminals[:] = False
                truncations[:] = False
            else:
                for env in envs:
                    env.close()
                return
            status, piped = _OK, b""
            if infos:
                payload = pickle.dumps(infos, protocol=5)
                if len(payload) <= _INFO_AREA:
                    info_area[: len(payload)] = payload
                    ctrl[base + _INFO_BYTES] = len(payload)
                    status = _INFOS
                else:
                    status, piped = _INFOS_PIPED, payload
            _answer(ctrl, base, seen, status, piped, done_conn, done_wake_conn)
    except (KeyboardInterrupt, BrokenPipeError):
        return
    except BaseException:
        text = f"worker {index} (pid {os.getpid()}) raised:\n{traceback.format_exc()}"
        with contextlib.suppress(OSError):
            _answer(ctrl, base, seen, _ERROR, text.encode(), done_conn, done_wake_conn)


def _usable_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where affinity is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def worker_cpus(num_workers: int, pin: bool | None = None) -> list[int | None]:
    """The CPU each worker pins itself to (``None``: not pinned); see ``pin_workers``.

    Example:
        >>> cpus = worker_cpus(4, pin=True)
        >>> len(cpus), all(cpu in os.sched_getaffinity(0) for cpu in cpus)
        (4, True)
        >>> worker_cpus(3, pin=False)
        [None, None, None]
    """
    supported = hasattr(os, "sched_setaffinity")
    if pin and not supported:
        raise APIUsageError(
            "pin_workers=True needs os.sched_setaffinity, which this platform lacks; "
            "pass pin_workers=None or False"
        )
    if pin is False or not supported:
        return [None] * num_workers
    cpus = _usable_cpus()
    if pin is None and num_workers % len(cpus):
        return [None] * num_workers
    return [cpus[i % len(cpus)] for i in range(num_workers)]


class Multiprocessing(VecEnvBase):
    """Steps env instances in worker processes that write into shared-memory buffers.

    Args:
        factory: Builds one instance; must be picklable for ``spawn``/``forkserver`` (an
            :class:`~fugu.vector.factory.EnvFactory` of an env id or module-level function).
        num_envs: Number of instances; a multiple of ``num_workers``.
        num_workers: Worker processes (default: the largest divisor of ``num_envs`` that is
            at most the number of CPUs this process may run on).
        batch_size: Instances per :meth:`recv` batch, a multiple of ``num_envs // num_workers``
            that divides ``num_envs`` (default: all of them, i.e. synchronous batches).
        seed: Seed of the first reset when none is given to it.
        context: Start method: ``"spawn"`` (default, safe with threads and CUDA), ``"fork"``
            (fastest start) or ``"forkserver"``.
        spin_us: Microseconds each side polls the shared counters (yielding the CPU between
            polls) before sleeping in ``poll`` (0: sleep at once).
        pin_workers: Pin worker ``i`` to the ``i``-th usable CPU (round-robin). ``None``
            (default): pin when ``num_workers`` is a multiple of the usable CPUs, so every CPU
            gets as many workers; ``False``: never (say, when other programs share the
            machine's first CPUs). Needs ``os.sched_setaffinity`` (Linux); ignored elsewhere
            unless ``True``, which then raises.

    Example:
        >>> from fugu.vector.factory import EnvFactory
        >>> env = Multiprocessing(EnvFactory("cartpole-v1"), 4, num_workers=2, context="fork")
        >>> obs, infos = env.reset(seed=0)
        >>> obs.shape
        (4, 4)
        >>> env.close()
    """

    def __init__(
        self,
        factory: Callable[..., PufferEnv],
        num_envs: int,
        num_workers: int | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        context: str | None = None,
        spin_us: float = 200.0,
        pin_workers: bool | None = None,
    ) -> None:
        num_envs = int(num_envs)
        if spin_us < 0:
            raise APIUsageError(f"spin_us must be >= 0, got {spin_us}")
        if num_envs < 1:
            raise APIUsageError(f"num_envs must be >= 1, got {num_envs}")
        if context is not None and context not in mp.get_all_start_methods():
            raise APIUsageError(
                f"context must be one of {mp.get_all_start_methods()}, got {context!r}"
            )
        if num_workers is None:
            cpus = len(_usable_cpus())
            num_workers = max(w for w in range(1, min(cpus, num_envs) + 1) if num_envs % w == 0)
        num_workers = int(num_workers)
        if num_workers < 1 or num_envs % num_workers:
            raise APIUsageError(
                f"num_workers ({num_workers}) must be >= 1 and divide num_envs ({num_envs})"
            )
        per_worker = num_envs // num_workers
        batch_size = num_envs if batch_size is None else int(batch_size)
        if batch_size < 1 or batch_size % per_worker or num_envs % batch_size:
            raise APIUsageError(
                f"batch_size ({batch_size}) must be a multiple of num_envs // num_workers "
                f"({per_worker}) that divides num_envs ({num_envs})"
            )
        obs_space, act_space, agents, layouts, extra_fields = probe_env(factory)
        fields = schema(obs_space, act_space, extra_fields)
        layout, nbytes = _buffer_layout(fields, agents * num_envs)
        ctx = mp.get_context(context or "spawn")
        self._raw: Any = ctx.RawArray(ctypes.c_uint8, nbytes)
        self._ctrl: Any = ctx.RawArray(ctypes.c_int64, num_workers * _STRIDE)
        self._row_seeds: Any = ctx.RawArray(ctypes.c_int64, agents * num_envs)
        self._info_raw: Any = ctx.RawArray(ctypes.c_uint8, num_workers * _INFO_AREA)
        self._info_area = memoryview(self._info_raw).cast("B")
        buffers = _buffer_views(self._raw, layout, agents * num_envs)
        for name, array in buffers.arrays().items():
            if fields[name].fill:  # the block starts zeroed
                array[...] = fields[name].fill
        super().__init__(obs_space, act_space, buffers, num_envs, batch_size, seed)
        self.__dict__.update(layouts)
        self.num_workers = num_workers
        self.envs_per_worker = per_worker
        self.context = ctx.get_start_method()
        self.spin_us = float(spin_us)
        self._spin_s = self.spin_us * 1e-6
        self.worker_cpus = worker_cpus(num_workers, pin_workers)
        self.processes: list[Any] = []
        self._conns: list[Connection] = []
        self._done: list[Connection] = []
        self._wake: list[Connection] = []
        self._sent = [1] * num_workers  # commands sent to each worker (1: build the envs)
        self._skip_spin = [0] * num_workers
        self._misses = [0] * num_workers
        self._bells: list[_Bell] = []
        per_batch = batch_size // per_worker
        self._batch_workers = [
            range(b * per_batch, (b + 1) * per_batch) for b in range(self.num_batches)
        ]
        try:
            self._start_workers(ctx, factory, layout, agents)
        except BaseException:
            self.close()
            raise

    # -- process management -----------------------------------------------------------------
    def _start_workers(
        self,
        ctx: Any,
        factory: Callable[..., PufferEnv],
        layout: _Layout,
        agents: int,
    ) -> None:
        per_worker = self.envs_per_worker
        for index in range(self.num_workers):
            wake_r, wake_w = ctx.Pipe(duplex=False)
            done_r, done_w = ctx.Pipe(duplex=False)
            done_wake_r, done_wake_w = ctx.Pipe(duplex=False)
            process = ctx.Process(
                target=_worker_main,
                name=f"fugu-vector-worker-{index}",
                args=(index, factory, self._raw, layout, self.num_agents, self._ctrl,
                      self._info_raw, self._row_seeds, index * per_worker * agents,
                      agents, per_worker, wake_r, done_w, done_wake_w, self._spin_s,
                      self.worker_cpus[index]),
                daemon=True,
            )  # fmt: skip
            self._conns.extend((wake_w, done_r, done_wake_r))
            self._wake.append(wake_w)
            self._done.append(done_r)
            try:
                process.start()
            except (pickle.PicklingError, AttributeError, TypeError) as error:
                raise APIUsageError(
                    f"cannot send the env factory to a {self.context!r} worker ({error}); pass "
                    "an env id or a module-level function, or use context='fork'"
                ) from error
            finally:
                for conn in (wake_r, done_w, done_wake_w):
                    conn.close()
            self.processes.append(process)
            self._bells.append(_Bell(done_wake_r, process.sentinel))
        for index in range(self.num_workers):
            self._wait_worker(index, 1)

    def _send(self, worker: int, command: int) -> None:
        ctrl, base = self._ctrl, worker * _STRIDE
        ctrl[base + _CMD] = command
        sent = self._sent[worker] = self._sent[worker] + 1
        ctrl[base + _CMD_SEQ] = sent
        if ctrl[base + _WORKER_SLEEPING]:
            try:
                _ring(self._wake[worker])
            except OSError:  # nobody reads the pipe any more: the worker is gone
                self._died(worker)

    def _wait_worker(self, worker: int, target: int) -> Infos:
        """Wait for worker ``worker``'s answer to its command number ``target``."""
        ctrl, base = self._ctrl, worker * _STRIDE
        slot = base + _DONE_SEQ
        if ctrl[slot] < target:
            if self._skip_spin[worker]:
                self._skip_spin[worker] -= 1
            else:
                deadline = _clock() + self._spin_s
                while ctrl[slot] < target and _clock() < deadline:
                    _yield()
                if ctrl[slot] >= target:
                    self._misses[worker] = 0
                else:
                    self._misses[worker] += 1
                    if self._misses[worker] >= _SPIN_MISSES:
                        self._skip_spin[worker], self._misses[worker] = _SPIN_BACKOFF, 0
            while ctrl[slot] < target:
                ctrl[base + _MAIN_SLEEPING] = 1
                if ctrl[slot] < target:
                    woke = self._bells[worker].wait(_MAIN_POLL_MS)
                    if woke == _GONE and ctrl[slot] < target:
                        self._died(worker)
                ctrl[base + _MAIN_SLEEPING] = 0
        status = ctrl[base + _STATUS]
        if status == _OK:
            return []
        if status == _INFOS:
            start = worker * _INFO_AREA
            return pickle.loads(self._info_area[start : start + ctrl[base + _INFO_BYTES]])  # type: ignore[no-any-return]
        try:
            message = self._done[worker].recv_bytes()
        except (EOFError, OSError):
            self._died(worker)
        if status == _INFOS_PIPED:
            return pickle.loads(message)  # type: ignore[no-any-return]
        self._error = message.decode(errors="replace")
        raise WorkerError(self._error)

    def _died(self, worker: int) -> None:
        process = self.processes[worker]
        process.join(1.0)
        code = process.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else "exited"
        self._error = (
            f"worker {worker} (pid {process.pid}) {how} (exit code {code}) without answering; "
            "its envs are lost: close() this vec env and make a new one"
        )
        if self.context in ("spawn", "forkserver") and code is not None and code > 0:
            self._error += (
                f". With the {self.context!r} start method each worker re-imports your main "
                "script: if this runs from a script, put the code that makes envs or trains "
                'under `if __name__ == "__main__":` (docs/troubleshooting.md)'
            )
        raise WorkerError(self._error)

    # -- hooks ------------------------------------------------------------------------------
    def _reset_all(self, seed: Seed) -> Infos:
        self._start_reset(seed)
        infos: Infos = []
        for worker in range(self.num_workers):
            infos.extend(self._wait_worker(worker, self._sent[worker]))
        return infos

    def _step_all(self) -> Infos:
        for worker in range(self.num_workers):
            self._send(worker, _STEP)
        infos: Infos = []
        for worker in range(self.num_workers):
            info = self._wait_worker(worker, self._sent[worker])
            if info:
                infos.extend(info)
        return infos

    def _start_reset(self, seed: Seed) -> None:
        if isinstance(seed, list):
            self._row_seeds[:] = seed
        for worker in range(self.num_workers):
            base = worker * _STRIDE
            self._ctrl[base + _SEED] = seed if isinstance(seed, int) else 0
            self._ctrl[base + _HAS_SEED] = 0 if seed is None else 1 if isinstance(seed, int) else 2
            self._send(worker, _RESET)

    def _start_step(self, batch: int) -> None:
        for worker in self._batch_workers[batch]:
            self._send(worker, _STEP)

    def _wait(self, batch: int) -> Infos:
        infos: Infos = []
        for worker in self._batch_workers[batch]:
            info = self._wait_worker(worker, self._sent[worker])
            if info:
                infos.extend(info)
        return infos

    def _close(self) -> None:
        for worker, process in enumerate(self.processes):
            if process.is_alive():
                self._ctrl[worker * _STRIDE + _CMD] = _CLOSE
                self._sent[worker] += 1
                self._ctrl[worker * _STRIDE + _CMD_SEQ] = self._sent[worker]
                with contextlib.suppress(OSError):
                    _ring(self._wake[worker])
        for process in self.processes:
            process.join(2.0)
            if process.is_alive():
                process.terminate()
                process.join(1.0)
            if process.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
                process.kill()
                process.join()
            process.close()
        for conn in self._conns:
            conn.close()
        self.processes, self._conns, self._done, self._bells = [], [], [], []

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
