"""One save/load path for every world's judge (ganlab.judges.shipping)."""

import pytest
import torch
from torch import nn

from ganlab.errors import CheckpointError
from ganlab.judges.shipping import load_judge, save_judge


class TinyJudge(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.config = {"width": width}
        self.fc = nn.Linear(3, width)


def test_a_float16_judge_round_trips_frozen_in_float32(tmp_path):
    torch.manual_seed(0)
    judge = TinyJudge(4)
    path = save_judge(judge, tmp_path / "j.safetensors", "tests.Tiny", {"n": 1}, float16=True)
    loaded = load_judge(path, "unused", "tests.Tiny", lambda c: TinyJudge(**c))
    assert loaded.fc.weight.dtype == torch.float32 and not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    assert torch.equal(loaded.fc.weight, judge.fc.weight.half().float())  # rounded once
    assert path.with_suffix(".json").is_file()


def test_a_file_holding_another_model_is_refused_by_name(tmp_path):
    path = save_judge(TinyJudge(2), tmp_path / "j.safetensors", "tests.Tiny", {})
    with pytest.raises(CheckpointError, match="holds 'tests.Tiny', not a tests.Other"):
        load_judge(path, "unused", "tests.Other", lambda c: TinyJudge(**c))
