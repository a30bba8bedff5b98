from decimal import Decimal


def cents(amount):
    return int(Decimal(str(amount)) * 100)
