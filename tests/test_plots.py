"""Figure builders return figures that carry the data they were given."""

from advebm_teach.teaching.plots import per_position_bars, training_curves


def test_training_curves_draw_each_requested_key():
    history = [{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1}, {"epoch": 2, "train_loss": 1.5, "val_loss": 1.9}]
    fig = training_curves(history, best_epoch=2)
    assert [trace.name for trace in fig.data] == ["train_loss", "val_loss"]
    assert list(fig.data[1].y) == [2.1, 1.9] and list(fig.data[0].x) == [1, 2]
    assert len(training_curves(history, keys=("val_loss", "missing")).data) == 1


def test_per_position_bars_group_one_series_per_model():
    fig = per_position_bars(["c3", "c2", "c1"], {"a": [1.0, 0.5, 0.1], "b": [0.9, 0.9, 0.9]})
    assert [trace.name for trace in fig.data] == ["a", "b"]
    assert list(fig.data[0].x) == ["c3", "c2", "c1"] and fig.layout.barmode == "group"
