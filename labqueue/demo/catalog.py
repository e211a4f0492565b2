"""The shop's products: SKU-1 .. SKU-20, seeded into SQLite and into the fake ERP's stock."""

from __future__ import annotations

from typing import NamedTuple


class Product(NamedTuple):
    sku: str
    name: str
    price_cents: int


_TOYS = [
    ("Wooden train set", 3499),
    ("Rubber duck", 499),
    ("Kite", 1999),
    ("Yo-yo", 399),
    ("Jigsaw puzzle, 500 pieces", 1499),
    ("Teddy bear", 2499),
    ("Spinning top", 599),
    ("Marbles, bag of 50", 899),
    ("Skipping rope", 699),
    ("Toy robot", 4999),
    ("Building blocks, 100", 2999),
    ("Doll's house", 8999),
    ("Race car", 1299),
    ("Board game", 2799),
    ("Kaleidoscope", 1099),
    ("Water pistol", 799),
    ("Paper plane kit", 599),
    ("Bouncy ball", 199),
    ("Toy drum", 1899),
    ("Puppet", 1599),
]

#: SKU-1 .. SKU-20, prices in cents.
PRODUCTS: tuple[Product, ...] = tuple(
    Product(f"SKU-{i}", name, price) for i, (name, price) in enumerate(_TOYS, start=1)
)

#: Units of each SKU the fake ERP starts with.
INITIAL_STOCK = 100_000
