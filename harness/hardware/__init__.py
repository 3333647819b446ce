"""Hardware backends (tf.distribute) and the price table."""

from harness.hardware._backend import Hardware, cpu_description, make_strategy
from harness.hardware._prices import PRICES_ENV, load_prices, price_per_hour

__all__ = ["PRICES_ENV", "Hardware", "cpu_description", "load_prices", "make_strategy", "price_per_hour"]
