import sys

from version import VERSION


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        return "hello " + self.name


def greet(name):
    return "hello " + name


def main():
    print(VERSION)
    print(greet(sys.argv[1]))
