"""Pure torch modules: trunk, grouped linear layers, fused heads."""

import pytest
import torch
from torch import nn

from sklearn_mtl.nn import (
    Dropout,
    GroupedLinear,
    SharedBottomNetwork,
    TaskHeads,
    make_mlp,
)


def test_make_mlp_shapes_and_dropout():
    mlp, n_out = make_mlp(5, (8, 4), "tanh", dropout=0.5)
    assert n_out == 4
    kinds = [type(m) for m in mlp]
    assert kinds == [nn.Linear, nn.Tanh, Dropout, nn.Linear, nn.Tanh, Dropout]
    empty, n = make_mlp(5, ())
    assert n == 5 and len(empty) == 0


def test_grouped_linear_equals_independent_linears():
    torch.manual_seed(0)
    g = GroupedLinear(3, 4, 2)
    x = torch.randn(3, 6, 4)
    out = g(x)
    for t in range(3):
        torch.testing.assert_close(out[t], x[t] @ g.weight[t] + g.bias[t])


def test_fused_heads_without_towers_is_one_linear():
    heads = TaskHeads(8, [1, 3, 1])
    assert isinstance(heads.out, nn.Linear) and heads.out.out_features == 5
    assert heads(torch.randn(4, 8)).shape == (4, 5)


def test_towers_output_layout_matches_task_slices():
    torch.manual_seed(0)
    widths = [1, 3, 2]
    heads = TaskHeads(8, widths, layer_sizes=(5,), activation="relu")
    h = torch.randn(4, 8)
    out = heads(h)
    assert out.shape == (4, 6)
    tower, last = heads.towers[0], heads.out
    start = 0
    for t, w in enumerate(widths):
        z = torch.relu(h @ tower.weight[t] + tower.bias[t])
        expected = (z @ last.weight[t] + last.bias[t])[:, :w]
        torch.testing.assert_close(out[:, start : start + w], expected)
        start += w


def test_per_task_input_heads():
    heads = TaskHeads(8, [1, 2], per_task_input=True)
    h = torch.randn(2, 5, 8)  # one representation per task
    out = heads(h)
    assert out.shape == (5, 3)
    torch.testing.assert_close(
        out[:, 0], (h[0] @ heads.out.weight[0] + heads.out.bias[0])[:, 0]
    )


def test_multitask_network_forward_and_backward():
    net = SharedBottomNetwork(6, [1, 4], hidden_layer_sizes=(16, 8))
    X = torch.randn(10, 6)
    out = net(X)
    assert out.shape == (10, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    "layer_sizes, per_task_input, n_members",
    [((), False, 1), ((), False, 3), ((5,), False, 2), ((), True, 2)],
)
def test_set_output_bias_starts_every_member_at_the_values(
    layer_sizes, per_task_input, n_members
):
    torch.manual_seed(0)
    widths, values = [1, 3, 2], [0.5, -1.0, 0.0, 2.0, 3.0, -4.0]
    heads = TaskHeads(
        8,
        widths,
        layer_sizes=layer_sizes,
        per_task_input=per_task_input,
        n_members=n_members,
    )
    weight = heads.out.weight.detach().clone()
    heads.set_output_bias(values)
    assert torch.equal(heads.out.weight, weight)  # only the bias changes
    with torch.no_grad():
        heads.out.weight.zero_()  # the output is now the bias alone
    rows = 4 * n_members
    h = torch.randn(3, rows, 8) if per_task_input else torch.randn(rows, 8)
    expected = torch.tensor(values).expand(rows, 6)
    torch.testing.assert_close(heads(h), expected)


def test_set_output_bias_needs_one_value_per_output_column():
    heads = TaskHeads(8, [1, 3])
    with pytest.raises(ValueError, match=r"needs 4 values .* got shape \(3,\)"):
        heads.set_output_bias([0.0, 1.0, 2.0])
