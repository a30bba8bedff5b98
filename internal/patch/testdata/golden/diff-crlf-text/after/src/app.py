def greet(name):
    greeting = "hello " + name
    return greeting


def main():
    print(greet("world"))
