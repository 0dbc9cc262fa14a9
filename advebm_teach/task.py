"""The paper's arithmetic sequence task (section 3.1).

A sequence is ``<bos> a_n..a_1 + b_n..b_1 = c_{n+1}..c_1 <eos>``: most significant digit first,
``c = a + b`` written with n+1 digits (``c_{n+1}`` is the final carry, 0 or 1). One token per
symbol::

    <bos> 1 2 + 3 9 = 0 5 1 <eos>        (n = 2: 12 + 39 = 051)

Correctness of a sequence (the paper's metric) is the fraction of its n+1 ``c`` digits that equal
the true sum of the sequence's *own* ``a`` and ``b``; a malformed sequence scores 0.

Note: the paper's printed example, ``4680156823 + 2390922645 = 07332265161``, is not a valid sum in
either digit order (4680156823 + 2390922645 = 7071079468); the course uses the definition, not the
example.
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

import torch

from .checks import (check_bool, check_choice, check_int, check_model_fits, check_same_device,
                     check_token_ids, seeded_generator)

BASE = 10  # decimal: the digits 0-9 are the token ids 0-9
DIGITS = [str(d) for d in range(BASE)]
BOS, EOS, PLUS, EQUALS = "<bos>", "<eos>", "+", "="
_SYMBOL = re.compile(r"<bos>|<eos>|\S")


class AdditionTask:
    """Vocabulary, layout, sampling and the correctness metric of n-digit addition sequences.

    Digit tokens have the ids 0-9 (token id = digit value), then ``+``, ``=``, ``<bos>``,
    ``<eos>``.

    Devices: the layout (``format_template``, ``digit_slots``) is kept on the CPU, and every
    method that takes tokens answers on the tokens' device (the layout is moved there), so a batch
    on a GPU is checked, scored and masked on the GPU; digits given to ``assemble`` or
    ``add_digits`` on two devices are refused (a ValueError naming each one's). ``sample`` draws
    on the CPU (from a CPU generator); ``digit_ids`` and ``writable_tokens`` are CPU tensors.
    """

    def __init__(self, n_digits: int = 10) -> None:
        self.n_digits = n = check_int("n_digits", n_digits, 1)
        self.vocab: list[str] = DIGITS + [PLUS, EQUALS, BOS, EOS]
        self.token_id = {symbol: i for i, symbol in enumerate(self.vocab)}
        # Layout: <bos> a(n) + b(n) = c(n+1) <eos>
        self.a_positions = range(1, 1 + n)
        self.plus_position = 1 + n
        self.b_positions = range(2 + n, 2 + 2 * n)
        self.equals_position = 2 + 2 * n
        self.c_positions = range(3 + 2 * n, 4 + 3 * n)
        self.seq_len = 5 + 3 * n
        template = torch.full((self.seq_len,), -1, dtype=torch.long)  # -1 marks a digit slot
        template[0] = self.token_id[BOS]
        template[self.plus_position] = self.token_id[PLUS]
        template[self.equals_position] = self.token_id[EQUALS]
        template[-1] = self.token_id[EOS]
        self.format_template = template
        self.digit_slots = template < 0

    position_sets = ("digits", "answer")  # what ``editable_mask`` (and an attack) may edit

    def __repr__(self) -> str:
        return f"AdditionTask(n_digits={self.n_digits})"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------ text <-> tokens
    def encode(self, text: str | Sequence[str]) -> torch.Tensor:
        """Symbols to token ids: a string gives ``(seq_len,)``, a list of strings ``(B, seq_len)``.

        Whitespace is ignored. The short form without ``<bos>``/``<eos>`` (``seq_len - 2`` symbols)
        gets both added. The result need not be a correct sum, nor even well formed (only its
        length is checked).
        """
        if isinstance(text, str):
            return self._encode_one(text)
        if not isinstance(text, Sequence) or not all(isinstance(t, str) for t in text):
            raise TypeError(f"text must be a string or a non-empty list of strings, got {text!r}")
        if len(text) == 0:
            raise ValueError("text must be a string or a non-empty list of strings, got []")
        return torch.stack([self._encode_one(t) for t in text])

    def _encode_one(self, text: str) -> torch.Tensor:
        symbols = _SYMBOL.findall(text)
        if len(symbols) == self.seq_len - 2:  # the short form, "12+39=051": add <bos> and <eos>
            symbols = [BOS, *symbols, EOS]
        unknown = [s for s in symbols if s not in self.token_id]
        if unknown:
            raise ValueError(f"text has an unknown symbol {unknown[0]!r} in {text!r}; "
                             f"the vocabulary is {self.vocab}")
        if len(symbols) != self.seq_len:
            n = self.n_digits
            raise ValueError(f"text has the wrong length: {text!r} has {len(symbols)} tokens, "
                             f"expected {self.seq_len} for n_digits={n} "
                             f"(<bos> {n} + {n} = {n + 1} <eos>)")
        return torch.tensor([self.token_id[s] for s in symbols], dtype=torch.long)

    def decode(self, tokens: torch.Tensor, strip: bool = False) -> str | list[str]:
        """Token ids to text, ``"<bos>12+39=051<eos>"``; ``(T,)`` gives a str, ``(B, T)`` a list.

        ``decode`` and ``encode`` are exact inverses. ``strip=True`` drops ``<bos>``/``<eos>`` for
        display.
        """
        check_bool("strip", strip)
        texts = []
        for row in self._batch(tokens).tolist():
            symbols = [self.vocab[t] for t in row]
            if strip and symbols[0] == BOS and symbols[-1] == EOS:
                symbols = symbols[1:-1]
            texts.append("".join(symbols))
        return texts[0] if tokens.dim() == 1 else texts

    def check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` if they are a ``(T,)`` or ``(B, T)`` integer tensor of this task's ids."""
        return check_token_ids("tokens", tokens, self.vocab_size, self.seq_len)

    def check_model(self, name: str, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` (the argument ``name``) if it was built for this task: its vocabulary, and
        its length when it has a fixed one (another task's model: a ValueError naming both)."""
        return check_model_fits(name, model, self.vocab_size, self.seq_len)

    def _batch(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.check_tokens(tokens).long()
        return tokens.unsqueeze(0) if tokens.dim() == 1 else tokens

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` correct sequences ``(n, seq_len)`` with a and b uniform on [0, 10^n_digits).

        Pass ``seed`` or ``generator`` for reproducible draws (not both).
        """
        n = check_int("n", n, 0)
        generator = seeded_generator(seed, generator)
        a = torch.randint(0, BASE, (n, self.n_digits), generator=generator)
        b = torch.randint(0, BASE, (n, self.n_digits), generator=generator)
        return self.assemble(a, b, self.add_digits(a, b))

    def assemble(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Sequences from the digits ``a, b (B, n)`` and ``c (B, n+1)``, most significant first, on
        their device."""
        a = check_token_ids("a", a, BASE, self.n_digits, dims=(2,))
        b = check_token_ids("b", b, BASE, self.n_digits, dims=(2,))
        c = check_token_ids("c", c, BASE, self.n_digits + 1, dims=(2,))
        if not len(a) == len(b) == len(c):
            raise ValueError(f"a, b and c must match in rows, got {len(a)}, {len(b)}, {len(c)}")
        device = check_same_device(a=a, b=b, c=c)
        tokens = self.format_template.to(device).repeat(a.shape[0], 1)  # (B, T), digits still -1
        tokens[:, self.a_positions] = a
        tokens[:, self.b_positions] = b
        tokens[:, self.c_positions] = c
        return tokens

    @staticmethod
    def add_digits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Column addition with carries: digits of ``a + b`` (B, n+1), most significant first, on
        their device."""
        a = check_token_ids("a", a, BASE, dims=(2,))
        b = check_token_ids("b", b, BASE, dims=(2,))
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape (B, n), got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")
        carry = torch.zeros(a.shape[0], dtype=torch.long,
                            device=check_same_device(a=a, b=b))  # (B,)
        columns = []
        for i in reversed(range(a.shape[1])):
            total = a[:, i] + b[:, i] + carry
            columns.append(total % BASE)
            carry = total // BASE
        columns.append(carry)
        return torch.stack(columns[::-1], dim=1)  # n+1 columns (B,) -> (B, n+1)

    # ------------------------------------------------------------------ structure and metric
    def is_well_formed(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: format tokens in their places and a digit in every digit slot."""
        tokens = self._batch(tokens)
        device = tokens.device
        template, slots = self.format_template.to(device), self.digit_slots.to(device)
        format_ok = ((tokens == template) | slots).all(dim=1)  # (B, T) -> (B,)
        digits_ok = ((tokens < BASE) | ~slots).all(dim=1)
        return format_ok & digits_ok

    def digit_correct(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, n+1)`` bool: which c digits equal the true sum of the sequence's own a and b.

        All False for a malformed sequence.
        """
        tokens = self._batch(tokens)
        well_formed = self.is_well_formed(tokens)
        safe = torch.where(well_formed[:, None], tokens, torch.zeros_like(tokens))
        a, b = safe[:, self.a_positions], safe[:, self.b_positions]  # (B, n) each
        correct = safe[:, self.c_positions] == self.add_digits(a, b)
        return correct & well_formed[:, None]

    def correctness(self, tokens: torch.Tensor) -> torch.Tensor:
        """The paper's metric, ``(B,)`` float: correct c digits / (n+1); 0 for a malformed one."""
        return self.digit_correct(tokens).float().mean(dim=1)

    def editable_mask(self, tokens: torch.Tensor,
                      positions: Literal["digits", "answer"] = "digits") -> torch.Tensor:
        """``(B, T)`` bool: where an attack may change a token.

        ``"digits"``: every a, b and c digit (the paper's candidates are all tokens of the
        sequence); ``"answer"``: the c digits only. Format tokens are never editable. The mask
        depends only on the layout, not on the token values; it is on the tokens' device.
        """
        tokens = self._batch(tokens)
        if check_choice("positions", positions, self.position_sets) == "digits":
            row = self.digit_slots.to(tokens.device, copy=True)
        else:
            row = torch.zeros(self.seq_len, dtype=torch.bool, device=tokens.device)
            row[self.c_positions] = True
        return row.expand(tokens.shape[0], -1).clone()  # (T,) -> (B, T)

    @property
    def digit_ids(self) -> torch.Tensor:
        """``(10,)``: the digits' token ids (token id = digit value)."""
        return torch.arange(BASE)

    def writable_tokens(self) -> torch.Tensor:
        """``(10,)``: the token ids an attack may write, the digits."""
        return self.digit_ids

    def check_sequences(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` as ``torch.long`` if they are a batch ``(B, T)`` of well-formed sequences."""
        tokens = check_token_ids("tokens", tokens, self.vocab_size, self.seq_len, dims=(2,)).long()
        malformed = (~self.is_well_formed(tokens)).nonzero().flatten().tolist()
        if malformed:
            raise ValueError(f"tokens must be well formed (task.is_well_formed); "
                             f"rows {malformed[:10]} are not")
        return tokens

    def position_labels(self) -> list[str]:
        """A name per position for plots: ``<bos>, a5..a1, +, b5..b1, =, c6..c1, <eos>``."""
        n = self.n_digits
        return (
            [BOS]
            + [f"a{i}" for i in range(n, 0, -1)]
            + [PLUS]
            + [f"b{i}" for i in range(n, 0, -1)]
            + [EQUALS]
            + [f"c{i}" for i in range(n + 1, 0, -1)]
            + [EOS]
        )


def check_task(task: object) -> AdditionTask:
    """``task`` if it is an ``AdditionTask``."""
    if not isinstance(task, AdditionTask):
        raise TypeError(f"task must be an AdditionTask, got {type(task).__name__}")
    return task
