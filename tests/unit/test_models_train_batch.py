"""The training batch size per device, the learning-rate rule that goes with it, and the arrays a step reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from riskpulse.models.serving.network import DeviceArrays
from riskpulse.models.training.trainer import REFERENCE_BATCH, TrainArgs, default_epochs, default_train_batch_size, scaled_lr


def test_a_gpu_trains_on_bigger_batches_than_a_cpu() -> None:
    assert default_train_batch_size(torch.device("cpu")) == REFERENCE_BATCH == 32
    assert default_train_batch_size(torch.device("cuda")) == 128


def test_a_cpu_trains_two_epochs_a_gpu_three_unless_told() -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert (default_epochs(cpu), default_epochs(gpu)) == (2, 3)
    assert TrainArgs().effective_epochs(cpu) == 2 and TrainArgs().effective_epochs(gpu) == 3
    assert TrainArgs(epochs=5).effective_epochs(cpu) == 5
    assert TrainArgs(epochs=5, quick=True).effective_epochs(gpu) == 1


@pytest.mark.parametrize(("batch", "factor"), [(32, 1.0), (128, 2.0), (8, 0.5), (64, 2**0.5)])
def test_learning_rates_scale_by_the_square_root_of_the_batch(batch: int, factor: float) -> None:
    assert scaled_lr(1e-4, batch) == pytest.approx(1e-4 * factor)


def test_a_step_reads_its_rows_cut_to_the_batch_width() -> None:
    ids = np.arange(24, dtype=np.int64).reshape(4, 6)
    targets = np.array([3, -100, 1, 0])
    arrays = DeviceArrays(torch.device("cpu"), ids=ids, topic=targets)
    rows = np.array([2, 0])
    assert arrays.take("ids", torch.from_numpy(rows), 3).tolist() == ids[rows, :3].tolist()
    assert arrays.take("topic", torch.from_numpy(rows)).tolist() == [1, 3]


def _tiny_model():
    from transformers import BertConfig, BertModel

    from riskpulse.models.serving.network import MultiTaskClassifier

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    return MultiTaskClassifier(BertModel(config, add_pooling_layer=False), n_topics=4, n_sentiments=3, forked_layers=1)


def test_dropout_zero_makes_a_training_step_see_what_serving_sees() -> None:
    from riskpulse.models.training.trainer import set_dropout

    model = _tiny_model()
    ids, mask = torch.randint(1, 50, (3, 7)), torch.ones(3, 7, dtype=torch.long)
    model.eval()
    served = model(ids, mask)
    model.train()
    assert not torch.allclose(model(ids, mask)[1], served[1])  # the encoder's own dropout (0.1) draws masks
    set_dropout(model, 0.0)
    for trained, expected in zip(model(ids, mask), served):
        assert torch.allclose(trained, expected, atol=1e-6)
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.0} and len([m for m in model.modules() if isinstance(m, torch.nn.Dropout)]) > 4


def test_a_cpu_optimizer_steps_all_tensors_at_once() -> None:
    from riskpulse.models.training.trainer import make_optimizer

    model = _tiny_model()
    optimizer = make_optimizer(model, TrainArgs(), 1e-4, 64, torch.device("cpu"))
    assert optimizer.defaults["foreach"] is True and not optimizer.defaults["fused"]
    encoder, heads = optimizer.param_groups
    assert encoder["lr"] == 1e-4 and heads["lr"] == pytest.approx(scaled_lr(TrainArgs().head_lr, 64))
    assert sum(p.numel() for p in heads["params"]) == 16 * 4 + 4 + 16 * 3 + 3


def test_the_train_command_leaves_unset_options_to_the_trainer(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """An option the user did not give must not override TrainArgs' default with the CLI's None (a
    `--dropout` default of None once trained with the encoder's 0.1 where the recipe says 0)."""
    import typer
    from typer.testing import CliRunner

    from riskpulse.core.settings import get_settings
    from riskpulse.models import cli as models_cli
    from riskpulse.models.training import trainer

    seen: list[TrainArgs] = []
    monkeypatch.setattr(trainer, "train", lambda settings, args, **_: seen.append(args) or "v")
    monkeypatch.setenv("RISKPULSE_HOME", str(tmp_path))
    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    models_cli.register(app)
    try:
        assert CliRunner().invoke(app, ["train", "--no-distil"]).exit_code == 0
        assert CliRunner().invoke(app, ["train", "--no-distil", "--dropout", "0.2", "--epochs", "4"]).exit_code == 0
    finally:
        get_settings.cache_clear()
    default, given = seen
    assert (default.dropout, default.epochs, default.batch_size) == (TrainArgs().dropout, None, None) == (0.0, None, None)
    assert (given.dropout, given.epochs) == (0.2, 4)
