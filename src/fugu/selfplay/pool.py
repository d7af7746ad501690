"""The historical policy pool: frozen snapshots of the learner and scripted bots, sampled.

A :class:`PolicyPool` keeps up to ``capacity`` frozen snapshots of the learner's policy
(weights only, one safetensors file each, in the pool's directory) plus any number of
scripted bots (never evicted). It records the learner's results against every entry, and
samples opponents by one of four rules:

* ``latest``: the newest snapshot (a bot only while there is no snapshot);
* ``uniform``: every entry alike;
* ``pfsp``: prioritized fictitious self-play, entries weighted by ``f(p)`` of the learner's
  win rate ``p`` against them (a smoothed score, draws half): ``hard`` ``(1 - p)^power``
  favours the opponents the learner loses to, ``variance`` ``p (1 - p)`` the even ones;
* ``mixed``: ``latest`` with probability ``latest_prob``, else ``pfsp``.

When full, adding a snapshot evicts one: the ``oldest`` or the ``easiest`` (the one the learner
beats most), never the newest. Snapshots act by sampling from their policy (with the env's
action masks) through :class:`~fugu.train.evaluate.PolicyActor`.

Example:
    >>> import numpy as np, tempfile, torch
    >>> pool = PolicyPool(tempfile.mkdtemp(), capacity=2, bots=("random",))
    >>> for epoch in (1, 2, 3):
    ...     _ = pool.add_snapshot(torch.nn.Linear(2, 2), epoch=epoch, global_step=100 * epoch)
    >>> pool.names()  # the oldest snapshot was evicted
    ['bot:random', 'snap-000002', 'snap-000003']
    >>> pool.record("bot:random", wins=9, draws=0, losses=1)
    >>> pool.sample("latest", 2, np.random.default_rng(0))
    ['snap-000003', 'snap-000003']
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from fugu.core.errors import APIUsageError
from fugu.selfplay.bots import make_bot

__all__ = ["EVICTIONS", "SAMPLINGS", "PolicyPool", "PoolEntry"]

SAMPLINGS = ("latest", "uniform", "pfsp", "mixed")
"""Opponent sampling rules of :meth:`PolicyPool.sample`."""
EVICTIONS = ("oldest", "easiest")
"""Which snapshot a full pool drops."""
_BOT = "bot:"


@dataclass
class PoolEntry:
    """One opponent of the pool.

    Attributes:
        name: ``snap-<epoch>`` or ``bot:<spec>``.
        epoch: The learner's epoch when snapshotted (-1 for bots).
        global_step: The learner's step when snapshotted (-1 for bots).
        file: The weights file, relative to the pool's directory (``None`` for bots).
        wins: The learner's wins against it (``draws``, ``losses`` likewise).
        recent: The learner's recent ``[wins, draws, losses]``: decayed by ``decay`` at each
            :meth:`PolicyPool.record` for this entry, so PFSP follows the current learner
            (against whom an old snapshot was hard once, it may be easy now).
    """

    name: str
    epoch: int = -1
    global_step: int = -1
    file: str | None = None
    wins: int = 0
    draws: int = 0
    losses: int = 0
    recent: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    @property
    def is_bot(self) -> bool:
        """Whether it is a scripted bot."""
        return self.name.startswith(_BOT)

    @property
    def games(self) -> int:
        """Games the learner played against it."""
        return self.wins + self.draws + self.losses

    @property
    def win_rate(self) -> float:
        """The learner's smoothed recent score against it: ``(w + d / 2 + 1) / (w + d + l + 2)``
        of the :attr:`recent` counts (0.5 before any game)."""
        w, d, lost = self.recent
        return (w + 0.5 * d + 1.0) / (w + d + lost + 2.0)


class PolicyPool:
    """Frozen snapshots of the learner and scripted bots, with results and sampling.

    Args:
        directory: Where snapshot weights are written (created on demand).
        capacity: Snapshots kept (bots do not count).
        eviction: ``oldest`` or ``easiest`` (:data:`EVICTIONS`).
        bots: Bot specs (:func:`~fugu.selfplay.bots.make_bot`) always in the pool.
        pfsp_weighting: ``hard`` or ``variance``.
        pfsp_power: Exponent of ``hard`` weighting.
        latest_prob: ``mixed`` sampling's probability of the latest snapshot.
        decay: Factor on an entry's recent results at each new batch of results against it.
        seed: Seed of the snapshots' and bots' action sampling.
    """

    def __init__(
        self,
        directory: str | Path,
        capacity: int = 20,
        eviction: str = "oldest",
        bots: Iterable[str] = (),
        pfsp_weighting: str = "hard",
        pfsp_power: float = 2.0,
        latest_prob: float = 0.5,
        seed: int = 0,
        decay: float = 0.8,
    ) -> None:
        if capacity < 1:
            raise APIUsageError(f"pool capacity must be >= 1, got {capacity}")
        if eviction not in EVICTIONS:
            raise APIUsageError(f"eviction must be one of {EVICTIONS}, got {eviction!r}")
        if pfsp_weighting not in ("hard", "variance"):
            raise APIUsageError(
                f"pfsp_weighting must be 'hard' or 'variance', got {pfsp_weighting!r}"
            )
        self.directory = Path(directory)
        self.capacity = int(capacity)
        self.eviction = eviction
        self.pfsp_weighting = pfsp_weighting
        self.pfsp_power = float(pfsp_power)
        self.latest_prob = float(latest_prob)
        self.seed = int(seed)
        self.decay = float(decay)
        self.entries: dict[str, PoolEntry] = {}
        for spec in bots:
            make_bot(spec)  # a clear error for an unknown bot, now
            self.entries[_BOT + spec] = PoolEntry(_BOT + spec)
        self._actors: dict[str, Any] = {}

    # -- contents ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every entry's name, bots first, then snapshots oldest first."""
        return list(self.entries)

    def snapshots(self) -> list[PoolEntry]:
        """The snapshots, oldest first."""
        return [e for e in self.entries.values() if not e.is_bot]

    @property
    def latest(self) -> PoolEntry | None:
        """The newest snapshot of the learner (``snap-*``; ``None`` before the first)."""
        snaps = [e for e in self.snapshots() if e.name.startswith("snap-")]
        return snaps[-1] if snaps else None

    def add_snapshot(
        self, policy: nn.Module, epoch: int, global_step: int, prefix: str = "snap"
    ) -> list[str]:
        """Freeze ``policy``'s weights as ``<prefix>-<epoch>``; returns the evicted names."""
        from safetensors.torch import save_file

        name = f"{prefix}-{epoch:06d}"
        if name in self.entries:
            raise APIUsageError(f"the pool already holds a snapshot of epoch {epoch}")
        self.directory.mkdir(parents=True, exist_ok=True)
        file = f"{name}.safetensors"
        weights = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
        tmp = self.directory / f".{file}.tmp"
        save_file(weights, str(tmp))
        tmp.replace(self.directory / file)
        self.entries[name] = PoolEntry(name, epoch, global_step, file)
        evicted = []
        while len(self.snapshots()) > self.capacity:
            evicted.append(self._evict())
        return evicted

    def _evict(self) -> str:
        candidates = self.snapshots()[:-1]  # never the newest
        if self.eviction == "oldest":
            victim = candidates[0]
        else:
            victim = max(candidates, key=lambda e: (e.win_rate, -e.epoch))
        del self.entries[victim.name]
        self._actors.pop(victim.name, None)
        if victim.file is not None:
            (self.directory / victim.file).unlink(missing_ok=True)
        return victim.name

    def record(self, name: str, wins: int, draws: int, losses: int) -> None:
        """Add the learner's results against ``name`` (ignored if it was evicted meanwhile)."""
        entry = self.entries.get(name)
        if entry is not None:
            entry.wins += wins
            entry.draws += draws
            entry.losses += losses
            entry.recent = [
                self.decay * old + new for old, new in zip(entry.recent, (wins, draws, losses))
            ]

    # -- sampling ---------------------------------------------------------------------------
    def weights(self, rule: str) -> dict[str, float]:
        """Sampling probabilities of every entry under ``rule`` (:data:`SAMPLINGS`)."""
        if rule not in SAMPLINGS:
            raise APIUsageError(f"sampling must be one of {SAMPLINGS}, got {rule!r}")
        if not self.entries:
            raise APIUsageError("the pool is empty: add a snapshot or a bot first")
        names = self.names()
        latest = self.latest
        if rule == "latest":
            pick = latest.name if latest is not None else names[0]
            return {n: float(n == pick) for n in names}
        if rule == "uniform":
            return {n: 1.0 / len(names) for n in names}
        p = np.array([self.entries[n].win_rate for n in names])
        if self.pfsp_weighting == "hard":
            w = (1.0 - p) ** self.pfsp_power
        else:
            w = p * (1.0 - p)
        w = w / w.sum() if w.sum() > 0 else np.full(len(names), 1.0 / len(names))
        if rule == "mixed" and latest is not None:
            w = (1.0 - self.latest_prob) * w + self.latest_prob * np.array(
                [float(n == latest.name) for n in names]
            )
        return {n: float(x) for n, x in zip(names, w)}

    def sample(self, rule: str, count: int, rng: np.random.Generator) -> list[str]:
        """``count`` opponent names drawn (with replacement) by ``rule``."""
        weights = self.weights(rule)
        names = list(weights)
        probs = np.array([weights[n] for n in names])
        return [names[i] for i in rng.choice(len(names), size=count, p=probs / probs.sum())]

    # -- actors -----------------------------------------------------------------------------
    def actor(self, name: str, template: nn.Module, device: str = "cpu") -> Any:
        """The :class:`~fugu.algos.base.Actor` of entry ``name``; a snapshot gets a frozen copy
        of ``template`` (the learner's policy) with its weights. Cached per entry."""
        if name in self._actors:
            return self._actors[name]
        entry = self.entries.get(name)
        if entry is None:
            raise APIUsageError(f"no opponent {name!r} in the pool ({self.names()})")
        seed = self.seed + len(self._actors) + 1
        actor: Any
        if entry.is_bot:
            actor = make_bot(name[len(_BOT) :], seed)
        else:
            from safetensors.torch import load_file

            from fugu.train.evaluate import PolicyActor

            assert entry.file is not None
            policy = copy.deepcopy(template)
            policy.load_state_dict(load_file(str(self.directory / entry.file)))
            policy.eval()
            for parameter in policy.parameters():
                parameter.requires_grad_(False)
            actor = PolicyActor(policy, device, seed=seed)  # type: ignore[arg-type]
        self._actors[name] = actor
        return actor

    # -- state ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready entries (the weights stay in their files)."""
        return {"entries": [asdict(e) for e in self.entries.values()]}

    def load_dict(self, data: Mapping[str, Any]) -> None:
        """Restore :meth:`to_dict` (files must still be in the directory)."""
        entries: Sequence[Mapping[str, Any]] = data["entries"]
        self.entries = {e["name"]: PoolEntry(**e) for e in entries}
        self._actors = {}
