"""An EBM over a space small enough to enumerate, so that every quantity of section 2.1 is exact.

A state is a short sequence x = (x_1, ..., x_T) of symbols 0..V-1; there are N = V^T of them (1,024
for V = 4, T = 5), listed by ``all_states`` in lexicographic order. On such a space

* the Gibbs distribution (eq. 1) p_theta(x) = exp(-E_theta(x)) / Z(theta) is a vector of N numbers,
* the partition function (eq. 2) Z(theta) = sum_x exp(-E_theta(x)) is one ``logsumexp``,
* the likelihood gradient (eq. 3) is exact: the model term E_{p_theta}[grad E] is a weighted sum
  over all N states.

``ToyEBM`` is the energy (a small ReLU network on one-hot symbols); ``closed_walk_distribution`` is
the data; ``BigramLM`` plays P_LM: a locally normalised proposal that learns the data's local rule
and misses its global one. The estimators that replace the exact model term live in
``estimators.py``.

Device and precision: the toy world lives on the CPU in float64 (its space is tiny, the exact sums
deserve the precision, and Apple's MPS has no float64). Symbols given on another device are moved
to the CPU; a ``ToyEBM`` moved to another device or dtype raises a ValueError that says how to put
it back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import (check_choice, check_int, check_model_fits, check_positive, check_seed,
                      check_tensor, check_token_ids, model_config)

MAX_STATES = 2**16  # enumeration is the point; beyond this the exact quantities stop being instant


def _check_space(n_symbols: int, length: int) -> int:
    """The number of states V^T, after checking that it is small enough to enumerate."""
    check_int("n_symbols", n_symbols, 2)
    check_int("length", length, 1)
    n_states = n_symbols**length
    if n_states > MAX_STATES:
        raise ValueError(f"n_symbols**length = {n_symbols}**{length} = {n_states} states is too "
                         f"many to enumerate (at most {MAX_STATES})")
    return n_states


def all_states(n_symbols: int, length: int) -> torch.Tensor:
    """``(V^T, T)`` int64: all sequences in lexicographic order (row r: the base-V digits of r)."""
    n_states = _check_space(n_symbols, length)
    powers = n_symbols ** torch.arange(length - 1, -1, -1)  # (T,): V^(T-1), ..., V, 1
    return torch.arange(n_states)[:, None] // powers % n_symbols  # (N, 1) against (T,): (N, T)


def check_states(x: object, n_symbols: int, length: int, name: str = "x") -> torch.Tensor:
    """``x`` as ``torch.long`` on the CPU if it is an integer tensor ``(B, length)``, B >= 1, of
    symbols 0..n_symbols-1."""
    x = check_token_ids(name, x, n_symbols, length, dims=(2,))
    if len(x) == 0:
        raise ValueError(f"{name} must hold at least one sequence, got shape {tuple(x.shape)}")
    return x.long().cpu()


def state_index(x: torch.Tensor, n_symbols: int) -> torch.Tensor:
    """``(B,)``: each sequence's row in ``all_states`` (its symbols read as a base-V number)."""
    powers = n_symbols ** torch.arange(x.shape[1] - 1, -1, -1, device=x.device)
    return (x * powers).sum(dim=1)


def _check_distribution(probs: torch.Tensor, n_states: int) -> None:
    check_tensor("probs", probs, floating=True)
    if (probs.shape != (n_states,) or bool((probs < 0).any())
            or not math.isclose(float(probs.sum()), 1.0, rel_tol=0.0, abs_tol=1e-6)):
        raise ValueError(f"probs must be a probability vector of shape ({n_states},) "
                         f"summing to 1, got shape {tuple(probs.shape)} "
                         f"and sum {float(probs.sum()):.6g}")


def as_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU generator: a new one seeded with ``seed``, or ``seed`` itself when it already is one.

    Passing a generator continues it.
    """
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(check_seed("seed", seed))


def sample_states(states: torch.Tensor, probs: torch.Tensor, n: int,
                  seed: int | torch.Generator) -> torch.Tensor:
    """``(n, T)``: exact independent draws from ``probs``, a distribution over ``states``' rows."""
    check_int("n", n, 1)
    _check_distribution(probs, len(states))
    return states[torch.multinomial(probs.double(), n, replacement=True,
                                    generator=as_generator(seed))]


def exact_kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) = sum_x p(x) log(p(x) / q(x)) in nats (0 log 0 = 0).

    ``p`` and ``q`` are distributions over the same list of states.
    """
    check_tensor("p", p, floating=True)
    check_tensor("q", q, floating=True)
    if p.shape != q.shape:
        raise ValueError(f"p and q must be distributions over the same states, "
                         f"got shapes {tuple(p.shape)} and {tuple(q.shape)}")
    support = p > 0
    p, q = p[support].detach(), q[support].detach()
    return float((p * (p.log() - q.log())).sum())


def closed_walk_distribution(n_symbols: int, length: int, stay: float = 2.0) -> torch.Tensor:
    """p_data over ``all_states``: walks that end where they begin.

    p(x) is proportional to [x_T = x_1] * prod_t w(x_t, x_{t+1}), with w = ``stay`` for a repeated
    symbol, 1 for a step to a neighbouring symbol (|x_{t+1} - x_t| = 1) and 0 otherwise. The steps
    are a *local* rule (each pair of neighbours), the return to the start a *global* one (the first
    and last symbols).
    """
    stay = check_positive("stay", stay)
    states = all_states(n_symbols, length)
    steps = (states[:, 1:] - states[:, :-1]).abs()  # (N, T-1): |x_{t+1} - x_t|
    weights = torch.where(steps == 0, stay, (steps == 1).double()).prod(dim=1)  # (N,)
    weights = weights * (states[:, -1] == states[:, 0])
    return weights / weights.sum()


class BigramLM:
    """P_LM's stand-in: q(x) = q(x_1) prod_{t=1}^{T-1} q(x_{t+1} | x_t), one transition table
    for every t.

    Locally normalised (every factor sums to 1), exact to sample from ancestrally and to score. It
    sees one neighbour at a time, so it can learn a local rule and never a global one.
    """

    def __init__(self, initial: torch.Tensor, transition: torch.Tensor, length: int) -> None:
        check_tensor("initial", initial, floating=True)
        check_tensor("transition", transition, floating=True)
        if initial.dim() != 1 or transition.shape != (len(initial), len(initial)):
            raise ValueError(f"initial must be (V,) and transition (V, V), "
                             f"got {tuple(initial.shape)} and {tuple(transition.shape)}")
        n_symbols = len(initial)
        _check_space(n_symbols, length)
        initial, transition = initial.cpu(), transition.cpu()  # the toy's device
        rows = torch.cat([initial[None], transition]).double()  # (1 + V, V)
        if bool((rows <= 0).any()) or not torch.allclose(
                rows.sum(dim=1), torch.ones(n_symbols + 1, dtype=rows.dtype)):
            raise ValueError("initial and every row of transition must be positive and sum to 1")
        self.initial, self.transition = initial.double(), transition.double()
        self.n_symbols, self.length = n_symbols, length

    @classmethod
    def fit(cls, probs: torch.Tensor, n_symbols: int, length: int,
            smoothing: float = 1e-3) -> "BigramLM":
        """Maximum likelihood under ``probs`` (a distribution over ``all_states``), from its exact
        expected counts.

        ``smoothing`` (a fraction of each row's total) is added to every count, so q > 0
        everywhere: a symbol pair the data never shows gets a small probability, as an LM's softmax
        would give it.
        """
        states = all_states(n_symbols, length)
        _check_distribution(probs, len(states))
        smoothing = check_positive("smoothing", smoothing)
        probs = probs.double()
        # expected counts: of x_1 (V,), and of each pair (x_t, x_{t+1}) at index x_t V + x_{t+1}
        initial = torch.zeros(n_symbols, dtype=torch.float64).index_add_(0, states[:, 0], probs)
        pairs = torch.zeros(n_symbols * n_symbols, dtype=torch.float64)
        for t in range(length - 1):
            pairs.index_add_(0, states[:, t] * n_symbols + states[:, t + 1], probs)
        counts = torch.cat([initial[None], pairs.view(n_symbols, n_symbols)])  # (1 + V, V)
        counts = counts + smoothing * counts.sum(dim=1, keepdim=True).clamp_min(1e-12)
        counts = counts / counts.sum(dim=1, keepdim=True)
        return cls(counts[0], counts[1:], length)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)``: log q(x) = log q(x_1) + sum_t log q(x_{t+1} | x_t)."""
        x = check_states(x, self.n_symbols, self.length)
        return self.initial.log()[x[:, 0]] + self.transition.log()[x[:, :-1], x[:, 1:]].sum(dim=1)

    def distribution(self) -> torch.Tensor:
        """``(V^T,)``: q over ``all_states``."""
        return self.log_prob(all_states(self.n_symbols, self.length)).exp()

    def sample(self, n: int, seed: int | torch.Generator) -> torch.Tensor:
        """``(n, T)``: exact ancestral samples, x_1 ~ q(x_1), then x_{t+1} ~ q(. | x_t)."""
        check_int("n", n, 1)
        generator = as_generator(seed)
        x = torch.multinomial(self.initial.expand(n, -1), 1, generator=generator)  # (n, 1)
        for _ in range(self.length - 1):  # x_{t+1} ~ q(. | x_t) appended: (n, t) -> (n, t + 1)
            x = torch.cat([x, torch.multinomial(self.transition[x[:, -1]], 1,
                                                generator=generator)], dim=1)
        return x


class SymbolSequences:
    """The toy world as an attack sees it (an ``attack.AttackableTask``): sequences of ``length``
    symbols 0..V-1, every position editable, every symbol writable."""

    position_sets = ("all",)

    def __init__(self, n_symbols: int, length: int) -> None:
        _check_space(n_symbols, length)
        self.vocab_size, self.length = n_symbols, length

    def check_model(self, name: str, model: nn.Module) -> nn.Module:
        """``model`` if it is an energy over this world's sequences (a ``ToyEBM`` of its size)."""
        check_model_fits(name, model, self.vocab_size)
        if model_config(model).get("length", self.length) != self.length:
            raise ValueError(f"{name} was built for length={model.config['length']}, "
                             f"but the sequences have length={self.length}")
        return model

    def check_sequences(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` as ``torch.long`` if they are a batch ``(B, length)`` of symbols."""
        return check_states(tokens, self.vocab_size, self.length, "tokens")

    def editable_mask(self, tokens: torch.Tensor, positions: str = "all") -> torch.Tensor:
        """``(B, T)`` bool on the tokens' device, all True: an attack may rewrite any position."""
        check_choice("positions", positions, self.position_sets)
        return torch.ones(len(tokens), self.length, dtype=torch.bool, device=tokens.device)

    def writable_tokens(self) -> torch.Tensor:
        """``(V,)``: every symbol."""
        return torch.arange(self.vocab_size)


class ToyEBM(nn.Module):
    """E_theta(x) = w . relu(W onehot(x) + b) + c: one hidden layer of ReLUs on one-hot symbols.

    Parameters, in ``parameters()`` order: W = ``hidden_weight`` (H, T*V), b = ``hidden_bias``
    (H,), w = ``out_weight`` (H,) and c = ``offset`` (). The offset changes no probability: its
    exact gradient is 0 (the two terms of eq. 3 cancel), but NCE uses it as its estimate of -log Z.

    ``embed`` (the one-hot vectors, ``(B, T, V)``) and ``energy_from_embeds`` are the course's
    embedding seam, so ``saliency.token_saliency`` and ``saliency.first_order_scores`` apply
    unchanged: with one-hot embeddings the first-order score of writing v at position i is
    g_i[v] - g_i[x_i], g_i = grad(-E) at the one-hot x_i (Gibbs-with-Gradients' proposal).
    Parameters are float64 on the CPU (the space is tiny; exact comparisons deserve the precision;
    moved elsewhere, the model refuses to run) and drawn from their own generator seeded with
    ``seed``: one seed gives one model, and torch's global random state is left alone.
    """

    def __init__(self, n_symbols: int, length: int, seed: int = 0, hidden: int = 32) -> None:
        super().__init__()
        _check_space(n_symbols, length)
        check_int("hidden", hidden, 1)
        check_seed("seed", seed)
        self.config = {"vocab_size": n_symbols, "length": length, "hidden": hidden, "seed": seed}
        self.n_symbols, self.length = n_symbols, length
        generator = torch.Generator().manual_seed(seed)
        # pre-activations ~ N(0, 1) for any input (T ones in the one-hot vector);
        # energies of order 1
        weight = torch.randn(hidden, length * n_symbols, generator=generator,
                             dtype=torch.float64) / math.sqrt(length)
        out = torch.randn(hidden, generator=generator, dtype=torch.float64) / math.sqrt(hidden)
        self.hidden_weight = nn.Parameter(weight)
        self.hidden_bias = nn.Parameter(torch.zeros(hidden, dtype=torch.float64))
        self.out_weight = nn.Parameter(out)
        self.offset = nn.Parameter(torch.zeros((), dtype=torch.float64))

    @property
    def sequences(self) -> SymbolSequences:
        """The sequences this energy scores, as an attack sees them."""
        return SymbolSequences(self.n_symbols, self.length)

    def states(self) -> torch.Tensor:
        """``(V^T, T)``: every state, in lexicographic order."""
        return all_states(self.n_symbols, self.length)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """One-hot symbols ``(..., V)`` in float64 on the CPU (any leading shape)."""
        self._check_placement()
        tokens = check_token_ids("tokens", tokens, self.n_symbols, dims=None).cpu()
        return F.one_hot(tokens, self.n_symbols).to(self.out_weight.dtype)

    def energy_from_embeds(self, embeds: torch.Tensor,
                           tokens: torch.Tensor | None = None) -> torch.Tensor:
        """E ``(B,)`` from (relaxed) one-hot embeddings ``(B, T, V)``.

        ``tokens`` is accepted for the seam, and unused.
        """
        self._check_placement()
        check_tensor("embeds", embeds, floating=True)
        if embeds.dim() != 3 or embeds.shape[1:] != (self.length, self.n_symbols):
            raise ValueError(f"embeds must have shape (B, {self.length}, {self.n_symbols}), "
                             f"got {tuple(embeds.shape)}")
        # (B, T, V) -> (B, T*V), times W^T (T*V, H): the hidden units (B, H)
        units = torch.relu(embeds.cpu().flatten(1) @ self.hidden_weight.T + self.hidden_bias)
        return units @ self.out_weight + self.offset

    def _check_placement(self) -> None:
        """A ValueError unless the parameters are float64 on the CPU, where the toy runs."""
        weight = self.out_weight
        if weight.device.type != "cpu" or weight.dtype != torch.float64:
            raise ValueError(f"a ToyEBM runs on the CPU in float64 (the toy's states, samplers "
                             f"and exact sums are there; MPS has no float64), but this one is on "
                             f"{weight.device} in {weight.dtype}: move it back with "
                             f"model.to('cpu', torch.float64)")

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """E_theta(x) ``(B,)`` for symbols ``x (B, T)``; low energy means probable."""
        return self.energy_from_embeds(self.embed(check_states(x, self.n_symbols, self.length)))

    def log_partition(self) -> torch.Tensor:
        """log Z(theta) = log sum_x exp(-E_theta(x)) (eq. 2, the sum over all V^T states)."""
        return torch.logsumexp(-self.energy(self.states()), dim=0)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p_theta(x) = -E_theta(x) - log Z(theta) (eq. 1), ``(B,)``."""
        return -self.energy(x) - self.log_partition()

    def distribution(self) -> torch.Tensor:
        """``(V^T,)``: p_theta over ``states()`` (eq. 1 for every state at once)."""
        return torch.softmax(-self.energy(self.states()), dim=0)

    @torch.no_grad()
    def sample(self, n: int, seed: int | torch.Generator) -> torch.Tensor:
        """``(n, T)``: exact independent samples of p_theta (from the enumerated distribution)."""
        return sample_states(self.states(), self.distribution(), n, seed)

    def contrast_grad(self, data: torch.Tensor, negatives: torch.Tensor,
                      weights: torch.Tensor | None = None) -> list[torch.Tensor]:
        """mean_data grad E - sum_k w_k grad E(x_k): eq. 3, negated, with the model term replaced
        by weighted negative samples (uniform weights 1/K when ``weights`` is None).

        One tensor per parameter, in ``parameters()`` order: the descent direction of the mean NLL
        when the negatives stand for p_theta. Parameters' ``.grad`` are left untouched.
        """
        data = check_states(data, self.n_symbols, self.length, "data")
        negatives = check_states(negatives, self.n_symbols, self.length, "negatives")
        if weights is None:
            weights = torch.full((len(negatives),), 1 / len(negatives), dtype=torch.float64)
        elif check_tensor("weights", weights, floating=True).shape != (len(negatives),):
            raise ValueError(f"weights must have shape ({len(negatives)},), one per negative, "
                             f"got {tuple(weights.shape)}")
        return self._data_minus(data, self.energy(negatives), weights)

    def exact_grad(self, data: torch.Tensor) -> list[torch.Tensor]:
        """grad_theta of the mean NLL of ``data``: E_data[grad E] - E_{p_theta}[grad E] (eq. 3,
        negated), the model term summed exactly over every state. One tensor per parameter, in
        ``parameters()`` order."""
        data = check_states(data, self.n_symbols, self.length, "data")
        energies = self.energy(self.states())
        return self._data_minus(data, energies, torch.softmax(-energies.detach(), dim=0))

    def _data_minus(self, data: torch.Tensor, negative_energies: torch.Tensor,
                    weights: torch.Tensor) -> list[torch.Tensor]:
        """grad of mean_data E - sum_k w_k E(x_k), the weights held constant."""
        surrogate = self.energy(data).mean() - (weights.detach() * negative_energies).sum()
        return list(torch.autograd.grad(surrogate, list(self.parameters())))

    def with_spurious_mode(self, state: torch.Tensor, depth: float) -> "ToyEBM":
        """A copy with one more hidden unit that lowers the energy of ``state`` (T,) by ``depth``,
        and of no other.

        The unit is relu(sum_i onehot(x)_i[s_i] - (T - 1)): 1 when all T symbols match s, else 0;
        its output weight is -depth. Its parameters get gradient only from ``state`` itself, so an
        estimator whose samples never include ``state`` leaves the mode exactly as deep as it was.
        """
        state = check_states((state[None] if isinstance(state, torch.Tensor) and state.dim() == 1
                              else state), self.n_symbols, self.length, "state")
        if len(state) != 1:
            raise ValueError(f"state must be one sequence of shape ({self.length},), "
                             f"got {tuple(state.shape)}")
        depth = check_positive("depth", depth)
        planted = ToyEBM(self.n_symbols, self.length, self.config["seed"],
                         self.config["hidden"] + 1)
        # the new unit: W gains the row onehot(s) (H+1, T*V), b the entry 1 - T, w the entry -depth
        with torch.no_grad():
            planted.hidden_weight.copy_(
                torch.cat([self.hidden_weight, self.embed(state).flatten(1)]))
            planted.hidden_bias.copy_(
                torch.cat([self.hidden_bias, self.hidden_bias.new_tensor([1.0 - self.length])]))
            planted.out_weight.copy_(
                torch.cat([self.out_weight, self.out_weight.new_tensor([-float(depth)])]))
            planted.offset.copy_(self.offset)
        return planted
