def greet(name):
    return "hello " + name


def main():
    print(greet("world"))
