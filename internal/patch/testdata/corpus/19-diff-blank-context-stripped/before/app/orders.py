"""Order service."""
from dataclasses import dataclass


@dataclass
class Order:
    id: int
    total: float
    paid: bool = False


class OrderService:
    def __init__(self, repo):
        self.repo = repo

    def get(self, order_id):
        order = self.repo.find(order_id)
        if order is None:
            raise KeyError(order_id)
        return order

    def pay(self, order_id):
        order = self.get(order_id)
        order.paid = True
        self.repo.save(order)
        return order


class AdminService:
    def __init__(self, repo):
        self.repo = repo

    def get(self, order_id):
        order = self.repo.find(order_id)
        if order is None:
            raise KeyError(order_id)
        return order
