"""The exercise checkers say right to a right answer and wrong (without crashing) to a wrong or unfinished one."""

from advebm_teach.exercises import check_answer_digits, check_carries


def test_answer_digits_checker(capsys):
    assert check_answer_digits(lambda a, b, n: str(a + b).zfill(n + 1))
    assert "✓ right" in capsys.readouterr().out
    assert not check_answer_digits(lambda a, b, n: str(a + b))  # forgets the leading zero
    assert "✗ wrong: answer_digits(0, 0, 1) returned '0', expected '00'" in capsys.readouterr().out
    assert not check_answer_digits(lambda a, b, n: None)  # the unfinished exercise cell
    assert "✗ not yet: answer_digits(0, 0, 1) returned None" in capsys.readouterr().out


def test_carries_checker(capsys):
    def carries(a_digits, b_digits):
        out, carry = [], 0
        for a, b in zip(reversed(a_digits), reversed(b_digits)):
            carry = (a + b + carry) // 10
            out.append(carry)
        return out[::-1]

    assert check_carries(carries)
    # The classic mistake: a column's carry from its own digits only, ignoring the incoming carry.
    assert not check_carries(lambda a_digits, b_digits: [int(a + b >= 10) for a, b in zip(a_digits, b_digits)])
    assert "✗ wrong" in capsys.readouterr().out


def test_a_raising_answer_is_reported_not_raised(capsys):
    def unfinished(a_digits, b_digits):
        raise NotImplementedError("todo")

    assert not check_carries(unfinished)
    assert "✗ not yet: carries raised NotImplementedError: todo" in capsys.readouterr().out
