"""Exploration bonuses as reward hooks: random network distillation and curiosity (ICM).

Both are :class:`~fugu.train.hooks.RewardHook` implementations, so any rollout algorithm
trained by the :class:`~fugu.train.loop.Trainer` can use them (``reward_hooks=[...]``, or the
``[explore]`` config section, :class:`~fugu.explore.config.ExploreConfig`). With plain PPO (or
any other rollout algorithm) the bonus is added to the extrinsic reward; with ``ppo_rnd``
(:mod:`fugu.algos.ppo_rnd`) it goes to a separate intrinsic critic with its own discount and
non-episodic returns, as in the RND paper.

Modules: :mod:`fugu.explore.normalize` (running statistics), :mod:`fugu.explore.rnd`,
:mod:`fugu.explore.icm`, :mod:`fugu.explore.config` (the config section and the hook factory).
"""
