"""Inception-I3D: the public rgb_imagenet.pt / flow_imagenet.pt state-dict layout loads by path."""
import pytest
import torch

from pytal.backbones import InceptionI3d, build_backbone, load_i3d_state_dict

# The public layout, written out independently of pytal's model: stem units, then per inception
# block its six units (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; pool -> 1x1) with these output channels.
STEM = [("Conv3d_1a_7x7", None, 64, 7), ("Conv3d_2b_1x1", 64, 64, 1), ("Conv3d_2c_3x3", 64, 192, 3)]
BLOCKS = [("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
          ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
          ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
          ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
          ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
          ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
          ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
          ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
          ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128))]


def public_layout(in_channels: int) -> dict[str, tuple]:
    """Names and shapes of the public state dict (no BatchNorm num_batches_tracked, as in the
    released files)."""
    shapes = {}

    def unit(name, cin, cout, k):
        shapes[f"{name}.conv3d.weight"] = (cout, cin, k, k, k)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{stat}"] = (cout,)

    for name, cin, cout, k in STEM:
        unit(name, in_channels if cin is None else cin, cout, k)
    for name, cin, (c0, c1a, c1b, c2a, c2b, c3) in BLOCKS:
        unit(f"{name}.b0", cin, c0, 1)
        unit(f"{name}.b1a", cin, c1a, 1)
        unit(f"{name}.b1b", c1a, c1b, 3)
        unit(f"{name}.b2a", cin, c2a, 1)
        unit(f"{name}.b2b", c2a, c2b, 3)
        unit(f"{name}.b3b", cin, c3, 1)
    shapes["logits.conv3d.weight"] = (400, 1024, 1, 1, 1)
    shapes["logits.conv3d.bias"] = (400,)
    return shapes


def public_state_dict(in_channels: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in public_layout(in_channels).items():
        value = torch.randn(shape, generator=g) * 0.05
        if name.endswith("running_var"):
            value = value.abs() + 0.5
        sd[name] = value
    return sd


def test_layout_size():
    layout = public_layout(3)
    # 3 stem units + 9 blocks x 6 units, 5 tensors each, + the 2 logits tensors
    assert len(layout) == (3 + 9 * 6) * 5 + 2 == 287


@pytest.mark.parametrize("in_channels,file", [(3, "rgb_imagenet.pt"), (2, "flow_imagenet.pt")])
def test_public_state_dict_loads(tmp_path, in_channels, file):
    sd = public_state_dict(in_channels)
    model = InceptionI3d(in_channels=in_channels)
    load_i3d_state_dict(model, sd, source=file)
    own = model.state_dict()
    for name, value in sd.items():
        torch.testing.assert_close(own[name], value, rtol=0, atol=0)
    if in_channels == 3:
        path = tmp_path / file
        torch.save(sd, path)
        encoder = build_backbone("i3d", str(path))
        torch.testing.assert_close(encoder.network.state_dict()["Mixed_4e.b2b.bn.running_var"],
                                   sd["Mixed_4e.b2b.bn.running_var"], rtol=0, atol=0)


def test_loader_errors_name_the_key():
    rgb = public_state_dict(3)
    with pytest.raises(ValueError, match=r"flow_imagenet\.pt: 'Conv3d_1a_7x7.conv3d.weight' has "
                                         r"shape \(64, 3, 7, 7, 7\), expected \(64, 2, 7, 7, 7\) "
                                         r"\(input channels 3: 3 for RGB"):
        load_i3d_state_dict(InceptionI3d(in_channels=2), rgb, source="flow_imagenet.pt")
    partial = dict(rgb)
    del partial["Mixed_5c.b3b.bn.running_mean"]
    with pytest.raises(ValueError, match=r"missing key 'Mixed_5c.b3b.bn.running_mean' \(shape \(128,\)"):
        load_i3d_state_dict(InceptionI3d(), partial)
    extra = dict(rgb, **{"fc.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"unexpected key 'fc.weight'"):
        load_i3d_state_dict(InceptionI3d(), extra)


def test_same_padding_gives_the_released_feature_map_size():
    # 16 frames of 224 x 224 -> Mixed_5c map of 2 x 7 x 7 (what the released extractors pool)
    model = InceptionI3d().eval()
    with torch.no_grad():
        fmap = model.feature_map(torch.zeros(1, 3, 16, 224, 224))
        assert fmap.shape == (1, 1024, 2, 7, 7)
        odd = model.feature_map(torch.zeros(1, 3, 9, 33, 47))
    assert odd.shape == (1, 1024, 2, 2, 2)        # ceil(9/8), ceil(33/32), ceil(47/32)
