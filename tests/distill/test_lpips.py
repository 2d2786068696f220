import pytest
import torch
from safetensors.torch import save_file

from joker.distill.lpips import Lpips, load_lpips
from joker_core.errors import JokerError


def test_lpips_loads_from_a_local_file_and_measures_distance(tmp_path):
    torch.manual_seed(0)
    original = Lpips()
    for k in range(5):  # LPIPS heads are non-negative weights
        head = getattr(original, f"lin{k}").model[1]
        head.weight.data.abs_()
    path = tmp_path / "lpips_vgg.safetensors"
    save_file(original.state_dict(), str(path))
    loaded = load_lpips(path)
    generator = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 32, 32, generator=generator), torch.rand(2, 3, 32, 32, generator=generator)
    assert loaded(a, a).item() == 0.0
    assert loaded(a, b).item() > 0.0
    assert torch.equal(loaded(a, b), original(a, b))


def test_absent_or_wrong_weights_are_refused_with_the_fix(tmp_path):
    with pytest.raises(JokerError, match="no LPIPS weights file") as refused:
        load_lpips(tmp_path / "absent.safetensors")
    assert "set the LPIPS weight to 0" in refused.value.fix
    wrong = tmp_path / "wrong.safetensors"
    save_file({"features.0.weight": torch.zeros(1)}, str(wrong))
    with pytest.raises(JokerError, match="safetensors"):
        load_lpips(wrong)
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(JokerError, match="safetensors"):
        load_lpips(tmp_path / "garbage.safetensors")
