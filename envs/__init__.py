"""MetaMaze2D environment code, installed as ``evoplastic.envs`` (the folder is ``envs/``).

Importing this package registers ``evoplastic/MetaMaze2D-v0`` with Gymnasium, so that
``gymnasium.make("evoplastic/MetaMaze2D-v0")`` gives a :class:`~evoplastic.envs.gym_env.MetaMaze2DEnv`
and ``gymnasium.make_vec("evoplastic/MetaMaze2D-v0", num_envs=8)`` the native
:class:`~evoplastic.envs.gym_env.MetaMaze2DVectorEnv`. The entry points are strings, so the env
module itself is only imported when an env is made.
"""

import gymnasium

ENV_ID = "evoplastic/MetaMaze2D-v0"

# Guarded: re-registering an id makes Gymnasium warn (e.g. on importlib.reload).
if ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ENV_ID,
        entry_point="evoplastic.envs.gym_env:MetaMaze2DEnv",
        vector_entry_point="evoplastic.envs.gym_env:MetaMaze2DVectorEnv",
    )
