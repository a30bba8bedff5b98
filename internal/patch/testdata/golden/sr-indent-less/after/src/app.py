import sys


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        return "hello " + self.name


def greet(name):
    return "hello " + name


def main():
    for a in sys.argv[1:]:
        print(greet(a))
