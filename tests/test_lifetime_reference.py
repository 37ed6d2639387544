"""lifetime.evaluate against a slow, literal transcription of method §1-3 written here.

The oracle below runs ONE lifetime with plain numpy on single vectors and an explicit per-step
Python loop: its own maze (method §1), its own input layout and fitness (method §2) and its own model
equations (method §3). From the code under test it takes only the genome layout (parameter names and
shapes, through ``model.unpack``) and the counter-based RNG protocol documented in the
``evoplastic.lifetime`` module docstring, so the two must draw the same random numbers and then
agree on every rollout of every lifetime: same steps, same goal flags, same returns.

The oracle computes in float32 like the implementation; only the summation order differs (single
matvecs and explicit outer products here, fused/batched products and a compiled kernel there), so
an action decision would have to sit within ~1e-6 of a tie to differ.
"""

from __future__ import annotations

import numpy as np
import pytest

from evoplastic import fused, lifetime, rng
from evoplastic.envs import tasks as tasklib
from evoplastic.models import MASKABLE_IDS, MODEL_IDS, get_model

F32 = np.float32
MAX_STEPS = 200  # method §1
LAMBDA = 1e-6  # method §2
SPEC_WEIGHTS = {3: (0.0, 0.0, 1.0), 8: (0.0, 0.0, 0.16, 0.22, 0.36, 0.64, 0.8, 1.0)}  # method §2
MOVES = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}  # method §1: 0: i-1, 1: i+1, 2: j-1, 3: j+1

# Profiles (method §2 and method §5), written out here rather than read from lifetime.PROFILES.
PROFILES = {
    "evoplastic": dict(encoding="v2", first_p=None, rollouts=3),
    "reference-2022-08": dict(encoding="v1", first_p=0.5, rollouts=8),
}


# -- method §1: one maze, one agent ---------------------------------------------------------------

class SlowMaze:
    def __init__(self, walls: np.ndarray, start, goal, encoding: str) -> None:
        self.walls, self.start, self.goal = walls, tuple(int(v) for v in start), tuple(int(v) for v in goal)
        self.sign = 1 if encoding == "v1" else -1
        self.n = walls.shape[0]

    def reset(self) -> None:
        self.pos, self.steps, self.ret, self.reached, self.done = self.start, 0, 0.0, False, False

    def observe(self) -> np.ndarray:
        """3x3 window row-major; v1: wall +1, free 0, goal -1, outside +1; v2 the negation."""
        out = []
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                i, j = self.pos[0] + di, self.pos[1] + dj
                if not (0 <= i < self.n and 0 <= j < self.n):
                    code = 1
                elif (i, j) == self.goal:
                    code = -1
                elif self.walls[i, j]:
                    code = 1
                else:
                    code = 0
                out.append(self.sign * code)
        return np.array(out, dtype=F32)

    def step(self, action: int) -> float:
        assert not self.done
        di, dj = MOVES[action]
        target = (self.pos[0] + di, self.pos[1] + dj)
        if not self.walls[target]:  # a wall bump leaves the agent in place
            self.pos = target
        self.steps += 1
        reward = -0.01
        if self.pos == self.goal:
            reward += 1.0
            self.reached = self.done = True
        if self.steps >= MAX_STEPS:
            self.done = True
        self.ret += reward
        return reward


# -- method §3: the models, single vectors --------------------------------------------------------

def sig(z):
    return (F32(1) / (F32(1) + np.exp(-np.asarray(z, F32)))).astype(F32)


def dec(g: dict, blk: str, post: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """method §3: (A_y*post)(A_x*pre)^T + (B_y*post) B_x^T + C_y (C_x*pre)^T + D_y D_x^T."""
    v = lambda name: g[f"{blk}.{name}"]  # noqa: E731
    return (np.outer(v("Ay") * post, v("Ax") * pre) + np.outer(v("By") * post, v("Bx"))
            + np.outer(v("Cy"), v("Cx") * pre) + np.outer(v("Dy"), v("Dx")))


def abcd(g: dict, blk: str, post: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """method §3: 0.05 (A*(post pre^T) + B*(post 1^T) + C*(1 pre^T) + D)."""
    v = lambda name: g[f"{blk}.{name}"]  # noqa: E731
    ones_pre, ones_post = np.ones_like(pre), np.ones_like(post)
    return F32(0.05) * (v("A") * np.outer(post, pre) + v("B") * np.outer(post, ones_pre)
                        + v("C") * np.outer(ones_post, pre) + v("D"))


class SlowNet:
    """One lifetime's network. ``reset`` zeroes the memories; it is called once per lifetime.

    ``<id>+mask`` (structure masks): unit j is active where its gene ``mask[j] > 0``; an
    inactive unit's activity is 0 from the moment it is computed (so 0 for the output, the
    modulators, the plasticity rules and the next step). See ``gated``.
    """

    def __init__(self, model_id: str, hidden: int, g: dict, mutant: str | None = None) -> None:
        masked = model_id.endswith("+mask")
        model_id = model_id.removesuffix("+mask")
        self.id, self.H, self.g, self.mutant = model_id, hidden, g, mutant
        self.active = g["mask"] > 0 if masked and mutant != "ignore-mask" else None
        self.modulation = "post" if model_id.endswith("-postdn") else "pre" if model_id.endswith("-predn") else None

    def reset(self) -> None:
        H = self.H
        self.h = np.zeros(H, F32)
        self.c = np.zeros(H, F32)
        self.W_h = np.zeros((H, H), F32)
        self.W_x = np.zeros((H, 15), F32)
        self.W1 = np.zeros((H, 15), F32)
        self.W2 = np.zeros((H, H), F32)
        self.E = np.zeros((H, H), F32)
        if self.id == "prnn-et":  # ET also evolves the initial W_h; Scratch-ET starts it at 0
            self.W_h = self.g["W_h0"].copy()
        self.x = np.zeros(H, F32)  # NM-RNN / LR-RNN output-generating state
        self.z = np.zeros(8, F32)  # NM-RNN modulatory state (M = 8, the default)

    def gated(self, v: np.ndarray) -> np.ndarray:
        """A hidden vector with the inactive units' entries set to 0 (no mask: unchanged)."""
        if self.active is None:
            return v
        out = v.copy()
        for j in range(self.H):
            if not self.active[j]:
                out[j] = 0.0
        return out

    def step_et(self, x: np.ndarray) -> np.ndarray:
        """method §3 ET, PostDN: W_x static; W_h plastic through the trace E. Gene g[0] and
        modulator output m[0] belong to W_h (the only plastic matrix; m[0] is W_h's as in method §3's
        PostDN)."""
        g, h_prev = self.g, self.h
        h = self.gated(np.tanh(self.W_h @ h_prev + g["W_x"] @ x + g["b"]))
        y = g["W_o"] @ h + g["b_o"]
        m = sig(g["m.W"] @ h + g["m.b"])[0]
        e = g["g"][0] + F32(10)
        eta = F32(0.5) * e / (np.abs(e) + F32(1)) + F32(0.5)
        self.E = eta * np.outer(h, h_prev) + (F32(1) - eta) * self.E
        self.W_h = self.W_h + F32(0.001) * m * self.E
        if self.mutant != "no-clip":
            self.W_h = np.clip(self.W_h, -5, 5)
        self.h = h
        return y

    def step_nm(self, u: np.ndarray) -> np.ndarray:
        """NM-RNN (Costacurta et al. 2024) and LR-RNN (s = 1), rank K = 4, M = 8:
        z_t = (1 - a_z) z_{t-1} + a_z tanh(W_z z_{t-1} + B_z u_t + b_z); s_t = sigmoid(A z_t + c);
        x_t = (1 - a) x_{t-1} + a (sum_k s_t[k] l_k (r_k . tanh(x_{t-1})) + B u_t + b);
        y_t = W_o tanh(x_t) + b_o; a = sigmoid(gene a), a_z = sigmoid(gene a_z)."""
        g, K = self.g, 4
        s = np.ones(K, F32)
        if self.id == "nm-rnn":
            a_z = sig(g["a_z"][0])
            z_prev = self.z
            self.z = (F32(1) - a_z) * self.z + a_z * np.tanh(g["W_z"] @ self.z + g["B_z"] @ u + g["b_z"])
            s = sig(g["A"] @ (z_prev if self.mutant == "s-from-previous-z" else self.z) + g["c"])
        r = np.tanh(self.x)
        rec = np.zeros(self.H, F32)
        for k in range(K):  # sum_k s_k l_k (r_k . tanh(x_{t-1}))
            rec += s[k] * g["L"][:, k] * np.dot(g["R"][:, k], r)
        a = sig(g["a"][0])
        if self.mutant == "swap-leak":
            a = F32(1) - a
        self.x = self.gated((F32(1) - a) * self.x + a * (rec + g["B"] @ u + g["b"]))
        return g["W_o"] @ np.tanh(self.x) + g["b_o"]

    def modulators(self, x, h_prev, h_new) -> tuple:
        g = self.g
        if self.modulation == "post":  # m = sigmoid(W_m h_t + b_m)
            m = sig(g["m.W"] @ h_new + g["m.b"])
        else:  # PreDN: m = sigmoid(W_m1 x_t + b_m1) + sigmoid(W_m2 h_{t-1} + b_m2)
            m = sig(g["m_in.W"] @ x + g["m_in.b"]) + sig(g["m_h.W"] @ h_prev + g["m_h.b"])
        return m[0], m[1]

    def step(self, x: np.ndarray) -> np.ndarray:
        g, fam = self.g, self.id.split("-")[0]
        if self.id in ("prnn-et", "prnn-scratch-et"):
            return self.step_et(x)
        if self.id in ("nm-rnn", "lr-rnn"):
            return self.step_nm(x)
        if fam in ("decprnn", "prnn"):
            h_prev = self.h
            h = self.gated(np.tanh(self.W_h @ h_prev + self.W_x @ x + g["b"]))
            y = g["W_o"] @ h + g["b_o"]  # before this step's update
            if fam == "decprnn":
                dh, dx = dec(g, "h", h, h_prev), dec(g, "x", h, x)
                if self.mutant == "swap-post-pre":
                    dh = dec(g, "h", h_prev, h)
                if self.modulation:
                    m0, m1 = self.modulators(x, h_prev, h)
                    f = F32(1.0) if self.mutant == "no-0.2" else F32(0.2)
                    self.W_h += f * m0 * dh
                    self.W_x += f * m1 * dx
                else:
                    self.W_h += dh
                    self.W_x += dx
            else:
                dh, dx = abcd(g, "h", h, h_prev), abcd(g, "x", h, x)
                m0, m1 = self.modulators(x, h_prev, h) if self.modulation else (F32(1), F32(1))
                self.W_h += m0 * dh
                self.W_x += m1 * dx
            if self.mutant == "output-after-update":
                y = g["W_o"] @ np.tanh(self.W_h @ h_prev + self.W_x @ x + g["b"]) + g["b_o"]
            self.h = h
            return y
        if fam == "decpdnn":
            h1 = np.tanh(self.W1 @ x + g["b1"])
            h2 = np.tanh(self.W2 @ h1 + g["b2"])
            y = g["W_o"] @ h2 + g["b_o"]
            d1, d2 = dec(g, "l1", h1, x), dec(g, "l2", h2, h1)
            if self.modulation == "post":  # m1 = sigmoid(FC(h1)), m2 = sigmoid(FC(h2))
                m1 = sig(g["m1.W"] @ h1 + g["m1.b"])[0]
                m2 = sig(g["m2.W"] @ h2 + g["m2.b"])[0]
            elif self.modulation == "pre":  # m1 = sigmoid(FC(x)), m2 = sigmoid(FC(h1))
                m1 = sig(g["m1.W"] @ x + g["m1.b"])[0]
                m2 = sig(g["m2.W"] @ h1 + g["m2.b"])[0]
            if self.modulation:
                self.W1 += F32(0.2) * m1 * d1
                self.W2 += F32(0.2) * m2 * d2
            else:
                self.W1 += d1
                self.W2 += d2
            return y
        if self.id == "meta-rnn":  # h_t = tanh(W [x_t; h_{t-1}] + b)
            h = np.tanh(g["W"] @ np.concatenate([x, self.h]) + g["b"])
            if self.mutant == "mask-after-output":  # the unit still drives this step's output
                self.h = self.gated(h)
                return g["W_o"] @ h + g["b_o"]
            self.h = self.gated(h)
            return g["W_o"] @ self.h + g["b_o"]
        if self.id == "meta-lstm":  # z split g, i, f, o
            H = self.H
            z = g["W"] @ np.concatenate([x, self.h]) + g["b"]
            zg, zi, zf, zo = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            self.c = self.gated(sig(zf) * self.c + sig(zi) * np.tanh(zg))
            self.h = self.gated(sig(zo) * np.tanh(self.c))
            return g["W_o"] @ self.h + g["b_o"]
        if self.id in ("meta-dnn", "dnn"):
            inp = x if self.id == "meta-dnn" else x[:9]  # DNN: the 9 observation values only
            h1 = np.tanh(g["W1"] @ inp + g["b1"])
            h2 = np.tanh(g["W2"] @ h1 + g["b2"])
            return g["W_o"] @ h2 + g["b_o"]
        raise AssertionError(f"no oracle for {self.id}")


# -- method §2: one lifetime ----------------------------------------------------------------------

def select(y: np.ndarray, p_fixed: float | None, key: np.ndarray, counter: int) -> int:
    """method §2 action selection with the lifetime docstring's draws (float64 from float32 y)."""
    y = y.astype(np.float64)
    p = p_fixed if p_fixed is not None else 1.0 / (1.0 + np.exp(-2.0 * y[4]))
    if rng.uniform(key, counter)[0] < p:
        return int(np.argmax(y[:4]))
    e = np.exp(y[:4] - y[:4].max())
    cum = np.cumsum(e / e.sum())
    v = rng.uniform(key, counter + 1)[0]
    above = np.flatnonzero(cum > v)
    return int(above[0]) if len(above) else 3


def slow_lifetime(net: SlowNet, maze: SlowMaze, key: np.ndarray, profile: str):
    """One lifetime: (returns, reached, steps), each (rollouts,), and the outputs y (steps, 5)."""
    prof = PROFILES[profile]
    S = MAX_STEPS
    slot = lambda r, i: r * (S + 1) + i  # noqa: E731
    net.reset()  # once per lifetime (method §2)
    returns, reached, steps, trace = [], [], [], []
    for r in range(prof["rollouts"]):
        if net.mutant == "reset-each-rollout" and r > 0:
            net.reset()
        maze.reset()  # only the agent goes back to the start
        prev_action = int(rng.integers(key, 3 * slot(r, S), 4)[0])
        prev_reward, prev_done = 0.0, 0.0
        p_fixed = prof["first_p"] if r == 0 and net.mutant != "no-first-p" else None
        i = 0
        while not maze.done:
            x = np.zeros(15, F32)
            x[:9] = maze.observe()
            x[9 + prev_action] = 1.0
            x[13], x[14] = prev_reward, prev_done
            y = net.step(x)
            assert y.dtype == F32 and y.shape == (5,)
            trace.append(y)
            action = select(y, p_fixed, key, 3 * slot(r, i))
            prev_reward = maze.step(action)
            prev_done = float(maze.done)
            prev_action = action
            i += 1
        returns.append(maze.ret)
        reached.append(maze.reached)
        steps.append(maze.steps)
    return np.array(returns), np.array(reached), np.array(steps), np.array(trace)


def slow_evaluate(model_id, hidden, genomes, ts, repeats, seed, profile, mutant=None):
    """The oracle on every lifetime: returns, reached, steps (P, T*repeats, rollouts), fitness (P,)
    and the per-lifetime output traces (a list, lifetime order).

    Lifetime (g, t, k) has the key ``rng.keys(seed, g, t, k)`` (the lifetime docstring) and the
    lifetimes of a genome are task-major: index ``t * repeats + k``.
    """
    model = get_model(model_id, hidden)
    named = model.unpack(genomes)  # layout only
    out = []
    for gi in range(len(genomes)):
        g = {k: v[gi].copy() for k, v in named.items()}
        net = SlowNet(model_id, hidden, g, mutant)
        for t in range(len(ts)):
            maze = SlowMaze(ts.walls[t], ts.start[t], ts.goal[t], PROFILES[profile]["encoding"])
            for k in range(repeats):
                out.append(slow_lifetime(net, maze, rng.keys(seed, gi, t, k), profile))
    R = PROFILES[profile]["rollouts"]
    ret, rea, stp = (np.array([o[j] for o in out]).reshape(len(genomes), len(ts) * repeats, R) for j in range(3))
    w = np.array(SPEC_WEIGHTS[R], np.float64)
    fitness = []
    for gi in range(len(genomes)):
        scores = [sum(w[r] * ret[gi, li, r] for r in range(R)) / w.sum() for li in range(ret.shape[1])]
        theta = genomes[gi].astype(np.float64)
        fitness.append(np.mean(scores) - LAMBDA * np.sqrt(np.mean(theta ** 2)))
    return ret, rea, stp, np.array(fitness), [o[3] for o in out]


def traced_evaluate(monkeypatch, model, genomes, ts, **kw):
    """lifetime.evaluate in ONE batch, also returning each lifetime's outputs y (steps, 5).

    The trace is read by wrapping ``step`` of the model class: row b of a call belongs to lifetime
    b and counts only while that lifetime is live (``live`` None means all rows are).
    """
    calls = []
    orig = type(model).step

    def step(self, p, mem, x, live=None):
        y = orig(self, p, mem, x, live)
        calls.append((y.copy(), None if live is None else live.copy()))
        return y

    total = len(genomes) * len(ts) * kw["repeats"]
    with monkeypatch.context() as mp:
        mp.setattr(type(model), "step", step)
        res = lifetime.evaluate(model, genomes, ts, batch=total, engine="lockstep", **kw)
    traces = [[] for _ in range(total)]
    for y, live in calls:
        for b in (range(total) if live is None else np.flatnonzero(live)):
            traces[b].append(y[b])
    return res, [np.array(t) for t in traces]


# -- the comparisons ---------------------------------------------------------------------------

SEED = 11
DEC_VECTORS = ("Ay", "Ax", "By", "Bx", "Cy", "Cx", "Dy", "Dx")
REPEATS = 2
Y_TOL = 5e-5  # per-step outputs; observed oracle-vs-implementation gaps are <= 3e-6 (float32 order)


@pytest.fixture(scope="module")
def tasks9():
    return tasklib.generate(3, 9, 0.30, seed=4242)


def genomes_for(model_id: str, hidden: int, count: int = 2, h_damp: float = 0.1) -> np.ndarray:
    """``count`` genomes ~ N(0, 0.05^2) (method §4's initial distribution), recurrent rules damped.

    The rules of the recurrent plastic matrix (tensors ``h.*`` of DecPRNN and PRNN) are scaled by
    ``h_damp`` (0.1). Undamped, W_h grows every step with nothing to stop it and the hidden-64 recurrent nets
    turn chaotic after ~150 steps: float32 rounding differences of 1e-7 (summation order; the
    implementation's own numba and numpy paths differ in the same way) grow to O(1) and flip
    actions, so no two correct float32 implementations agree on whole lifetimes. Damped, oracle
    and implementation stay within 1e-6 over every rollout, while W_x still learns enough to
    change behaviour between rollouts (test_comparison_rejects_wrong_oracle, memory reset).
    """
    model = get_model(model_id, hidden)
    base = model_id.removesuffix("+mask")  # masked: the mask genes ~ N(0, 0.05^2), about half > 0
    seed = 1000 * MODEL_IDS.index(base) + hidden + (500 if base != model_id else 0)
    g = (np.random.default_rng(seed).standard_normal((count, model.n_gene)) * 0.05).astype(F32)
    named = model.unpack(g)
    for name in named:
        if base.startswith(("decprnn", "prnn")) and name.startswith("h."):
            named[name] = named[name] * F32(h_damp)
        if base in ("decprnn", "decpdnn") and name[-2:] in DEC_VECTORS:
            named[name] = named[name] * F32(0.3)  # no 0.2 m: keep the update size of the others
    if base in ("nm-rnn", "lr-rnn"):
        # Far from linear (at 0.05 tanh(x) ~ x and s ~ 0.5 and wrong oracles pass): modulatory
        # net std 0.5, L and R std 0.5 at hidden 8, scaled so that L R^T stays ~ as strong at
        # hidden 64 (stronger, it turns chaotic and float32 rounding flips actions).
        for name in ("L", "R", "W_z", "B_z", "A"):
            if name in named:
                f = 10.0 * (np.sqrt(8 / hidden) if name in ("L", "R") else 1.0)
                named[name] = named[name] * F32(f)
    if base == "prnn-et":  # initial W_h beyond the [-5, 5] clip, so the clip acts at step 1
        named["W_h0"][:, 0, 0], named["W_h0"][:, 2, 1] = 6.0, -5.5
    return model.pack(named)


def check(impl, traces, oracle, profile: str) -> None:
    """Implementation result and traces == oracle result and traces."""
    ret, rea, stp, fit, otraces = oracle
    n_r = PROFILES[profile]["rollouts"]
    assert impl.returns.shape == ret.shape and ret.shape[2] == n_r
    np.testing.assert_array_equal(impl.steps, stp)
    np.testing.assert_array_equal(impl.reached, rea)
    np.testing.assert_allclose(impl.returns, ret, rtol=0, atol=1e-9)
    np.testing.assert_allclose(impl.fitness, fit, rtol=0, atol=1e-12)  # the RMS term is ~5e-8
    np.testing.assert_array_equal(impl.weights, SPEC_WEIGHTS[n_r])
    assert len(traces) == len(otraces)
    for life, (a, b) in enumerate(zip(traces, otraces)):
        assert a.shape == b.shape, f"lifetime {life}: {len(a)} steps, oracle {len(b)}"
        np.testing.assert_allclose(a, b, rtol=Y_TOL, atol=Y_TOL, err_msg=f"outputs of lifetime {life}")


def otraces_of(oracle):
    """The oracle's own per-step outputs, for a result that has none of its own to compare."""
    return oracle[4]


def compare(monkeypatch, model_id: str, hidden: int, ts, profile: str = "evoplastic") -> None:
    genomes = genomes_for(model_id, hidden)
    model = get_model(model_id, hidden)
    impl, traces = traced_evaluate(monkeypatch, model, genomes, ts, repeats=REPEATS, seed=SEED,
                                   profile=profile)
    oracle = slow_evaluate(model_id, hidden, genomes, ts, REPEATS, SEED, profile)
    check(impl, traces, oracle, profile)
    # Episode ends of both kinds are covered: goals reached and 200-step timeouts.
    rea, stp = oracle[1], oracle[2]
    assert rea.any(), "no goal reached: goal episode ends would not be covered"
    assert (~rea).any() and (stp[~rea] == MAX_STEPS).all()
    # Smaller batches (lifetimes of different genomes and tasks mixed, other masks) change nothing.
    small = lifetime.evaluate(model, genomes, ts, repeats=REPEATS, seed=SEED, profile=profile, batch=5,
                              engine="lockstep")
    for name in ("returns", "reached", "steps", "fitness"):
        np.testing.assert_array_equal(getattr(small, name), getattr(impl, name))
    # The fused engine against the same oracle (it has no per-step trace: outcomes and fitness).
    if fused.covers(model):
        whole = lifetime.evaluate(model, genomes, ts, repeats=REPEATS, seed=SEED, profile=profile, engine="fused")
        check(whole, otraces_of(oracle), oracle, profile)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_evaluate_matches_oracle_hidden8(model_id: str, tasks9, monkeypatch) -> None:
    compare(monkeypatch, model_id, 8, tasks9)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_evaluate_matches_oracle_hidden64(model_id: str, tasks9, monkeypatch) -> None:
    compare(monkeypatch, model_id, 64, tasks9)


MASKED_IDS = [m + "+mask" for m in MASKABLE_IDS]


@pytest.mark.parametrize("model_id", MASKED_IDS)
def test_masked_evaluate_matches_oracle_hidden8(model_id: str, tasks9, monkeypatch) -> None:
    """Structure masks: the oracle zeroes the inactive units' activity where it is computed."""
    mask = get_model(model_id, 8).unpack(genomes_for(model_id, 8))["mask"]
    assert ((mask > 0).any(1) & (mask <= 0).any(1)).all(), "each genome needs active and masked units"
    compare(monkeypatch, model_id, 8, tasks9)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["decprnn-postdn+mask", "meta-lstm+mask", "nm-rnn+mask"])
def test_masked_evaluate_matches_oracle_hidden64(model_id: str, tasks9, monkeypatch) -> None:
    compare(monkeypatch, model_id, 64, tasks9)


@pytest.mark.parametrize("model_id, hidden", [
    ("decprnn-postdn", 8),
    pytest.param("decprnn-postdn", 64, marks=pytest.mark.slow),
    ("decprnn-predn", 8),
    ("prnn-postdn", 8),
    ("decpdnn-postdn", 8),
    ("meta-lstm", 8),
])
def test_reference_profile_matches_oracle(model_id: str, hidden: int, tasks9, monkeypatch) -> None:
    """method §5: v1 observations, p = 0.5 in rollout 1, 8 rollouts with method §2's weights."""
    compare(monkeypatch, model_id, hidden, tasks9, profile="reference-2022-08")


@pytest.mark.parametrize("model_id, hidden, profile, mutant", [
    ("decprnn-postdn", 64, "evoplastic", "reset-each-rollout"),  # memories zeroed per rollout
    ("decprnn-postdn", 64, "evoplastic", "no-0.2"),  # W += m Dec instead of 0.2 m Dec
    # W_h rule with (h_{t-1}, h_t). Undamped: with the damped W_h rule the swap moves outputs by
    # only ~3e-6, below Y_TOL. Hidden 8 stays within 1e-6 of the oracle undamped (hidden 64 not).
    ("decprnn", 8, "evoplastic", "swap-post-pre"),
    ("decprnn-postdn", 8, "evoplastic", "swap-post-pre"),
    ("decprnn", 8, "evoplastic", "output-after-update"),  # y from the updated weights
    ("decprnn-postdn", 8, "reference-2022-08", "no-first-p"),  # sigmoid(2 y4) in rollout 1 too
    ("prnn-et", 8, "evoplastic", "no-clip"),  # ET without the [-5, 5] clip of W_h
    ("nm-rnn", 8, "evoplastic", "s-from-previous-z"),  # s_t = sigmoid(A z_{t-1} + c)
    ("lr-rnn", 8, "evoplastic", "swap-leak"),  # a x_{t-1} + (1 - a) drive (a ~ 0.5 here)
    ("decprnn-postdn+mask", 8, "evoplastic", "ignore-mask"),  # the mask genes change nothing
    ("nm-rnn+mask", 8, "evoplastic", "ignore-mask"),
    ("meta-rnn+mask", 8, "evoplastic", "mask-after-output"),  # gate h only after computing y
])
def test_comparison_rejects_wrong_oracle(model_id, hidden, profile, mutant, tasks9, monkeypatch) -> None:
    """The comparison can fail: an oracle with one method detail wrong is rejected, while the right
    oracle on the same genomes is accepted."""
    genomes = genomes_for(model_id, hidden, h_damp=1.0 if mutant == "swap-post-pre" else 0.1)
    impl, traces = traced_evaluate(monkeypatch, get_model(model_id, hidden), genomes, tasks9,
                                   repeats=REPEATS, seed=SEED, profile=profile)
    check(impl, traces, slow_evaluate(model_id, hidden, genomes, tasks9, REPEATS, SEED, profile), profile)
    wrong = slow_evaluate(model_id, hidden, genomes, tasks9, REPEATS, SEED, profile, mutant=mutant)
    with pytest.raises(AssertionError):
        check(impl, traces, wrong, profile)
    if mutant == "reset-each-rollout":
        # Rollout 1 agrees, so the difference is the carried memory, and it changes behaviour.
        np.testing.assert_array_equal(impl.steps[:, :, 0], wrong[2][:, :, 0])
        assert (impl.steps[:, :, 1:] != wrong[2][:, :, 1:]).any()
