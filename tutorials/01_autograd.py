# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Automatic differentiation
#
# Training a neural network means nudging its parameters against the gradient of a loss.
# numtrans computes those gradients with **reverse-mode automatic differentiation** (autograd):
#
# 1. while you compute, every operation records its inputs and a small `backward` rule;
# 2. `loss.backward()` walks that record from the loss back to the inputs, applying the chain
#    rule once per operation, and stores `d(loss)/d(input)` in each input's `.grad`.
#
# In this tutorial we build a computation, backpropagate through it, look at the graph it
# recorded, check the gradients with finite differences, and fit a tiny model by gradient descent.
#
# **What it prints** (seeded; the `RESULT` lines are checked by `tests/test_tutorials.py` in fast
# mode): the gradient $\partial f / \partial a_0$ `RESULT df_da0 = 1.8949`, and the training loss
# of the small fit after 300 steps in fast mode, `RESULT fit_loss = 0.0765 ± 0.001` (after 2,000
# steps in full mode: 0.0025).

# %%
import os

import numpy as np

import numtrans as nt
import numtrans.functional as F
from numtrans.autograd.engine import topological_order

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"  # set by the test-suite: less work
nt.manual_seed(0)

try:
    import matplotlib  # noqa: F401  (the figures need it)
except ImportError:
    print('figures are skipped: pip install "numtrans[plot]" to draw them')


from numtrans import backends  # noqa: E402
from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## 1. Build a computation
#
# A `Tensor` wraps a NumPy array. Tensors created with `requires_grad=True` are the *leaves* we
# want gradients for. Take
#
# $$ f(a, b) = \sum_i \tanh(a_i \, b_i) + a_i^2 $$

# %%
a = nt.tensor([0.5, -1.0, 2.0], requires_grad=True)
b = nt.tensor([1.5, 0.25, -0.5], requires_grad=True)

prod = a * b
f = (prod.tanh() + a**2).sum()
print("f =", f.item())
print("f is", f)  # the repr names the op that made it: grad_fn=<sum>

# %% [markdown]
# ## 2. Backward
#
# `f.backward()` fills `a.grad` and `b.grad`. By hand, with $p = a b$:
#
# $$ \frac{\partial f}{\partial a_i} = (1 - \tanh^2 p_i)\, b_i + 2 a_i, \qquad
#    \frac{\partial f}{\partial b_i} = (1 - \tanh^2 p_i)\, a_i $$
#
# Note that `a` is used **twice** (in `a * b` and in `a ** 2`): its gradient is the *sum* of the
# contributions of both paths. The engine does that summation for us.

# %%
f.backward()

p = a.data * b.data
by_hand_a = (1 - np.tanh(p) ** 2) * b.data + 2 * a.data
by_hand_b = (1 - np.tanh(p) ** 2) * a.data
print("a.grad  ", a.grad, "\nby hand ", by_hand_a)
print("b.grad  ", b.grad, "\nby hand ", by_hand_b)
assert np.allclose(a.grad, by_hand_a, atol=1e-6) and np.allclose(b.grad, by_hand_b, atol=1e-6)
print(f"RESULT df_da0 = {a.grad[0]:.4f}")

# %% [markdown]
# Gradients **accumulate** into `.grad` (as in PyTorch): a second backward adds to it. This is what
# lets one parameter collect gradients from several uses, but it means an optimizer must reset
# `.grad` between steps. Also, by default the graph is freed after one backward, so we rebuild it.

# %%
f2 = (a * b).tanh().sum() + (a**2).sum()
f2.backward()
print("after a second backward, a.grad is doubled:", a.grad)
a.zero_grad()
b.zero_grad()
print("after zero_grad():", a.grad)

# %% [markdown]
# ## 3. Look at the graph
#
# Every non-leaf tensor keeps `._parents` (its inputs) and `._op` (the op's name). The engine
# visits the tensors in *topological order*: each one after everything it depends on, computed
# iteratively (no recursion), so even a chain of 100,000 ops is fine. Backward goes through this
# list in reverse.

# %%
x = nt.tensor([1.0, 2.0], requires_grad=True)
h = x * 3.0
y = (h.exp() + h).mean()

order = topological_order(y)
names = {id(x): "x", id(h): "h", id(y): "y"}
for i, t in enumerate(order):  # name the unnamed intermediates t1, t2, ...
    names.setdefault(id(t), f"t{i}")


def describe(t):
    return names[id(t)]


for t in order:
    parents = ", ".join(describe(q) for q in t._parents if q.requires_grad) or "-"
    print(f"{describe(t):>5} = {t._op:<5} ({parents})   shape {t.shape}")

# %% [markdown]
# `h` is consumed by two ops (`exp` and `add`), yet appears once: the engine sums the two
# gradients that flow into `h` before passing the total on to `x`.
#
# Operations run under `nt.no_grad()` are not recorded at all, which is what we want for
# evaluation or for updating parameters:

# %%
with nt.no_grad():
    z = x * 3.0
print("recorded under no_grad?", z.requires_grad)

# %% [markdown]
# ## 4. Check gradients with finite differences
#
# How do we know a `backward` rule is right? Compare it with the definition of the derivative:
#
# $$ \frac{\partial L}{\partial x_j} \approx \frac{L(x + \varepsilon e_j) - L(x - \varepsilon e_j)}{2\varepsilon} $$
#
# `nt.gradcheck(fn, inputs)` does this for every element of every input (in float64, where
# $\varepsilon = 10^{-6}$ gives ~10 correct digits) and raises `GradcheckError` naming the worst
# element if they disagree. Let us write our own op, "softplus" $\log(1 + e^x)$, as a
# `numtrans.Function` with a hand-written backward: $\frac{d}{dx} = \sigma(x)$.


# %%
class Softplus(nt.Function):
    @staticmethod
    def forward(ctx, x):  # x is a NumPy array
        ctx.save_for_backward(x)
        return np.logaddexp(0.0, x)  # log(1 + e^x), without overflow

    @staticmethod
    def backward(ctx, grad_out):  # d(loss)/d(out) -> d(loss)/d(x)
        (x,) = ctx.saved_tensors
        return grad_out / (1.0 + np.exp(-x))


x64 = nt.tensor(np.linspace(-3, 3, 7), dtype=np.float64, requires_grad=True)
print("gradcheck(Softplus):", nt.gradcheck(Softplus.apply, (x64,)))


# %% [markdown]
# And a deliberately wrong backward (we forgot the sign in $e^{-x}$) is caught, with the input
# and the element that disagree most:


# %%
class BuggySoftplus(Softplus):
    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (1.0 + np.exp(x))  # wrong!


try:
    nt.gradcheck(BuggySoftplus.apply, (x64,))
except nt.GradcheckError as err:
    print("GradcheckError:", err)

# %% [markdown]
# ## 5. Fit a tiny model with gradient descent
#
# Now the point of it all. We fit a one-hidden-layer network $\hat y = W_2\,\mathrm{relu}(W_1 x + b_1) + b_2$
# to noisy samples of $y = \sin(2x)$ with plain gradient descent:
#
# $$ \theta \leftarrow \theta - \eta \, \frac{\partial L}{\partial \theta}, \qquad
#    L = \frac{1}{N}\sum_n (\hat y_n - y_n)^2 $$

# %%
rng = np.random.default_rng(0)
n_points, hidden = 64, 32
xs = np.linspace(-2, 2, n_points, dtype=np.float32).reshape(-1, 1)
ys = np.sin(2 * xs) + 0.05 * rng.standard_normal(xs.shape).astype(np.float32)
X, Y = nt.tensor(xs), nt.tensor(ys)

params = {
    "W1": nt.tensor(rng.standard_normal((hidden, 1)).astype(np.float32), requires_grad=True),
    "b1": nt.tensor(rng.uniform(-2, 2, hidden).astype(np.float32), requires_grad=True),
    "W2": nt.tensor(
        (rng.standard_normal((1, hidden)) / np.sqrt(hidden)).astype(np.float32),
        requires_grad=True,
    ),
    "b2": nt.zeros(1, requires_grad=True),
}


def model(inp):
    return F.linear(F.relu(F.linear(inp, params["W1"], params["b1"])), params["W2"], params["b2"])


steps, lr = (300 if FAST else 2000), 0.02
losses = []
for step in range(steps + 1):
    loss = F.mse_loss(model(X), Y)  # forward: records the graph
    for p_ in params.values():
        p_.zero_grad()
    loss.backward()  # backward: fills every p.grad
    with nt.no_grad():  # the update itself must not be recorded
        for p_ in params.values():
            p_.data -= lr * p_.grad
    losses.append(loss.item())
    if step % (steps // 10) == 0:
        print(f"step {step:5d}   loss {loss.item():.5f}")

assert losses[-1] < 0.25 * losses[0], "the loss should fall"
print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")
print(f"RESULT fit_loss = {losses[-1]:.4f}")

# %% [markdown]
# The loss falls steadily. Everything a deep-learning framework does during training is this loop,
# scaled up: a forward that records, a backward that applies the chain rule op by op, and an
# update. If matplotlib is installed we draw the fit and the loss curve
# (saved to `$NUMTRANS_TUTORIAL_OUT`, default `./out`).

# %%
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

if plt is not None:
    out_dir = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")
    os.makedirs(out_dir, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    with nt.no_grad():
        left.plot(xs, ys, ".", label="data")
        left.plot(xs, model(X).numpy(), label="model")
    left.legend()
    left.set(xlabel="x", ylabel="y", title="fit to sin(2x) + noise")
    right.semilogy(losses)
    right.set(xlabel="gradient-descent step", ylabel="MSE loss (log scale)", title="training loss")
    fig.tight_layout()
    path = os.path.join(out_dir, "01_autograd.png")
    fig.savefig(path)
    show(fig)
    plt.close(fig)
    print("saved", path)

# %% [markdown]
# **Next:** the same engine powers every layer in numtrans. Read `numtrans/ops/` to see each
# op's forward and backward side by side, and `numtrans/autograd/engine.py` for the backward walk.
