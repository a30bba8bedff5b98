def main():
    print("hi")