"""One flat buffer for parameters and one for gradients; fused optimizer steps."""

import tracemalloc

import numpy as np
import pytest

from nnscratch import SGD, Activation, Adam, Dense, NeuralNetwork
from nnscratch.core.flat import flat_span
from nnscratch.core.tree import every_layer
from nnscratch.optimizers import Adagrad, AdamW, RMSprop
from tests.helpers import classification_data, residual_classifier

OPTIMIZERS = [
    lambda: Adam(0.01),
    lambda: AdamW(0.01),
    lambda: SGD(0.1, momentum=0.9, nesterov=True),
    lambda: RMSprop(0.01, momentum=0.5),
    lambda: Adagrad(0.1),
    lambda: Adam(0.01, clipnorm=0.1),
]


def test_every_param_and_grad_is_a_view_into_the_flat_buffers():
    net = residual_classifier()
    flat = net.flat_parameters()
    params, grads = net.params_and_grads()
    assert flat.params.size == sum(p.size for p in params)
    np.testing.assert_array_equal(flat_span(params), flat.params)
    assert np.shares_memory(flat_span(grads), flat.grads)
    for layer in net.layers[:2]:
        for key, array in layer.params.items():
            assert np.shares_memory(array, flat.params)
            assert np.shares_memory(layer.grads[key], flat.grads)
            assert array.dtype == np.float64


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_a_fused_step_equals_the_per_array_step_bitwise(make):
    # The same rule, one pass over the flat buffer or one pass per array.
    fused, loop = residual_classifier(make()), residual_classifier(make())
    X, y = classification_data()
    for net in (fused, loop):
        net.optimizer.elementwise = net is fused
        net.train(X, y, epochs=2, batch_size=16, verbose=0)
    # With clipnorm the joint norm is summed in another order: last bits only.
    tol = 0 if fused.optimizer.clipnorm is None else 1e-10
    for a, b in zip(fused.get_weights(), loop.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_an_optimizer_step_allocates_nothing_and_makes_one_pass(make):
    net = residual_classifier(make(), dtype="float32")
    X, y = classification_data()
    net.train(X, y, epochs=1, batch_size=16, verbose=0)  # state and scratch made
    optimizer = net.optimizer
    calls = []
    update = optimizer.update

    def counted(param, grad, state, next_state, out):
        calls.append(param.size)
        update(param, grad, state, next_state, out)

    optimizer.update = counted
    params, grads = net.params_and_grads()
    for grad in grads:
        grad[...] = 0.01
    optimizer.step(params, grads)  # warm
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(5):
        optimizer.step(params, grads)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 1024  # bytes, vs a buffer of ~1.2 kB per copy of the state
    assert calls == [net.flat_parameters().params.size] * 6  # one pass per step


def test_a_replaced_array_is_re_adopted_at_the_next_step():
    net = residual_classifier()
    X, y = classification_data()
    dense = net.layers[0]
    new = np.full((4, 8), 0.5)
    dense.params["W"] = new
    net.train(X, y, epochs=1, batch_size=64, verbose=0)
    assert dense.params["W"] is not new
    assert np.shares_memory(dense.params["W"], net.flat_parameters().params)
    assert not np.allclose(dense.params["W"], 0.5)  # it trained from 0.5
    reference = residual_classifier()
    reference.layers[0].params["W"][...] = 0.5
    reference.train(X, y, epochs=1, batch_size=64, verbose=0)
    np.testing.assert_array_equal(dense.params["W"], reference.layers[0].params["W"])


def test_a_replaced_array_of_another_shape_is_a_clear_error():
    net = residual_classifier()
    X, y = classification_data()
    before = net.get_weights()
    net.layers[0].params["W"] = np.zeros((4, 9))
    with pytest.raises(ValueError, match=r"0\.W: expected an array of shape \(4, 8\)"):
        net.train(X, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(net.get_weights()[1:], before[1:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_layer_appended_directly_gets_new_buffers_values_kept():
    net = residual_classifier()
    net.layers.pop()  # the softmax head, then a new one by hand
    head = Dense(3, 3)
    head.build(net.rng, net.dtype)
    net.layers.append(head)
    net.layers.append(Activation("softmax"))
    weights = [w.copy() for w in net.params_and_grads()[0]]
    flat = net.flat_parameters()
    assert np.shares_memory(head.params["W"], flat.params)
    for a, b in zip(net.params_and_grads()[0], weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_standalone_arrays_still_step_one_by_one():
    w, b = np.array([1.0, 2.0]), np.array([3.0])
    opt = Adam(learning_rate=0.1)
    opt.step([w, b], [np.array([1.0, -1.0]), np.array([2.0])])
    np.testing.assert_allclose(w, [0.9, 2.1])
    np.testing.assert_allclose(b, [2.9])


def test_a_layer_that_assigns_new_gradient_arrays_still_trains():
    from nnscratch.core.layer import Layer

    class Scale(Layer):
        """y = x * s, written as a user might: grads assigned anew."""

        def __init__(self, in_place):
            super().__init__()
            self.params = {"s": np.ones(4)}
            self.in_place = in_place

        def forward(self, x, training=False):
            self.x = x
            return x * self.params["s"]

        def backward(self, grad):
            ds = (grad * self.x).sum(axis=0)  # (N, 4) -> (4,)
            if self.in_place:
                self.grads["s"][...] = ds
            else:
                self.grads = {"s": ds}
            return grad * self.params["s"]

    X, y = classification_data()
    nets = []
    for in_place in (True, False):
        net = NeuralNetwork("cce", Adam(0.05), seed=0, dtype="float64")
        net.add(Scale(in_place))
        net.add(Dense(4, 3))
        net.add(Activation("softmax"))
        net.train(X, y, epochs=2, batch_size=16, verbose=0)
        nets.append(net)
    assert not np.allclose(nets[1].layers[0].params["s"], 1.0)  # it trained
    for a, b in zip(nets[0].get_weights(), nets[1].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("cause", ["nan gradient", "overflow"])
def test_a_refused_step_changes_nothing(make, fused, cause):
    # Refused before the state is overwritten: parameters, state and step
    # count stay as they were, bit for bit.
    net = residual_classifier(make())
    X, y = classification_data()
    net.train(X, y, epochs=1, batch_size=16, verbose=0)
    optimizer = net.optimizer
    params, grads = net.params_and_grads()
    if not fused:  # separate arrays: one update per array
        params = [p.copy() for p in params]
        grads = [g.copy() for g in grads]
        assert optimizer.step(params, grads)
    for grad in grads:
        grad[...] = -0.5
    rate = optimizer.learning_rate
    if cause == "nan gradient":
        grads[-1][0] = np.nan
    else:  # a finite step that carries the largest weight past the range
        params[0][0, 0] = np.finfo(np.float64).max
        optimizer.learning_rate = 1e300
    before = [p.copy() for p in params]
    state = optimizer.state
    state_values = [{k: a.copy() for k, a in entry.items()} for entry in state]
    iterations = optimizer.iterations

    assert optimizer.step(params, grads, refuse_non_finite=True) is False
    assert optimizer.iterations == iterations and optimizer.state is state
    for now, then in zip(params, before, strict=True):
        np.testing.assert_array_equal(now, then)
    for entry, values in zip(state, state_values, strict=True):
        for key, array in entry.items():
            np.testing.assert_array_equal(array, values[key])
    # With sound values the same step is taken.
    grads[-1][...] = -0.5
    params[0][0, 0] = 0.0
    optimizer.learning_rate = rate
    assert optimizer.step(params, grads, refuse_non_finite=True)
    assert optimizer.iterations == iterations + 1
    assert not np.array_equal(params[-1], before[-1])


def test_a_layer_without_params_added_keeps_the_per_step_check_cheap():
    # Adding Activation changes the tree but no array: the buffers stay and
    # the new tree is remembered, so later steps take the identity-only path.
    net = NeuralNetwork("cce", Adam(0.01), seed=0)
    net.add(Dense(4, 3))
    flat = net.flat_parameters()
    net.add(Activation("softmax"))
    assert net.flat_parameters() is flat
    assert flat._unchanged(every_layer(net.layers))
