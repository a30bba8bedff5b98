from .orders import Order, OrderService
