"""Self-play: ratings, a historical policy pool, matchmaking on one vec env, scripted bots.

Modules (import what you need; nothing is imported here):

- :mod:`fugu.selfplay.ratings`: Elo and Glicko-2 rating tables, a maximum-likelihood Elo fit;
- :mod:`fugu.selfplay.pool`: frozen snapshots (safetensors) and bots, eviction, sampling
  (latest, uniform, PFSP, mixed);
- :mod:`fugu.selfplay.matchmaking`: learner and opponent rows of a two-player vec env, one
  batched opponent actor, results of a rollout;
- :mod:`fugu.selfplay.run`: :func:`~fugu.selfplay.run.train_selfplay` and the
  :class:`~fugu.selfplay.run.SelfPlay` callback;
- :mod:`fugu.selfplay.match`: head-to-head matches with Wilson intervals, round robins;
- :mod:`fugu.selfplay.bots`: random, one-ply and alpha-beta connect4 bots.
"""
