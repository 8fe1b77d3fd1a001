"""The plugin's own tests: pftlab's conformance kit on each of its components."""

from pftlab_example_plugin import BENCHMARK, METHOD, MODEL

from pftlab import testing


def test_method_conforms() -> None:
    testing.check_method(METHOD)


def test_model_conforms() -> None:
    testing.check_model(MODEL, input_shape=(10,), num_classes=4)


def test_benchmark_conforms() -> None:
    fed = testing.check_benchmark(BENCHMARK)
    assert fed.num_clients == 4 and fed.input_shape == (10,)
