"""The fast paths of Conv2D, the pools and Dense against PyTorch, in float64.

The (C, H, W, N) memory layout between layers, im2col buffers reused from
call to call, col2im as the adjoint of im2col, pooling that writes its
gradient straight into dx, and Dense on 3-D input as one 2-D product, with
gradients still written in place.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from helpers import to_numpy, to_torch

from nnscratch.layers import im2col as im2col_module
from nnscratch.layers.conv2d import Conv2D
from nnscratch.layers.dense import Dense
from nnscratch.layers.im2col import col2im, im2col
from nnscratch.layers.pooling import AvgPool2D, MaxPool2D

FLOAT64 = np.dtype("float64")


def conv_layer(c_in, c_out, kernel, stride=1, padding=0, seed=0):
    rng = np.random.default_rng(seed)
    layer = Conv2D(c_in, c_out, kernel, stride, padding)
    layer.build(rng, FLOAT64)
    layer.params["b"] = rng.standard_normal(c_out)
    return layer


def torch_conv(layer, x, grad):
    x_t = to_torch(x, requires_grad=True)
    W_t = to_torch(layer.params["W"], requires_grad=True)
    b_t = to_torch(layer.params["b"], requires_grad=True)
    y_t = F.conv2d(x_t, W_t, b_t, stride=layer.stride, padding=layer.padding)
    y_t.backward(to_torch(grad))
    return to_numpy(y_t), to_numpy(x_t.grad), to_numpy(W_t.grad), to_numpy(b_t.grad)


@pytest.mark.parametrize(
    "kernel, stride, padding", [(3, 1, 1), (5, 2, 2), ((3, 2), (2, 1), (0, 1))]
)
@pytest.mark.parametrize("layout", ["NCHW", "CHWN"])
def test_conv_matches_torch_for_either_input_layout(kernel, stride, padding, layout):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 9, 8))
    if layout == "CHWN":  # what a previous Conv2D hands on
        x = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    layer = conv_layer(2, 4, kernel, stride, padding)
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape)
    y_t, dx_t, dW_t, db_t = torch_conv(layer, x, grad)
    dx = layer.backward(grad)
    np.testing.assert_allclose(y, y_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, dx_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], dW_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], db_t, rtol=1e-10, atol=1e-12)
    # Output and dx are (C, H, W, N) in memory, the batch innermost.
    assert y.transpose(1, 2, 3, 0).flags.c_contiguous
    assert dx.transpose(1, 2, 3, 0).strides[-1] == dx.itemsize


@pytest.mark.parametrize("budget", [1, 600])  # one output row a block; a few
@pytest.mark.parametrize(
    "kernel, stride, padding", [(3, 1, 1), (5, 2, 2), ((3, 2), (2, 1), (0, 1))]
)
def test_conv_in_blocks_of_output_rows_matches_torch(
    monkeypatch, budget, kernel, stride, padding
):
    # dL/dcols is formed and added back a block of output rows at a time;
    # a tiny budget makes many blocks, the last one shorter.
    monkeypatch.setattr(im2col_module, "BLOCK_BYTES", budget)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 9, 8))
    layer = conv_layer(2, 4, kernel, stride, padding)
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape)
    y_t, dx_t, dW_t, db_t = torch_conv(layer, x, grad)
    np.testing.assert_allclose(layer.backward(grad), dx_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, y_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], dW_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], db_t, rtol=1e-10, atol=1e-12)


def test_reused_buffers_follow_the_batch_shape_and_the_latest_call():
    rng = np.random.default_rng(2)
    layer = conv_layer(3, 5, 3, 1, 1)
    grads_W = layer.grads["W"]
    for n in (4, 4, 2, 4):  # the same shape twice, then a new one, then back
        first, x = rng.standard_normal((n, 3, 6, 6)), rng.standard_normal((n, 3, 6, 6))
        layer.forward(first)
        y = layer.forward(x)  # backward follows the latest forward
        grad = rng.standard_normal(y.shape)
        y_t, dx_t, dW_t, _ = torch_conv(layer, x, grad)
        dx = layer.backward(grad)
        np.testing.assert_allclose(y, y_t, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, dx_t, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["W"], dW_t, rtol=1e-10, atol=1e-12)
        assert layer.grads["W"] is grads_W  # written in place, never rebound


def test_outputs_are_not_overwritten_by_the_next_call():
    rng = np.random.default_rng(3)
    layer = conv_layer(2, 3, 3, 1, 1)
    x1, x2 = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 2, 5, 5))
    y1 = layer.forward(x1)
    kept = y1.copy()
    dx1 = layer.backward(np.ones_like(y1))
    dx1_kept = dx1.copy()
    layer.forward(x2)
    layer.backward(np.full_like(y1, 2.0))
    np.testing.assert_array_equal(y1, kept)
    np.testing.assert_array_equal(dx1, dx1_kept)


def test_im2col_buffers_keep_a_zero_border():
    rng = np.random.default_rng(4)
    buffers: dict = {}
    cols1 = im2col(rng.standard_normal((2, 3, 5, 5)), (3, 3), (1, 1), (1, 1), buffers)
    x = rng.standard_normal((2, 3, 5, 5))
    cols2 = im2col(x, (3, 3), (1, 1), (1, 1), buffers)
    assert cols2 is cols1  # reused
    np.testing.assert_array_equal(cols2, im2col(x, (3, 3), (1, 1), (1, 1)))


@pytest.mark.parametrize(
    "shape, kernel, stride, padding",
    [
        ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1)),
        ((1, 2, 9, 9), (5, 5), (2, 2), (2, 2)),
        ((3, 1, 8, 5), (2, 3), (3, 1), (0, 2)),
    ],
)
def test_col2im_is_the_adjoint_of_im2col(shape, kernel, stride, padding):
    # <im2col(x), c> = <x, col2im(c)> for every x and c: col2im is the transpose.
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, stride, padding)
    c = rng.standard_normal(cols.shape)
    left = np.sum(cols * c)
    right = np.sum(x * col2im(c, shape, kernel, stride, padding))
    assert left == pytest.approx(right, rel=1e-12)


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(
    "size, pool_size, stride", [(8, 2, None), (7, 2, None), (9, 3, 2), (6, 2, 1)]
)
def test_pools_keep_the_layout_and_match_torch(pool, size, pool_size, stride):
    rng = np.random.default_rng(6)
    # (C, H, W, N) in memory, as after Conv2D + ReLU; zeros make ties.
    x = np.maximum(rng.standard_normal((3, size, size, 4)), 0).transpose(3, 0, 1, 2)
    layer = pool(pool_size, stride)
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape)
    dx = layer.backward(grad)
    x_t = to_torch(x, requires_grad=True)
    function = F.max_pool2d if pool is MaxPool2D else F.avg_pool2d
    y_t = function(x_t, pool_size, stride)
    y_t.backward(to_torch(grad))
    np.testing.assert_allclose(y, to_numpy(y_t), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, to_numpy(x_t.grad), rtol=1e-12, atol=1e-14)
    assert y.transpose(1, 2, 3, 0).flags.c_contiguous
    assert dx.transpose(1, 2, 3, 0).flags.c_contiguous


def test_max_pool_all_zero_window_routes_to_the_first_element():
    # A window of ReLU zeros is a 4-way tie: the top-left pixel gets it all.
    layer = MaxPool2D(2)
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, 1, 3] = 1.0  # the second window has a clear winner
    layer.forward(x)
    dx = layer.backward(np.array([[[[5.0, 7.0]]]]))
    expected = [[5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 7.0]]
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 3, 2, 4), (1, 1, 4)])
def test_dense_on_sequences_matches_torch_with_grads_in_place(shape):
    rng = np.random.default_rng(7)
    layer = Dense(4, 3)
    layer.build(rng, FLOAT64)
    layer.params["b"] = rng.standard_normal(3)
    grads = {key: value for key, value in layer.grads.items()}
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape)
    dx = layer.backward(grad)
    x_t = to_torch(x, requires_grad=True)
    W_t = to_torch(layer.params["W"], requires_grad=True)
    b_t = to_torch(layer.params["b"], requires_grad=True)
    y_t = x_t @ W_t + b_t
    y_t.backward(to_torch(grad))
    assert y.shape == (*shape[:-1], 3) and dx.shape == shape
    np.testing.assert_allclose(y, to_numpy(y_t), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, to_numpy(x_t.grad), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.grads["W"], to_numpy(W_t.grad), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], to_numpy(b_t.grad), rtol=1e-12)
    assert all(layer.grads[key] is grads[key] for key in grads)


def test_dense_hands_a_column_major_input_its_gradient_column_major():
    # Flatten of a (C, H, W, N) Conv2D output is a column-major (N, C*H*W) view.
    rng = np.random.default_rng(8)
    layer = Dense(12, 3)
    layer.build(rng, FLOAT64)
    x = np.asfortranarray(rng.standard_normal((5, 12)))
    layer.forward(x)
    grad = rng.standard_normal((5, 3))
    dx = layer.backward(grad)
    assert dx.flags.f_contiguous
    np.testing.assert_allclose(dx, grad @ layer.params["W"].T, rtol=1e-13)
