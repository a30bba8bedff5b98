import os


def greet(name):
    return "hello " + name


def main():
    print(greet(os.getlogin()))
