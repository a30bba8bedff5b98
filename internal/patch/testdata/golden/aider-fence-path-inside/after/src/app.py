import os


def greet(name):
    return "hi " + name


def main():
    print(greet(os.getlogin()))
