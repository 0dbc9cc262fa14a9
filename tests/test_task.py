"""AdditionTask against independent references: Python integer arithmetic and string formatting.

Layout, encode/decode, the correctness metric, well-formedness, sampling, editable masks and the
errors raised on bad input. The package's own output is never used as the reference.
"""

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advebm_teach import AdditionTask

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VOCAB = [str(d) for d in range(10)] + ["+", "=", "<bos>", "<eos>"]
BOS_ID, EOS_ID, PLUS_ID, EQUALS_ID = 12, 13, 10, 11


# ---------------------------------------------------------------- references
def ref_text(n: int, a: int, b: int, c: int | str | None = None) -> str:
    """``a+b=c`` with zero padding; ``c`` defaults to the true sum."""
    c_str = f"{a + b:0{n + 1}d}" if c is None else (c if isinstance(c, str) else f"{c:0{n + 1}d}")
    return f"{a:0{n}d}+{b:0{n}d}={c_str}"


def ref_digit_correct(n: int, a: int, b: int, c: str) -> list[bool]:
    truth = str(a + b).zfill(n + 1)
    return [c[i] == truth[i] for i in range(n + 1)]


def ref_layout(n: int) -> dict[str, list[int]]:
    """Positions of ``<bos> a(n) + b(n) = c(n+1) <eos>`` written out by hand."""
    return {
        "format": [0, n + 1, 2 * n + 2, 3 * n + 4],
        "a": list(range(1, n + 1)),
        "b": list(range(n + 2, 2 * n + 2)),
        "c": list(range(2 * n + 3, 3 * n + 4)),
    }


@st.composite
def problems(draw, max_n: int = 12):
    """(n, a, b) with a, b uniform-ish on [0, 10^n)."""
    n = draw(st.integers(1, max_n))
    a = draw(st.integers(0, 10**n - 1))
    b = draw(st.integers(0, 10**n - 1))
    return n, a, b


# ---------------------------------------------------------------- layout
@pytest.mark.parametrize("n", range(1, 13))
def test_layout_lengths_and_vocab(n):
    """seq_len = 3n+5, 14 symbols, one label per position, format tokens where the layout puts them."""
    task = AdditionTask(n)
    assert task.seq_len == 3 * n + 5
    assert task.vocab_size == 14
    assert len(task.position_labels()) == 3 * n + 5
    layout = ref_layout(n)
    assert list(task.a_positions) == layout["a"]
    assert list(task.b_positions) == layout["b"]
    assert list(task.c_positions) == layout["c"]
    assert [task.plus_position, task.equals_position] == [n + 1, 2 * n + 2]
    labels = task.position_labels()
    assert [labels[p] for p in layout["format"]] == ["<bos>", "+", "=", "<eos>"]
    assert len(layout["a"] + layout["b"] + layout["c"] + layout["format"]) == 3 * n + 5


def test_digit_token_id_equals_digit_value():
    """Token id of digit d is d, both in the table and in what encode produces."""
    task = AdditionTask(3)
    for d in range(10):
        assert task.token_id[str(d)] == d
        assert task.vocab[d] == str(d)
        tokens = task.encode(f"{d}{d}{d}+{d}{d}{d}={d}{d}{d}{d}")
        digit_positions = ref_layout(3)["a"] + ref_layout(3)["b"] + ref_layout(3)["c"]
        assert tokens[digit_positions].tolist() == [d] * 10
    assert task.encode("000+000=0000")[ref_layout(3)["format"]].tolist() == [BOS_ID, PLUS_ID, EQUALS_ID, EOS_ID]


# ---------------------------------------------------------------- encode / decode / correctness of valid sums
@FAST
@given(problems())
def test_valid_sum_roundtrip_and_full_correctness(problem):
    """A correct sum written by Python encodes, decodes back to the same text, and scores exactly 1."""
    n, a, b = problem
    task = AdditionTask(n)
    text = ref_text(n, a, b)
    tokens = task.encode(text)
    assert tokens.shape == (3 * n + 5,)
    assert task.decode(tokens, strip=True) == text
    assert task.decode(tokens) == "<bos>" + text + "<eos>"
    assert task.correctness(tokens).tolist() == [1.0]
    assert bool(task.is_well_formed(tokens).item())


@FAST
@given(problems(), st.data())
def test_correctness_matches_python_reference(problem, data):
    """Random (often wrong) answers: fraction of matching digits vs str(a+b).zfill(n+1), per digit too."""
    n, a, b = problem
    c = "".join(data.draw(st.lists(st.sampled_from("0123456789"), min_size=n + 1, max_size=n + 1)))
    task = AdditionTask(n)
    tokens = task.encode(ref_text(n, a, b, c))
    per_digit = ref_digit_correct(n, a, b, c)
    assert task.digit_correct(tokens).tolist() == [per_digit]
    assert task.correctness(tokens).item() == pytest.approx(sum(per_digit) / (n + 1), abs=1e-6)


@FAST
@given(st.integers(1, 6), st.data())
def test_correctness_batched_matches_per_text_references(n, data):
    """A list of texts gives a (B,) tensor; each entry matches its own Python reference."""
    task = AdditionTask(n)
    batch = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, 10**n - 1),
                st.integers(0, 10**n - 1),
                st.text("0123456789", min_size=n + 1, max_size=n + 1),
            ),
            min_size=1,
            max_size=6,
        )
    )
    texts = [ref_text(n, a, b, c) for a, b, c in batch]
    tokens = task.encode(texts)
    assert tokens.shape == (len(texts), 3 * n + 5)
    expected = [sum(ref_digit_correct(n, a, b, c)) / (n + 1) for a, b, c in batch]
    got = task.correctness(tokens)
    assert got.shape == (len(texts),)
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    assert task.digit_correct(tokens).tolist() == [ref_digit_correct(n, a, b, c) for a, b, c in batch]


def test_correctness_known_values():
    """Hand-checked: 12+39=051 is right; 12+39=050 has 2 of 3; 99+99=198 needs the carry digit."""
    task = AdditionTask(2)
    got = task.correctness(task.encode(["12+39=051", "12+39=050", "99+99=198", "99+99=098", "00+00=999"]))
    assert got.tolist() == pytest.approx([1.0, 2 / 3, 1.0, 2 / 3, 0.0], abs=1e-6)


# ---------------------------------------------------------------- decode/encode are inverses on arbitrary ids
@st.composite
def token_tensors(draw, first=None, last=None):
    """(n, tensor) of random ids in [0, 14), 1-D or 2-D; optionally forcing the first/last id."""
    n = draw(st.integers(1, 5))
    T = 3 * n + 5
    rows = draw(st.integers(1, 4))
    flat = draw(st.lists(st.integers(0, 13), min_size=rows * T, max_size=rows * T))
    t = torch.tensor(flat, dtype=torch.long).view(rows, T)
    if first is not None:
        t[:, 0] = first
    if last is not None:
        t[:, -1] = last
    if draw(st.booleans()):
        t = t[0]
    return n, t


@FAST
@given(token_tensors())
def test_encode_decode_inverse_on_any_ids(case):
    """Any ids of the right length (malformed, <bos>/<eos> anywhere) survive decode -> encode exactly."""
    n, t = case
    task = AdditionTask(n)
    assert torch.equal(task.encode(task.decode(t)), t)


def test_encode_decode_inverse_without_bos_and_eos():
    """n=2, eleven 1s: decode gives '11111111111', which has seq_len symbols, so encode must not wrap it."""
    task = AdditionTask(2)
    t = torch.ones(11, dtype=torch.long)
    assert task.decode(t) == "1" * 11
    assert torch.equal(task.encode(task.decode(t)), t)


# ---------------------------------------------------------------- malformed sequences
def test_is_well_formed_exhaustive_single_edits():
    """Every (position, id) single edit of a valid sequence: well formed iff the layout allows that id there.

    Malformed ones score 0 and have no correct digit, although their digits still add up.
    """
    n = 2
    task = AdditionTask(n)
    base = task.encode(ref_text(n, 12, 39))
    layout = ref_layout(n)
    expected_format = dict(zip(layout["format"], [BOS_ID, PLUS_ID, EQUALS_ID, EOS_ID]))
    edits, expected = [], []
    for p in range(3 * n + 5):
        for v in range(14):
            t = base.clone()
            t[p] = v
            edits.append(t)
            expected.append(v == expected_format[p] if p in expected_format else v < 10)
    tokens = torch.stack(edits)
    assert task.is_well_formed(tokens).tolist() == expected
    malformed = ~torch.tensor(expected)
    assert (task.correctness(tokens)[malformed] == 0).all()
    assert not task.digit_correct(tokens)[malformed].any()


@pytest.mark.parametrize(
    "text",
    [
        "<bos>12339=051<eos>",  # '+' replaced by a digit
        "<bos>12+394051<eos>",  # '=' replaced by a digit
        "<bos>12+39=05<eos><eos>",  # <eos> in the last c slot
        "<bos>12+39=<bos>51<eos>",  # <bos> in a c slot
        "<bos>1++39=051<eos>",  # '+' in an a slot
        "<bos>12=39+051<eos>",  # '+' and '=' swapped
        "<eos>12+39=051<eos>",  # <eos> where <bos> goes
        "<bos>12+39=051<bos>",  # <bos> where <eos> goes
        "<bos>12+39=0510",  # last token a digit instead of <eos>
    ],
)
def test_malformed_text_scores_zero(text):
    """Malformed sequences (whose digits would otherwise be a correct sum) score exactly 0."""
    task = AdditionTask(2)
    tokens = task.encode(text)
    assert not bool(task.is_well_formed(tokens).item())
    assert task.correctness(tokens).tolist() == [0.0]
    assert task.digit_correct(tokens).tolist() == [[False] * 3]


def test_sampled_sequences_are_well_formed():
    task = AdditionTask(4)
    assert task.is_well_formed(task.sample(200, seed=0)).all()


# ---------------------------------------------------------------- sample
@pytest.mark.parametrize("n", [1, 3, 12])
def test_sample_sums_are_correct_by_python_arithmetic(n):
    """Every sampled sequence parses as a+b=c with int(a)+int(b) == int(c) and the right widths."""
    task = AdditionTask(n)
    for text in task.decode(task.sample(300, seed=n), strip=True):
        m = re.fullmatch(r"(\d+)\+(\d+)=(\d+)", text)
        assert m is not None, text
        a, b, c = m.groups()
        assert (len(a), len(b), len(c)) == (n, n, n + 1)
        assert int(a) + int(b) == int(c)


def test_sample_reproducible_with_seed_and_generator():
    """Same seed -> same tensor; a Generator seeded alike gives the same; other seeds differ."""
    task = AdditionTask(5)
    s1 = task.sample(50, seed=7)
    assert torch.equal(s1, task.sample(50, seed=7))
    assert torch.equal(s1, task.sample(50, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(s1, task.sample(50, seed=8))


def test_sample_seed_and_generator_together_raise():
    with pytest.raises(ValueError, match="not both"):
        AdditionTask(2).sample(3, seed=1, generator=torch.Generator())


def test_sample_digits_roughly_uniform():
    """20,000 digits of a and b: each value 0-9 has frequency 0.1 +- 0.015 (about 7 standard errors)."""
    task = AdditionTask(10)
    tokens = task.sample(1000, seed=3)
    layout = ref_layout(10)
    digits = tokens[:, layout["a"] + layout["b"]].flatten()
    assert digits.numel() == 20_000
    freq = torch.bincount(digits, minlength=14).double() / digits.numel()
    assert freq[10:].sum() == 0
    assert torch.all((freq[:10] - 0.1).abs() < 0.015), freq


def test_sample_zero():
    for n in (1, 4):
        task = AdditionTask(n)
        out = task.sample(0, seed=0)
        assert out.shape == (0, 3 * n + 5)
        assert out.dtype == torch.long


# ---------------------------------------------------------------- editable_mask
@pytest.mark.parametrize("n", [1, 2, 5])
def test_editable_mask_positions(n):
    """'digits' exactly on a, b, c; 'answer' exactly on c; (B, T) for 2-D, (1, T) for 1-D; value independent."""
    task = AdditionTask(n)
    T = 3 * n + 5
    layout = ref_layout(n)
    digits_ref = torch.zeros(T, dtype=torch.bool)
    digits_ref[layout["a"] + layout["b"] + layout["c"]] = True
    assert not digits_ref[layout["format"]].any()
    answer_ref = torch.zeros(T, dtype=torch.bool)
    answer_ref[layout["c"]] = True
    # the package's own position ranges agree with the hand-written layout
    union = torch.zeros(T, dtype=torch.bool)
    union[list(task.a_positions) + list(task.b_positions) + list(task.c_positions)] = True
    assert torch.equal(union, digits_ref)

    batch = task.sample(3, seed=0)
    malformed = torch.randint(0, 14, (4, T), generator=torch.Generator().manual_seed(1))
    for tokens, rows in [(batch, 3), (malformed, 4), (batch[0], 1)]:
        digits = task.editable_mask(tokens, "digits")
        answer = task.editable_mask(tokens, positions="answer")
        assert digits.shape == answer.shape == (rows, T)
        assert digits.dtype == torch.bool
        assert torch.equal(digits, digits_ref.expand(rows, T))
        assert torch.equal(answer, answer_ref.expand(rows, T))
    assert torch.equal(task.editable_mask(batch), digits_ref.expand(3, T))  # default is "digits"


def test_editable_mask_unknown_positions():
    task = AdditionTask(2)
    with pytest.raises(ValueError, match="'everything'"):
        task.editable_mask(task.sample(2, seed=0), positions="everything")


# ---------------------------------------------------------------- the paper's example
def test_paper_example_is_not_a_valid_sum():
    """4680156823+2390922645=07332265161 is wrong read either way; correctness < 1."""
    text = "4680156823+2390922645=07332265161"
    a, b, c = re.fullmatch(r"(\d+)\+(\d+)=(\d+)", text).groups()
    assert int(a) + int(b) != int(c)  # most significant digit first
    assert int(a[::-1]) + int(b[::-1]) != int(c[::-1])  # least significant digit first
    assert int(a) + int(b) == 7071079468  # the value quoted in task.py's docstring
    task = AdditionTask(10)
    score = task.correctness(task.encode(text)).item()
    expected = sum(ref_digit_correct(10, int(a), int(b), c)) / 11
    assert score < 1.0
    assert score == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("text", ["12*39=051", "12+3x=051", "<bos>12+39=051<eos>x"])
def test_encode_unknown_symbol(text):
    with pytest.raises(ValueError, match="unknown symbol"):
        AdditionTask(2).encode(text)


VALID_CHARS = set("0123456789+=")


@FAST
@given(
    problems(max_n=5),
    st.characters().filter(lambda ch: not ch.isspace() and ch not in VALID_CHARS),
    st.data(),
)
def test_encode_any_foreign_character_is_named(problem, ch, data):
    """A non-vocabulary, non-space character anywhere in a valid text raises a ValueError naming it."""
    n, a, b = problem
    text = ref_text(n, a, b)
    i = data.draw(st.integers(0, len(text)))
    bad = text[:i] + ch + text[i:]
    with pytest.raises(ValueError, match="unknown symbol " + re.escape(repr(ch))):
        AdditionTask(n).encode(bad)


def test_encode_ignores_whitespace():
    task = AdditionTask(2)
    assert task.encode(" <bos> 1 2 + 3 9 = 0 5 1 <eos> ").tolist() == [12, 1, 2, 10, 3, 9, 11, 0, 5, 1, 13]


@pytest.mark.parametrize("text", ["1+2=03", "123+456=0579", "<bos>12+39=051<eos><eos>", "", "<bos>12+39=051"])
def test_encode_wrong_length(text):
    with pytest.raises(ValueError, match="wrong length"):
        AdditionTask(2).encode(text)


def test_encode_empty_list_and_non_strings():
    task = AdditionTask(2)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        task.encode([])
    with pytest.raises(TypeError, match="non-empty list of strings"):
        task.encode(["12+39=051", 5])


@pytest.mark.parametrize("method", ["decode", "correctness", "is_well_formed", "digit_correct", "editable_mask"])
@pytest.mark.parametrize(
    "tokens, error, message",
    [
        (torch.zeros(11, dtype=torch.float32), TypeError, "integer token ids"),
        (torch.zeros(11, dtype=torch.bool), TypeError, "integer token ids"),
        (torch.zeros(1, 2, 11, dtype=torch.long), ValueError, "shape"),
        (torch.zeros(12, dtype=torch.long), ValueError, r"length seq_len=11 .*shape \(12,\)"),
        (torch.zeros(3, 10, dtype=torch.long), ValueError, r"length seq_len=11 .*shape \(3, 10\)"),
        (torch.full((11,), 14, dtype=torch.long), ValueError, r"token ids in \[0, 14\)"),
        (torch.full((2, 11), -1, dtype=torch.long), ValueError, r"token ids in \[0, 14\)"),
        ([12, 1, 2, 10, 3, 9, 11, 0, 5, 1, 13], TypeError, "torch.Tensor"),
    ],
)
def test_bad_token_tensors(method, tokens, error, message):
    """Every tensor-taking method rejects bad dtypes, ranks, lengths and ids with a clear error
    (TypeError for the wrong kind of argument, ValueError for one out of range)."""
    task = AdditionTask(2)
    with pytest.raises(error, match=message):
        getattr(task, method)(tokens)


def test_int32_tokens_accepted():
    task = AdditionTask(2)
    t = task.encode("12+39=051")
    assert task.correctness(t.int()).tolist() == [1.0]
    assert task.decode(t.to(torch.uint8), strip=True) == "12+39=051"


@pytest.mark.parametrize("n_digits, error", [
    (0, ValueError), (-1, ValueError),
    (2.5, TypeError), ("3", TypeError), (True, TypeError), (None, TypeError),
])
def test_bad_n_digits(n_digits, error):
    with pytest.raises(error, match="n_digits"):
        AdditionTask(n_digits)


@pytest.mark.parametrize("n, error", [(-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_sample_bad_n(n, error):
    with pytest.raises(error, match="n must be"):
        AdditionTask(2).sample(n, seed=0)
