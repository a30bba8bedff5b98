import sys


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        return "hello " + self.name


def greet(name):
    return "hello " + name


def main():   
    print(greet(sys.argv[1]), file=sys.stderr)
