# obsolete
x = 1
