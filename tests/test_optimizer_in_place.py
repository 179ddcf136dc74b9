"""Steps in place behind proven bounds, and the exact path beside them.

Training asks every step to be refused when a weight would become NaN or
infinite, with nothing changed. The optimizer proves most steps finite from
one or two reductions and running bounds of its state, then updates everything in
place; the others it computes aside and checks (see ``Optimizer``).
"""

import numpy as np
import pytest

from nnscratch import SGD, Adam
from nnscratch.optimizers import Adagrad, AdamW, RMSprop
from nnscratch.optimizers import optimizer as optimizer_module
from nnscratch.optimizers.optimizer import BOUND_SLACK, max_abs, max_abs_bound
from tests.helpers import classification_data, residual_classifier

RULES = [
    lambda: Adam(0.01),
    lambda: Adam(0.5, beta1=0.0, beta2=0.5, epsilon=1e-3),
    lambda: AdamW(0.01, weight_decay=0.1),
    lambda: SGD(0.1),
    lambda: SGD(0.1, momentum=0.9),
    lambda: SGD(0.1, momentum=0.9, nesterov=True),
    lambda: RMSprop(0.01),
    lambda: RMSprop(0.01, momentum=0.5),
    lambda: Adagrad(0.1, initial_accumulator_value=0.1),
]


@pytest.mark.parametrize("make", RULES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_rules_bounds_hold_for_gradients_of_every_scale(make, dtype):
    # The state after a step stays within bound_step's bounds, and so does
    # each new value. From weights at 0, the new value is the step itself,
    # so its bound is tested, not hidden behind |param|.
    rng = np.random.default_rng(0)
    optimizer = make()
    param = np.zeros(2000, dtype)
    largest = 1e15 if dtype == np.float32 else 1e100
    for scale in np.geomspace(1e-12, largest, 40)[rng.permutation(40)]:
        grad = (rng.standard_normal(param.size) * scale).astype(dtype)
        grad[rng.random(param.size) < 0.3] = 0.0  # units that do not learn
        param[...] = 0.0
        state = optimizer.state or [optimizer.initial_state(param)]
        bounds = optimizer.measure_bounds(state)
        optimizer.iterations += 1  # bound_step sees this step's t
        after, step_bound = optimizer.bound_step(bounds, max_abs([grad]))
        optimizer.iterations -= 1
        assert optimizer.step([param], [grad])
        measured = optimizer.measure_bounds(optimizer.state)
        for name, value in measured.items():
            assert value <= after[name] * BOUND_SLACK, name
        assert max_abs([param]) <= optimizer.new_value_bound(0.0, step_bound) * (
            BOUND_SLACK
        )


def test_max_abs_sees_nan_and_infinity_wherever_they_are():
    values = np.arange(10.0)
    assert max_abs([values, -2 * values]) == 18.0
    for position in (0, 5, 9):
        for bad in (np.nan, np.inf, -np.inf):
            spoiled = values.copy()
            spoiled[position] = bad
            result = max_abs([values, spoiled])
            assert np.isnan(result) if np.isnan(bad) else result == np.inf
    assert max_abs([np.zeros(0)]) == 0.0


def record_paths(optimizer, paths):
    """Append to ``paths`` how each update of ``optimizer`` runs."""
    update = optimizer.update

    def recorded(param, grad, state, next_state, out):
        paths.append("in place" if next_state is state else "aside")
        update(param, grad, state, next_state, out)

    optimizer.update = recorded


@pytest.mark.parametrize("make", RULES)
def test_steps_in_place_and_steps_aside_give_the_same_bits(make):
    in_place, aside = residual_classifier(make()), residual_classifier(make())
    # With no bound, every step is computed aside, checked and copied.
    aside.optimizer.bound_step = lambda bounds, gradient_bound: (bounds, None)
    paths = {id(in_place): [], id(aside): []}
    for net in (in_place, aside):
        record_paths(net.optimizer, paths[id(net)])
    X, y = classification_data()
    for net in (in_place, aside):
        net.train(X, y, epochs=3, batch_size=16, verbose=0)
    assert set(paths[id(in_place)]) == {"in place"}
    assert set(paths[id(aside)]) == {"aside"}
    for a, b in zip(in_place.get_weights(), aside.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for mine, theirs in zip(
        in_place.optimizer.state, aside.optimizer.state, strict=True
    ):
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key])


def test_after_an_overflow_is_refused_training_goes_on_in_place():
    # A learning rate that overflows: refused, the state measured again,
    # and once the rate is sound the steps are in place again.
    net, reference = residual_classifier(Adam(0.01)), residual_classifier(Adam(0.01))
    X, y = classification_data()
    for model in (net, reference):
        model.train(X, y, epochs=1, batch_size=16, verbose=0)
    paths = []
    record_paths(net.optimizer, paths)
    params, grads = net.params_and_grads()
    for model in (net, reference):  # BatchNorm's statistics move alike
        model.compute_gradients(X[:16], y[:16], training=True)
    # A gradient that dominates the sums there: a step of about -lr / 2.
    grads[0][0, 0] = -1e6
    params[0][0, 0] = 0.9 * np.finfo(np.float64).max
    net.optimizer.learning_rate = 1e308
    kept = [p.copy() for p in params]
    assert not net.optimizer.step(params, grads, refuse_non_finite=True)
    for now, then in zip(params, kept, strict=True):
        np.testing.assert_array_equal(now, then)
    params[0][0, 0] = reference.params_and_grads()[0][0][0, 0]
    net.optimizer.learning_rate = 0.01
    for model in (net, reference):
        model.train(X, y, epochs=1, batch_size=16, verbose=0)
    # Proven, then not (and not even after measuring the state again): the
    # step computed aside and refused; then every step in place again.
    assert paths == ["aside"] + ["in place"] * (len(paths) - 1)
    for a, b in zip(net.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def record_bounds(monkeypatch, sizes):
    """Append to ``sizes`` the sizes of the arrays each guard reduction reads."""
    measure = optimizer_module.max_abs_bound

    def recorded(arrays):
        arrays = list(arrays)
        sizes.append([array.size for array in arrays])
        return measure(arrays)

    monkeypatch.setattr(optimizer_module, "max_abs_bound", recorded)


def trained_twins():
    """Two equal models after one epoch, their gradients filled alike."""
    X, y = classification_data()
    twins = residual_classifier(Adam(0.01)), residual_classifier(Adam(0.01))
    for model in twins:
        model.train(X, y, epochs=1, batch_size=16, verbose=0)
        model.compute_gradients(X[:16], y[:16], training=True)
    return twins


def test_a_models_step_is_guarded_by_one_reduction_over_params_and_grads(
    monkeypatch,
):
    # The flat buffers lie back to back: one dot product bounds both.
    net, reference = trained_twins()
    flat = net.flat_parameters()
    assert flat.grads.base is flat.params.base  # one allocation
    sizes = []
    record_bounds(monkeypatch, sizes)
    assert net.optimizer.step(*net.params_and_grads(), refuse_non_finite=True)
    assert sizes == [[2 * flat.params.size]]
    reference.optimizer.step(*reference.params_and_grads())  # unguarded
    for a, b in zip(net.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_weights_beyond_the_joint_bound_are_measured_apart_and_step_in_place(
    monkeypatch,
):
    # A weight of 1e160: its square overflows what Adam's square_sum bound
    # may reach, so the joint bound proves nothing. Measured apart, the
    # gradients are small and the step is proven finite after all.
    net, reference = trained_twins()
    for model in (net, reference):
        model.params_and_grads()[0][0][0, 0] = 1e160
    sizes, paths = [], []
    record_bounds(monkeypatch, sizes)
    record_paths(net.optimizer, paths)
    assert net.optimizer.step(*net.params_and_grads(), refuse_non_finite=True)
    n = net.flat_parameters().params.size
    assert sizes == [[2 * n], [n], [n]]  # both at once, then grads and weights
    assert paths == ["in place"]
    reference.optimizer.step(*reference.params_and_grads())
    for a, b in zip(net.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_abs_bound_is_a_bound_and_sees_what_is_not_finite(dtype):
    rng = np.random.default_rng(5)
    for scale in (1e-30, 1.0, 1e15):
        arrays = [(rng.standard_normal(n) * scale).astype(dtype) for n in (1, 7, 5000)]
        exact = max_abs(arrays)
        bound = max_abs_bound(arrays)
        # At most the norm (with room for rounding), plus what squares that
        # underflow could have lost.
        underflow = np.sqrt(5008 * np.finfo(dtype).tiny)
        assert exact <= bound <= exact * np.sqrt(5000 * 1.01) + underflow
    huge = np.full(10, np.finfo(dtype).max / 2, dtype)  # its squares overflow
    assert max_abs_bound([huge]) == max_abs([huge])
    assert max_abs_bound([huge[::2]]) == max_abs([huge])  # not contiguous
    for bad in (np.nan, np.inf):
        spoiled = np.ones(9, dtype)
        spoiled[4] = bad
        result = max_abs_bound([np.ones(3, dtype), spoiled, np.ones(3, dtype)])
        assert np.isnan(result) if np.isnan(bad) else result == np.inf
