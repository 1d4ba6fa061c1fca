"""A station's market: stock per commodity, and prices that move with supply and demand.

The price of a commodity is its base price scaled by how scarce it is: ``base * (target /
stock) ** elasticity``, kept within [0.25, 4] x base. Ships buying empty the stock and raise the
price; ships selling fill it and lower the price. Between trades, each commodity's stock drifts
towards its target (the station produces what is short and consumes what is in excess); the
market counts what it produced and consumed, so goods can be accounted for exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from spaceactors.sim import arguments as check

ELASTICITY = 0.7
FLOOR, CEILING = 0.25, 4.0


@attrs.define
class Commodity:
    """One commodity of a station's market: its base price (> 0), target stock and stock
    (>= 0). Its price, in credits per unit, follows scarcity:
    ``base_price * (target / stock) ** 0.7``, kept within 0.25-4 x `base_price`.

    Raises:
        ScenarioError: a value is not a finite number in its range (named in the message).
    """

    base_price: float
    target: float  # the stock at which the price is the base price
    stock: float

    def __attrs_post_init__(self) -> None:
        check.positive("Commodity.base_price", self.base_price)
        check.non_negative("Commodity.target", self.target)
        check.non_negative("Commodity.stock", self.stock)

    @property
    def price(self) -> float:
        """The price of one unit now (the next unit bought or sold moves it)."""
        return round(self.price_at(self.stock), 4)

    def price_at(self, stock: float) -> float:
        """The price of one unit, in credits, when `stock` units are in store."""
        scarcity: float = self.target / max(stock, 1e-6)
        return self.base_price * min(max(math.pow(scarcity, ELASTICITY), FLOOR), CEILING)

    def value(self, low: float, high: float) -> float:
        """What the units between stock levels `low` and `high` are worth: each unit at the
        price it moves the market to, so buying and selling back the same lot nets nothing."""
        steps = 16  # midpoint rule; the curve is smooth and a trade moves little of it
        width = (high - low) / steps
        return sum(self.price_at(low + (i + 0.5) * width) for i in range(steps)) * width


@attrs.define
class Market:
    """The goods a station trades, and what it made or used up itself."""

    goods: dict[str, Commodity] = attrs.field(factory=dict)
    net_production: dict[str, float] = attrs.field(factory=dict)
    """Per commodity: what the station produced minus what it consumed (not traded)."""

    @classmethod
    def of(cls, prices: Mapping[str, float], stock: float = 1000.0) -> Market:
        """A market trading each commodity at its base price with `stock` units in store.

        Raises:
            ScenarioError: a price is not a finite number > 0, or `stock` not one >= 0.
        """
        prices = check.table("prices", prices, strictly_positive=True)
        stock = check.non_negative("stock", stock)
        return cls({name: Commodity(price, stock, stock) for name, price in prices.items()})

    def prices(self) -> dict[str, float]:
        """Each commodity's price now, in credits per unit, by name."""
        return {name: item.price for name, item in sorted(self.goods.items())}

    def sell_to_station(self, commodity: str, quantity: float) -> float:
        """The station buys `quantity`: returns what it pays (0 if it does not trade it)."""
        item = self.goods.get(commodity)
        if item is None or quantity <= 0:
            return 0.0
        paid = item.value(item.stock, item.stock + quantity)
        item.stock += quantity
        return paid

    def buy_from_station(
        self, commodity: str, quantity: float, max_price: float
    ) -> tuple[float, float]:
        """The station sells up to `quantity` if its price now is at most `max_price`: returns
        the quantity sold and what it cost (see `Commodity.value`)."""
        item = self.goods.get(commodity)
        if item is None or item.price > max_price:
            return 0.0, 0.0
        sold = min(quantity, max(item.stock - 1.0, 0.0))
        cost = item.value(item.stock - sold, item.stock)
        item.stock -= sold
        return sold, cost

    def shock(self, commodity: str, factor: float) -> None:
        """Multiply a commodity's stock by `factor` (a glut above 1, a shortage below)."""
        item = self.goods[commodity]
        self._produce(commodity, item.stock * factor - item.stock)

    def drift(self, fraction: float) -> None:
        """Move each stock `fraction` of the way back to its target."""
        for name, item in self.goods.items():
            self._produce(name, (item.target - item.stock) * fraction)

    def _produce(self, commodity: str, change: float) -> None:
        self.goods[commodity].stock += change
        self.net_production[commodity] = self.net_production.get(commodity, 0.0) + change
