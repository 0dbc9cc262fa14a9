"""Notebook 02's exercise checkers say right to a right answer and wrong to the classic mistakes."""

from advebm_teach.teaching.exercises.embedding import check_fgm_perturbation, check_l2_projection


def test_fgm_perturbation_checker():
    right = check_fgm_perturbation(lambda g, eps: eps * g / g.flatten(1).norm(dim=1)[:, None, None])
    assert right and repr(right).startswith("✓ right")
    per_token = check_fgm_perturbation(lambda g, eps: eps * g / g.norm(dim=-1, keepdim=True))  # each token to eps
    assert not per_token and repr(per_token).startswith("✗ wrong")
    assert not check_fgm_perturbation(lambda g, eps: None)


def test_l2_projection_checker():
    def project_l2(delta, eps):
        norms = delta.flatten(1).norm(dim=1)[:, None, None]
        return delta * (eps / norms).clamp(max=1.0)

    assert check_l2_projection(project_l2)
    always_rescales = check_l2_projection(lambda d, eps: eps * d / d.flatten(1).norm(dim=1)[:, None, None])
    assert not always_rescales and repr(always_rescales).startswith("✗ wrong")
