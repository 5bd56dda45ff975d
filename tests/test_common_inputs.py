"""pytal.models.common.check_targets: the ground-truth check CLTDR-GMG and SeqAttNet share."""
from __future__ import annotations

import pytest
import torch

from pytal.models.common import check_targets

CPU = torch.device("cpu")


def test_targets_become_float_segments_and_int64_labels():
    segs, labels = check_targets("Det", [[[1, 4], [2, 8]], torch.zeros(0, 2)],
                                 [torch.tensor([0, 2], dtype=torch.int32),
                                  torch.zeros(0, dtype=torch.long)], 2, 3, CPU)
    assert [s.dtype for s in segs] == [torch.float32] * 2
    assert [lab.dtype for lab in labels] == [torch.int64] * 2
    assert segs[0].tolist() == [[1.0, 4.0], [2.0, 8.0]] and labels[0].tolist() == [0, 2]
    assert segs[1].shape == (0, 2) and labels[1].shape == (0,)


def test_multi_label_rows_expand_to_one_pair_per_class():
    rows = torch.tensor([[1, 0, 1], [0, 1, 0]])
    segs, labels = check_targets("Det", [torch.tensor([[1.0, 4.0], [2.0, 8.0]])], [rows], 1, 3,
                                 CPU, multi_label=True)
    assert segs[0].tolist() == [[1.0, 4.0], [1.0, 4.0], [2.0, 8.0]]
    assert labels[0].tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match=r"Det: labels\[0\] must be \(N,\) = \(2,\) int64 "
                                         r"class ids, got"):
        check_targets("Det", [torch.tensor([[1.0, 4.0], [2.0, 8.0]])], [rows], 1, 3, CPU)


@pytest.mark.parametrize("segments, labels, message", [
    ([torch.zeros(1, 2)], [torch.zeros(1, dtype=torch.long)] * 2, "lists of B = 1"),
    ([torch.zeros(1, 3)], [torch.zeros(1, dtype=torch.long)], r"segments\[0\] must have shape"),
    ([torch.zeros(2, 2)], [torch.zeros(1, dtype=torch.long)], r"labels\[0\] must be \(N,\)"),
    ([torch.zeros(1, 2)], [torch.zeros(1)], r"labels\[0\] must be \(N,\)"),
    ([torch.zeros(1, 2)], [torch.tensor([3])], r"labels\[0\] must be in \[0, 3\)"),
    ([torch.zeros(1, 2)], [torch.tensor([-1])], r"labels\[0\] must be in \[0, 3\)"),
])
def test_bad_targets_name_the_field(segments, labels, message):
    with pytest.raises(ValueError, match=message):
        check_targets("Det", segments, labels, 1, 3, CPU, multi_label=True)

