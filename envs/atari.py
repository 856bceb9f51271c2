"""Atari 2600 games from pixels (ale-py), preprocessed as RLlib's new API stack does: `atari-<game>`.

E.g. atari-pong, atari-montezuma-revenge; ATARI_GAMES lists them all.

The base environment is ALE v5 (`gym.make("ale_py:ALE/<Game>-v5", frameskip=1, ...)`): frame skipping is left
to the wrappers, which max-pool the last two frames of each skip (v5's own frameskip would not). On top come
the wrappers of RLlib's `wrap_atari_for_new_api_stack` (ray.rllib.env.wrappers.atari_wrappers), in its order:
  a time limit of 108,000 frames (30 minutes of play), grey scale + resize to dim x dim, scaling to [-1, 1]
  (float32), frame skip with max-pooling, 1-30 random no-ops at reset, end of episode on each lost life (the
  game itself resets only on game over), FIRE at reset for games that wait for it, and stacking of the last
  `framestack` frames on the channel axis.
We compose them ourselves (wrap_like_rllib) only to replace RLlib's lost-life wrapper, which never resets the
game after a time-limit truncation (see EpisodicLifeEnv).

Observation: float32 [dim, dim, framestack] in [-1, 1]. Rewards are the game's own, unclipped: clip them in
the RLlib config (`config.env_runners(clip_rewards=True)`), as RLlib's Atari examples do. With episodic_life,
an RLlib "episode return" is the score of one life, not of a game.
render() gives the full-size RGB screen (210 x 160 x 3 uint8), for clips.

Speed (pong, defaults, random actions, one core of the 2-core dev machine, measured with
armillary.envs.gridworld.measure_steps_per_second): ~1,200-1,400 agent steps/s after preprocessing (each
agent step is 4 emulator frames); raw ALE Pong with frameskip=1 runs at ~11,500 frames/s. About half of both
while the machine is busy.
"""

from __future__ import annotations

import os

import gymnasium as gym
from pydantic import Field

from armillary.core.entries import EnvEntry, EnvOptions
from armillary.envs.registry import register

# Importing ray.rllib (for its wrappers) imports dm_control, which must not pick a display-based GL backend.
os.environ.setdefault("MUJOCO_GL", "egl")

# Registry name -> ALE game id. DISDAIN's Atari results span the 57 games; these are the usual small set plus
# the hard-exploration games.
ATARI_GAMES = {
    "pong": "Pong",
    "breakout": "Breakout",
    "space-invaders": "SpaceInvaders",
    "ms-pacman": "MsPacman",
    "montezuma-revenge": "MontezumaRevenge",
    "seaquest": "Seaquest",
    "qbert": "Qbert",
    "beam-rider": "BeamRider",
    "enduro": "Enduro",
    "freeway": "Freeway",
    "private-eye": "PrivateEye",
    "venture": "Venture",
    "pitfall": "Pitfall",
    "gravitar": "Gravitar",
}

# RLlib's own CNN for 64x64 Atari (rllib/examples/envs/env_rendering_and_recording.py and
# rllib/examples/connectors/frame_stacking.py; also get_filter_config's 64x64 default). RLlib's CNN encoder
# flattens after the last layer, so the same filters also work at other `dim`s (84: 6x6x128 features).
ATARI_MODEL_CONFIG = {
    "conv_filters": [[16, 4, 2], [32, 4, 2], [64, 4, 2], [128, 4, 2]],
    "conv_activation": "relu",
    "head_fcnet_hiddens": [256],
    "vf_share_layers": True,
}


class AtariOptions(EnvOptions):
    dim: int = Field(64, ge=16, le=160, description="Observations are resized to dim x dim grey-scale frames.")
    framestack: int = Field(4, ge=1, description="The last `framestack` frames are stacked on the channel axis.")
    frameskip: int = Field(4, ge=1, description="Emulator frames per agent step (max-pooled over the last two).")
    full_action_space: bool = Field(False, description="All 18 joystick actions instead of the game's minimal set.")
    repeat_action_probability: float = Field(
        0.25, ge=0.0, le=1.0, description="Sticky actions: chance the previous action repeats (0.25 as in ALE v5)."
    )
    episodic_life: bool = Field(True, description="End the episode (terminated) at each lost life, as RLlib does.")
    max_episode_frames: int = Field(108_000, ge=1, description="Time limit in emulator frames (30 min of play).")


def _maker(ale_game: str):
    def make(options: AtariOptions) -> gym.Env:
        import ale_py

        gym.register_envs(ale_py)
        env = gym.make(
            f"ale_py:ALE/{ale_game}-v5",
            frameskip=1,  # the wrapper skips frames itself, max-pooling the last two
            repeat_action_probability=options.repeat_action_probability,
            full_action_space=options.full_action_space,
            max_num_frames_per_episode=options.max_episode_frames,
            render_mode="rgb_array",
        )
        return wrap_like_rllib(env, options)

    return make


def wrap_like_rllib(env: gym.Env, options: AtariOptions) -> gym.Env:
    """RLlib's `wrap_atari_for_new_api_stack`: the same wrappers in the same order, with two changes.

    The lost-life wrapper is our `EpisodicLifeEnv` (see there: it fixes two bugs of RLlib's), and
    `episodic_life` and `max_episode_frames` are options. tests/test_envs.py checks that the stack still matches
    RLlib's, so a Ray upgrade that changes RLlib's stack fails a test instead of drifting silently.
    """
    from ray.rllib.env.wrappers import atari_wrappers as rllib

    env = gym.wrappers.TimeLimit(env, max_episode_steps=options.max_episode_frames)
    env = rllib.WarpFrame(env, dim=options.dim, grayscale=True)
    env = rllib.NormalizedImageEnv(env)
    if options.frameskip > 1:
        env = rllib.MaxAndSkipEnv(env, skip=options.frameskip)
    env = rllib.NoopResetEnv(env, noop_max=30)
    if options.episodic_life:
        env = EpisodicLifeEnv(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = rllib.FireResetEnv(env)
    if options.framestack:
        env = rllib.FrameStack(env, k=options.framestack)
    return env


class EpisodicLifeEnv(gym.Wrapper):
    """A lost life ends the episode (terminated=True); the game itself resets only when it is really over.

    RLlib's EpisodicLifeEnv (ray 2.60) with two fixes. RLlib's resets the game only after game over: after a
    time-limit truncation its reset() just steps the finished game, which stays truncated, so every later episode
    lasts one step (seen with Pong and Montezuma's Revenge); and reset(seed=...) after a lost life ignores the
    seed. Here a truncation or a seed also resets the game.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._lives = 0
        self._game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self._lives:  # lives == 0 is game over, which the game reports itself
            terminated = True
        self._lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed=None, options=None):
        play_on = not self._game_over and seed is None
        if play_on:
            obs, _, terminated, truncated, info = self.env.step(0)  # a no-op, from the lost life on
            play_on = not (terminated or truncated)  # that no-op may itself end the game
        if not play_on:
            obs, info = self.env.reset(seed=seed, options=options)
        self._game_over = False
        self._lives = self.env.unwrapped.ale.lives()
        return obs, info


for _name, _game in ATARI_GAMES.items():
    register(
        EnvEntry(
            name=f"atari-{_name}",
            options=AtariOptions,
            make=_maker(_game),
            description=f"Atari {_game} from pixels (ALE v5, sticky actions), RLlib's preprocessing: "
            "64x64 grey frames in [-1, 1], 4-frame stack, frameskip 4, a lost life ends the episode.",
            family="atari",
            model_config=ATARI_MODEL_CONFIG,
        )
    )
