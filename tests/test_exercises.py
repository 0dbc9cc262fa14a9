"""The exercise checkers say right to a right answer and wrong (without crashing) to a wrong or unfinished one."""

from advebm_teach.teaching.exercises.task import check_answer_digits, check_carries


def test_answer_digits_checker():
    right = check_answer_digits(lambda a, b, n: str(a + b).zfill(n + 1))
    assert right and repr(right).startswith("✓ right")
    forgets_leading_zero = check_answer_digits(lambda a, b, n: str(a + b))
    assert not forgets_leading_zero
    assert repr(forgets_leading_zero) == "✗ wrong: answer_digits(0, 0, 1) returned '0', expected '00'"
    unfinished = check_answer_digits(lambda a, b, n: None)  # the exercise cell as shipped
    assert not unfinished and repr(unfinished).startswith("✗ not yet: answer_digits(0, 0, 1) returned None")


def test_carries_checker():
    def carries(a_digits, b_digits):
        out, carry = [], 0
        for a, b in zip(reversed(a_digits), reversed(b_digits)):
            carry = (a + b + carry) // 10
            out.append(carry)
        return out[::-1]

    assert check_carries(carries)
    # The classic mistake: a column's carry from its own digits only, ignoring the incoming carry.
    own_digits_only = check_carries(lambda a_digits, b_digits: [int(a + b >= 10) for a, b in zip(a_digits, b_digits)])
    assert not own_digits_only and repr(own_digits_only).startswith("✗ wrong")


def test_a_raising_answer_is_reported_not_raised():
    def unfinished(a_digits, b_digits):
        raise NotImplementedError("todo")

    assert repr(check_carries(unfinished)) == "✗ not yet: carries raised NotImplementedError: todo"
