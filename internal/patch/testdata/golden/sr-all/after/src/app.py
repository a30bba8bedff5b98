import sys


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        return "hi " + self.name


def greet(name):
    return "hi " + name


def main():
    print(greet(sys.argv[1]))
