import os


def greet(name):
    name = name.title()
    return "hello " + name


def main():
    print(greet(os.getlogin()))
